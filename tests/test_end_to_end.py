"""The whole loop on small data: the champion moves only when the challenger passes."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from driftgate.audit import read_events
from driftgate.config import load_settings
from driftgate.pipeline import run_demo, run_retraining_job
from tests.conftest import REPO
from workspace import open_workspace

pytestmark = pytest.mark.slow

SMALL = (
    "demo.customers=1500",
    "demo.history_days=30",
    "demo.served_days=14",
    "demo.rows_per_day=400",
    "demo.drift_onset_day=4",
    "demo.drift_strength=1.5",
    "training.window_days=21",
)


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e") / ".driftgate"
    settings = load_settings(REPO / "conf", "local", (*SMALL, f"workspace.root={root}"))
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
    assert ws.registry.alias_version(ws.settings.project.model_name, "previous_champion") == first.champion_before


def test_second_job_run_refuses_a_challenger_that_is_no_better(demo_ws):
    ws, summary = demo_ws
    second = summary.runs[1]
    assert second.branch == "retrain" and second.train.registered
    assert not second.promoted
    assert second.champion_after == second.champion_before == summary.runs[0].champion_after
    assert summary.champion == summary.runs[0].champion_after


def test_a_deliberately_worse_challenger_never_takes_the_champion_alias(demo_ws):
    ws, summary = demo_ws
    name = ws.settings.project.model_name
    before = ws.registry.alias_version(name, "champion")
    worse = open_workspace(load_settings(
        REPO / "conf", "local",
        (*SMALL, f"workspace.root={ws.root}", "training.estimator=logistic_regression",
         "training.numeric_features=[age]", "training.categorical_features=[region]"),
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
