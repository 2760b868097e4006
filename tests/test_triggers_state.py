"""StateStore: atomic run-key claims, cursors, cooldown lookups, bad files."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from driftgate.core.errors import TriggerError
from driftgate.triggers.state import StateStore

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    return StateStore(tmp_path / "state.db")


def test_claim_is_first_wins_and_records(store):
    assert store.claim("delta:a.b.c@v3", source="table_update", details={"v": 3}, at=T0) is True
    assert store.claim("delta:a.b.c@v3", source="webhook", details={}, at=T0) is False
    rec = store.get("delta:a.b.c@v3")
    assert rec.source == "table_update" and rec.status == "claimed" and rec.details == {"v": 3}
    assert rec.claimed_at == T0
    assert store.get("nope") is None


def test_claim_is_atomic_across_threads(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path)
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def worker():
        s = StateStore(path)  # separate instance, as separate processes would have
        barrier.wait()
        wins.append(s.claim("alert:1:2026", source="webhook", details={}))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_finish_release_and_pending(store):
    store.claim("k1", source="webhook", details={}, status="queued", at=T0)
    store.claim("k2", source="webhook", details={}, at=T0 + timedelta(seconds=1))
    assert [r.run_key for r in store.pending("webhook")] == ["k1", "k2"]
    store.finish("k1", "succeeded", run_id="r-1", reason="ok", at=T0 + timedelta(minutes=5))
    rec = store.get("k1")
    assert (rec.status, rec.run_id, rec.reason) == ("succeeded", "r-1", "ok")
    assert rec.finished_at == T0 + timedelta(minutes=5)
    assert [r.run_key for r in store.pending("webhook")] == ["k2"]
    store.release("k2")
    assert store.claim("k2", source="webhook", details={}) is True
    with pytest.raises(KeyError, match="never claimed"):
        store.finish("missing", "failed")
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish("k1", "done")


def test_cursor_roundtrip_and_persistence(tmp_path):
    s = StateStore(tmp_path)  # a directory means <dir>/state.db
    assert s.path.name == "state.db"
    assert s.get_cursor("watch") is None
    s.set_cursor("watch", '{"a": 1}')
    s.set_cursor("watch", '{"a": 2}')
    assert StateStore(tmp_path / "state.db").get_cursor("watch") == '{"a": 2}'
    s.delete_cursor("watch")
    assert s.get_cursor("watch") is None


def test_last_fired_ignores_skipped_and_other_sources(store):
    assert store.last_fired("table_update") is None
    store.claim("a", source="table_update", details={}, at=T0)
    store.claim("b", source="table_update", details={}, at=T0 + timedelta(hours=1))
    store.finish("b", "skipped", reason="cooldown")
    store.claim("c", source="webhook", details={}, at=T0 + timedelta(hours=2))
    assert store.last_fired("table_update") == T0
    assert store.last_fired("webhook") == T0 + timedelta(hours=2)


def test_naive_timestamps_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim("x", source="s", details={}, at=datetime(2026, 1, 1))


def test_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(TriggerError, match=r"state\.db: not a readable driftgate state database.*move it aside"):
        StateStore(bad)
