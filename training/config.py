"""Training and tuning configuration."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftgate.types import StrictModel, TableName


class TrainingConfig(StrictModel):
    """The model: features, label, estimator, time-based split and quality floor."""

    table: TableName = "main.driftgate_demo.training_set"
    label_col: str = "label"
    timestamp_col: str = "timestamp"
    numeric_features: list[str] = Field(
        default_factory=lambda: ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "age"]
    )
    categorical_features: list[str] = Field(default_factory=lambda: ["plan", "region"])
    estimator: Literal["hist_gradient_boosting", "logistic_regression", "random_forest"] = "hist_gradient_boosting"
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    window_days: int = Field(45, ge=7, description="train on the most recent N days of labelled data")
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    seed: int = 13
    floor_metric: str = "roc_auc"
    floor_threshold: float = 0.6


class TuningConfig(StrictModel):
    """Optuna study settings; the search space is per estimator."""

    n_trials: int = Field(20, ge=1)
    timeout_seconds: float | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    storage: str | None = None
    """Any SQLAlchemy URL; default ``sqlite:///<workspace root>/optuna.db``."""
    study_name: str = "driftgate-tuning"
