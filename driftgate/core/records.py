"""The statuses every stage reports, as string enums.

Each is a :class:`enum.StrEnum`: a member *is* its plain string (``GateStatus.OK == "OK"``,
``str(GateStatus.OK) == "OK"``, ``json.dumps`` writes ``"OK"``), so JSON, task values, Delta
rows and MLflow tags stay plain strings, while code gets a closed set of names to compare with.
"""
from __future__ import annotations

from enum import StrEnum

__all__ = ["GateStatus", "ShadowStatus", "PromotionStatus", "RunKeyStatus"]


class GateStatus(StrEnum):
    """What the gate decided (``Decision.status``)."""

    EXCEEDED = "EXCEEDED"
    """Drift or quality crossed the rules: retrain (the only status with ``drift_exceeded``)."""
    OK = "OK"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    STALE = "STALE"
    ERROR = "ERROR"


class ShadowStatus(StrEnum):
    """The verdict of a shadow evaluation (``ShadowResult.status``)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    NO_LABELS = "NO_LABELS"


class PromotionStatus(StrEnum):
    """What ``promote`` / ``rollback`` did to the aliases (``PromotionResult.status``)."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"
    AWAITING_APPROVAL = "awaiting_approval"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"
    """The job's promote task had no shadow result to act on."""


class RunKeyStatus(StrEnum):
    """What became of a claimed run key (``RunKeyRecord.status``)."""

    CLAIMED = "claimed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    QUEUED = "queued"
