"""The gate's result records: data only, rendering lives in ``driftgate.commands.gating``.

A :class:`Decision` has a status (not just a boolean), one :class:`RuleResult` per rule
with the observed values, windows, thresholds and the columns that fired, and serialises
to JSON under the 48 KiB task-value limit.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftgate.core.records import GateStatus

__all__ = ["Status", "GateStatus", "STATUSES", "WindowResult", "RuleResult", "Decision", "MAX_DECISION_BYTES"]

Status = GateStatus
STATUSES: tuple[GateStatus, ...] = tuple(GateStatus)

MAX_DECISION_BYTES = 48 * 1024
"""Databricks task values are limited to 48 KiB of JSON."""

# Per window, at most this many column values are kept (fired columns first, then the
# worst); a 500-feature table would otherwise blow the task-value limit.
MAX_VALUES_PER_WINDOW = 12


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowResult(_Record):
    """One window of one rule."""

    start: datetime
    end: datetime
    rows: int | None = None
    """Row count of the window (profile ``count`` on ``:table``), when known."""
    usable: bool
    violated: bool | None = None
    """None when the window is not usable (no values, too few rows)."""
    n_columns: int = 0
    """Columns with a value in this window."""
    fired: list[str] = Field(default_factory=list)
    score: float | None = None
    """The aggregate: share or weighted count of violating columns."""
    values: dict[str, float] = Field(default_factory=dict)
    """Observed values (after correction for p-value rules), truncated to the most telling."""
    missing: list[str] = Field(default_factory=list)
    """Columns whose value was NULL or NaN."""
    note: str | None = None


class RuleResult(_Record):
    """The verdict of one rule, with everything needed to explain it."""

    name: str
    status: Status
    reason: str
    table: str
    metric: str
    op: str
    threshold: float
    abs: bool = False
    correction: str = "none"
    aggregate: str = "any"
    persistence: str = "1 of 1"
    filters: dict[str, Any] = Field(default_factory=dict)
    windows: list[WindowResult] = Field(default_factory=list)
    """Newest first."""
    fired_columns: list[str] = Field(default_factory=list)
    """Columns that violated in the latest window."""
    violating_windows: int = 0

    @property
    def latest(self) -> WindowResult | None:
        return self.windows[0] if self.windows else None


class Decision(_Record):
    """What the gate decided, and why."""

    status: Status
    drift_exceeded: bool
    reasons: list[RuleResult] = Field(default_factory=list)
    decision_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    evaluated_at: datetime
    combine: Literal["any", "all"] = "any"
    mode: str = "rules"
    profile: str = "default"
    trigger: str = "manual"
    summary: str = ""
    truncated: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Decision":
        # the job's condition task reads drift_exceeded alone: it must say what the status says
        if self.drift_exceeded != (self.status is GateStatus.EXCEEDED):
            raise ValueError(f"drift_exceeded must be {self.status is GateStatus.EXCEEDED} when status is "
                             f"{self.status}, got {self.drift_exceeded}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (timestamps as ISO strings)."""
        return json.loads(self.to_json())

    def to_json(self, max_bytes: int = MAX_DECISION_BYTES) -> str:
        """Compact JSON, at most ``max_bytes``: details are dropped before verdicts are."""
        text = self.model_dump_json()
        if len(text.encode()) <= max_bytes:
            return text
        # Drop the least telling detail first: per-window values, then old windows,
        # then all windows; statuses, reasons and fired columns survive.
        slim = self
        for step in (_drop_values, _keep_latest_window, _drop_windows, _trim_fired):
            slim = step(slim)
            text = slim.model_dump_json()
            if len(text.encode()) <= max_bytes:
                return text
        raise ValueError(f"decision JSON is {len(text.encode())} bytes even without details (limit {max_bytes})")

    @classmethod
    def from_json(cls, text: str | bytes | dict) -> "Decision":
        if isinstance(text, dict):
            return cls.model_validate(text)
        return cls.model_validate_json(text)


def _map_rules(decision: Decision, fn) -> Decision:
    return decision.model_copy(update={"reasons": [fn(r) for r in decision.reasons], "truncated": True})


def _drop_values(d: Decision) -> Decision:
    return _map_rules(d, lambda r: r.model_copy(update={
        "windows": [w.model_copy(update={"values": {}, "missing": w.missing[:5]}) for w in r.windows]}))


def _keep_latest_window(d: Decision) -> Decision:
    return _map_rules(d, lambda r: r.model_copy(update={"windows": r.windows[:1]}))


def _drop_windows(d: Decision) -> Decision:
    return _map_rules(d, lambda r: r.model_copy(update={"windows": []}))


def _trim_fired(d: Decision) -> Decision:
    return _map_rules(d, lambda r: r.model_copy(update={"fired_columns": r.fired_columns[:20]}))
