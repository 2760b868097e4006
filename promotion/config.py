"""Champion/challenger promotion policy: the shadow window and what a challenger must pass.

Every default lives here; ``conf/base`` only names what a deployment changes. The
criteria map onto MLflow's ``MetricThreshold`` one to one (``threshold`` is the
absolute floor, or ceiling for a lower-is-better metric such as log loss).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from driftgate.core.types import StrictModel

__all__ = [
    "METRICS", "GREATER_IS_BETTER", "MetricCriterion", "StatisticalGuard", "FairnessPolicy",
    "NotificationConfig", "PromotionConfig",
]

Metric = Literal["accuracy_score", "f1_score", "precision_score", "recall_score", "roc_auc", "log_loss"]
"""Metric names as MLflow's default classifier evaluator spells them."""

METRICS: tuple[str, ...] = ("accuracy_score", "f1_score", "precision_score", "recall_score", "roc_auc", "log_loss")
GREATER_IS_BETTER: dict[str, bool] = {m: m != "log_loss" for m in METRICS}

FairnessMetric = Literal["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy_score"]
NotifyOn = Literal["gate_exceeded", "promotion", "refusal", "rollback"]


class MetricCriterion(StrictModel):
    """One pass criterion, handed to MLflow as a ``MetricThreshold``."""

    threshold: float | None = None
    """Absolute floor (ceiling when lower is better); also what a first champion must meet."""
    min_absolute_change: float | None = Field(None, gt=0)
    """The challenger must beat the champion by at least this much (metric units)."""
    min_relative_change: float | None = Field(None, ge=0, le=1)
    """The challenger must beat the champion by at least this fraction of the champion's value."""

    @model_validator(mode="after")
    def _one_rule(self) -> "MetricCriterion":
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ValueError("must set at least one of threshold, min_absolute_change, min_relative_change, got none")
        return self


class StatisticalGuard(StrictModel):
    """The improvement must hold beyond noise on the shadow rows."""

    method: Literal["bootstrap", "mcnemar", "both"] = "bootstrap"
    """``bootstrap``: paired bootstrap CI of the primary metric difference must exclude 0;
    ``mcnemar``: exact McNemar test that the challenger's accuracy differs, in its favour; ``both``."""
    confidence: float = Field(0.95, gt=0.5, lt=1)
    """Two-sided confidence level of the interval (and 1 - alpha of McNemar's test)."""
    n_resamples: int = Field(1000, ge=100, le=100_000)
    """Paired bootstrap resamples of the shadow rows."""
    seed: int = 0
    """Seed of the bootstrap, so a shadow evaluation can be replayed exactly."""


class FairnessPolicy(StrictModel):
    """Fairness must not regress on any protected column beyond a tolerance."""

    protected_columns: list[str] = []
    """Columns of the inference table whose values define the protected slices (none by default;
    each must be a column of the inference table, checked when a job starts)."""
    metrics: list[FairnessMetric] = ["selection_rate", "true_positive_rate"]
    """Per-slice rates whose largest gap between slices is compared (demographic parity, equal opportunity)."""
    tolerance: float = Field(0.05, ge=0)
    """The challenger's gap may exceed the champion's by at most this much."""
    min_slice_rows: int = Field(30, ge=1)
    """Slices with fewer labelled rows are reported but not judged."""


class NotificationConfig(StrictModel):
    """Optional outgoing webhook (Slack-compatible JSON ``{"text": ...}``)."""

    webhook_url: str | None = None
    """Where to POST; unset means ``$<webhook_url_env>``, and neither means no notifications. A URL that is
    itself a credential (Slack's ``hooks.slack.com/services/...``) is refused in committed conf."""
    webhook_url_env: str = "DRIFTGATE_NOTIFY_WEBHOOK_URL"
    """Environment variable holding the webhook URL when it is a credential (read when ``webhook_url`` is unset)."""
    token_env: str = "DRIFTGATE_NOTIFY_TOKEN"
    """Environment variable holding the bearer token sent with each POST (never put it in conf)."""
    on: list[NotifyOn] = ["gate_exceeded", "promotion", "refusal", "rollback"]
    """Which events notify."""
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    """HTTP timeout; a failed notification is recorded, never fatal."""


def _default_criteria() -> dict[str, MetricCriterion]:
    return {
        "roc_auc": MetricCriterion(threshold=0.6, min_absolute_change=0.005),
        "accuracy_score": MetricCriterion(threshold=0.6),
        "log_loss": MetricCriterion(threshold=0.69),
    }


class PromotionConfig(StrictModel):
    """Shadow evaluation window and the criteria a challenger must pass before it becomes champion."""

    shadow_days: int = Field(7, ge=1)
    """Replay this many days of traffic, ending at the newest row the champion served."""
    shadow_max_rows: int = Field(1_000_000, ge=1)
    """At most this many rows of the window (the newest) are read to the driver and scored; the
    window is read through a filtered store read, so older traffic is never loaded."""
    min_labelled_rows: int = Field(200, ge=1)
    """Fewer labelled rows in the window gives INSUFFICIENT_DATA, never a pass."""
    metrics: list[Metric] = list(METRICS)
    """Metrics computed for both models and reported."""
    primary_metric: Metric = "roc_auc"
    """The metric whose difference the statistical guard tests."""
    criteria: dict[Metric, MetricCriterion] = Field(default_factory=_default_criteria)
    """Pass criteria per metric, validated with ``mlflow.validate_evaluation_results``."""
    guard: StatisticalGuard = StatisticalGuard()
    """Statistical guard on the primary metric's improvement."""
    fairness: FairnessPolicy = FairnessPolicy()
    """Fairness non-regression per protected slice."""
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    """Probability above which a model's replayed prediction is 1."""
    feature_columns: list[str] = []
    """Model inputs when a model carries no signature (a signature wins); empty: ``training``'s features."""
    shadow_table_suffix: str = Field("_shadow", pattern=r"^_[A-Za-z0-9_]+$")
    """The challenger's replayed predictions go to ``<inference_table><suffix>``."""
    require_approval: bool = False
    """Promotion waits until the challenger's version carries ``approval_tag = approved``."""
    approval_tag: str = "Approval_Check"
    """Tag key the approver sets to ``approved`` (the Databricks deployment-job convention)."""
    approval_timeout_seconds: float = Field(0.0, ge=0)
    """How long ``promote`` polls for the approval before returning 'awaiting approval' (0: check once)."""
    dry_run: bool = False
    """Evaluate and report, but never move an alias (announced loudly on every run)."""
    notifications: NotificationConfig = NotificationConfig()
    """Outgoing webhook on gate EXCEEDED decisions, promotions, refusals and rollbacks."""

    @model_validator(mode="after")
    def _consistent(self) -> "PromotionConfig":
        missing = [m for m in self.criteria if m not in self.metrics]
        if missing:
            raise ValueError(f"criteria name metrics that are not computed: {missing}; add them to promotion.metrics")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric must be one of promotion.metrics, got {self.primary_metric!r}")
        return self
