"""Credentials come from the environment, the only place secrets live.

This module also holds the one definition of "this conf value looks like a
credential" (:func:`secret_problem`), used to refuse secrets in committed conf
layers, and of how such a value is shown (:func:`mask`) by ``driftgate config``.
"""
from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from driftgate.core.errors import ConfigError

__all__ = ["secret", "secret_problem", "mask", "SECRET_ENV_HINTS"]

# Key names that hold credentials, matched at the end of the key (``db_password``, ``aws_secret_access_key``).
# ``token_env`` / ``password_env`` name an environment variable and do not match.
_SECRET_KEY = re.compile(
    r"(password|passwd|pwd|secret|(?<!idempotency_)token|api_?key|access_?key|account_?key|private_?key|secret_?key|"
    r"credential|connection_?string|conn_?str|auth_?header|authorization|dsn)s?$",
    re.I,
)
# Hook URLs whose path or query is the credential (posting needs nothing else).
_HOOK_HOSTS = (
    (re.compile(r"^hooks\.slack(-gov)?\.com$"), re.compile(r"^/(services|workflows|triggers)/.+")),
    (re.compile(r"^(ptb\.|canary\.)?discord(app)?\.com$"), re.compile(r"^/api/webhooks/.+")),
    (re.compile(r"(^|\.)webhook\.office\.com$"), re.compile(r".+")),
    (re.compile(r"^outlook\.office(365)?\.com$"), re.compile(r"^/webhook/.+")),
    (re.compile(r"(^|\.)logic\.azure\.com$"), re.compile(r".+")),
)
_TOKEN_PARAMS = re.compile(r"^(token|access_token|auth|key|api_?key|code|sig|signature|secret|password|pwd)$", re.I)
_CONNECTION_SECRET = re.compile(r"(^|;)\s*(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)\s*=", re.I)

SECRET_ENV_HINTS: dict[str, str] = {
    "promotion.notifications.webhook_url": "DRIFTGATE_NOTIFY_WEBHOOK_URL (promotion.notifications.webhook_url_env)",
    "workspace.tracking_uri": "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN",
    "workspace.registry_uri": "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN",
    "tuning.storage": "DRIFTGATE_OPTUNA_STORAGE",
}


def secret(name: str, *, required: bool = False) -> str | None:
    """Read a credential from the environment, the only place secrets live.

    On Databricks, job tasks map secret scopes to environment variables
    (``{{secrets/<scope>/<key>}}``), so the same lookup works there.
    """
    value = os.environ.get(name)
    if required and not value:
        raise ConfigError(f"environment: {name} must be set (secrets never live in conf files)", key=name)
    return value or None


def _empty(value: Any) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, str | list | dict) and not value)


def _url_problem(text: str) -> str | None:
    try:
        parts = urlsplit(text.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    if "@" in parts.netloc:
        return "a URL with credentials (user info)"
    for host_re, path_re in _HOOK_HOSTS:
        if host_re.search(host) and path_re.match(parts.path or ""):
            return "a hook URL that is itself a credential"
    if any(_TOKEN_PARAMS.match(k) and v for k, v in parse_qsl(parts.query, keep_blank_values=True)):
        return "a URL carrying a token in its query"
    return None


def secret_problem(key: str, value: Any) -> str | None:
    """Why ``key: value`` looks like a credential, or None.

    A credential-named key (``password``, ``aws_secret_access_key``, ``private_key``,
    ``connection_string``, ``auth_header`` ...) with any non-empty value (string,
    number, list or mapping; a boolean is a flag, not a secret); or, under any key, a
    URL with user info, a hook URL that is itself a credential (Slack, Discord, Teams),
    a URL with a token in its query, or a connection string with a key or password.
    The description never repeats the value.
    """
    if _SECRET_KEY.search(str(key)) and not _empty(value):
        return f"a value for a credential-named key ({type(value).__name__})"
    if isinstance(value, str):
        if problem := _url_problem(value):
            return problem
        if _CONNECTION_SECRET.search(value):
            return "a connection string with a key or password"
    return None


def mask(key: str, value: Any) -> Any:
    """The value as ``driftgate config`` shows it: credentials replaced by ``***``."""
    if isinstance(value, dict):
        if _SECRET_KEY.search(str(key)) and value:
            return "***"
        return {k: mask(k, v) for k, v in value.items()}
    if isinstance(value, list):
        if _SECRET_KEY.search(str(key)) and value:
            return "***"
        return [mask(key, v) for v in value]
    problem = secret_problem(key, value)
    if problem is None:
        return value
    if isinstance(value, str) and "user info" in problem:
        parts = urlsplit(value)
        return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    if isinstance(value, str) and "URL" in problem:
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc}/***"
    return "***"
