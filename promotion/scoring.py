"""The scorer contract: a loaded model + a frame → (prediction, probability-or-None).

One place turns a model into predictions, for the local shadow test and the Databricks shadow
task alike, so a challenger is scored the same way wherever it runs. (Minimal binary form; the
estimators work extends it per problem type with the same names.)

:func:`predict` takes a scikit-learn estimator (``predict_proba``) or an MLflow pyfunc model,
whose ``predict`` output is read as probabilities when it is 2-D (one column per class: the
last is the positive class), a DataFrame with a ``probability`` column, or 1-D values in [0, 1]
that are not all 0/1; otherwise it returned classes and the probability is None. A model
logged with ``fe.log_model`` has only the pyfunc flavour: it returns probabilities only when
logged with ``pyfunc_predict_fn="predict_proba"`` (what driftgate's training does,
:func:`driftgate.training.features.probability_pyfunc`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Scored", "predict", "Scorer", "load_scorer"]


@dataclass(frozen=True)
class Scored:
    """One model's predictions on one frame: classes, and P(positive class) when the model gives it."""

    prediction: np.ndarray
    probability: np.ndarray | None


def _probability(out) -> np.ndarray | None:
    if isinstance(out, pd.DataFrame) and "probability" in out.columns:
        return np.asarray(out["probability"], dtype=float)
    arr = np.asarray(out.to_numpy() if isinstance(out, pd.DataFrame) else out)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return arr[:, -1].astype(float)
    arr = arr.reshape(-1)
    if arr.dtype.kind == "f" and len(arr) and ((arr >= 0) & (arr <= 1)).all() and not np.isin(arr, (0.0, 1.0)).all():
        return arr
    return None


def predict(model, frame: pd.DataFrame, problem_type: str = "binary", *, threshold: float = 0.5) -> Scored:
    """Score ``frame`` (exactly the model's inputs) with a scikit-learn or pyfunc model (binary)."""
    if problem_type != "binary":
        raise ValueError(f"this scorer handles binary models only, got problem type {problem_type!r}")
    if callable(getattr(model, "predict_proba", None)):
        proba = np.asarray(model.predict_proba(frame), dtype=float)[:, -1]
    else:
        out = model.predict(frame)
        proba = _probability(out)
        if proba is None:
            return Scored(np.asarray(out).reshape(-1), None)
    return Scored((proba >= threshold).astype("int64"), proba)


class Scorer:
    """A registered model loaded once: scikit-learn flavour when it has one, else pyfunc."""

    def __init__(self, uri: str, columns: list[str], *, threshold: float = 0.5):
        import mlflow

        self.uri, self.columns, self.threshold = uri, columns, threshold
        info = mlflow.models.get_model_info(uri)
        self.kind = "sklearn" if "sklearn" in (info.flavors or {}) else "pyfunc"
        self.model = mlflow.sklearn.load_model(uri) if self.kind == "sklearn" else mlflow.pyfunc.load_model(uri)

    def score(self, frame: pd.DataFrame) -> Scored:
        return predict(self.model, frame[self.columns], "binary", threshold=self.threshold)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive class) per row.

        Raises:
            ValueError: the model returns classes only (ROC AUC and thresholds on 0/1 would not
                mean what they mean for a model scored with probabilities: refused, not guessed).
        """
        scored = self.score(frame)
        if scored.probability is None:
            raise ValueError(f"{self.uri} returns classes only, not probabilities; log it with "
                             "pyfunc_predict_fn='predict_proba'")
        return scored.probability


def load_scorer(uri: str, columns: list[str], problem_type: str = "binary", *, threshold: float = 0.5) -> Scorer:
    """The scorer of a registered model (binary problems in this minimal contract)."""
    if problem_type != "binary":
        raise ValueError(f"{uri}: this scorer handles binary models only, got problem type {problem_type!r}")
    return Scorer(uri, columns, threshold=threshold)
