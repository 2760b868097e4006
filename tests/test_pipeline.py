"""The task layer and the local task graph: the condition task gates the retraining branch,
every task reads upstream task values with safe defaults, and the last task records the job run."""
from __future__ import annotations

import dataclasses

import pytest

from driftgate import gating, promotion, tasks, training
from driftgate.gating.evaluate import publish_decision
from driftgate.pipeline import run_retraining_job
from driftgate.promotion import PromotionResult, ShadowResult
from driftgate.promotion.policy import Check
from driftgate.training.trainer import TrainResult
from driftgate.workspace import FakeRegistry
from driftgate.workspace.audit import read_events


@dataclasses.dataclass
class _Decision:
    drift_exceeded: bool
    status: str
    decision_id: str = "d-1"

    def to_json(self) -> str:
        import json

        return json.dumps({"status": self.status, "decision_id": self.decision_id})


@pytest.fixture
def stages(ws, monkeypatch):
    """The stage functions replaced by recording fakes returning real records; the registry in memory."""
    calls: list[str] = []
    state = {"exceeded": True, "registered": True, "passed": True}
    registry = FakeRegistry()
    name = ws.settings.project.model_name
    registry.register("runs:/r0/model", name)
    registry.set_alias(name, "champion", "1")
    ws = dataclasses.replace(ws, registry=registry)

    def evaluate(ws, gate_cfg, *, now=None, trigger="manual", publish=True, run_key=None):
        calls.append(f"evaluate:{trigger}:{run_key}")
        decision = _Decision(state["exceeded"], "EXCEEDED" if state["exceeded"] else "OK")
        publish_decision(ws, decision)
        return decision

    def train(ws, *, reason=None, params=None, use_best_params=False, as_of=None):
        calls.append(f"train:{reason['trigger']}:{reason.get('decision_id')}")
        state["train_as_of"] = as_of  # the job's as-of time: a replay never trains on its future
        if not state["registered"]:
            return TrainResult("r1", "runs:/r1/model", {}, None, False, "below floor")
        version = ws.registry.register("runs:/r1/model", name).version
        return TrainResult("r1", "runs:/r1/model", {}, version, True, None)

    def shadow(ws, challenger_version=None, as_of=None):
        calls.append(f"shadow:{challenger_version}")
        return ShadowResult(status="PASS" if state["passed"] else "FAIL", model_name=name, champion_version="1",
                            challenger_version=challenger_version, metrics={"delta_f1": 0.05}, reasons=("r",),
                            checks=(Check("f1", True, "ok"),))

    def promote(ws, result):
        calls.append(f"promote:{result.challenger_version}:{result.status}")
        if result.status != "PASS":
            return PromotionResult(False, "1", "not better", "refused", challenger_version=result.challenger_version,
                                   model_name=name)
        ws.registry.set_alias(name, "champion", result.challenger_version)
        return PromotionResult(True, result.challenger_version, "passed", "promoted",
                               challenger_version=result.challenger_version, model_name=name)

    from driftgate.monitoring import contract

    # These fakes write no tables; the contract check has its own tests (test_contract.py).
    monkeypatch.setattr(contract, "check_inference_contract", lambda ws, **kw: None)
    monkeypatch.setattr(gating, "evaluate", evaluate)
    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(promotion, "notify_gate_decision", lambda ws, d: calls.append("notify") and False)
    monkeypatch.setattr(promotion, "shadow", shadow)
    monkeypatch.setattr(promotion, "promote", promote)
    return ws, calls, state


def _job_runs(ws):
    return read_events(ws, ["job_run"], limit=100)


def test_exceeded_runs_the_whole_branch(stages):
    from datetime import datetime, timezone

    ws, calls, state = stages
    when = datetime(2026, 6, 20, tzinfo=timezone.utc)
    result = run_retraining_job(ws, trigger="table_update", run_key="delta:a.b.c@v3", job_run_id="j1", now=when)
    assert state["train_as_of"] == when  # a replayed job trains only on what it could have known
    assert calls == ["evaluate:table_update:delta:a.b.c@v3", "notify", "train:table_update:d-1", "shadow:2",
                     "promote:2:PASS"]
    assert result.branch == "retrain" and result.promoted and result.promotion_status == "promoted"
    assert (result.decision_status, result.challenger_version, result.shadow_status) == ("EXCEEDED", "2", "PASS")
    assert (result.champion_before, result.champion_after) == ("1", "2")
    assert isinstance(result.train, TrainResult) and isinstance(result.shadow, ShadowResult)
    [event] = _job_runs(ws)  # one job_run event, recorded by the promote task
    assert event["run_key"] == "delta:a.b.c@v3" and event["details"]["branch"] == "retrain"
    assert event["details"] == result.as_dict()


def test_train_makes_its_version_the_challenger(stages):
    ws, calls, state = stages
    state["passed"] = False
    result = run_retraining_job(ws, trigger="manual", job_run_id="j1")
    name = ws.settings.project.model_name
    assert ws.registry.alias_version(name, "challenger") == "2" and not result.promoted
    assert ("set_alias", name, "challenger", "2") in ws.registry.calls
    assert result.promotion_status == "refused" and result.notes == ["not better"]


def test_not_exceeded_skips_the_branch_and_the_evaluate_task_records_the_run(stages):
    ws, calls, state = stages
    state["exceeded"] = False
    result = run_retraining_job(ws, trigger="manual", run_key="manual:1")
    assert calls == ["evaluate:manual:manual:1", "notify"]
    assert result.branch == "skip" and not result.promoted and result.train is None
    assert result.notes == ["gate said OK: retraining branch skipped"]
    [event] = _job_runs(ws)
    assert event["status"] == "skip" and event["run_key"] == "manual:1"


def test_unregistered_candidate_is_not_shadowed_and_nothing_is_promoted(stages):
    ws, calls, state = stages
    state["registered"] = False
    result = run_retraining_job(ws, trigger="manual", job_run_id="j1")
    assert calls == [f"evaluate:manual:{result.run_key}", "notify", "train:manual:d-1"]
    assert result.shadow is None and result.promotion.status == "skipped" and not result.promoted
    assert result.notes == ["candidate not registered: below floor"]
    assert _job_runs(ws)[0]["details"]["promotion_status"] == "skipped"


def test_each_job_run_has_its_own_task_values(stages):
    ws, calls, state = stages
    run_retraining_job(ws, trigger="manual", job_run_id="run-a")
    state["exceeded"] = False
    run_retraining_job(ws, trigger="manual", job_run_id="run-b")
    assert (ws.root / "task_values" / "run-a" / "promote.json").exists()
    assert not (ws.root / "task_values" / "run-b" / "train.json").exists()
    assert len([c for c in calls if c.startswith("promote")]) == 1


def test_outside_a_job_tasks_chain_through_the_adhoc_values_and_record_no_job_run(stages):
    ws, calls, _ = stages
    tasks.train(ws)
    shadow = tasks.shadow(ws)  # the version `train` registered
    outcome = tasks.promote(ws)  # the result `shadow` published
    assert shadow.challenger_version == "2" and outcome.promoted
    assert calls[-2:] == ["shadow:2", "promote:2:PASS"] and _job_runs(ws) == []


def test_promote_without_a_shadow_result_moves_nothing(stages):
    ws, calls, _ = stages
    outcome = tasks.promote(ws)
    assert (outcome.promoted, outcome.status, outcome.champion_version) == (False, "skipped", "1")
    assert not [c for c in calls if c.startswith("promote")]


def test_run_key_is_the_watched_tables_version_else_the_job_run(ws):
    from driftgate.gating.testing import drift_rows

    job = tasks.JobContext(job_run_id="77")
    assert tasks.run_key_for_job(ws, job) == "job-run:77"
    assert tasks.run_key_for_job(ws, tasks.JobContext()) is None
    table = ws.settings.monitor.drift_metrics_table
    ws.tables.write(table, drift_rows(3, ["age"], lambda d, c: 0.1), mode="overwrite")
    ws.tables.write(table, drift_rows(3, ["age"], lambda d, c: 0.1), mode="append")
    assert tasks.run_key_for_job(ws, job) == f"delta:{table}@v1"  # the local watcher's key for that version
    assert tasks.run_key_for_job(ws, dataclasses.replace(job, run_key="alert:x")) == "alert:x"


class _Values:
    """Task values as ``dbutils`` answers them: a missing key without a default raises ValueError."""

    def __init__(self, values):
        self.values = values

    def get(self, task_key, key, default=None):
        if (task_key, key) in self.values:
            return self.values[(task_key, key)]
        if default is None:
            raise ValueError(f"task value {key} of {task_key} not found")
        return default


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("TRUE", True), (False, False),
                                             ("false", False), (None, False), (1, False), ("yes", False)])
def test_condition_compares_like_a_databricks_condition_task(value, expected):
    ws = type("W", (), {"task_values": _Values({("evaluate_drift", "drift_exceeded"): value})})()
    assert tasks.condition(ws) is expected


def test_an_upstream_value_that_was_not_set_gives_the_default():
    ws = type("W", (), {"task_values": _Values({})})()
    assert tasks.upstream(ws, "train", "model_version", "") == ""
    assert tasks.condition(ws) is False


def test_cooldown_after_a_retrain_skips_the_branch_until_it_ends(stages):
    """One drift episode retrains once: the runs after it, within gate.retrain_cooldown of the
    retrain's as-of time, skip the branch (recorded); after it, the next run retrains."""
    from datetime import datetime, timedelta, timezone

    ws, calls, _ = stages
    gate = ws.settings.gate.model_copy(update={"retrain_cooldown": timedelta(days=3)})
    ws = dataclasses.replace(ws, settings=ws.settings.model_copy(update={"gate": gate}))
    t0 = datetime(2026, 6, 10, tzinfo=timezone.utc)
    assert run_retraining_job(ws, trigger="manual", now=t0).branch == "retrain"
    paused = run_retraining_job(ws, trigger="manual", now=t0 + timedelta(days=1))
    assert paused.branch == "skip" and "48.0 h left" in paused.notes[0] and paused.challenger_version is None
    assert read_events(ws, ["job_cooldown"])[0]["details"]["left_seconds"] == 2 * 86400
    assert run_retraining_job(ws, trigger="manual", now=t0 + timedelta(days=3, hours=1)).branch == "retrain"
    assert sum(c.startswith("train:") for c in calls) == 2


def test_cooldown_left_truth_table():
    from datetime import datetime, timedelta, timezone

    from driftgate.gating.gate import cooldown_left

    t = datetime(2026, 6, 10, tzinfo=timezone.utc)
    assert cooldown_left(None, t, timedelta(days=3)) is None  # never retrained
    assert cooldown_left(t, t + timedelta(days=5), None) is None  # no cooldown
    assert cooldown_left(t, t + timedelta(days=1), timedelta(days=3)) == timedelta(days=2)
    assert cooldown_left(t, t + timedelta(days=3), timedelta(days=3)) is None  # ends exactly then
    assert cooldown_left(t.replace(tzinfo=None), t + timedelta(hours=1), timedelta(hours=2)) == timedelta(hours=1)


def test_the_job_finishes_an_interrupted_promotion_before_the_gate_reads_the_champion(stages):
    """A promotion of v2 whose process died after one alias move: the job's first task completes it
    (the evaluate task, so the notebooks do it too) and the run starts from champion v2."""
    import time

    from driftgate.promotion.intent import APPLY, Move, open_intents, write_phase

    ws, calls, state = stages
    state["exceeded"] = False
    name = ws.settings.project.model_name
    ws.registry.register("runs:/r1/model", name)
    ws.registry.set_alias(name, "challenger", "2")
    move = Move(intent_id="dead1", op="promote", model=name, version="2", started_at=time.time(),
                before={"champion": "1", "previous_champion": None, "challenger": "2"},
                moves=(("previous_champion", "1"), ("champion", "2"), ("challenger", None)), tags=(),
                event={"kind": "promotion", "status": "promoted", "subject": f"{name}@2", "details": {}},
                notify_kind="promotion")
    write_phase(ws, move, APPLY)
    ws.registry.set_alias(name, "previous_champion", "1")  # the one move made before the crash
    result = run_retraining_job(ws, trigger="manual", job_run_id="j1")
    assert result.champion_before == "2" and open_intents(ws, name) == []
    assert promotion.aliases(ws) == {"champion": "2", "previous_champion": "1", "challenger": None}


def test_recovery_at_job_start_waits_out_a_grace_on_databricks_only(ws):
    from driftgate.promotion import recovery_grace_seconds
    from driftgate.promotion.recovery import DATABRICKS_GRACE_SECONDS

    assert recovery_grace_seconds(ws) == 0.0  # locally the promotion lock tells a live promotion apart
    assert recovery_grace_seconds(dataclasses.replace(ws, root=None)) == DATABRICKS_GRACE_SECONDS > 0


def test_the_cooldown_is_the_evaluate_tasks_so_the_condition_task_reads_it(stages):
    """Inside the cooldown the evaluate task publishes drift_exceeded false (what the Databricks
    condition task compares) and says why; the decision keeps the gate's EXCEEDED."""
    from datetime import datetime, timedelta, timezone

    ws, calls, _ = stages
    gate = ws.settings.gate.model_copy(update={"retrain_cooldown": timedelta(days=3)})
    ws = dataclasses.replace(ws, settings=ws.settings.model_copy(update={"gate": gate}))
    t0 = datetime(2026, 6, 10, tzinfo=timezone.utc)
    run_retraining_job(ws, trigger="manual", now=t0, job_run_id="j1")
    tasks.evaluate(ws, job=tasks.JobContext(job_run_id="j2"), now=t0 + timedelta(hours=12))
    values = ws.task_values.for_task("evaluate_drift")
    assert values.get("evaluate_drift", "drift_exceeded") is False and tasks.condition(ws) is False
    assert values.get("evaluate_drift", "decision")["status"] == "EXCEEDED"
    assert "60.0 h left" in values.get("evaluate_drift", "cooldown")["note"]
    [run, _] = _job_runs(ws)  # the skipped run was recorded by the evaluate task, with the reason
    assert run["details"]["branch"] == "skip" and "60.0 h left" in run["details"]["notes"][0]
