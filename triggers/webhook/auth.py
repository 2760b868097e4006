"""Who may post alerts: HTTP basic, a bearer token, or an HMAC signature with a timestamp.

Databricks webhook destinations send HTTP basic auth (username and password set on
the destination); bearer tokens and HMAC signatures serve other senders. Every
comparison is constant-time, and no credential or header value is ever logged.

The HMAC scheme: ``X-Driftgate-Timestamp: <unix seconds>`` and
``X-Driftgate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``; requests
whose timestamp is outside the replay window are refused.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Mapping

from driftgate.core.secrets import secret

__all__ = ["Credentials", "authenticate", "sign", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "ENV_VARS"]

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


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def sign(secret_value: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Driftgate-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret_value.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def authenticate(headers: Mapping[str, str], body: bytes, credentials: Credentials, *, now: float,
                 replay_window_seconds: int) -> bool:
    """True if the request proves one of the configured credentials.

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
            return False
        user, sep, password = decoded.partition(":")
        # Both halves are always compared so timing does not reveal which one was wrong.
        ok_user = _same(user, credentials.user)
        ok_password = _same(password, credentials.password)
        return bool(sep) and ok_user and ok_password
    if scheme == "bearer" and credentials.token:
        return _same(value, credentials.token)
    if credentials.hmac_secret and SIGNATURE_HEADER in headers:
        stamp = headers.get(TIMESTAMP_HEADER, "").strip()
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
            return False
        if abs(now - int(stamp)) > replay_window_seconds:
            return False
        return _same(headers[SIGNATURE_HEADER].strip(), sign(credentials.hmac_secret, stamp, body))
    return False
