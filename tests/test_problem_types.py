"""Multiclass and regression models through train → shadow → promote, on small synthetic worlds.

Each world: v1 learns the old concept and serves a week of traffic that follows a new
concept; v2 learns the new one. The shadow test must pass v2 on the problem type's
metrics (macro F1 / log loss, RMSE / MAE / R2) with the paired bootstrap on the
configured primary metric, and promotion must make it champion.
"""
from __future__ import annotations

from datetime import timedelta

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftgate import promotion, training
import training_world as tw
from driftgate.promotion.scoring import predict
from promotion_world import FEATURES, START, features
from training_world import mlflow_template, tws  # noqa: F401  (fixtures)

EXTRA = {"multiclass": ("promotion.fairness.tolerance=0.2",), "regression": ("promotion.fairness.tolerance=1.0",)}


@pytest.fixture(params=["multiclass", "regression"])
def settings(request, tmp_path):
    """The repo conf for one problem type (overrides conftest's ``settings``; ``tws`` builds on it)."""
    from driftgate.core.settings import load_settings
    from tests.conftest import REPO

    return load_settings(REPO / "conf", "demo", (
        f"workspace.root={tmp_path / '.driftgate'}", f"project.problem_type={request.param}",
        "promotion.guard.n_resamples=200", *EXTRA[request.param]))


def label(x: pd.DataFrame, problem: str, concept: str, rng: np.random.Generator):
    if concept == "old":
        a, b = 0.08 * (x["tenure_months"] - 24), 1.2 * (x["support_calls"] - 1.5)
    else:
        a, b = 0.08 * (x["monthly_charges"] - 60), -0.12 * (x["usage_gb"] - 20)
    if problem == "regression":
        return (10 + 4 * a + 4 * b + rng.normal(0, 1, len(x))).to_numpy()
    scores = np.column_stack([np.zeros(len(x)), a, b]) + rng.gumbel(0, 0.3, (len(x), 3))
    return scores.argmax(axis=1).astype("int64")


def rows(problem: str, concept: str, *, first_day: int, days: int, per_day: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    frame = features(n, rng)
    frame.insert(0, "timestamp", pd.to_datetime(
        [START + timedelta(days=first_day, seconds=float(s)) for s in np.sort(rng.uniform(0, days * 86400, n))],
        utc=True).astype("datetime64[us, UTC]"))
    frame.insert(0, "customer_id", [f"c{seed}-{i}" for i in range(n)])
    frame["label"] = label(frame, problem, concept, rng)
    return frame


def serve(ws, model_uri: str, version: str, problem: str) -> None:
    """A week of traffic after training, scored by ``version``, labelled by the new concept."""
    frame = rows(problem, "new", first_day=20, days=7, per_day=60, seed=7)
    scored = predict(mlflow.sklearn.load_model(model_uri), frame[FEATURES], problem)
    frame["request_id"] = [f"r{i}" for i in range(len(frame))]
    frame["model_id"] = version
    frame["prediction"] = scored.prediction
    if problem == "multiclass":
        frame["probability"] = None  # P(class 1) means nothing for three classes: the column stays null
        frame["probability"] = frame["probability"].astype("float64")
    ws.tables.write(ws.settings.project.inference_table, pa.Table.from_pandas(frame, preserve_index=False),
                    mode="overwrite")


def test_train_shadow_promote(tws):
    problem = tws.settings.project.problem_type
    name = tws.settings.project.model_name
    tw.write(tws, rows(problem, "old", first_day=0, days=20, per_day=30, seed=1))
    v1 = training.train(tws)
    assert v1.registered, v1.refused_reason
    tws.registry.set_alias(name, "champion", v1.version)
    serve(tws, v1.model_uri, v1.version, problem)

    tw.write(tws, rows(problem, "new", first_day=0, days=20, per_day=30, seed=2))
    v2 = training.train(tws)
    assert v2.registered, v2.refused_reason
    expected = {"multiclass": {"test_f1", "test_log_loss", "test_accuracy"},
                "regression": {"test_root_mean_squared_error", "test_mean_absolute_error", "test_r2_score"}}[problem]
    assert expected <= set(v2.metrics)

    promotion.set_challenger(tws, v2.version)
    shadow = promotion.shadow(tws)
    assert shadow.status == "PASS", shadow.reasons
    primary = tws.settings.promotion.primary_metric
    assert shadow.interval.metric == primary == {"multiclass": "f1_score", "regression": "root_mean_squared_error"}[
        problem]
    if problem == "multiclass":
        assert shadow.interval.low > 0 and shadow.metrics["delta_log_loss"] < 0
        assert shadow.mcnemar_p is not None
    else:
        assert shadow.interval.high < 0 and shadow.metrics["delta_r2_score"] > 0  # lower RMSE is better
        assert shadow.mcnemar_p is None
    shadow_rows = tws.tables.read(promotion.shadow_table_name(tws)).to_pandas()
    assert len(shadow_rows) == shadow.n_rows == 7 * 60 and set(shadow_rows["model_id"]) == {v2.version}
    if problem == "multiclass":
        assert set(shadow_rows["prediction"]) <= {0, 1, 2} and shadow_rows["probability"].isna().all()

    result = promotion.promote(tws, shadow)
    assert result.promoted and result.champion_version == v2.version
    assert tws.registry.alias_version(name, "previous_champion") == v1.version


def test_a_challenger_trained_on_the_old_concept_is_refused(tws):
    problem = tws.settings.project.problem_type
    name = tws.settings.project.model_name
    tw.write(tws, rows(problem, "new", first_day=0, days=20, per_day=30, seed=3))
    v1 = training.train(tws)
    tws.registry.set_alias(name, "champion", v1.version)
    serve(tws, v1.model_uri, v1.version, problem)
    tw.write(tws, rows(problem, "old", first_day=0, days=20, per_day=30, seed=4))
    v2 = training.train(tws)
    assert v2.registered  # it clears the floor on its own (old-concept) test split
    promotion.set_challenger(tws, v2.version)
    shadow = promotion.shadow(tws)
    assert shadow.status == "FAIL"
    failed = " ".join(c.detail for c in shadow.checks if not c.passed)
    assert {"multiclass": "f1_score", "regression": "root_mean_squared_error"}[problem] in failed
    assert not promotion.promote(tws, shadow).promoted
    assert tws.registry.alias_version(name, "champion") == v1.version


def test_tune_optimises_the_problem_types_metric(tws):
    import dataclasses

    from driftgate.core.settings import Settings

    problem = tws.settings.project.problem_type
    tw.write(tws, rows(problem, "new", first_day=0, days=16, per_day=25, seed=5))
    data = tws.settings.model_dump()
    data["tuning"].update(cv_folds=2, search_space={"hist_gradient_boosting": {
        "max_iter": {"type": "int", "low": 5, "high": 15, "step": 5}}})
    ws = dataclasses.replace(tws, settings=Settings.model_validate(data))
    result = training.tune(ws, n_trials=2)
    metric, direction = {"multiclass": ("f1", "maximize"), "regression": ("root_mean_squared_error", "minimize")}[
        problem]
    assert (result.metric, result.direction, result.n_complete) == (metric, direction, 2)
    assert 0 < result.best_value < (1 if problem == "multiclass" else 10)
