"""Champion/challenger promotion policy: the shadow window and what a challenger must pass.

Every default lives here; ``conf/base`` only names what a deployment changes. The
criteria map onto MLflow's ``MetricThreshold`` one to one (``threshold`` is the
absolute floor, or ceiling for a lower-is-better metric such as log loss).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from driftgate.core.types import ProblemType, StrictModel, refuse_foreign

__all__ = [
    "METRICS", "METRICS_BY_PROBLEM", "GREATER_IS_BETTER", "FAIRNESS_METRICS", "MetricCriterion", "StatisticalGuard",
    "FairnessPolicy", "NotificationConfig", "PromotionConfig", "problem_defaults",
]

Metric = Literal["accuracy_score", "f1_score", "precision_score", "recall_score", "roc_auc", "log_loss",
                 "root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "r2_score"]
"""Metric names as MLflow's default classifier / regressor evaluators (and the monitor) spell them."""

METRICS_BY_PROBLEM: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy_score", "f1_score", "precision_score", "recall_score", "roc_auc", "log_loss"),
    "multiclass": ("accuracy_score", "f1_score", "precision_score", "recall_score", "log_loss"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "r2_score"),
}
"""The metrics each problem type can compute (multiclass f1/precision/recall are macro averages)."""
METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for names in METRICS_BY_PROBLEM.values() for m in names))
GREATER_IS_BETTER: dict[str, bool] = {
    m: m not in ("log_loss", "root_mean_squared_error", "mean_absolute_error", "mean_squared_error") for m in METRICS}

FairnessMetric = Literal["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy_score",
                         "mean_absolute_error"]
FAIRNESS_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy_score"),
    "multiclass": ("accuracy_score",),
    "regression": ("mean_absolute_error",),
}
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
    """Per-slice rates whose largest gap between slices is compared (demographic parity, equal opportunity).
    Default per ``project.problem_type``: multiclass accuracy_score, regression mean_absolute_error (in the
    label's units: set ``tolerance`` accordingly)."""
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
    return problem_defaults("binary")["criteria"]


def problem_defaults(problem_type: ProblemType) -> dict:
    """Defaults of the promotion keys that depend on ``project.problem_type`` (conf wins over each).

    Lower-is-better metrics (log_loss, RMSE, MAE) become ``MetricThreshold(greater_is_better=False)``.
    """
    if problem_type == "regression":
        return {
            "metrics": list(METRICS_BY_PROBLEM["regression"]),
            "primary_metric": "root_mean_squared_error",
            "criteria": {"r2_score": MetricCriterion(threshold=0.0),
                         "root_mean_squared_error": MetricCriterion(min_relative_change=0.01)},
            "fairness_metrics": ["mean_absolute_error"],
        }
    if problem_type == "multiclass":
        return {
            "metrics": list(METRICS_BY_PROBLEM["multiclass"]),
            "primary_metric": "f1_score",
            "criteria": {"f1_score": MetricCriterion(threshold=0.4, min_absolute_change=0.005),
                         "accuracy_score": MetricCriterion(threshold=0.4)},
            "fairness_metrics": ["accuracy_score"],
        }
    return {
        "metrics": list(METRICS_BY_PROBLEM["binary"]),
        "primary_metric": "roc_auc",
        "criteria": {"roc_auc": MetricCriterion(threshold=0.6, min_absolute_change=0.005),
                     "accuracy_score": MetricCriterion(threshold=0.6),
                     "log_loss": MetricCriterion(threshold=0.69)},
        "fairness_metrics": ["selection_rate", "true_positive_rate"],
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
    metrics: list[Metric] = list(METRICS_BY_PROBLEM["binary"])
    """Metrics computed for both models and reported. Default: every metric of ``project.problem_type``."""
    primary_metric: Metric = "roc_auc"
    """The metric whose difference the statistical guard tests. Default per ``project.problem_type``:
    roc_auc (binary), f1_score (multiclass), root_mean_squared_error (regression)."""
    criteria: dict[Metric, MetricCriterion] = Field(default_factory=_default_criteria)
    """Pass criteria per metric, validated with ``mlflow.validate_evaluation_results``. Default per
    ``project.problem_type``: binary roc_auc >= 0.6 and +0.005, accuracy >= 0.6, log_loss <= 0.69; multiclass
    f1_score >= 0.4 and +0.005, accuracy >= 0.4; regression r2_score >= 0 and RMSE 1% below the champion's."""
    guard: StatisticalGuard = StatisticalGuard()
    """Statistical guard on the primary metric's improvement."""
    fairness: FairnessPolicy = FairnessPolicy()
    """Fairness non-regression per protected slice."""
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    """Binary: probability at or above which a model's replayed prediction is the positive class."""
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

    def check_problem_type(self, problem_type: ProblemType) -> None:
        """Refuse metrics, fairness rates and guards that mean nothing for ``problem_type``.

        Raises:
            ValueError: ``promotion.<key>: ...`` naming the key and what the problem type allows.
        """
        allowed = METRICS_BY_PROBLEM[problem_type]
        for key, names in (("metrics", self.metrics), ("criteria", list(self.criteria)),
                           ("primary_metric", [self.primary_metric])):
            refuse_foreign(f"promotion.{key}", names, allowed, problem_type)
        refuse_foreign("promotion.fairness.metrics", self.fairness.metrics, FAIRNESS_METRICS[problem_type],
                       problem_type, "rates")
        if problem_type == "regression" and self.guard.method != "bootstrap":
            raise ValueError(f"promotion.guard.method: McNemar's test compares right/wrong predictions and needs "
                             f"classification; regression takes bootstrap, got {self.guard.method!r}")
