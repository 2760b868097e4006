"""Training and tuning configuration: every default is defined here, once.

``training`` says what the model is (estimator and its parameters, where its
features come from, how the data is split in time, how imbalance and calibration
are handled, and the absolute quality floor a candidate must reach to be
registered). ``tuning`` says how Optuna searches: the search space per
estimator, the sampler, the pruner and where the study is stored.
"""
from __future__ import annotations

import os
import re
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from driftgate.core.types import ProblemType, StrictModel, TableName

__all__ = [
    "ESTIMATORS", "METRICS", "TRAINING_METRICS", "TUNING_METRICS", "LOWER_IS_BETTER", "FeatureLookupConfig",
    "FloorThreshold", "TrainingConfig", "FloatParam", "IntParam", "CategoricalParam", "SearchParam", "TuningConfig",
    "available_cores", "default_floor", "default_tuning_metric", "is_factory",
]

ESTIMATORS = ("hist_gradient_boosting", "logistic_regression", "random_forest")
"""Built-in estimators (classifier or regressor by ``project.problem_type``; logistic regression classifies only)."""
_FACTORY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")

TRAINING_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "average_precision", "log_loss", "brier_score", "accuracy", "precision", "recall", "f1"),
    "multiclass": ("accuracy", "f1", "precision", "recall", "log_loss"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "r2_score"),
}
"""Metrics computed on every split, per problem type (multiclass f1/precision/recall are macro averages;
regression names are the monitor's and MLflow's)."""
METRICS = tuple(dict.fromkeys(m for names in TRAINING_METRICS.values() for m in names))
LOWER_IS_BETTER = frozenset({"log_loss", "brier_score", "root_mean_squared_error", "mean_absolute_error",
                             "mean_squared_error"})
MetricName = Literal["roc_auc", "average_precision", "log_loss", "brier_score", "accuracy", "precision", "recall",
                     "f1", "root_mean_squared_error", "mean_absolute_error", "mean_squared_error", "r2_score"]
TUNING_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "average_precision", "log_loss"),
    "multiclass": ("f1", "accuracy", "log_loss"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "r2_score"),
}
TuningMetric = Literal["roc_auc", "average_precision", "log_loss", "f1", "accuracy", "root_mean_squared_error",
                       "mean_absolute_error", "r2_score"]


def is_factory(estimator: str) -> bool:
    """True for ``package.module:factory`` (a data scientist's own estimator), False for a built-in name."""
    return bool(_FACTORY.match(estimator))


def available_cores(cgroup: str = "/sys/fs/cgroup") -> int:
    """Cores this process may use: its CPU affinity, capped by a container's CPU quota (cgroup v2
    ``cpu.max`` or v1 ``cpu.cfs_quota_us``), never the machine's count that OpenMP would see."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    return max(1, min(cores, quota)) if quota else cores


def _cgroup_quota(root: str) -> int | None:
    import math
    from pathlib import Path

    for path, parse in ((Path(root, "cpu.max"), lambda t: t.split()[:2]),
                        (Path(root, "cpu", "cpu.cfs_quota_us"),
                         lambda t: [t.strip(), Path(root, "cpu", "cpu.cfs_period_us").read_text().strip()])):
        try:
            quota, period = parse(path.read_text())
            if quota not in ("max", "-1") and int(period) > 0:
                return math.ceil(int(quota) / int(period))
        except (OSError, ValueError):
            continue
    return None


def default_floor(problem_type: ProblemType) -> dict[str, "FloorThreshold"]:
    """The quality floor when conf sets none: better than chance / than predicting the mean."""
    if problem_type == "regression":
        return {"r2_score": FloorThreshold(threshold=0.0)}
    if problem_type == "multiclass":
        return {"f1": FloorThreshold(threshold=0.4)}
    return {"roc_auc": FloorThreshold(threshold=0.6)}


def default_tuning_metric(problem_type: ProblemType) -> str:
    return TUNING_METRICS[problem_type][0]


Scalar = Union[bool, int, float, str, None]


class FeatureLookupConfig(StrictModel):
    """One feature lookup, declared once and resolved the same way everywhere.

    On Databricks it becomes a ``databricks.feature_engineering.FeatureLookup``; locally
    it is a point-in-time join against the local Delta feature table: for each training
    row, the latest feature row with the same key and a time at or before the row's.
    """

    table_name: TableName
    """The feature table (three-level name)."""
    lookup_key: list[str] = Field(min_length=1)
    """Columns of the training table that match the feature table's primary key."""
    timestamp_lookup_key: str | None = "timestamp"
    """Training-table column for point-in-time lookups (None: plain key join)."""
    timeseries_column: str | None = None
    """Locally: the feature table's time column (default: same name as ``timestamp_lookup_key``).
    On Databricks the table's TIMESERIES primary key plays this role."""
    features: list[str] = Field(min_length=1)
    """Feature table columns the model takes as inputs."""

    @field_validator("lookup_key", mode="before")
    @classmethod
    def _one_key(cls, value):
        return [value] if isinstance(value, str) else value

    @property
    def feature_time_column(self) -> str | None:
        return self.timeseries_column or self.timestamp_lookup_key


class FloorThreshold(StrictModel):
    """An absolute floor, checked with MLflow ``MetricThreshold`` on the floor split."""

    threshold: float
    greater_is_better: bool | None = None
    """Default: False for log_loss and brier_score, True for the rest."""


class TrainingConfig(StrictModel):
    """The model: data, features, estimator, time-based split, imbalance, calibration, floor."""

    table: TableName = "main.default.training_set"
    """Labelled rows: lookup keys, the timestamp and the label (features come from lookups)."""
    label_col: str = "label"
    timestamp_col: str = "timestamp"
    feature_lookups: list[FeatureLookupConfig] = Field(default_factory=list)
    """Features joined from feature tables (none by default)."""
    table_features: list[str] = Field(default_factory=list)
    """Model inputs read from the training table itself rather than looked up."""
    estimator: str = "hist_gradient_boosting"
    """A built-in (``hist_gradient_boosting``, ``logistic_regression``, ``random_forest``) or your own:
    ``package.module:factory``, a callable returning a scikit-learn-compatible estimator or Pipeline
    (e.g. LightGBM/XGBoost through their scikit-learn API). It is fitted after the feature step
    (see ``preprocessing``); its parameter names are checked against ``get_params()`` before fitting."""
    params: dict[str, Scalar] = Field(default_factory=dict)
    """Estimator parameters over the built-in defaults (e.g. ``learning_rate: 0.05``); for a Pipeline
    returned by a factory, scikit-learn's ``step__param`` names."""
    preprocessing: Literal["builtin", "none"] = "builtin"
    """``builtin``: impute + scale numeric, impute + one-hot categorical before the estimator; ``none``:
    the estimator gets the feature columns as they are (categorical as strings, numeric as floats)."""
    n_jobs: int | None = Field(None, ge=1)
    """Threads for fitting: the estimator's ``n_jobs`` (any ``n_jobs`` / ``*__n_jobs`` parameter it has) and the
    OpenMP/BLAS thread pools around every fit (``threadpoolctl``). Default: the cores available to the process
    (its CPU affinity, capped by a container's CPU quota), or ``$OMP_NUM_THREADS`` if the environment sets
    fewer. On a machine shared with other busy processes set it lower (1 for small data): spinning OpenMP
    threads competing for cores made a 1,095-row fit take 33 s instead of 3.5 s."""
    use_best_params: bool = False
    """Train with the tuned study's best parameters (over ``params``) when a study exists."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """Class-imbalance handling: reweight classes inversely to their frequency."""
    calibration: Literal["sigmoid", "isotonic", "none"] = "sigmoid"
    calibration_folds: int = Field(3, ge=2, le=10)
    window_days: int | None = Field(45, ge=1)
    """Train on the most recent N days of labelled data (counted back from the newest row); None: all."""
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    seed: int = 13
    floor_split: Literal["validation", "test"] = "test"
    quality_floor: dict[MetricName, FloorThreshold] = Field(default_factory=lambda: default_floor("binary"))
    """Absolute floors a candidate must reach to be registered (MLflow ``MetricThreshold``). Default per
    ``project.problem_type``: binary roc_auc >= 0.6, multiclass f1 (macro) >= 0.4, regression r2_score >= 0."""

    @field_validator("estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if value not in ESTIMATORS and not is_factory(value):
            raise ValueError(f"must be one of {', '.join(ESTIMATORS)} or 'package.module:factory', got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "TrainingConfig":
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                "training: validation_fraction + test_fraction must leave at least 20% for training, "
                f"got {self.validation_fraction} + {self.test_fraction}"
            )
        seen: dict[str, str] = {}
        for i, lookup in enumerate(self.feature_lookups):
            for feat in lookup.features:
                if feat in seen:
                    raise ValueError(f"feature_lookups[{i}].features: {feat!r} is already declared by {seen[feat]}")
                seen[feat] = lookup.table_name
        for feat in self.table_features:
            if feat in seen:
                raise ValueError(f"table_features: {feat!r} is already looked up from {seen[feat]}")
        return self

    @property
    def threads(self) -> int:
        """``n_jobs``, else ``$OMP_NUM_THREADS`` when the environment sets it, else the cores available."""
        if self.n_jobs:
            return self.n_jobs
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        cores = available_cores()
        return max(1, min(int(env), cores)) if env.isdigit() and int(env) > 0 else cores

    @property
    def features(self) -> list[str]:
        """The model's input columns, in a fixed order."""
        return [f for lookup in self.feature_lookups for f in lookup.features] + list(self.table_features)

    def floor_direction(self, metric: str) -> bool:
        floor = self.quality_floor[metric]
        if floor.greater_is_better is not None:
            return floor.greater_is_better
        return metric not in LOWER_IS_BETTER


class FloatParam(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _range(self):
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low} high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range must have low > 0, got low={self.low}")
        return self


class IntParam(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _range(self):
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low} high={self.high}")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError(f"a log-scaled int range needs low > 0 and step 1, got low={self.low} step={self.step}")
        return self


class CategoricalParam(StrictModel):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


def _default_search_space() -> dict[str, dict[str, SearchParam]]:
    return {
        "hist_gradient_boosting": {
            "learning_rate": FloatParam(type="float", low=0.01, high=0.3, log=True),
            "max_iter": IntParam(type="int", low=50, high=300, step=25),
            "max_leaf_nodes": IntParam(type="int", low=8, high=64, log=True),
            "min_samples_leaf": IntParam(type="int", low=5, high=100, log=True),
            "l2_regularization": FloatParam(type="float", low=1e-6, high=10.0, log=True),
        },
        "logistic_regression": {
            "C": FloatParam(type="float", low=1e-3, high=100.0, log=True),
        },
        "random_forest": {
            "n_estimators": IntParam(type="int", low=50, high=300, step=25),
            "max_depth": IntParam(type="int", low=3, high=20),
            "min_samples_leaf": IntParam(type="int", low=1, high=50, log=True),
            "max_features": FloatParam(type="float", low=0.2, high=1.0),
        },
    }


class TuningConfig(StrictModel):
    """Optuna study settings; the search space is per estimator.

    The study is persistent (``storage``), so a stopped study resumes, and several
    processes or Databricks tasks given the same storage URL share one study.
    ``n_trials`` is the study's total of finished trials: a rerun only runs the missing ones.
    """

    n_trials: int = Field(20, ge=1)
    timeout_seconds: float | None = Field(None, gt=0)
    metric: TuningMetric = "roc_auc"
    """Cross-validated score the study optimises. Default per ``project.problem_type``: roc_auc (binary),
    f1 macro (multiclass), root_mean_squared_error (regression)."""
    cv_folds: int = Field(4, ge=2, le=10)
    """Expanding-window (time-ordered) folds over the training + validation window."""
    sampler: Literal["tpe", "random", "qmc"] = "tpe"
    pruner: Literal["median", "percentile", "successive_halving", "hyperband", "none"] = "percentile"
    """Stops a trial after a fold when its running CV score falls behind. The default keeps only
    trials in the top ``percentile``% at each fold: on the demo data it saved 41-65% of a
    50-trial study's time for a best score within ±0.0006, where the median pruner saved 5-19%
    (``benchmarks/tune_bench.py``)."""
    pruner_startup_trials: int = Field(5, ge=0)
    """Trials that always run to the end before pruning starts (median / percentile)."""
    pruner_warmup_steps: int = Field(0, ge=0)
    percentile: float = Field(25.0, gt=0, lt=100)
    """``percentile`` pruner: a trial continues only while its running score is in the top N%
    of earlier trials at the same fold (25 keeps the best quarter; 50 is the median pruner)."""
    storage: str | None = None
    """Any SQLAlchemy URL; default ``sqlite:///<workspace root>/optuna.db``. A URL with a password
    must come from the environment: ``DRIFTGATE_OPTUNA_STORAGE``."""
    study_name: str = Field("driftgate-tuning", min_length=1)
    """The study is ``<study_name>.<estimator>``: each estimator has its own search space."""
    heartbeat_seconds: int = Field(30, ge=1)
    """Trials of a killed worker are failed (and the study moves on) after 2 missed heartbeats."""
    search_space: dict[str, dict[str, SearchParam]] = Field(default_factory=_default_search_space)
    """Per estimator (a built-in name or your ``package.module:factory``): parameter → range. Parameter names are
    checked against the estimator's ``get_params()`` before the first trial."""

    @field_validator("storage")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and urlsplit(value).password:
            raise ValueError(
                "a storage URL with a password must not live in conf: set DRIFTGATE_OPTUNA_STORAGE instead, "
                "got a URL with credentials"
            )
        return value

    @field_validator("search_space", mode="before")
    @classmethod
    def _fill_defaults(cls, value):
        # Setting the space of one estimator must not erase the others' defaults.
        if isinstance(value, dict):
            return {**_default_search_space(), **value}
        return value

    @field_validator("search_space")
    @classmethod
    def _non_empty(cls, value):
        for name, space in value.items():
            if name not in ESTIMATORS and not is_factory(name):
                raise ValueError(f"keys must be an estimator ({', '.join(ESTIMATORS)} or 'package.module:factory'), "
                                 f"got {name!r}")
            if not space:
                raise ValueError(f"search space for {name} must name at least one parameter, got an empty mapping")
        return value
