"""The model and its evaluation: pure functions of data and config (no MLflow, no tables).

The pipeline is ``ColumnTransformer`` (numeric: median impute + scale; categorical:
impute + one-hot, unknown categories ignored) followed by the configured estimator
(a built-in or ``package.module:factory``, see :mod:`driftgate.training.estimators`);
a classifier is wrapped in ``CalibratedClassifierCV`` so probabilities mean what they
say even when classes were reweighted for imbalance. Splits are by time: every training
row is older than every validation row, which is older than every test row.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

from driftgate.core.errors import TrainingError
from driftgate.training.config import TrainingConfig
from driftgate.training.estimators import check_params, estimator_params, is_classifier, new_estimator

__all__ = ["Split", "time_split", "time_folds", "column_kinds", "estimator_params", "build_pipeline", "quiet_fit",
           "score_metrics", "check_params", "enough_labels"]


@dataclass(frozen=True)
class Split:
    """Train / validation / test frames, cut at two timestamps (no row straddles a cut)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp


def enough_labels(y, problem_type: str) -> bool:
    """At least two classes (classification) or two distinct values (regression): something to learn or score."""
    import pandas as pd

    return len(pd.unique(np.asarray(y))) >= 2


def time_split(frame: pd.DataFrame, cfg: TrainingConfig, problem_type: str = "binary") -> Split:
    """Cut ``frame`` by time into train < validation < test.

    Raises:
        TrainingError: a part is empty or holds one class (one label value) only.
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
        if len(part) == 0 or not enough_labels(labels, problem_type):
            one = "one class only" if is_classifier(problem_type) else "one label value only"
            what = "no rows" if len(part) == 0 else f"{one} ({labels[0]})"
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


def build_pipeline(cfg: TrainingConfig, problem_type: str, params: dict[str, Any], numeric: list[str],
                   categorical: list[str], *, calibrate: bool = True):
    """The scikit-learn ``Pipeline``: features (unless ``training.preprocessing: none``) → (calibrated) estimator."""
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
    estimator = new_estimator(cfg, problem_type, params)
    if calibrate and is_classifier(problem_type) and cfg.calibration != "none":
        # Folds here stay inside the training window; validation and test are never seen.
        estimator = CalibratedClassifierCV(estimator, method=cfg.calibration, cv=cfg.calibration_folds)
    if cfg.preprocessing == "none":
        return Pipeline([("model", estimator)])
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


def score_metrics(y_true, scored, problem_type: str = "binary") -> dict[str, float]:
    """The metrics of ``training.config.TRAINING_METRICS[problem_type]`` for one split.

    ``scored`` is a :class:`driftgate.promotion.scoring.Scored`, or for binary the calibrated P(label=1).
    Binary: at threshold 0.5; multiclass: macro averages and log loss over the model's classes;
    regression: errors of the predicted values.
    """
    from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score, log_loss,
                                 mean_absolute_error, mean_squared_error, precision_score, r2_score, recall_score,
                                 roc_auc_score)

    if problem_type == "regression":
        y = np.asarray(y_true, dtype=float)
        mse = float(mean_squared_error(y, scored.prediction))
        return {"root_mean_squared_error": float(np.sqrt(mse)), "mean_squared_error": mse,
                "mean_absolute_error": float(mean_absolute_error(y, scored.prediction)),
                "r2_score": float(r2_score(y, scored.prediction)), "label_mean": float(y.mean()),
                "rows": float(len(y))}
    if problem_type == "multiclass":
        y, pred = np.asarray(y_true), scored.prediction
        macro = {"average": "macro", "zero_division": 0}
        return {
            "accuracy": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred, **macro)),
            "precision": float(precision_score(y, pred, **macro)), "recall": float(recall_score(y, pred, **macro)),
            # the probability given to each row's true label (a class the model never saw gets ~0), as the shadow test
            "log_loss": float(np.mean(-np.log(np.clip(scored.metric_inputs(y)[1], 1e-15, 1)))),
            "rows": float(len(y)),
        }
    proba = getattr(scored, "probability", scored)
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
