"""Trigger settings, mirroring Databricks Jobs trigger fields, plus plug-in triggers."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from driftgate.core.types import StrictModel, TableName

__all__ = ["TableUpdateConfig", "ScheduleConfig", "QueuedTriggerConfig", "PluginTriggerConfig", "TriggersConfig"]


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

    @field_validator("plugins")
    @classmethod
    def _unique(cls, v: list[PluginTriggerConfig]) -> list[PluginTriggerConfig]:
        names = [p.name for p in v]
        builtin = {"table_update", "schedule", "manual", "webhook"}
        clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & builtin))
        if clash:
            raise ValueError(f"plugin names must be unique and differ from the built-ins, got {clash}")
        return v
