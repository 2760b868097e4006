"""Trigger settings, mirroring Databricks Jobs trigger fields, plus plug-in triggers."""
from __future__ import annotations

from typing import Any, Literal

import re

from pydantic import Field, field_validator, model_validator

from driftgate.core.types import StrictModel, TableName

__all__ = ["TableUpdateConfig", "ScheduleConfig", "QueuedTriggerConfig", "PluginTriggerConfig", "StateConfig",
           "TriggersConfig"]

_UC_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TableUpdateConfig(StrictModel):
    """As Jobs ``trigger.table_update`` (``TableUpdateTriggerConfiguration``).

    Locally the two timing fields may go below Databricks' minimum of 60 s (tests, demos);
    the bundle keeps them at 60 s or more.
    """

    enabled: bool = True
    table_names: list[TableName] | None = None
    """Tables to watch; default the monitor's drift metrics table."""
    condition: Literal["ANY_UPDATED", "ALL_UPDATED"] = "ANY_UPDATED"
    min_time_between_triggers_seconds: int = Field(60, ge=0)
    wait_after_last_change_seconds: int = Field(60, ge=0)

    @field_validator("table_names")
    @classmethod
    def _non_empty(cls, v):
        if v is not None and not v:
            raise ValueError("must name at least one table (or be omitted for the monitor's drift table)")
        return v


class ScheduleConfig(StrictModel):
    """A cron schedule (5 fields, UTC), off by default."""

    enabled: bool = False
    cron: str = "0 6 * * *"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"must be a 5-field cron expression like '0 6 * * *', got {v!r}")
        return v


class QueuedTriggerConfig(StrictModel):
    """Pick up requests queued in the state store (``manual``, ``webhook``)."""

    enabled: bool = True


class PluginTriggerConfig(StrictModel):
    """A trigger installed by another package under the entry-point group ``driftgate.triggers``."""

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    """Entry-point name, e.g. ``s3_object`` for ``[project.entry-points."driftgate.triggers"] s3_object = ...``."""
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments passed to the trigger's constructor."""


class StateConfig(StrictModel):
    """Where trigger state lives: cursors and run-key claims, shared by ``driftgate watch``, ``driftgate serve``
    and the serverless handlers (:mod:`driftgate.triggers.state`).

    ``sqlite`` keeps them in ``<workspace.root>/state.db`` (or ``$DRIFTGATE_STATE_DIR/state.db`` for the webhook);
    it needs a local folder, so on Databricks, where there is none, it is refused rather than put in ``/tmp``.
    ``warehouse`` keeps them in two Delta tables, ``<catalog_name>.<schema_name>.<cursors_table>`` and
    ``...<run_keys_table>``, created if missing, written through the SQL warehouse ``warehouse_id`` with the
    Statement Execution API (``databricks-sdk``; host and token from the environment, never from here).
    """

    backend: Literal["sqlite", "warehouse"] = "sqlite"
    """``sqlite`` (a local file) or ``warehouse`` (Unity Catalog tables through a SQL warehouse)."""
    warehouse_id: str | None = None
    """The SQL warehouse that runs the statements (``warehouse`` only; required there)."""
    catalog_name: str | None = None
    """Catalog of the two tables (``warehouse`` only; required there)."""
    schema_name: str | None = None
    """Schema of the two tables (``warehouse`` only; required there; it must exist)."""
    cursors_table: str = "driftgate_trigger_cursors"
    """Table of the triggers' cursors."""
    run_keys_table: str = "driftgate_run_keys"
    """Table of the run-key claims."""
    wait_timeout_seconds: int = Field(30, ge=5, le=50)
    """How long one request waits for its statement (the API's ``wait_timeout``, 5-50 s) before polling."""
    retry_timeout_seconds: int = Field(60, ge=1)
    """Budget of one store operation: the SDK's retries of 429/503 answers, polling, and re-running a statement
    that lost a Delta write conflict all end within it (then ``TriggerError``)."""

    @field_validator("catalog_name", "schema_name", "cursors_table", "run_keys_table")
    @classmethod
    def _identifier(cls, v: str | None) -> str | None:
        if v is not None and not _UC_IDENT.match(v):
            raise ValueError(f"must be a plain Unity Catalog identifier (letters, digits, _), got {v!r}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> "StateConfig":
        if self.backend == "warehouse":
            missing = [k for k in ("warehouse_id", "catalog_name", "schema_name") if not getattr(self, k)]
            if missing:
                raise ValueError(f"backend 'warehouse' needs warehouse_id, catalog_name and schema_name; "
                                 f"expected {', '.join(missing)} to be set, got None")
        return self


class TriggersConfig(StrictModel):
    """The local trigger runner (``driftgate watch``)."""

    table_update: TableUpdateConfig = TableUpdateConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    manual: QueuedTriggerConfig = QueuedTriggerConfig()
    webhook: QueuedTriggerConfig = QueuedTriggerConfig(enabled=False)
    """Launch alert requests queued by a queue-only receiver; ``driftgate serve`` has its own worker."""
    plugins: list[PluginTriggerConfig] = Field(default_factory=list)
    queue: bool = True
    """While a run is active, queue new requests (True) or skip them (False): Jobs ``queue.enabled``."""
    max_concurrent_runs: Literal[1] = 1
    """Always 1: retraining runs never overlap (Jobs ``max_concurrent_runs``)."""
    poll_interval_seconds: float = Field(5.0, gt=0)
    state: StateConfig = StateConfig()
    """Where cursors and run-key claims live (SQLite file, or Unity Catalog tables through a SQL warehouse)."""

    @field_validator("plugins")
    @classmethod
    def _unique(cls, v: list[PluginTriggerConfig]) -> list[PluginTriggerConfig]:
        names = [p.name for p in v]
        builtin = {"table_update", "schedule", "manual", "webhook"}
        clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & builtin))
        if clash:
            raise ValueError(f"plugin names must be unique and differ from the built-ins, got {clash}")
        return v
