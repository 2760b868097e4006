"""The scorer contract: the same P(positive class) from a scikit-learn model and from a pyfunc
that returns probabilities; a pyfunc that returns classes is refused, never scored on 0/1."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from driftgate.promotion.scoring import load_scorer, predict


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    return LogisticRegression().fit(x, (x.a > 0).astype(int)), x


class _Pyfunc:
    """What ``mlflow.pyfunc.load_model(...)`` hands back: ``predict`` only."""

    def __init__(self, fn):
        self.predict = fn


def test_sklearn_and_probability_pyfuncs_score_alike(fitted):
    model, x = fitted
    expected = model.predict_proba(x)[:, 1]
    for scorer in (model, _Pyfunc(model.predict_proba),
                   _Pyfunc(lambda f: pd.DataFrame({"probability": model.predict_proba(f)[:, 1]}))):
        scored = predict(scorer, x, "binary", threshold=0.5)
        np.testing.assert_allclose(scored.probability, expected)
        assert (scored.prediction == (expected >= 0.5)).all()


def test_a_pyfunc_returning_classes_has_no_probability(fitted):
    model, x = fitted
    scored = predict(_Pyfunc(model.predict), x, "binary")
    assert scored.probability is None and set(scored.prediction) <= {0, 1}
    assert predict(_Pyfunc(lambda f: model.predict(f).astype(float)), x, "binary").probability is None  # 0.0/1.0 floats


def test_the_registered_scorer_refuses_a_classes_only_model(ws, fitted):
    """The Databricks trap: a pyfunc-only model logged without pyfunc_predict_fn. Shadow turns this
    error into a problem (no promotion) instead of ROC AUC on 0/1."""
    import mlflow

    model, x = fitted

    class Classes(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model.predict(model_input[["a", "b"]])

    ws.activate_mlflow()
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="classes", python_model=Classes())
    scorer = load_scorer(info.model_uri, ["a", "b"])
    assert scorer.kind == "pyfunc"
    with pytest.raises(ValueError, match="classes only"):
        scorer.probability(x)
