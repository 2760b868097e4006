"""Credentials come from the environment, the only place secrets live."""
from __future__ import annotations

import os

from driftgate.core.errors import ConfigError

__all__ = ["secret"]


def secret(name: str, *, required: bool = False) -> str | None:
    """Read a credential from the environment, the only place secrets live.

    On Databricks, job tasks map secret scopes to environment variables
    (``{{secrets/<scope>/<key>}}``), so the same lookup works there.
    """
    value = os.environ.get(name)
    if required and not value:
        raise ConfigError(f"environment: {name} must be set (secrets never live in conf files)", key=name)
    return value or None
