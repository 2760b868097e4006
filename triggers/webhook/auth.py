"""Who may post alerts: HTTP basic, a bearer token, or an HMAC signature with a timestamp.

Databricks webhook destinations send HTTP basic auth (username and password set on
the destination); bearer tokens and HMAC signatures serve other senders. Every
comparison is constant-time, and no credential or header value is ever logged.

The HMAC scheme: ``X-Driftgate-Timestamp: <unix seconds>`` and
``X-Driftgate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``; requests
whose timestamp is outside the replay window are refused.

Credentials that could never log in, or that are too short to resist guessing, are refused
when the receiver starts (:meth:`Credentials.check`), never discovered at the first alert.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Mapping

from driftgate.core.errors import ConfigError
from driftgate.core.secrets import secret

__all__ = ["Credentials", "authenticate", "sign", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "ENV_VARS",
           "MIN_SECRET_CHARS"]

MIN_SECRET_CHARS = 16
"""Shortest accepted password, bearer token or HMAC secret."""
# RFC 6750 b64token: what a bearer token can be made of and still travel in an Authorization header.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")

SIGNATURE_HEADER = "x-driftgate-signature"
TIMESTAMP_HEADER = "x-driftgate-timestamp"
ENV_VARS = ("DRIFTGATE_WEBHOOK_USER", "DRIFTGATE_WEBHOOK_PASSWORD", "DRIFTGATE_WEBHOOK_TOKEN",
            "DRIFTGATE_WEBHOOK_HMAC_SECRET")


@dataclass(frozen=True)
class Credentials:
    """What the receiver accepts; read from the environment, never from conf files."""

    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    hmac_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> "Credentials":
        return cls(secret("DRIFTGATE_WEBHOOK_USER"), secret("DRIFTGATE_WEBHOOK_PASSWORD"),
                   secret("DRIFTGATE_WEBHOOK_TOKEN"), secret("DRIFTGATE_WEBHOOK_HMAC_SECRET"))

    @property
    def methods(self) -> tuple[str, ...]:
        """The accepted schemes (``basic``, ``bearer``, ``hmac``); names only, safe to log."""
        out = []
        if self.user and self.password:
            out.append("basic")
        if self.token:
            out.append("bearer")
        if self.hmac_secret:
            out.append("hmac")
        return tuple(out)

    @property
    def configured(self) -> bool:
        return bool(self.methods)

    def check(self) -> "Credentials":
        """Refuse credentials no request could ever prove, or too short to be secret.

        Raises:
            ConfigError: naming the variable and what it must be (never its value).
        """
        if bool(self.user) != bool(self.password):
            given, missing = (("USER", "PASSWORD") if self.user else ("PASSWORD", "USER"))
            raise ConfigError(f"environment: DRIFTGATE_WEBHOOK_{given} is set but DRIFTGATE_WEBHOOK_{missing} "
                              "is not; basic auth needs both", key=f"DRIFTGATE_WEBHOOK_{missing}")
        if self.user is not None:
            _check_text("DRIFTGATE_WEBHOOK_USER", self.user, min_chars=1)
            if ":" in self.user:
                raise ConfigError("environment: DRIFTGATE_WEBHOOK_USER must not contain ':' (basic auth splits "
                                  "user and password at the first ':'), so no request could log in",
                                  key="DRIFTGATE_WEBHOOK_USER")
        if self.password is not None:
            _check_text("DRIFTGATE_WEBHOOK_PASSWORD", self.password)
        if self.token is not None:
            _check_text("DRIFTGATE_WEBHOOK_TOKEN", self.token)
            if not _B64TOKEN.match(self.token):
                raise ConfigError("environment: DRIFTGATE_WEBHOOK_TOKEN must be ASCII letters, digits and "
                                  "-._~+/ (then optional '='), as an Authorization: Bearer header carries it",
                                  key="DRIFTGATE_WEBHOOK_TOKEN")
        if self.hmac_secret is not None:
            _check_text("DRIFTGATE_WEBHOOK_HMAC_SECRET", self.hmac_secret)
        return self


def _check_text(name: str, value: str, *, min_chars: int = MIN_SECRET_CHARS) -> None:
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"environment: {name} must not start or end with whitespace or hold control "
                          "characters (headers are trimmed, so it could never match)", key=name)
    if len(value) < min_chars:
        raise ConfigError(f"environment: {name} must be at least {min_chars} characters, got {len(value)}",
                          key=name)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def sign(secret_value: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Driftgate-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret_value.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def authenticate(headers: Mapping[str, str], body: bytes, credentials: Credentials, *, now: float,
                 replay_window_seconds: int) -> str | None:
    """The scheme the request proved (``basic``, ``bearer``, ``hmac``), or None.

    Args:
        headers: request headers with lower-case names.
        body: the raw body (the HMAC covers it byte for byte).
        credentials: what is accepted.
        now: the current time, unix seconds.
        replay_window_seconds: largest accepted distance between ``now`` and a signed timestamp.
    """
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic" and credentials.user and credentials.password:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        # Both halves are always compared so timing does not reveal which one was wrong.
        ok_user = _same(user, credentials.user)
        ok_password = _same(password, credentials.password)
        return "basic" if sep and ok_user and ok_password else None
    if scheme == "bearer" and credentials.token:
        return "bearer" if _same(value, credentials.token) else None
    if credentials.hmac_secret and SIGNATURE_HEADER in headers:
        stamp = headers.get(TIMESTAMP_HEADER, "").strip()
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
            return None
        if abs(now - int(stamp)) > replay_window_seconds:
            return None
        return "hmac" if _same(headers[SIGNATURE_HEADER].strip(), sign(credentials.hmac_secret, stamp, body)) else None
    return None
