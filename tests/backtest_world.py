"""A tiny served world for backtest tests: the demo world's generator, v1 serving every day."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from driftgate.core.settings import load_settings
from driftgate.workspace import open_workspace
from tests.conftest import REPO

TINY = (
    "demo.customers=300",
    "demo.history_days=14",
    "demo.served_days=6",
    "demo.rows_per_day=150",
    "demo.drift_onset_day=1",
    "demo.drift_strength=3.0",
    "demo.start_date='2026-01-01'",
    "training.params={max_iter: 20}",
    "training.calibration=none",
    "training.window_days=3",   # retrains learn the new regime within days: promotions happen
    "promotion.fairness.protected_columns=[]",
    "training.quality_floor={}",
    "gate.rules.numeric_drift_psi.min_rows=50",
    "gate.rules.categorical_drift_js.min_rows=50",
    "gate.rules.roc_auc_drop.min_rows=50",
    "promotion.min_labelled_rows=50",
)


def build_served_world(root, days: int, extra=()):
    """The demo's history and ``days`` served days (labels known at once); returns (load, history end)."""
    from driftgate import demo, training
    from driftgate.pipeline import _bootstrap_champion, _write_baseline

    sets = (*TINY, f"workspace.root={root}", *extra)

    def load(more=()):
        return load_settings(REPO / "conf", "demo", (*sets, *more))

    ws = open_workspace(load())
    world = demo.build_world(ws)
    first = training.train(ws, reason={"trigger": "test"})
    _bootstrap_champion(ws, first.version)
    import mlflow

    model = mlflow.sklearn.load_model(f"models:/{ws.settings.project.model_name}@champion")
    _write_baseline(ws, model, world, first.version)
    demo.serve_days(ws, model, first.version, first_served_day=0, days=days, world=world)
    return load, world.history_end, ws
