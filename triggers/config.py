"""Trigger settings, mirroring Databricks Jobs trigger fields."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftgate.types import StrictModel, TableName


class TableUpdateConfig(StrictModel):
    """As Jobs ``trigger.table_update`` (``TableUpdateTriggerConfiguration``)."""

    table_names: list[TableName] = Field(default_factory=lambda: ["main.driftgate_demo.inference_log_drift_metrics"])
    condition: Literal["ANY_UPDATED", "ALL_UPDATED"] = "ANY_UPDATED"
    min_time_between_triggers_seconds: int = Field(60, ge=0)
    wait_after_last_change_seconds: int = Field(60, ge=0)


class TriggersConfig(StrictModel):
    table_update: TableUpdateConfig = TableUpdateConfig()
