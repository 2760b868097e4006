"""The worker under failure: coverage by gate time, priorities, exceptions, dead owners, MLflow cleanup."""
from __future__ import annotations

import subprocess
import sys

import pytest

from driftgate.triggers.webhook.auth import Credentials
from driftgate.triggers.webhook.service import open_webhook
from driftgate.workspace.jobs import FakeJobLauncher, LocalJobLauncher, LaunchRequest, end_running_runs
from driftgate.core.errors import LaunchError
from tests.webhook_support import (
    PASSWORD, USER, AuditLog, Clock, FakeGate, basic, redash_body, template_body, webhook_settings,
)


def make(tmp_path, *sets, gate=None, launcher=None, audit=None, ws=None):
    clock = Clock()
    launcher = launcher or FakeJobLauncher()
    audit = audit if audit is not None else AuditLog()
    wh = open_webhook(webhook_settings(tmp_path, *sets), ws=ws, credentials=Credentials(USER, PASSWORD),
                      launcher=launcher, gate=gate or FakeGate("EXCEEDED"), audit=audit,
                      state_dir=tmp_path / "state", clock=clock)
    return wh, launcher, audit, clock


def test_an_alert_arriving_during_a_run_gets_its_own_gate(tmp_path):
    """The run's gate evaluated before the alert's data existed: it cannot cover it."""
    class DuringRun(FakeJobLauncher):
        def launch(self, request):
            if not self.requests:
                clock.advance(300)  # a local training run takes minutes; meanwhile a new alert arrives
                wh.receiver.handle(basic(), template_body(alert_id="late", evaluated_at=None))
            return super().launch(request)

    gate = FakeGate("EXCEEDED")
    wh, launcher, audit, clock = make(tmp_path, "webhook.min_time_between_triggers_seconds=600",
                                      gate=gate, launcher=DuringRun())
    wh.receiver.handle(basic(), template_body(alert_id="first"))
    wh.receiver.handle(basic(), template_body(alert_id="before"))  # waiting before the launch: covered
    assert wh.worker.drain() == ["launched"]
    assert [e["status"] for e in audit if e["kind"] == "trigger_skipped"] == ["covered"]
    late = wh.worker.queue.waiting()
    assert len(late) == 1 and ":late:" in late[0]
    clock.advance(600)
    assert wh.worker.drain() == ["launched"] and gate.calls == 2
    assert launcher.requests[1].run_key == late[0]


def test_triggered_alerts_go_before_other_states_which_are_audited_in_one_write(tmp_path):
    class Batching(AuditLog):
        writes = 0

        def many(self, events):
            self.writes += 1
            self.extend(events)

    audit = Batching()
    wh, launcher, _, clock = make(tmp_path, audit=audit)
    for n in range(40):
        wh.receiver.handle(basic(), redash_body(state="ok", alert_id=n))
        clock.advance(1)
    wh.receiver.handle(basic(), template_body())
    assert wh.worker.drain() == ["launched", "recorded"]  # the TRIGGERED one first, though it came last
    assert audit.kinds()[:3] == ["alert_received", "trigger_fired", "launch"]
    assert audit.writes == 4 and audit.kinds()[3:] == ["alert_received"] * 40


def test_a_batch_of_other_states_is_one_delta_commit(tmp_path, ws):
    from driftgate.triggers.webhook.worker import audit_to_workspace
    from driftgate.workspace.audit import events_table, read_events

    wh, *_ = make(tmp_path, ws=ws, audit=audit_to_workspace(ws))
    for n in range(30):
        wh.receiver.handle(basic(), redash_body(state="ok", alert_id=n))
    wh.receiver.handle(basic(), redash_body(state="ok", alert_id=0))  # a duplicate delivery only counts
    assert wh.worker.drain() == ["recorded"]
    assert ws.tables.version(events_table(ws)) == 0  # created by one commit holding all 30
    assert len(read_events(ws, ["alert_received"], limit=100)) == 30


def test_any_exception_at_the_launch_boundary_is_recorded(tmp_path):
    launcher = FakeJobLauncher(fail_with=[ValueError("Input X contains NaN")])
    wh, _, audit, _ = make(tmp_path, launcher=launcher)
    key = wh.receiver.handle(basic(), template_body())[1]["run_key"]
    assert wh.worker.drain() == ["failed"]
    assert wh.worker.store.get(key).reason == "launch failed: ValueError: Input X contains NaN"
    assert wh.worker.queue.get(key)["status"] == "done"
    assert audit[-1]["kind"] == "launch" and audit[-1]["status"] == "failed"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_launch_held_by_a_dead_process_is_recovered_at_start_and_shown_stuck(tmp_path):
    import socket

    launcher = FakeJobLauncher(idempotent=False)
    launcher.abandoned = []
    launcher.abandon = lambda key: launcher.abandoned.append(key) or ["mlflow-run-1"]
    wh, _, audit, clock = make(tmp_path, launcher=launcher)
    key = wh.receiver.handle(basic(), template_body())[1]["run_key"]
    # A previous process took the key and was killed mid-launch; its lease has not run out yet.
    item = wh.worker.queue.take(now=clock(), lease_seconds=120)
    wh.worker.store.claim(key, source="webhook")
    assert wh.worker.store.take(key)
    wh.worker.queue.mark(key, "launching", owner=f"{socket.gethostname()}:{_dead_pid()}", now=clock())
    assert item.run_key == key and wh.worker.drain() == []  # the lease still holds it
    assert [s["run_key"] for s in wh.worker.health()["stuck"]] == [key]
    assert wh.worker.recover() == [key]
    assert wh.worker.drain() == ["failed"]
    assert launcher.abandoned == [key] and launcher.launches == 0
    assert audit[-1]["status"] == "orphaned" and audit[-1]["details"]["mlflow_runs_failed"] == ["mlflow-run-1"]
    assert "died" in wh.worker.store.get(key).reason
    assert wh.worker.health() == {"launching": [], "stuck": []}


def test_a_live_owner_is_left_alone(tmp_path):
    wh, _, _, clock = make(tmp_path)
    key = wh.receiver.handle(basic(), template_body())[1]["run_key"]
    wh.worker.queue.take(now=clock(), lease_seconds=120)
    wh.worker.queue.mark(key, "launching", owner="another-host:1", now=clock())
    assert wh.worker.recover() == []
    assert wh.worker.health()["launching"][0]["run_key"] == key


def test_the_local_launcher_ends_the_mlflow_runs_a_failure_leaves_running(ws):
    from mlflow import MlflowClient

    client = MlflowClient(ws.tracking_uri)
    key = "alert:x:20260801T090000Z"

    def job(ws_, *, trigger, run_key):
        client.create_run(ws_.experiment_id(), tags={"driftgate.run_key": run_key})  # left RUNNING
        raise ValueError("Input X contains NaN")

    with pytest.raises(LaunchError, match=r"ValueError: Input X contains NaN; ended MLflow runs \w+ as FAILED"):
        LocalJobLauncher(ws, job).launch(LaunchRequest(key, "webhook"))
    runs = client.search_runs([ws.experiment_id()])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert end_running_runs(ws.tracking_uri, key) == []


def test_reset_demo_clears_the_webhook_queue(ws):
    from driftgate.pipeline import reset_demo
    from driftgate.triggers.webhook.queue import AlertQueue

    queue = AlertQueue(ws.root, synchronous="NORMAL")
    queue.put("alert:a:1", "launch", {}, now=1.0)
    queue.finish("alert:a:1", "launched", now=2.0, launched=True)
    assert queue.last_launch() == 2.0
    queue.close_thread()
    reset_demo(ws)
    assert not list(ws.root.glob("webhook_queue.db*"))
    assert AlertQueue(ws.root).last_launch() is None


def test_stage_runs_opened_by_a_local_launch_carry_its_run_key(ws):
    """The shadow run (client API, no run key of its own) is found and ended too."""
    from mlflow import MlflowClient

    from driftgate.workspace.context import open_stage_run

    key = "alert:y:20260801T090000Z"

    def job(ws_, *, trigger, run_key):
        open_stage_run(ws_, "shadow v2 vs v1", {"driftgate.stage": "shadow"})
        raise RuntimeError("killed mid-shadow")

    with pytest.raises(LaunchError, match="RuntimeError: killed mid-shadow; ended MLflow runs"):
        LocalJobLauncher(ws, job).launch(LaunchRequest(key, "webhook"))
    (run,) = MlflowClient(ws.tracking_uri).search_runs([ws.experiment_id()])
    assert run.data.tags["driftgate.run_key"] == key and run.info.status == "FAILED"
    assert open_stage_run(ws, "outside", {}) and "driftgate.run_key" not in MlflowClient(
        ws.tracking_uri).search_runs([ws.experiment_id()], "attributes.run_name = 'outside'")[0].data.tags


def test_an_orphaned_launch_does_not_ask_the_gate_again(tmp_path):
    gate = FakeGate("EXCEEDED")
    wh, _, _, clock = make(tmp_path, "webhook.lease_seconds=60", gate=gate, launcher=FakeJobLauncher(idempotent=False))
    key = wh.receiver.handle(basic(), template_body())[1]["run_key"]
    wh.worker.queue.take(now=clock(), lease_seconds=60)
    wh.worker.store.claim(key, source="webhook")
    assert wh.worker.store.take(key)
    wh.worker.queue.mark(key, "launching", owner="elsewhere:1", now=clock())
    clock.advance(61)  # its lease ran out: no heartbeat
    assert wh.worker.drain() == ["failed"] and gate.calls == 0
