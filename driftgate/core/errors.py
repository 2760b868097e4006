"""The one exception tree of driftgate.

Every adapter translates its library's exceptions into these at the boundary
(``raise RegistryError(...) from exc``), so callers catch one family and the
message always names the object involved (table, model version, run key, file).
"""
from __future__ import annotations

__all__ = [
    "DriftgateError",
    "ConfigError",
    "TableError",
    "TableConflict",
    "MonitorError",
    "GateError",
    "TrainingError",
    "RegistryError",
    "PromotionRefused",
    "TriggerError",
    "LaunchError",
    "WebhookError",
]


class DriftgateError(Exception):
    """Base class of every error driftgate raises on purpose."""


class ConfigError(DriftgateError):
    """A configuration file, key or parameter is invalid.

    The message is one line: ``<file>: <key path>: <what was expected>, got <value>``.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        super().__init__(message)
        self.source = source
        self.key = key


class TableError(DriftgateError):
    """A table is missing, unreadable, or lacks a column it must have."""

    def __init__(self, message: str, *, table: str | None = None):
        super().__init__(message)
        self.table = table


class TableConflict(TableError):
    """A guarded write found that another writer got there first; nothing was written."""


class MonitorError(DriftgateError):
    """The monitor could not compute or write its metric tables."""


class GateError(DriftgateError):
    """The gate could not evaluate its rules (bad rule, unreadable metrics)."""


class TrainingError(DriftgateError):
    """Training or tuning cannot start or failed before registering anything."""


class RegistryError(DriftgateError):
    """A model registry call failed; wraps ``MlflowException`` and friends."""

    def __init__(self, message: str, *, model: str | None = None, version: str | None = None):
        super().__init__(message)
        self.model = model
        self.version = version


class PromotionRefused(DriftgateError):
    """Promotion was refused; aliases were left exactly as they were."""

    def __init__(self, message: str, *, model: str | None = None, version: str | None = None):
        super().__init__(message)
        self.model = model
        self.version = version


class TriggerError(DriftgateError):
    """A trigger could not tick (unreadable source, corrupt cursor)."""


class LaunchError(DriftgateError):
    """A run could not be launched (Jobs API refused, local task graph failed to start)."""

    def __init__(self, message: str, *, run_key: str | None = None):
        super().__init__(message)
        self.run_key = run_key


class WebhookError(DriftgateError):
    """A webhook request was rejected; carries the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status
