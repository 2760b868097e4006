"""The whole loop on small data: the champion moves only when the challenger passes."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from driftgate.workspace.audit import read_events
from driftgate.core.settings import load_settings
from driftgate.pipeline import run_demo, run_retraining_job
from tests.conftest import REPO
from driftgate.workspace import open_workspace

pytestmark = pytest.mark.slow

SMALL = (
    "demo.customers=1500",
    "demo.history_days=30",
    "demo.served_days=14",
    "demo.rows_per_day=400",
    "demo.drift_onset_day=4",
    "training.params={max_iter: 60}",
    "training.calibration_folds=2",
)


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e") / ".driftgate"
    settings = load_settings(REPO / "conf", "demo", (*SMALL, f"workspace.root={root}"))
    ws = open_workspace(settings)
    summary = run_demo(ws, say=lambda _: None, today=datetime(2026, 9, 1, tzinfo=timezone.utc))
    return ws, summary


def test_first_job_run_retrains_and_promotes(demo_ws):
    ws, summary = demo_ws
    first = summary.runs[0]
    assert first.decision.drift_exceeded and first.branch == "retrain"
    assert first.train.registered
    assert str(first.shadow.status.value if hasattr(first.shadow.status, "value") else first.shadow.status) == "PASS"
    assert first.promoted
    assert first.champion_before == summary.bootstrap_version
    assert first.champion_after == first.train.version


def test_champion_moves_exactly_when_the_challenger_passes(demo_ws):
    ws, summary = demo_ws
    name = ws.settings.project.model_name
    assert len(summary.runs) == 2
    for run in summary.runs:
        status = run.shadow.status
        moved = run.champion_after != run.champion_before
        assert moved == (status == "PASS") == run.promoted, run.as_dict()
        if moved:
            assert run.champion_after == run.train.version
            assert ws.registry.alias_version(name, "challenger") in (None, summary.runs[-1].train.version)
    last_move = [r for r in summary.runs if r.promoted][-1]
    assert ws.registry.alias_version(name, "previous_champion") == last_move.champion_before
    assert summary.champion == ws.registry.alias_version(name, "champion")


def test_a_deliberately_worse_challenger_never_takes_the_champion_alias(demo_ws):
    ws, summary = demo_ws
    name = ws.settings.project.model_name
    before = ws.registry.alias_version(name, "champion")
    worse = open_workspace(load_settings(
        REPO / "conf", "demo",
        (*SMALL, f"workspace.root={ws.root}", "training.estimator=logistic_regression",
         "training.feature_lookups=[{table_name: main.driftgate_demo.customer_features, lookup_key: [customer_id], "
         "features: [age, region]}]"),
    ))
    result = run_retraining_job(worse, trigger="manual", run_key="manual:worse",
                                now=datetime(2026, 9, 1, tzinfo=timezone.utc))
    assert result.branch == "retrain"
    assert not result.promoted
    assert ws.registry.alias_version(name, "champion") == before


def test_every_step_is_in_the_audit_trail(demo_ws):
    ws, _ = demo_ws
    kinds = {e["kind"] for e in read_events(ws, limit=500)}
    assert {"gate_decision", "train", "promotion", "job_run"} <= kinds
