"""Estimator factories a data scientist might write, importable as ``estimator_factories:<name>``.

``training.estimator: "estimator_factories:sgd_pipeline"`` makes training call these.
"""
from __future__ import annotations


def sgd_pipeline():
    """A custom Pipeline: scaling then a linear classifier trained by SGD (probabilities from log loss)."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", max_iter=200, tol=1e-3))


def forest_with_threads():
    """An estimator with an ``n_jobs`` parameter (as LightGBM's and XGBoost's scikit-learn APIs have)."""
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=10, max_depth=4)


def not_an_estimator():
    """Returns something without fit/predict: refused before any data is read."""
    return {"model": "oops"}


NOT_CALLABLE = 42
