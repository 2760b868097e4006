"""The worker: the gate decides, cooldowns hold, launches retry and give up with a reason."""
from __future__ import annotations

import pytest
import yaml

from driftgate.core.errors import LaunchError
from driftgate.triggers.webhook.auth import Credentials
from driftgate.triggers.webhook.service import open_webhook
from driftgate.workspace.jobs import FakeJobLauncher, TransientLaunchError
from tests.conftest import REPO
from tests.webhook_support import (
    PASSWORD, USER, AuditLog, Clock, FakeGate, basic, redash_body, template_body, webhook_settings,
)


def make(tmp_path, *sets, gate=None, launcher=None, clock=None, ws=None, audit=None):
    settings = webhook_settings(tmp_path, *sets)
    clock = clock or Clock()
    launcher = launcher or FakeJobLauncher()
    audit = audit if audit is not None else AuditLog()
    wh = open_webhook(settings, ws=ws, credentials=Credentials(USER, PASSWORD), launcher=launcher,
                      gate=gate or FakeGate("EXCEEDED"), audit=audit, state_dir=tmp_path / "state", clock=clock)
    return wh, launcher, audit, clock


def deliver(wh, body=None):
    return wh.receiver.handle(basic(), body or template_body())


def test_exceeded_launches_once_and_everything_is_audited(tmp_path):
    wh, launcher, audit, _ = make(tmp_path)
    key = deliver(wh)[1]["run_key"]
    deliver(wh)
    assert wh.worker.drain() == ["launched"]
    assert launcher.launches == 1
    request = launcher.requests[0]
    assert request.run_key == key and request.trigger == "webhook"
    assert request.parameters == {"trigger": "webhook", "run_key": key}
    job = yaml.safe_load((REPO / "resources" / "retraining_job.yml").read_text())["resources"]["jobs"]
    assert set(request.parameters) <= {p["name"] for p in job["retraining_job"]["parameters"]}  # Jobs API takes no others
    assert audit.kinds() == ["alert_received", "trigger_fired", "launch"]
    assert audit[0]["details"]["deliveries"] == 2
    assert audit[2]["details"]["run_id"] == "fake-1" and audit[2]["status"] == "launched"
    record = wh.worker.store.get(key)
    assert (record.status, record.run_id) == ("running", "fake-1")
    deliver(wh)  # a redelivery after the launch
    assert wh.worker.drain() == [] and launcher.launches == 1


@pytest.mark.parametrize("status", ["OK", "INSUFFICIENT_DATA", "STALE", "ERROR"])
def test_gate_other_than_exceeded_skips_with_its_reason(tmp_path, status):
    wh, launcher, audit, _ = make(tmp_path, gate=FakeGate(status))
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["skipped"]
    assert launcher.launches == 0
    assert audit.kinds() == ["alert_received", "trigger_skipped"]
    record = wh.worker.store.get(key)
    assert record.status == "skipped" and record.reason.startswith(f"gate said {status}: feature_psi")


def test_gate_that_raises_never_launches(tmp_path):
    def broken(**_):
        raise RuntimeError("metrics table missing")

    wh, launcher, audit, _ = make(tmp_path, gate=broken)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["failed"] and launcher.launches == 0
    assert "metrics table missing" in wh.worker.store.get(key).reason


def test_non_triggered_states_are_recorded_not_launched(tmp_path):
    wh, launcher, audit, _ = make(tmp_path)
    deliver(wh, redash_body(state="ok"))
    deliver(wh, redash_body(state="ok"))
    assert wh.worker.drain() == ["recorded"]
    assert launcher.launches == 0
    assert [(e["kind"], e["status"], e["details"]["deliveries"]) for e in audit] == [("alert_received", "OK", 2)]


def test_cooldown_holds_later_alerts_until_it_ends(tmp_path):
    wh, launcher, audit, clock = make(tmp_path, "webhook.min_time_between_triggers_seconds=600")
    deliver(wh, template_body(alert_id="a"))
    assert wh.worker.drain() == ["launched"]
    clock.advance(60)
    deliver(wh, template_body(alert_id="b"))
    deliver(wh, redash_body(state="ok"))
    assert wh.worker.drain() == ["recorded"]  # other states are still recorded; the launch waits
    clock.advance(539)
    assert wh.worker.drain() == []
    clock.advance(1)
    assert wh.worker.drain() == ["launched"]
    assert [r.run_key.split(":")[1] for r in launcher.requests] == ["a", "b"]
    assert not [e for e in audit if e["kind"] == "trigger_skipped"]


def test_alerts_waiting_while_a_run_launches_are_covered_by_it(tmp_path):
    wh, launcher, audit, clock = make(tmp_path, "webhook.min_time_between_triggers_seconds=600")
    keys = [deliver(wh, template_body(alert_id=a))[1]["run_key"] for a in ("a", "b", "c")]
    assert wh.worker.drain() == ["launched"]
    assert launcher.launches == 1
    for key in keys[1:]:
        row = wh.worker.queue.get(key)
        assert row["outcome"] == "skipped" and row["note"].startswith(f"covered by run fake-1 ({keys[0]})")
    assert [e["status"] for e in audit if e["kind"] == "trigger_skipped"] == ["covered", "covered"]


def test_transient_failures_back_off_then_launch(tmp_path):
    launcher = FakeJobLauncher(fail_with=[TransientLaunchError("429"), TransientLaunchError("503")])
    gate = FakeGate("EXCEEDED")
    wh, _, audit, clock = make(tmp_path, "webhook.launch.backoff_seconds=10", gate=gate, launcher=launcher)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["retrying"]
    clock.advance(9)
    assert wh.worker.drain() == []
    clock.advance(1)
    assert wh.worker.drain() == ["retrying"]
    clock.advance(20)  # backoff doubled
    assert wh.worker.drain() == ["launched"]
    assert gate.calls == 1, "a retried launch must not ask the gate again"
    assert [e["status"] for e in audit if e["kind"] == "launch"] == ["retrying", "retrying", "launched"]
    assert wh.worker.store.get(key).run_id == "fake-1"


def test_launch_is_given_up_with_a_recorded_reason(tmp_path):
    launcher = FakeJobLauncher(fail_with=[TransientLaunchError("Jobs API 500")] * 3)
    wh, _, audit, clock = make(tmp_path, "webhook.launch.max_attempts=3", "webhook.launch.backoff_seconds=0",
                               launcher=launcher)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["retrying", "retrying", "failed"]
    record = wh.worker.store.get(key)
    assert record.status == "failed" and record.reason == "gave up after 3 attempts: Jobs API 500"
    assert audit[-1]["kind"] == "launch" and audit[-1]["status"] == "gave_up"
    assert launcher.launches == 0


def test_refused_launch_is_final(tmp_path):
    launcher = FakeJobLauncher(fail_with=[LaunchError("job 5 does not exist")])
    wh, _, audit, _ = make(tmp_path, launcher=launcher)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["failed"]
    assert wh.worker.store.get(key).reason == "launch refused: job 5 does not exist"


def test_queue_survives_a_restart(tmp_path):
    wh, _, _, clock = make(tmp_path)
    key = deliver(wh)[1]["run_key"]
    # A new process: same state folder, fresh objects.
    again, launcher, _, _ = make(tmp_path, clock=clock)
    assert again.receiver.handle(basic(), template_body())[1]["status"] == "duplicate"
    assert again.worker.drain() == ["launched"]
    assert launcher.requests[0].run_key == key


def _crash_mid_launch(wh, clock):
    """A worker took the request, took the key and died while launching."""
    item = wh.worker.queue.take(now=clock(), lease_seconds=60)
    wh.worker.store.claim(item.run_key, source="webhook")
    assert wh.worker.store.take(item.run_key)
    wh.worker.queue.mark(item.run_key, "launching")
    clock.advance(61)
    return item.run_key


def test_a_local_run_interrupted_by_a_crash_is_not_started_again(tmp_path):
    launcher = FakeJobLauncher(idempotent=False)
    wh, _, audit, clock = make(tmp_path, "webhook.lease_seconds=60", launcher=launcher)
    deliver(wh)
    key = _crash_mid_launch(wh, clock)
    assert wh.worker.drain() == ["failed"]
    assert launcher.launches == 0
    assert "not started again" in wh.worker.store.get(key).reason


def test_a_jobs_api_launch_interrupted_by_a_crash_is_retried_with_the_same_token(tmp_path):
    wh, launcher, _, clock = make(tmp_path, "webhook.lease_seconds=60")
    deliver(wh)
    key = _crash_mid_launch(wh, clock)
    assert wh.worker.drain() == ["launched"]
    assert [r.run_key for r in launcher.requests] == [key]


def test_a_key_taken_by_the_watch_runner_is_not_launched_again(tmp_path):
    wh, launcher, _, _ = make(tmp_path)
    key = deliver(wh)[1]["run_key"]
    wh.worker.store.claim(key, source="webhook")  # claimed and taken by ``driftgate watch`` first
    assert wh.worker.store.take(key)
    assert wh.worker.drain() == ["duplicate"]
    assert launcher.launches == 0


def test_gate_deferred_to_the_job_still_launches_once(tmp_path):
    settings_sets = ("webhook.gate=job",)
    wh, launcher, audit, _ = make(tmp_path, *settings_sets)
    assert wh.worker.gate is None
    deliver(wh)
    assert wh.worker.drain() == ["launched"]
    assert audit[1]["status"] == "DEFERRED_TO_JOB"


def test_audit_lands_in_the_workspace_events_table(tmp_path, ws):
    from driftgate.workspace.audit import read_events
    from driftgate.triggers.webhook.worker import audit_to_workspace

    gate = FakeGate("EXCEEDED")
    wh, launcher, _, _ = make(tmp_path, ws=ws, audit=audit_to_workspace(ws), gate=gate)
    key = deliver(wh)[1]["run_key"]
    wh.worker.drain()
    assert gate.run_keys == [key]
    events = read_events(ws, ["alert_received", "trigger_fired", "launch"])
    assert {e["kind"] for e in events} == {"alert_received", "trigger_fired", "launch"}
    assert all(e["run_key"] == key for e in events)
    assert [e for e in events if e["kind"] == "launch"][0]["details"]["run_id"] == "fake-1"


def test_the_real_shared_gate_decides(tmp_path, ws):
    """Default wiring: ``gating.evaluate`` on the workspace; no metric tables yet, so no launch."""
    from driftgate.workspace.audit import read_events

    launcher = FakeJobLauncher()
    wh = open_webhook(ws.settings, ws=ws, credentials=Credentials(USER, PASSWORD), launcher=launcher)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["skipped"]
    assert launcher.launches == 0
    record = wh.worker.store.get(key)
    assert record.status == "skipped" and record.reason.startswith("gate said INSUFFICIENT_DATA")
    assert "does not exist yet" in record.reason
    decisions = read_events(ws, ["gate_decision"])
    assert [(d["run_key"], d["details"]["trigger"]) for d in decisions] == [(key, "webhook")]


def test_fsync_acks_decides_how_the_receiver_writes(tmp_path):
    plain, *_ = make(tmp_path / "a")
    synced, *_ = make(tmp_path / "b", "webhook.fsync_acks=true")
    assert (plain.receiver.queue.synchronous, synced.receiver.queue.synchronous) == ("NORMAL", "FULL")
    assert plain.worker.queue.synchronous == synced.worker.queue.synchronous == "NORMAL"
    with synced.receiver.queue._connect() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the worker checkpoints


def test_a_failing_audit_trail_does_not_stop_the_launch(tmp_path):
    def broken_audit(kind, **_):
        raise OSError("disk full")

    wh, launcher, _, _ = make(tmp_path, audit=broken_audit)
    key = deliver(wh)[1]["run_key"]
    assert wh.worker.drain() == ["launched"]
    assert wh.worker.store.get(key).run_id == "fake-1"


def test_an_in_process_run_keeps_other_workers_off_its_request_with_a_heartbeat(tmp_path):
    """The lease is minutes, not a day, and renewed while the run lasts; the row names its owner."""
    import os
    import time

    seen = []

    class Slow(FakeJobLauncher):
        def launch(self, request):
            seen.append(wh.worker.queue.get(request.run_key))
            clock.advance(100)  # the run outlasts its first lease...
            time.sleep(0.5)  # ...while the heartbeat (every lease/3 = 3.3 s here: floor 0.05) renews it
            seen.append(wh.worker.queue.get(request.run_key))
            return super().launch(request)

    wh, _, _, clock = make(tmp_path, "webhook.lease_seconds=10", launcher=Slow(idempotent=False))
    wh.worker.config = wh.worker.config.model_copy(update={"lease_seconds": 0.3})  # beat every 0.1 s
    deliver(wh)
    start = clock()
    assert wh.worker.drain() == ["launched"]
    first, later = seen
    assert first["note"] == "launching" and first["owner"].endswith(f":{os.getpid()}")
    assert first["lease_until"] == start + 0.3
    assert later["heartbeat_at"] == start + 100 and later["lease_until"] == start + 100.3


def test_the_queue_row_ends_with_the_run(tmp_path):
    wh, *_ = make(tmp_path)
    key = deliver(wh)[1]["run_key"]
    wh.worker.drain()
    row = wh.worker.queue.get(key)
    assert (row["status"], row["outcome"], row["run_id"], row["note"]) == ("done", "launched", "fake-1",
                                                                            "run fake-1 running")
