"""The estimator against realised performance on windows whose labels arrive later (the figures in
docs/tables.md, "Estimated performance"). Run with ``-s`` to print the measured errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from driftgate.demo import CATEGORICAL_FEATURES, NUMERIC_FEATURES, simulate_events
from driftgate.monitoring.estimate import estimate_binary
from driftgate.training.model import build_pipeline, estimator_params, model_input

FEATURES = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]


@pytest.fixture(scope="module")
def demo(request):
    """A small demo world (the demo's own generator and model pipeline): 30 days of history to train on."""
    from driftgate.core.settings import load_settings
    from tests.conftest import REPO

    settings = load_settings(REPO / "conf", "demo", ("demo.customers=600", "demo.rows_per_day=400",
                                                     "demo.history_days=20"))
    cfg = settings.demo
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    history = simulate_events(cfg, first_day=0, days=cfg.history_days, drift_onset=None, start=start)
    kind = settings.project.problem_type
    model = build_pipeline(settings.training, kind, estimator_params(settings.training, kind), NUMERIC_FEATURES,
                           CATEGORICAL_FEATURES)
    model.fit(model_input(history, FEATURES, CATEGORICAL_FEATURES), history["label"])
    return cfg, start, model


def _errors(model, windows) -> dict[str, float]:
    """Mean absolute error of the estimate against the realised metric, per metric, over the windows."""
    err = {"roc_auc": [], "accuracy": [], "roc_auc_band_sd": []}
    for w, events in enumerate(windows):
        p = model.predict_proba(model_input(events, FEATURES, CATEGORICAL_FEATURES))[:, 1]
        yhat = (p >= 0.5).astype(int)
        est = estimate_binary(p, yhat, n_draws=200, seed=w)
        err["roc_auc_band_sd"].append((est.upper["roc_auc"] - est.lower["roc_auc"]) / 3.92)
        err["roc_auc"].append(abs(est.values["roc_auc"] - roc_auc_score(events["label"], p)))
        err["accuracy"].append(abs(est.values["accuracy"] - accuracy_score(events["label"], yhat)))
    return {m: float(np.mean(v)) for m, v in err.items()}


def _days(cfg, start, first, days, onset=None):
    events = simulate_events(cfg, first_day=first, days=days, drift_onset=onset, start=start, seed_offset=1)
    return [g for _, g in events.groupby(events["timestamp"].dt.floor("D"))]


def _report(name, errors):
    print(f"\n{name}: MAE roc_auc {errors['roc_auc']:.4f}, accuracy {errors['accuracy']:.4f} "
          f"(sampling sd of the realised roc_auc {errors['roc_auc_band_sd']:.4f})")


def test_error_on_the_demo_world_without_drift(demo):
    cfg, start, model = demo
    errors = _errors(model, _days(cfg, start, cfg.history_days, 14))
    _report("demo, no drift, 14 daily windows", errors)
    # pure sampling noise gives MAE = 0.8 sd; the rest is the calibration the model lost
    assert errors["roc_auc"] < 1.5 * errors["roc_auc_band_sd"] and errors["accuracy"] < 0.035


def test_error_on_the_demo_world_under_covariate_shift_only(demo):
    """P(x) moves, P(y|x) does not: the served days of the undrifted world, resampled toward expensive,
    basic-plan, call-heavy customers (a change of who is served, not of how they behave)."""
    cfg, start, model = demo
    rng = np.random.default_rng(0)
    windows = []
    for k, day in enumerate(_days(cfg, start, cfg.history_days, 14, onset=None)):
        tilt = (k + 1) / 14 * (0.05 * (day["monthly_charges"] - 60) + 0.5 * day["support_calls"]
                               + 1.0 * (day["plan"] == "basic"))
        keep = rng.random(len(day)) < np.minimum(1.0, np.exp(tilt - np.quantile(tilt, 0.9)))
        windows.append(day[keep.to_numpy()])
    assert min(len(w) for w in windows) > 100
    errors = _errors(model, windows)
    _report("demo, covariate shift only, 14 daily windows", errors)
    # pure sampling noise gives MAE = 0.8 sd; the rest is the calibration the model lost
    assert errors["roc_auc"] < 1.5 * errors["roc_auc_band_sd"] and errors["accuracy"] < 0.035


def test_error_on_the_demo_world_through_its_drift(demo):
    """The demo's drift moves P(x) and also P(y|x) (charges and region matter more, calls less). The
    estimate trusts the old probabilities, so it can only be as right as they still are: measured, not
    guaranteed (the blind spot itself is tested in test_monitor_estimate.py)."""
    cfg, start, model = demo
    days = _days(cfg, start, cfg.history_days, 14, onset=cfg.history_days + 4)
    _report("demo, covariate + concept drift (windows 3 days or more after the onset)", _errors(model, days[7:]))
