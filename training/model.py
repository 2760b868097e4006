"""The model and its evaluation: pure functions of data and config (no MLflow, no tables).

The pipeline is ``ColumnTransformer`` (numeric: median impute + scale; categorical:
impute + one-hot, unknown categories ignored) followed by the configured estimator,
wrapped in ``CalibratedClassifierCV`` so probabilities mean what they say even when
classes were reweighted for imbalance. Splits are by time: every training row is
older than every validation row, which is older than every test row.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

from driftgate.core.errors import ConfigError, TrainingError
from driftgate.training.config import TrainingConfig

__all__ = ["Split", "time_split", "time_folds", "column_kinds", "estimator_params", "build_pipeline", "quiet_fit",
           "score_metrics", "check_params"]

# Why these differ from scikit-learn's defaults: HistGradientBoosting's early_stopping="auto"
# switches itself on above 10,000 rows, so the same parameters would mean different models on
# small and large folds (and max_iter, a tuned parameter, would stop mattering); lbfgs needs
# more iterations on scaled one-hot data to converge; random forests use every core otherwise.
_BASE_PARAMS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"early_stopping": False},
    "logistic_regression": {"max_iter": 1000},
    "random_forest": {"n_jobs": 1},
}


@dataclass(frozen=True)
class Split:
    """Train / validation / test frames, cut at two timestamps (no row straddles a cut)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp


def time_split(frame: pd.DataFrame, cfg: TrainingConfig) -> Split:
    """Cut ``frame`` by time into train < validation < test.

    Raises:
        TrainingError: a part is empty or holds one class only.
    """
    import pandas as pd

    ts = pd.to_datetime(frame[cfg.timestamp_col], utc=True)
    ordered = np.sort(ts.to_numpy())
    n = len(ordered)
    val_start = pd.Timestamp(ordered[min(n - 1, int(n * (1 - cfg.validation_fraction - cfg.test_fraction)))])
    test_start = pd.Timestamp(ordered[min(n - 1, int(n * (1 - cfg.test_fraction)))])
    val_start = val_start.tz_localize("UTC") if val_start.tzinfo is None else val_start
    test_start = test_start.tz_localize("UTC") if test_start.tzinfo is None else test_start
    parts = {
        "train": frame[ts < val_start],
        "validation": frame[(ts >= val_start) & (ts < test_start)],
        "test": frame[ts >= test_start],
    }
    for name, part in parts.items():
        labels = part[cfg.label_col].unique()
        if len(part) == 0 or len(labels) < 2:
            what = "no rows" if len(part) == 0 else f"one class only ({labels[0]})"
            raise TrainingError(
                f"{cfg.table}: the {name} split ({len(part)} rows from the time cut at "
                f"{val_start:%Y-%m-%d %H:%M} / {test_start:%Y-%m-%d %H:%M}) has {what}; widen training.window_days "
                "or adjust training.validation_fraction / test_fraction"
            )
    return Split(parts["train"], parts["validation"], parts["test"], val_start, test_start)


def time_folds(ts: pd.Series, n_folds: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds cut at timestamps: fold i trains on blocks < i and scores block i.

    ``n_folds`` folds need ``n_folds + 1`` time blocks; the first block only ever trains.
    """
    import pandas as pd

    values = pd.to_datetime(ts, utc=True).to_numpy()
    ordered = np.sort(values)
    n = len(ordered)
    cuts = [ordered[min(n - 1, (n * i) // (n_folds + 1))] for i in range(1, n_folds + 2)]
    cuts[-1] = None
    lo = cuts[0]
    for i in range(n_folds):
        hi = cuts[i + 1]
        train_idx = np.flatnonzero(values < lo)
        test_mask = values >= lo if hi is None else (values >= lo) & (values < hi)
        test_idx = np.flatnonzero(test_mask)
        if len(train_idx) and len(test_idx):
            yield train_idx, test_idx
        if hi is not None:
            lo = hi


def column_kinds(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """Numeric and categorical features by dtype (booleans and strings are categorical)."""
    import pandas as pd

    numeric, categorical = [], []
    for col in features:
        dtype = frame[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            categorical.append(col)
        else:
            numeric.append(col)
    return numeric, categorical


def _estimator_class(name: str):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
    }[name]


def check_params(estimator: str, params: dict[str, Any], where: str) -> None:
    """Refuse parameter names the estimator does not have, before anything is fitted.

    Raises:
        ConfigError: ``<where>: unknown parameter ...`` listing the valid ones.
    """
    valid = set(_estimator_class(estimator)().get_params())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} is not a parameter of {estimator}; valid: {', '.join(sorted(valid))}",
            key=where,
        )


def estimator_params(cfg: TrainingConfig, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The estimator's full parameters: base, conf ``training.params``, then ``params``, plus seed/weights."""
    merged = {**_BASE_PARAMS[cfg.estimator], **cfg.params, **(params or {})}
    merged["random_state"] = cfg.seed
    if cfg.class_weight == "balanced":
        merged["class_weight"] = "balanced"
    return merged


def build_pipeline(cfg: TrainingConfig, params: dict[str, Any], numeric: list[str], categorical: list[str], *,
                   calibrate: bool = True):
    """The scikit-learn ``Pipeline``: features → (calibrated) estimator."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), _numeric_step(cfg.estimator)])
    categorical_steps = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])
    features = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        remainder="drop",
    )
    estimator = _estimator_class(cfg.estimator)(**params)
    if calibrate and cfg.calibration != "none":
        # Folds here stay inside the training window; validation and test are never seen.
        estimator = CalibratedClassifierCV(estimator, method=cfg.calibration, cv=cfg.calibration_folds)
    return Pipeline([("features", features), ("model", estimator)])


def _numeric_step(estimator: str) -> tuple[str, Any]:
    """The named numeric step: scaling, or for HistGradientBoosting its own 255-bin quantile binning, done first.

    With class weights, HistGradientBoosting bins each feature with sample-weighted percentiles,
    which scikit-learn computes one percentile at a time: on the demo data that binning was
    80% of a fit. Binned beforehand (unweighted quantiles, as the estimator itself bins
    without weights), each feature has at most 255 distinct values and the estimator keeps
    them as they are. Same CV scores within ±0.003 ROC AUC; fits 1.6-4x faster.
    """
    from sklearn.preprocessing import KBinsDiscretizer, StandardScaler

    if estimator == "hist_gradient_boosting":
        return "bin", KBinsDiscretizer(n_bins=255, encode="ordinal", strategy="quantile", subsample=200_000,
                                       random_state=0)
    return "scale", StandardScaler()


@contextmanager
def quiet_fit():
    """Fit without the binning warning for features with fewer distinct values than bins
    (they simply keep one bin per value, which is what the estimator would do)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Bins whose width are too small", category=UserWarning)
        yield


def _categorical_as_object(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    # The constant imputer and one-hot encoder want object columns with None/NaN for missing.
    out = frame.copy()
    for col in categorical:
        out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
    return out


def model_input(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The columns the model takes, in order: categorical as objects, numeric as float64.

    Numeric inputs are doubles in the model signature, so a missing value at serving
    time (a NaN) never breaks MLflow's schema enforcement of an integer column.
    """
    out = _categorical_as_object(frame[features], categorical)
    for col in features:
        if col not in categorical:
            out[col] = out[col].astype("float64")
    return out


def score_metrics(y_true, proba) -> dict[str, float]:
    """Classification metrics at threshold 0.5 on calibrated P(label=1)."""
    from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score, log_loss,
                                 precision_score, recall_score, roc_auc_score)

    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-15, 1 - 1e-15)
    pred = (p >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "average_precision": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier_score": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }
