"""The scorer contract (model + frame → prediction, probability-or-None) and the metrics per problem type."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from driftgate.promotion.policy import model_metrics, paired_bootstrap
from driftgate.promotion.scoring import Scored, predict

RNG = np.random.default_rng(3)
X = pd.DataFrame({"a": RNG.normal(size=300), "b": RNG.normal(size=300)})


def _fit(kind):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if kind == "regression":
        return LinearRegression().fit(X, 2 * X["a"] + RNG.normal(0, 0.5, 300))
    if kind == "multiclass":
        return LogisticRegression().fit(X, np.digitize(X["a"] + X["b"], [-0.5, 0.5]) + 10)  # classes 10, 11, 12
    return LogisticRegression().fit(X, (X["a"] > 0).astype(int))


class _Pyfunc:
    """What ``mlflow.pyfunc.load_model`` gives: ``predict`` only, maybe ``metadata.metadata``."""

    def __init__(self, out, classes=None):
        self.out = out
        self.metadata = type("M", (), {"metadata": {"classes": classes} if classes is not None else None})()

    def predict(self, frame):
        return self.out


def test_scikit_learn_models_give_the_documented_shapes():
    binary = predict(_fit("binary"), X, "binary", threshold=0.7)
    assert binary.probability.shape == (300,) and set(binary.prediction) <= {0, 1}
    assert (binary.prediction == (binary.probability >= 0.7)).all()
    multi = predict(_fit("multiclass"), X, "multiclass")
    assert multi.probability.shape == (300, 3) and list(multi.classes) == [10, 11, 12]
    assert (multi.prediction == multi.classes[multi.probability.argmax(axis=1)]).all()
    reg = predict(_fit("regression"), X, "regression")
    assert reg.probability is None and reg.prediction.dtype == float


def test_pyfunc_outputs_are_read_as_probabilities_or_classes():
    proba = np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]])
    multi = predict(_Pyfunc(proba, classes=["a", "b", "c"]), X.head(2), "multiclass")
    assert list(multi.prediction) == ["b", "a"] and multi.probability is not None
    # a feature-engineering model logged without pyfunc_predict_fn: classes only, never mistaken for P(1)
    only = predict(_Pyfunc(np.array([1, 0, 1])), X.head(3), "binary")
    assert only.probability is None and list(only.prediction) == [1, 0, 1]
    p1 = predict(_Pyfunc(pd.DataFrame({"probability": [0.2, 0.9]})), X.head(2), "binary")
    assert list(p1.prediction) == [0, 1] and list(p1.probability) == [0.2, 0.9]
    with pytest.raises(ValueError, match="3 probability columns but names 2 classes"):
        predict(_Pyfunc(proba, classes=["a", "b"]), X.head(2), "multiclass")


def test_metric_inputs_give_the_probability_of_each_true_label():
    scored = Scored(np.array(["b", "a"]), np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]]), np.array(["a", "b", "c"]))
    pred, p_true = scored.metric_inputs(np.array(["c", "a"]))
    assert list(p_true) == [0.3, 0.7]


def test_multiclass_and_regression_metrics_match_scikit_learn():
    y = RNG.integers(0, 4, 400)
    proba = RNG.dirichlet(np.ones(4), 400)
    proba[np.arange(400), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    scored = Scored(proba.argmax(axis=1), proba, np.arange(4))
    pred, p_true = scored.metric_inputs(y)
    got = model_metrics(y, pred, p_true, ["accuracy_score", "f1_score", "precision_score", "recall_score",
                                          "log_loss"], "multiclass")
    macro = {"average": "macro", "zero_division": 0}
    assert got["f1_score"] == pytest.approx(skm.f1_score(y, pred, **macro))
    assert got["precision_score"] == pytest.approx(skm.precision_score(y, pred, **macro))
    assert got["recall_score"] == pytest.approx(skm.recall_score(y, pred, **macro))
    assert got["accuracy_score"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))

    t = RNG.normal(10, 3, 400)
    v = t + RNG.normal(0, 1, 400)
    got = model_metrics(t, v, None, ["root_mean_squared_error", "mean_absolute_error", "mean_squared_error",
                                     "r2_score"], "regression")
    assert got["mean_squared_error"] == pytest.approx(skm.mean_squared_error(t, v))
    assert got["root_mean_squared_error"] == pytest.approx(np.sqrt(skm.mean_squared_error(t, v)))
    assert got["mean_absolute_error"] == pytest.approx(skm.mean_absolute_error(t, v))
    assert got["r2_score"] == pytest.approx(skm.r2_score(t, v))
    assert np.isnan(model_metrics(np.ones(5), np.ones(5), None, ["r2_score"], "regression")["r2_score"])


def test_paired_bootstrap_for_regression_and_multiclass():
    t = RNG.normal(10, 3, 500)
    worse, better = t + RNG.normal(0, 2, 500), t + RNG.normal(0, 1, 500)
    iv = paired_bootstrap(t, (worse, None), (better, None), metric="root_mean_squared_error", n_resamples=300,
                          confidence=0.95, seed=0, problem_type="regression")
    assert iv.low < iv.difference < iv.high < 0  # lower RMSE is better: the interval lies below zero
    same = paired_bootstrap(t, (worse, None), (worse, None), metric="r2_score", n_resamples=200, confidence=0.95,
                            seed=0, problem_type="regression")
    assert same.low == same.high == 0

    y = RNG.integers(0, 3, 600)
    good = np.where(RNG.random(600) < 0.8, y, RNG.integers(0, 3, 600))
    poor = np.where(RNG.random(600) < 0.4, y, RNG.integers(0, 3, 600))
    iv = paired_bootstrap(y, (poor, np.full(600, 0.4)), (good, np.full(600, 0.6)), metric="f1_score",
                          n_resamples=300, confidence=0.95, seed=0, problem_type="multiclass")
    assert iv.low > 0


def _pyfunc_model(method: str):
    """A pyfunc-only model class (as ``fe.log_model`` logs one) answering with the pipeline's ``method``."""
    import mlflow

    class Wrapped(mlflow.pyfunc.PythonModel):
        def __init__(self, model):
            self.model = model

        def predict(self, context, model_input, params=None):
            return getattr(self.model, method)(model_input)

    return Wrapped


@pytest.mark.filterwarnings("ignore:.*Add type hints")
def test_shadow_scores_a_pyfunc_only_model_like_its_scikit_learn_twin(ws):
    """The Databricks contract: a pyfunc returning probabilities is judged like the scikit-learn model;
    one returning classes only is refused with what to change, never judged on classes as probabilities."""
    import mlflow
    from mlflow.models import infer_signature

    from driftgate import promotion
    from promotion_world import build, fit, reset_aliases

    world = build(ws)
    model, x = fit("new", 2)
    versions = {}
    for method in ("predict_proba", "predict"):
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=_pyfunc_model(method)(model),
                                           signature=infer_signature(x.head(50)), pip_requirements=["scikit-learn"])
        versions[method] = ws.registry.register(info.model_uri, ws.settings.project.model_name).version
    reset_aliases(ws, champion=world.v1)
    promotion.set_challenger(ws, world.v2)
    twin = promotion.shadow(ws)
    promotion.set_challenger(ws, versions["predict_proba"])
    wrapped = promotion.shadow(ws)
    assert wrapped.status == twin.status == "PASS"
    assert wrapped.metrics["challenger_roc_auc"] == pytest.approx(twin.metrics["challenger_roc_auc"])
    promotion.set_challenger(ws, versions["predict"])
    classes_only = promotion.shadow(ws)
    assert classes_only.status == "FAIL"
    assert "returns classes only" in classes_only.reasons[0] and "pyfunc_predict_fn" in classes_only.reasons[0]
