"""The records the promotion stage returns: data only, rendering lives in :mod:`driftgate.promotion.report`."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from driftgate.core.records import PromotionStatus, ShadowStatus
from driftgate.promotion.policy import Check, Interval

__all__ = ["ShadowResult", "PromotionResult"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class ShadowResult:
    """One shadow evaluation of a challenger against the champion on served traffic.

    ``metrics`` is flat: ``champion_<metric>``, ``challenger_<metric>`` and
    ``delta_<metric>`` (challenger minus champion), plus the agreement figures.
    """

    status: ShadowStatus
    """PASS, FAIL, INSUFFICIENT_DATA or NO_LABELS (a plain string is converted; an unknown one refused)."""
    model_name: str
    champion_version: str | None
    challenger_version: str
    metrics: dict[str, float]
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    interval: Interval | None = None
    mcnemar_p: float | None = None
    fairness: tuple[dict[str, Any], ...] = ()
    """Per-slice rates: ``{column, slice, model, n, <rate>...}``."""
    gaps: dict[str, dict[str, float]] = field(default_factory=dict)
    """``{"champion"|"challenger": {"<column>/<rate>": gap}}``."""
    n_rows: int = 0
    n_labelled: int = 0
    window_start: str | None = None
    window_end: str | None = None
    shadow_table: str | None = None
    run_id: str | None = None
    """The MLflow run holding the shadow report."""
    shadow_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ShadowStatus(self.status))

    @property
    def passed(self) -> bool:
        return self.status is ShadowStatus.PASS

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [asdict(c) for c in self.checks]
        data["interval"] = self.interval.as_dict() if self.interval else None
        return _clean(data)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ShadowResult":
        """Rebuild a result from :meth:`as_dict` (e.g. a task value handed from the shadow task to promote)."""
        names = set(cls.__dataclass_fields__)
        d = {k: v for k, v in data.items() if k in names}
        d["reasons"] = tuple(d.get("reasons") or ())
        d["checks"] = tuple(Check(**c) if isinstance(c, dict) else c for c in d.get("checks") or ())
        d["fairness"] = tuple(d.get("fairness") or ())
        d["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in (d.get("metrics") or {}).items()}
        if isinstance(d.get("interval"), dict):
            iv = {k: (math.nan if v is None else v) for k, v in d["interval"].items()}
            d["interval"] = Interval(**iv)
        return cls(**d)


@dataclass(frozen=True)
class PromotionResult:
    """What ``promote`` or ``rollback`` did to the aliases (nothing, unless ``promoted``)."""

    promoted: bool
    """True when the ``champion`` alias moved (promotion or rollback)."""
    champion_version: str | None
    """The champion after the call."""
    reason: str
    status: PromotionStatus = PromotionStatus.REFUSED
    """promoted, rolled_back, refused, awaiting_approval, dry_run or skipped (a plain string is converted)."""
    previous_champion: str | None = None
    challenger_version: str | None = None
    model_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", PromotionStatus(self.status))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str, sort_keys=True)
