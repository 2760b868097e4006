"""The table-update trigger and the runner, driven by a controllable clock and fake versions."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from driftgate.core.errors import TableError
from driftgate.triggers import StateStore, TableUpdateTrigger, TriggerRunner
from driftgate.triggers.queued import ManualTrigger, request_run
from driftgate.triggers.schedule import ScheduleTrigger
from tests.warehouse_fake import warehouse  # noqa: F401  (fixture)

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
A, B = "main.s.a_drift_metrics", "main.s.b_profile_metrics"


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def at(self, seconds: float):
        self.now = T0 + timedelta(seconds=seconds)
        return self


class Versions:
    """A fake table-version source: writes bump versions; a table can go missing."""

    def __init__(self, *tables):
        self.v = {t: 0 for t in tables}
        self.missing: set[str] = set()

    def write(self, table, n=1):
        self.v[table] = self.v.get(table, -1) + n

    def version(self, name):
        if name in self.missing or name not in self.v:
            raise TableError(f"{name}: table does not exist", table=name)
        return self.v[name]


class Launcher:
    def __init__(self, block: threading.Event | None = None):
        self.calls: list[str] = []
        self.block = block
        self.started = threading.Event()

    def __call__(self, request, trigger):
        self.calls.append(request.run_key)
        self.started.set()
        if self.block is not None:
            self.block.wait(10)
        return None


def make(tmp_path, versions, clock, launcher, *, tables=(A,), condition="ANY_UPDATED", wait=60, cooldown=300,
         state=None, **runner_kw):
    trig = TableUpdateTrigger(list(tables), condition=condition, wait_after_last_change_seconds=wait,
                              min_time_between_triggers_seconds=cooldown, versions=versions)
    state = state if state is not None else StateStore(tmp_path / "state.db")
    return TriggerRunner([trig], state, launcher, clock=clock, background=False, **runner_kw), state


@pytest.fixture(params=["sqlite", "warehouse"])
def backend(request, tmp_path):
    """The runner's state store: SQLite, or Unity Catalog tables through the offline SQL warehouse."""
    if request.param == "sqlite":
        return StateStore(tmp_path / "state.db")
    request.getfixturevalue("warehouse")
    from driftgate.triggers.warehouse_state import WarehouseStateStore

    return WarehouseStateStore(warehouse_id="abcdef0123456789", catalog_name="main", schema_name="driftgate")


def test_burst_fires_once_after_the_wait_and_again_after_cooldown(tmp_path, backend):
    v, clock, launch = Versions(A), Clock(), Launcher()
    runner, state = make(tmp_path, v, clock, launch, state=backend)
    first = runner.tick()[0]
    assert "first tick: baseline" in first.skip and not launch.calls
    for t in (10, 20, 30):  # a burst of three commits
        v.write(A)
        clock.at(t)
        assert runner.tick()[0].skip.startswith("waiting for changes to settle")
    clock.at(60)
    assert "last change 30s ago" in runner.tick()[0].skip
    clock.at(95)
    out = runner.tick()[0]
    assert out.launched == [f"delta:{A}@v3"] and launch.calls == [f"delta:{A}@v3"]
    clock.at(120)
    assert "no new versions" in runner.tick()[0].skip
    v.write(A)  # v4 during the cooldown, first seen at t=130
    clock.at(130)
    runner.tick()
    clock.at(195)
    assert runner.tick()[0].skip.startswith("cooldown")
    clock.at(95 + 300)
    assert runner.tick()[0].launched == [f"delta:{A}@v4"]
    assert launch.calls == [f"delta:{A}@v3", f"delta:{A}@v4"]
    assert state.get(f"delta:{A}@v3").status == "succeeded"
    assert state.last_fired("table_update") == T0 + timedelta(seconds=395)
    assert state.get_cursor("table_update") is not None  # kept where the run keys are


def test_all_updated_waits_for_every_table(tmp_path):
    v, clock, launch = Versions(A, B), Clock(), Launcher()
    runner, _ = make(tmp_path, v, clock, launch, tables=(A, B), condition="ALL_UPDATED", wait=60)
    runner.tick()
    v.write(A)
    clock.at(10)
    runner.tick()
    clock.at(500)
    out = runner.tick()[0]
    assert "still waiting for " + B in out.skip and not launch.calls
    v.write(B)
    clock.at(510)
    runner.tick()
    clock.at(575)
    assert runner.tick()[0].launched == [f"delta:{A}@v1+{B}@v1"]
    # ANY_UPDATED would not have waited for B
    v2, clock2, launch2 = Versions(A, B), Clock(), Launcher()
    runner2, _ = make(tmp_path / "any", v2, clock2, launch2, tables=(A, B), wait=60)
    runner2.tick()
    v2.write(A)
    clock2.at(10)
    runner2.tick()
    clock2.at(75)
    assert runner2.tick()[0].launched == [f"delta:{A}@v1"]  # the key names what was updated


def test_restart_neither_misses_nor_double_fires(tmp_path):
    v, clock, launch = Versions(A), Clock(), Launcher()
    runner, _ = make(tmp_path, v, clock, launch, wait=0, cooldown=0)
    runner.tick()
    v.write(A)
    clock.at(1)
    runner.tick()
    assert launch.calls == [f"delta:{A}@v1"]
    v.write(A)  # written while the watcher is down
    # a fresh process: new store instance, new trigger, same state file
    runner2, _ = make(tmp_path, v, clock.at(5), launch, wait=0, cooldown=0)
    assert runner2.recover() == []
    runner2.tick()
    assert launch.calls == [f"delta:{A}@v1", f"delta:{A}@v2"]
    runner2.tick()
    assert launch.calls == [f"delta:{A}@v1", f"delta:{A}@v2"]


def test_crash_after_claim_before_cursor_save_launches_once(tmp_path):
    v, clock, launch = Versions(A), Clock(), Launcher()
    runner, state = make(tmp_path, v, clock, launch, wait=0, cooldown=0)
    runner.tick()
    cursor = state.get_cursor("table_update")
    v.write(A)
    # crash simulation: the key was claimed but the process died before launching and saving the cursor
    state.claim(f"delta:{A}@v1", source="table_update", details={})
    clock.at(1)
    runner.tick()
    assert launch.calls == [f"delta:{A}@v1"]
    # replay the same tick from the old cursor: the key is taken, nothing launches twice
    state.set_cursor("table_update", cursor)
    clock.at(2)
    out = runner.tick()[0]
    assert out.duplicates == [f"delta:{A}@v1"] and launch.calls == [f"delta:{A}@v1"]


def test_corrupt_cursor_is_rebuilt_from_the_last_fire(tmp_path, caplog):
    v, clock, launch = Versions(A), Clock(), Launcher()
    runner, state = make(tmp_path, v, clock, launch, wait=0, cooldown=0)
    runner.tick()
    v.write(A)
    clock.at(1)
    runner.tick()
    state.set_cursor("table_update", "{not json")
    clock.at(2)
    out = runner.tick()[0]
    assert "cursor was corrupt" in out.skip and "rebuilt from the last fired run" in out.skip
    assert launch.calls == [f"delta:{A}@v1"]  # no double fire for v1
    v.write(A)
    clock.at(3)
    assert runner.tick()[0].launched == [f"delta:{A}@v2"]  # and nothing after it is missed


def test_briefly_missing_table_is_survived(tmp_path):
    v, clock, launch = Versions(A), Clock(), Launcher()
    runner, _ = make(tmp_path, v, clock, launch, wait=0, cooldown=0)
    runner.tick()
    v.missing.add(A)
    clock.at(1)
    out = runner.tick()[0]
    assert out.error is None and "not readable now: " + A in out.skip
    v.missing.clear()
    v.write(A)
    clock.at(2)
    assert runner.tick()[0].launched == [f"delta:{A}@v1"]


def test_table_created_after_start_fires_on_its_first_version(tmp_path):
    v, clock, launch = Versions(), Clock(), Launcher()
    runner, _ = make(tmp_path, v, clock, launch, wait=0, cooldown=0)
    assert "none readable" in runner.tick()[0].skip
    v.v[A] = 0
    clock.at(1)
    assert runner.tick()[0].launched == [f"delta:{A}@v0"]


def _two_requests(tmp_path, queue: bool):
    v, clock = Versions(A), Clock()
    release = threading.Event()
    launch = Launcher(block=release)
    trig = TableUpdateTrigger([A], wait_after_last_change_seconds=0, min_time_between_triggers_seconds=0,
                              versions=v)
    state = StateStore(tmp_path / "state.db")
    runner = TriggerRunner([trig], state, launch, clock=clock, background=True, queue=queue)
    runner.tick()
    v.write(A)
    clock.at(1)
    assert runner.tick()[0].launched == [f"delta:{A}@v1"]
    assert launch.started.wait(5)
    v.write(A)
    clock.at(2)
    second = runner.tick()[0]
    return runner, state, launch, release, second


def test_at_most_one_run_and_queueing(tmp_path):
    runner, state, launch, release, second = _two_requests(tmp_path, queue=True)
    assert second.queued == [f"delta:{A}@v2"]
    assert launch.calls == [f"delta:{A}@v1"]  # not started while the first runs
    assert state.get(f"delta:{A}@v2").status == "queued"
    release.set()
    assert runner.wait_idle(10)
    assert launch.calls == [f"delta:{A}@v1", f"delta:{A}@v2"]
    assert state.get(f"delta:{A}@v2").status == "succeeded"
    runner.stop()


def test_skip_when_busy_without_queue(tmp_path):
    runner, state, launch, release, second = _two_requests(tmp_path, queue=False)
    assert second.skipped == [f"delta:{A}@v2"]
    rec = state.get(f"delta:{A}@v2")
    assert rec.status == "skipped" and "already active" in rec.reason
    release.set()
    assert runner.wait_idle(10)
    assert launch.calls == [f"delta:{A}@v1"]
    runner.stop()


def test_queued_request_survives_a_restart(tmp_path):
    state = StateStore(tmp_path / "state.db")
    key, fresh = request_run(state, reason="drill", at=T0)
    assert fresh
    launch = Launcher()
    # "manual" source keys are picked up by recover() of a new runner even before a tick
    runner = TriggerRunner([ManualTrigger()], state, launch, clock=Clock(), background=False)
    assert runner.recover() == [key]
    assert launch.calls == [key] and state.get(key).status == "succeeded"
    out = runner.tick()[0]
    assert out.skip == "no queued manual requests" and launch.calls == [key]


def test_failed_launch_is_recorded_and_not_retried_silently(tmp_path):
    v, clock = Versions(A), Clock()

    def boom(request, trigger):
        raise RuntimeError("cluster on fire")

    runner, state = make(tmp_path, v, clock, boom, wait=0, cooldown=0)
    runner.tick()
    v.write(A)
    clock.at(1)
    runner.tick()
    rec = state.get(f"delta:{A}@v1")
    assert rec.status == "failed" and "cluster on fire" in rec.reason


def test_schedule_trigger_fires_once_per_occurrence(tmp_path):
    clock, launch = Clock(), Launcher()
    state = StateStore(tmp_path / "state.db")
    runner = TriggerRunner([ScheduleTrigger("0 * * * *")], state, launch, clock=clock, background=False)
    assert "first tick: baseline" in runner.tick()[0].skip
    clock.at(1800)
    assert "not due" in runner.tick()[0].skip
    clock.at(3600)
    assert runner.tick()[0].launched == ["schedule:schedule:2026-07-01T13:00:00+00:00"]
    clock.at(3700)
    runner.tick()
    clock.at(4 * 3600 + 5)  # three occurrences missed while down collapse into one run
    runner.tick()
    assert launch.calls == ["schedule:schedule:2026-07-01T13:00:00+00:00", "schedule:schedule:2026-07-01T16:00:00+00:00"]
    with pytest.raises(ValueError, match="cron expression"):
        ScheduleTrigger("every hour")


def test_against_a_real_delta_table(tmp_path):
    """The real version source: deltalake commits on a local table."""
    from driftgate.workspace.tables import DeltaTableStore

    tables = DeltaTableStore(tmp_path / "lakehouse")
    state = StateStore(tmp_path / "state.db")
    clock, launch = Clock(), Launcher()
    table = "main.s.t_drift_metrics"
    trig = TableUpdateTrigger([table], wait_after_last_change_seconds=0, min_time_between_triggers_seconds=0,
                              versions=tables)
    runner = TriggerRunner([trig], state, launch, clock=clock, background=False)
    runner.tick()  # the table does not exist yet
    tables.write(table, pa.table({"x": [1]}))
    clock.at(1)
    runner.tick()
    tables.write(table, pa.table({"x": [2]}))
    clock.at(2)
    runner.tick()
    assert launch.calls == [f"delta:{table}@v0", f"delta:{table}@v1"]


def test_webhook_trigger_leaves_keys_claimed_by_another_worker_alone(tmp_path):
    from driftgate.triggers.queued import WebhookTrigger

    state = StateStore(tmp_path / "state.db")
    state.claim("alert:a1:2026-07-01T12:00:00Z", source="webhook", details={}, at=T0)  # the receiver's worker owns it
    request_run(state, source="webhook", run_key="alert:a2:2026-07-01T12:05:00Z", at=T0)  # queue-only receiver
    launch = Launcher()
    runner = TriggerRunner([WebhookTrigger()], state, launch, clock=Clock(), background=False)
    runner.recover()
    runner.tick()
    assert launch.calls == ["alert:a2:2026-07-01T12:05:00Z"]
    assert state.get("alert:a1:2026-07-01T12:00:00Z").status == "claimed"


def test_corrupt_state_file_is_moved_aside_and_fired_keys_restored_from_the_audit_trail(ws):
    """The whole state file is garbage: the watcher starts over without double-firing."""
    from driftgate.commands.triggers import _open_state, audit_sink

    v, clock, launch = Versions(A), Clock(), Launcher()

    def runner_for(state):
        trig = TableUpdateTrigger([A], wait_after_last_change_seconds=0, min_time_between_triggers_seconds=0,
                                  versions=v)
        return TriggerRunner([trig], state, launch, clock=clock, background=False, on_event=audit_sink(ws))

    runner = runner_for(_open_state(ws))
    runner.tick()
    v.write(A)
    clock.at(1)
    runner.tick()
    assert launch.calls == [f"delta:{A}@v1"]
    (ws.root / "state.db").write_bytes(b"\x00garbage" * 512)
    for suffix in ("-wal", "-shm"):
        (ws.root / f"state.db{suffix}").unlink(missing_ok=True)

    state = _open_state(ws)
    assert list(ws.root.glob("state.db.corrupt-*"))
    assert state.get(f"delta:{A}@v1").status == "succeeded"
    runner = runner_for(state)
    clock.at(2)
    out = runner.tick()[0]
    assert "rebuilt from the last fired run" in out.skip and launch.calls == [f"delta:{A}@v1"]
    v.write(A)
    clock.at(3)
    runner.tick()
    assert launch.calls == [f"delta:{A}@v1", f"delta:{A}@v2"]
