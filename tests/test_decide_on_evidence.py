"""Issue 16, "decide on evidence": gate rules on performance estimated before labels arrive, and on drift
weighted by what the champion uses."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from driftgate.gating.config import GateConfig, Persistence, Rule, RuleFilters
from driftgate.gating.gate import decide
from driftgate.monitoring import engine
from tests.monitor_data import START, TS

DAYS, ROWS = 4, 400


def _world(rng, n, *, x1, x2_shift=0.0):
    """x1 decides the label (P(y=1|x) = sigmoid(3 x1)); x2 is noise the model learns to ignore."""
    a = x1(n)
    b = rng.normal(x2_shift, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-3 * a))).astype(np.int64)
    return np.c_[a, b], y


def _confident(rng):  # the training region: x1 far from the boundary, where p is near 0 or 1
    return lambda n: rng.choice([-1.5, 1.5], n) + rng.normal(0, 0.5, n)


def _served(model, X, y, *, days, labelled: bool, first_day=0) -> pa.Table:
    n = len(y)
    p = model.predict_proba(X)[:, 1]
    day = np.repeat(np.arange(days), n // days)
    return pa.table({
        "request_id": [f"r{first_day}-{i}" for i in range(n)],
        "timestamp": pa.array([START + timedelta(days=int(first_day + d), hours=1 + i % 20)
                               for i, d in enumerate(day)], TS),
        "model_id": ["1"] * n,
        "prediction": pa.array((p >= 0.5).astype(np.int64)),
        "probability": p,
        "label": pa.array(y, pa.int64(), mask=np.full(n, not labelled)),
        "x1": X[:, 0], "x2": X[:, 1],
    })


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(16)
    X, y = _world(rng, 4000, x1=_confident(rng))
    model = LogisticRegression().fit(X, y)
    Xb, yb = _world(rng, 1000, x1=_confident(rng))
    return model, _served(model, Xb, yb, days=1, labelled=True, first_day=-30)


def _monitor(settings, **log):
    inference_log = settings.monitor.inference_log.model_copy(update=log)
    return settings.monitor.model_copy(update={"slicing_exprs": [], "inference_log": inference_log})


def _profile(settings, baseline, served):
    plan = engine.plan_for(_monitor(settings), served.schema)
    profile, _ = engine.compute(plan, served, baseline.cast(served.schema))
    return profile


ESTIMATED_AUC_DROP = Rule(name="estimated_auc_drop", table="profile", metric="estimated_roc_auc",
                          relative_to="baseline", op="<", threshold=-0.05,
                          persistence=Persistence(windows=3, violations=2))
ESTIMATED_ACCURACY = Rule(name="estimated_accuracy_low", table="profile", metric="estimated_accuracy",
                          op="<", threshold=0.8)


@pytest.mark.parametrize("shift,fires", [("toward_boundary", True), ("ignored_feature", False)])
def test_a_rule_on_estimated_performance_fires_on_harmful_covariate_shift_only(settings, trained, shift, fires):
    """Unlabelled windows: x1 moves to where the model is unsure (hurts) or x2, which the model ignores,
    moves by three standard deviations (harmless). The estimate sees the difference without a label."""
    model, baseline = trained
    rng = np.random.default_rng(7)
    if shift == "toward_boundary":
        X, y = _world(rng, DAYS * ROWS, x1=lambda n: rng.normal(0, 0.4, n))
    else:
        X, y = _world(rng, DAYS * ROWS, x1=_confident(rng), x2_shift=3.0)
    profile = _profile(settings, baseline, _served(model, X, y, days=DAYS, labelled=False))
    table = profile.filter(pa.compute.equal(profile["column_name"], ":table"))
    assert all(n == 0 for n, t in zip(table["labeled_count"].to_pylist(), table["log_type"].to_pylist())
               if t == "INPUT")  # no labels at all in the served windows
    for rule in (ESTIMATED_AUC_DROP, ESTIMATED_ACCURACY):
        decision = decide({"profile": profile}, GateConfig(rules=[rule]), now=START + timedelta(days=DAYS))
        assert decision.status == ("EXCEEDED" if fires else "OK"), decision.summary
    # and the labels, when they come, agree: the model really is worse after the harmful shift only
    p = model.predict_proba(X)[:, 1]
    realised = roc_auc_score(y, p)
    assert (realised < 0.85) == fires, realised
    assert (accuracy_score(y, p >= 0.5) < 0.8) == fires


def test_estimates_are_on_table_rows_of_binary_monitors_only(settings, trained):
    model, baseline = trained
    rng = np.random.default_rng(3)
    X, y = _world(rng, 2 * ROWS, x1=_confident(rng))
    profile = _profile(settings, baseline, _served(model, X, y, days=2, labelled=True))
    rows = profile.to_pylist()
    table = [r for r in rows if r["column_name"] == ":table"]
    assert {r["log_type"] for r in table} == {"INPUT", "BASELINE"}
    for r in table:
        assert r["estimated_roc_auc_lower"] <= r["estimated_roc_auc"] <= r["estimated_roc_auc_upper"]
        assert abs(r["estimated_roc_auc"] - r["roc_auc_score"]) < 0.05  # calibrated: close to the realised AUC
        assert abs(r["estimated_accuracy"] - r["accuracy_score"]) < 0.05
    assert all(r["estimated_roc_auc"] is None for r in rows if r["column_name"] != ":table")
    # regression monitors and monitors without probabilities get no estimate
    served = _served(model, X, y, days=2, labelled=True)
    for no_estimate in (_monitor(settings, prediction_proba_col=None), _monitor(settings, problem_type="regression")):
        prof, _ = engine.compute(engine.plan_for(no_estimate, served.schema), served, None)
        assert "estimated_roc_auc" not in prof.column_names or set(prof["estimated_roc_auc"].to_pylist()) == {None}


# -- which features matter --------------------------------------------------------------------------

IMPORTANT_DRIFT = Rule(name="important_feature_drift", table="drift", metric="importance_weighted_drift",
                       op=">", threshold=0.1, filters=RuleFilters(columns=[":importance_weighted"]))
ANY_PSI = Rule(name="any_feature_psi", table="drift", metric="population_stability_index", op=">", threshold=0.2,
               filters=RuleFilters(columns="all"))


def _importance(model, baseline: pa.Table) -> dict[str, float]:
    from driftgate.monitoring.importance import permutation_importances

    frame = baseline.select(["x1", "x2"]).to_pandas()
    mean, _, scoring = permutation_importances(lambda X: model.predict_proba(X.to_numpy())[:, 1], frame,
                                               baseline["label"].to_numpy(), seed=0)
    assert scoring == "roc_auc"
    return mean


@pytest.mark.parametrize("moved,fires", [("x1", True), ("x2", False)])
def test_drift_weighted_by_importance_fires_on_the_feature_the_model_uses(settings, trained, moved, fires):
    """The same shift (+1 sd) in x1, which the model uses, or in x2, which it ignores: a plain PSI rule
    fires on both, the importance-weighted one on x1 only."""
    model, baseline = trained
    importance = _importance(model, baseline)
    assert importance["x1"] > 0.2 and abs(importance["x2"]) < 0.01
    rng = np.random.default_rng(5)
    X, y = _world(rng, DAYS * ROWS, x1=_confident(rng))
    X[:, 0 if moved == "x1" else 1] += 1.0
    served = _served(model, X, y, days=DAYS, labelled=False)
    plan = engine.with_importance(engine.plan_for(_monitor(settings), served.schema), importance)
    assert dict(plan.importance).keys() <= {"x1", "x2"}  # outputs (probability, prediction) are not features
    profile, drift = engine.compute(plan, served, baseline.cast(served.schema))
    psi = {r["column_name"]: r["population_stability_index"] for r in drift.to_pylist()
           if r["drift_type"] == "BASELINE" and r["model_id"] == "*" and r["column_name"] in ("x1", "x2")}
    assert psi[moved] > 0.3  # a real shift either way
    now = START + timedelta(days=DAYS)
    frames = {"drift": drift, "profile": profile}
    plain = decide(frames, GateConfig(rules=[ANY_PSI]), now=now)
    assert plain.status == "EXCEEDED"
    assert ":importance_weighted" not in plain.reasons[0].windows[0].missing  # not a column of `columns: all`
    decision = decide(frames, GateConfig(rules=[IMPORTANT_DRIFT]), now=now)
    assert decision.status == ("EXCEEDED" if fires else "OK"), decision.summary
    weighted = [r for r in drift.to_pylist() if r["column_name"] == ":importance_weighted"]
    assert weighted and all(r["feature_importance"] == pytest.approx(1.0) for r in weighted)


def test_without_importance_there_is_no_weighted_row_and_the_rule_cannot_say_ok(settings, trained):
    model, baseline = trained
    rng = np.random.default_rng(6)
    X, y = _world(rng, DAYS * ROWS, x1=_confident(rng))
    served = _served(model, X, y, days=DAYS, labelled=False)
    profile, drift = engine.compute(engine.plan_for(_monitor(settings), served.schema), served,
                                    baseline.cast(served.schema))
    assert ":importance_weighted" not in drift["column_name"].to_pylist()
    assert set(drift["feature_importance"].to_pylist()) == {None}
    status = decide({"drift": drift, "profile": profile}, GateConfig(rules=[IMPORTANT_DRIFT]),
                    now=START + timedelta(days=DAYS)).status
    assert status == "INSUFFICIENT_DATA"


def test_the_baseline_writer_stores_importance_and_the_refresh_weights_by_it(tmp_path, trained):
    """Through the workspace: a registered model, write_baseline computes and stores its permutation
    importance, the monitor refresh reads it back for the baseline's version and writes the weighted rows."""
    import mlflow
    from mlflow.models import infer_signature

    from driftgate.core.settings import load_settings
    from driftgate.monitoring import refresh
    from driftgate.monitoring.importance import importance_table, read_importance
    from driftgate.promotion.bootstrap import write_baseline
    from driftgate.workspace import open_workspace
    from tests.conftest import REPO

    ws = open_workspace(load_settings(REPO / "conf", "demo", (f"workspace.root={tmp_path}", "monitor.slicing_exprs=[]",
                                                              "monitor.inference_log.granularities=[1 day]")))
    model, baseline = trained
    ws.activate_mlflow()
    X = baseline.select(["x1", "x2"]).to_pandas()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X.head(20)),
                                        pip_requirements=["scikit-learn"])
    version = ws.registry.register(info.model_uri, ws.settings.project.model_name).version
    rng = np.random.default_rng(9)
    Xs, ys = _world(rng, 2 * ROWS, x1=_confident(rng))
    Xs[:, 0] += 1.0  # the feature the model uses moves
    served = _served(model, Xs, ys, days=2, labelled=False)
    served = served.set_column(served.schema.get_field_index("model_id"), "model_id", pa.array([version] * len(ys)))
    ws.tables.write(ws.settings.project.inference_table, served, mode="overwrite")
    frame = baseline.to_pandas().assign(model_id=version)
    write_baseline(ws, frame, version, reason="init")
    stored = read_importance(ws, version)
    assert stored["x1"] > 0.2 and abs(stored["x2"]) < 0.01
    assert ws.tables.read(importance_table(ws)).column("scoring").to_pylist()[0] == "roc_auc"
    write_baseline(ws, frame, version, reason="again")  # recomputed: replaced, not appended
    assert ws.tables.read(importance_table(ws)).num_rows == 2
    refresh(ws, ws.settings.monitor)
    drift = ws.tables.read(ws.settings.monitor.drift_metrics_table).to_pylist()
    weighted = [r for r in drift if r["column_name"] == ":importance_weighted" and r["drift_type"] == "BASELINE"]
    assert weighted and all(r["importance_weighted_drift"] > 0.3 for r in weighted)
    shares = {r["column_name"]: r["feature_importance"] for r in drift if r["column_name"] in ("x1", "x2")}
    assert shares["x1"] == pytest.approx(1.0, abs=0.02) and shares["x2"] == pytest.approx(0.0, abs=0.02)
    profile = ws.tables.read(ws.settings.monitor.profile_metrics_table).to_pylist()
    assert all(r["estimated_roc_auc"] is not None for r in profile if r["column_name"] == ":table")


def test_the_readme_rule_examples_are_valid_rules():
    import re

    import yaml

    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(gate:.*?)```", readme, re.S) if "estimated_auc_drop" in b)
    rules = {r.name: r for r in GateConfig.model_validate(yaml.safe_load(block)["gate"]).rules}
    assert rules["estimated_auc_drop"].metric == "estimated_roc_auc" and rules["estimated_auc_drop"].relative_to
    assert rules["important_feature_drift"].columns == [":importance_weighted"]
