"""The scorer contract: a loaded model + a frame → (prediction, probability-or-None), per problem type.

This is the one place that turns a model into predictions, for training's evaluation,
the local shadow test and the Databricks shadow task alike, so a challenger is scored
the same way wherever it runs.

:func:`predict` takes any of

* a scikit-learn estimator or Pipeline (``predict_proba`` is used for classification);
* an MLflow pyfunc model. Its ``predict`` output is read as probabilities when it is
  2-D (one column per class, in the order of the model's ``classes`` metadata, else
  0..K-1), a DataFrame with a ``probability`` column (binary), or, for binary, 1-D
  values in [0, 1] that are not all 0/1; otherwise as predicted classes, and then
  the probability is None. A model logged with ``databricks-feature-engineering``'s
  ``fe.log_model`` has only the pyfunc flavour, whose ``predict`` returns classes
  unless it is logged with ``pyfunc_predict_fn="predict_proba"`` (passed on to
  ``mlflow.sklearn.log_model``), and ``metadata={"classes": [...]}`` for multiclass.

and returns a :class:`Scored`:

==============  ==========================  ===============================================
problem type    ``prediction``              ``probability``
==============  ==========================  ===============================================
binary          class labels (0/1), at      P(positive class), shape (n,); None if the
                ``threshold``               model returns classes only
multiclass      class labels (argmax)       shape (n, K), columns in ``classes`` order;
                                            None if the model returns classes only
regression      predicted values (float)    None
==============  ==========================  ===============================================

:func:`load_scorer` loads a registered model once (scikit-learn flavour when present,
else pyfunc) and scores frames with :func:`predict`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

__all__ = ["Scored", "predict", "Scorer", "load_scorer", "NEEDS_PROBABILITY"]

NEEDS_PROBABILITY = frozenset({"roc_auc", "log_loss", "average_precision", "brier_score"})
"""Metrics that cannot be computed from predicted classes alone."""
_EPS = 1e-15


@dataclass(frozen=True)
class Scored:
    """One model's predictions on one frame (see the module docstring for shapes)."""

    prediction: np.ndarray
    probability: np.ndarray | None
    classes: np.ndarray | None = None

    def metric_inputs(self, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(prediction, probability)`` as the promotion metrics take them: binary P(positive class);
        multiclass the probability given to each row's true label ``y``; regression None."""
        if self.probability is None or self.probability.ndim == 1:
            return self.prediction, self.probability
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        cols = np.array([index.get(v, -1) for v in np.asarray(y).tolist()])
        p = np.where(cols >= 0, self.probability[np.arange(len(cols)), np.maximum(cols, 0)], _EPS)
        return self.prediction, p

    def take(self, mask: np.ndarray) -> "Scored":
        """The rows where ``mask`` holds."""
        return Scored(self.prediction[mask], None if self.probability is None else self.probability[mask],
                      self.classes)


def _classes(model, k: int, given: Sequence | None) -> np.ndarray:
    if given is not None:
        return np.asarray(list(given))
    found = getattr(model, "classes_", None)
    if found is None:
        meta = getattr(getattr(model, "metadata", None), "metadata", None) or {}
        found = meta.get("classes")
    if found is None:
        found = range(k)
    classes = np.asarray(list(found))
    if len(classes) != k:
        raise ValueError(f"the model returns {k} probability columns but names {len(classes)} classes")
    return classes


def _from_probability(proba: np.ndarray, classes: np.ndarray, problem_type: str, threshold: float) -> "Scored":
    if problem_type == "binary":
        if proba.ndim == 2:
            proba = proba[:, -1]
        pred = np.where(proba >= threshold, classes[-1], classes[0])
        return Scored(pred, proba, classes)
    return Scored(classes[np.argmax(proba, axis=1)], proba, classes)


def _as_array(out: Any) -> np.ndarray:
    import pandas as pd

    if isinstance(out, pd.DataFrame):
        return out.to_numpy()
    if isinstance(out, (pd.Series, list)):
        return np.asarray(out)
    return np.asarray(out)


def predict(model, frame: pd.DataFrame, problem_type: str, *, threshold: float = 0.5,
            classes: Sequence | None = None) -> Scored:
    """Score ``frame`` with ``model`` (a scikit-learn estimator or an MLflow pyfunc model).

    Args:
        model: the loaded model.
        frame: exactly the model's input columns.
        problem_type: ``binary``, ``multiclass`` or ``regression`` (``project.problem_type``).
        threshold: binary only: probability at or above which the prediction is the positive class.
        classes: class labels in probability-column order, when the model does not say.

    Raises:
        ValueError: the model's probability columns and classes disagree.
    """
    import pandas as pd

    if problem_type == "regression":
        return Scored(np.asarray(_as_array(model.predict(frame)), dtype=float).reshape(-1), None)
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        return _from_probability(proba, _classes(model, proba.shape[1], classes), problem_type, threshold)
    out = model.predict(frame)
    if isinstance(out, pd.DataFrame) and "probability" in out.columns and problem_type == "binary":
        proba = np.asarray(out["probability"], dtype=float)
        return _from_probability(proba, _classes(model, 2, classes), problem_type, threshold)
    arr = _as_array(out)
    if arr.ndim == 2 and arr.shape[1] > 1:
        proba = arr.astype(float)
        return _from_probability(proba, _classes(model, proba.shape[1], classes), problem_type, threshold)
    arr = arr.reshape(-1)
    if problem_type == "binary" and arr.dtype.kind == "f" and len(arr) and ((arr >= 0) & (arr <= 1)).all() \
            and not np.isin(arr, (0.0, 1.0)).all():
        return _from_probability(arr, _classes(model, 2, classes), problem_type, threshold)
    return Scored(arr, None, None if classes is None else np.asarray(list(classes)))


class Scorer:
    """A registered model loaded once: scikit-learn flavour when it has one, else pyfunc."""

    def __init__(self, uri: str, columns: list[str], problem_type: str, *, threshold: float = 0.5):
        import mlflow

        self.uri, self.columns, self.problem_type, self.threshold = uri, columns, problem_type, threshold
        info = mlflow.models.get_model_info(uri)
        self.kind = "sklearn" if "sklearn" in (info.flavors or {}) else "pyfunc"
        self.model = mlflow.sklearn.load_model(uri) if self.kind == "sklearn" else mlflow.pyfunc.load_model(uri)

    def score(self, frame: pd.DataFrame) -> Scored:
        return predict(self.model, frame[self.columns], self.problem_type, threshold=self.threshold)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Binary only: P(positive class) per row (what traffic logging and baselines record).

        Raises:
            ValueError: not a binary problem, or the model returns classes only.
        """
        if self.problem_type != "binary":
            raise ValueError(f"{self.uri}: P(class 1) exists for binary models only (project.problem_type is "
                             f"{self.problem_type}); record the model's own predictions instead")
        scored = self.score(frame)
        if scored.probability is None:
            raise ValueError(f"{self.uri} returns classes only; log it with pyfunc_predict_fn='predict_proba'")
        return scored.probability


def load_scorer(uri: str, columns: list[str], problem_type: str = "binary", *, threshold: float = 0.5) -> Scorer:
    return Scorer(uri, columns, problem_type, threshold=threshold)
