"""Gate rules: what to read from the metric tables and when it means "retrain"."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftgate.types import StrictModel


class Rule(StrictModel):
    """One rule over the drift or profile metrics table."""

    name: str
    table: Literal["drift", "profile"] = "drift"
    metric: str = "population_stability_index"
    """A column or struct field: ``js_distance``, ``ks_test.pvalue``, ``f1_score.macro``."""
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = 0.2
    drift_type: Literal["CONSECUTIVE", "BASELINE"] | None = "BASELINE"
    granularity: str = "1 day"
    model_id: str = "*"
    columns: list[str] | Literal["all"] = "all"
    aggregate: Literal["any", "all"] = "any"


class GateConfig(StrictModel):
    """Rules combine with ``any`` (default) or ``all``."""

    combine: Literal["any", "all"] = "any"
    rules: list[Rule] = Field(
        default_factory=lambda: [Rule(name="feature_psi")]
    )
