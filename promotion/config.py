"""Champion/challenger promotion policy."""
from __future__ import annotations

from pydantic import Field

from driftgate.types import StrictModel


class PromotionConfig(StrictModel):
    """Shadow evaluation window and the criteria a challenger must pass."""

    shadow_days: int = Field(5, ge=1, description="replay this many recent days of labelled traffic")
    min_labelled_rows: int = Field(500, ge=1)
    primary_metric: str = "roc_auc"
    min_absolute_change: float = 0.005
    absolute_floor: float = 0.6
    require_approval: bool = False
    dry_run: bool = False
