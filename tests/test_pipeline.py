"""The local task graph: the condition task gates the retraining branch, as on Databricks."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from driftgate import gating
from driftgate import promotion
from driftgate import training
from driftgate.workspace.audit import read_events
from driftgate.pipeline import _condition, run_retraining_job


@dataclass
class _Decision:
    drift_exceeded: bool
    status: str
    decision_id: str = "d-1"


@dataclass
class _Train:
    registered: bool
    version: str | None = "2"
    refused_reason: str | None = None
    metrics: dict = field(default_factory=dict)


@dataclass
class _Shadow:
    status: str = "PASS"
    champion_version: str = "1"
    challenger_version: str = "2"


@dataclass
class _Promotion:
    promoted: bool
    reason: str = "passed"


@pytest.fixture
def stages(monkeypatch):
    """Replace the stage functions with recording fakes; the gate publishes like the real one."""
    calls: list[str] = []
    state = {"exceeded": True, "registered": True}

    def evaluate(ws, gate_cfg, *, now=None, trigger="manual", publish=True, run_key=None):
        calls.append(f"evaluate:{trigger}")
        ws.task_values.set("drift_exceeded", state["exceeded"])
        return _Decision(state["exceeded"], "EXCEEDED" if state["exceeded"] else "OK")

    def train(ws, *, reason=None, params=None, use_best_params=False):
        calls.append(f"train:{reason['trigger']}")
        return _Train(state["registered"], refused_reason=None if state["registered"] else "below floor")

    from driftgate.monitoring import contract

    # These fakes write no tables; the contract check has its own tests (test_contract.py).
    monkeypatch.setattr(contract, "check_inference_contract", lambda ws, **kw: None)
    monkeypatch.setattr(gating, "evaluate", evaluate, raising=False)
    monkeypatch.setattr(training, "train", train, raising=False)
    monkeypatch.setattr(promotion, "notify_gate_decision", lambda ws, d: calls.append("notify") and False,
                        raising=False)
    monkeypatch.setattr(promotion, "set_challenger", lambda ws, v: calls.append(f"challenger:{v}"), raising=False)
    monkeypatch.setattr(promotion, "shadow", lambda ws, challenger_version=None: calls.append("shadow") or _Shadow(),
                        raising=False)
    monkeypatch.setattr(promotion, "promote", lambda ws, s: calls.append("promote") or _Promotion(True),
                        raising=False)
    return calls, state


def test_exceeded_runs_the_whole_branch(ws, stages):
    calls, _ = stages
    result = run_retraining_job(ws, trigger="table_update", run_key="delta:a.b.c@v3")
    assert calls == ["evaluate:table_update", "notify", "train:table_update", "challenger:2", "shadow", "promote"]
    assert result.branch == "retrain" and result.promoted
    event = read_events(ws, ["job_run"])[0]
    assert event["run_key"] == "delta:a.b.c@v3" and event["details"]["branch"] == "retrain"


def test_not_exceeded_skips_the_branch(ws, stages):
    calls, state = stages
    state["exceeded"] = False
    result = run_retraining_job(ws, trigger="manual")
    assert calls == ["evaluate:manual", "notify"]
    assert result.branch == "skip" and not result.promoted
    assert "skipped" in result.notes[0]


def test_unregistered_candidate_stops_before_the_challenger(ws, stages):
    calls, state = stages
    state["registered"] = False
    result = run_retraining_job(ws, trigger="manual")
    assert calls == ["evaluate:manual", "notify", "train:manual"]
    assert "below floor" in result.notes[0]


def test_each_job_run_has_its_own_task_values(ws, stages):
    calls, state = stages
    run_retraining_job(ws, trigger="manual", job_run_id="run-a")
    state["exceeded"] = False
    run_retraining_job(ws, trigger="manual", job_run_id="run-b")
    assert (ws.root / "task_values" / "run-a" / "evaluate_drift.json").exists()
    assert (ws.root / "task_values" / "run-b" / "evaluate_drift.json").exists()
    assert calls.count("promote") == 1


class _Values:
    def __init__(self, value):
        self.value = value

    def get(self, task_key, key, default=None):
        return self.value


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("TRUE", True), (False, False),
                                             ("false", False), (None, False), (1, False), ("yes", False)])
def test_condition_compares_like_a_databricks_condition_task(value, expected):
    assert _condition(_Values(value)) is expected


def test_cooldown_after_a_retrain_skips_the_branch_until_it_ends(ws, stages):
    """One drift episode retrains once: the runs after it, within gate.retrain_cooldown of the
    retrain's as-of time, skip the branch (recorded); after it, the next run retrains."""
    import dataclasses
    from datetime import datetime, timedelta, timezone

    calls, _ = stages
    gate = ws.settings.gate.model_copy(update={"retrain_cooldown": timedelta(days=3)})
    ws = dataclasses.replace(ws, settings=ws.settings.model_copy(update={"gate": gate}))
    t0 = datetime(2026, 6, 10, tzinfo=timezone.utc)
    assert run_retraining_job(ws, trigger="manual", now=t0).branch == "retrain"
    paused = run_retraining_job(ws, trigger="manual", now=t0 + timedelta(days=1))
    assert paused.branch == "cooldown" and "48.0 h left" in paused.notes[0]
    assert read_events(ws, ["job_cooldown"])[0]["details"]["left_seconds"] == 2 * 86400
    assert run_retraining_job(ws, trigger="manual", now=t0 + timedelta(days=3, hours=1)).branch == "retrain"
    assert calls.count("train:manual") == 2


def test_cooldown_left_truth_table():
    from datetime import datetime, timedelta, timezone

    from driftgate.gating.gate import cooldown_left

    t = datetime(2026, 6, 10, tzinfo=timezone.utc)
    assert cooldown_left(None, t, timedelta(days=3)) is None  # never retrained
    assert cooldown_left(t, t + timedelta(days=5), None) is None  # no cooldown
    assert cooldown_left(t, t + timedelta(days=1), timedelta(days=3)) == timedelta(days=2)
    assert cooldown_left(t, t + timedelta(days=3), timedelta(days=3)) is None  # ends exactly then
    assert cooldown_left(t.replace(tzinfo=None), t + timedelta(hours=1), timedelta(hours=2)) == timedelta(hours=1)
