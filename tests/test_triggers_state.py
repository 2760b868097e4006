"""The trigger-state contract (atomic run-key claims, cursors, cooldown lookups), run against both
backends: SQLite (``StateStore``) and Unity Catalog tables through a SQL warehouse
(``WarehouseStateStore`` against tests/warehouse_fake.py, which executes the SQL). Then what only
one backend has: bad files, statement failures, write conflicts, budgets, configuration."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from driftgate.core.errors import ConfigError, TriggerError
from driftgate.core.settings import load_settings
from driftgate.triggers.state import StateStore, TriggerState, open_state_store, state_store_for
from driftgate.triggers.warehouse_state import WarehouseStateStore
from tests.warehouse_fake import WAREHOUSE_SETS, FakeWarehouse, warehouse  # noqa: F401  (fixture)

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
KEYS = "main.driftgate.driftgate_run_keys"


def _warehouse_store(**kw) -> WarehouseStateStore:
    return WarehouseStateStore(warehouse_id=FakeWarehouse.warehouse_id, catalog_name="main", schema_name="driftgate",
                               **{"retry_timeout_seconds": 20, "poll_seconds": 0.02, **kw})


@pytest.fixture(params=["sqlite", "warehouse"])
def open_store(request, tmp_path):
    """Opens a new store instance on the same state each call (as a separate process would)."""
    if request.param == "sqlite":
        return lambda: StateStore(tmp_path / "state.db")
    request.getfixturevalue("warehouse")
    return _warehouse_store


@pytest.fixture
def store(open_store) -> TriggerState:
    return open_store()


# ---------------------------------------------------------------------------------- the contract


def test_claim_is_first_wins_and_records(store):
    assert store.claim("delta:a.b.c@v3", source="table_update", details={"v": 3}, at=T0) is True
    assert store.claim("delta:a.b.c@v3", source="webhook", details={}, at=T0) is False
    rec = store.get("delta:a.b.c@v3")
    assert rec.source == "table_update" and rec.status == "claimed" and rec.details == {"v": 3}
    assert rec.claimed_at == T0
    assert store.get("nope") is None


def _race(calls) -> list:
    """Run the calls in threads released together by a barrier; their results, in finishing order."""
    results: list = []
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_claim_is_atomic_across_threads(open_store, request):
    open_store()
    fake = request.getfixturevalue("warehouse") if "warehouse" in request.fixturenames else None
    if fake is not None:
        fake.commit_delay = 0.15  # every claimant reads its snapshot before the first one commits
    stores = [open_store() for _ in range(8)]  # separate instances, as separate processes would have
    wins = _race([lambda s=s: s.claim("alert:1:2026", source="webhook", details={}) for s in stores])
    assert sorted(wins) == [False] * 7 + [True]
    if fake is not None:
        assert fake.conflicts >= 1, "the claims did not overlap: the conflict path was not exercised"
        assert len(fake.rows(KEYS)) == 1


def test_take_is_atomic_across_threads(open_store, request):
    open_store().claim("k", source="webhook", details={}, status="queued", at=T0)
    if "warehouse" in request.fixturenames:
        request.getfixturevalue("warehouse").commit_delay = 0.15
    stores = [open_store() for _ in range(4)]
    taken = _race([lambda s=s: s.take("k", at=T0) for s in stores])
    assert sorted(taken) == [False] * 3 + [True]
    assert stores[0].get("k").status == "running"


def test_finish_release_and_pending(store):
    store.claim("k1", source="webhook", details={}, status="queued", at=T0)
    store.claim("k2", source="webhook", details={}, at=T0 + timedelta(seconds=1))
    store.claim("k0", source="webhook", details={}, at=T0 + timedelta(seconds=2))  # oldest first, not by name
    store.claim("t1", source="table_update", details={}, at=T0)
    assert [r.run_key for r in store.pending("webhook")] == ["k1", "k2", "k0"]
    store.release("k0")
    assert [r.run_key for r in store.pending("webhook", statuses=("queued",))] == ["k1"]
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


def test_take_set_status_and_history(store):
    store.claim("a", source="table_update", details={}, at=T0)
    store.claim("b", source="table_update", details={}, at=T0 + timedelta(hours=1))
    store.claim("c", source="webhook", details={}, at=T0 + timedelta(hours=2))
    store.set_status("a", "queued", reason="waiting for the active run")
    assert (store.get("a").status, store.get("a").reason) == ("queued", "waiting for the active run")
    assert store.take("a", at=T0) is True and store.take("a", at=T0) is False
    store.finish("a", "failed", reason="boom")
    assert store.take("a") is False  # finished keys are never taken again
    assert [r.run_key for r in store.history("table_update")] == ["b", "a"]
    assert [r.run_key for r in store.history(limit=2)] == ["c", "b"]
    with pytest.raises(KeyError, match="never claimed"):
        store.set_status("missing", "queued")


def test_cursor_roundtrip_and_persistence(open_store):
    s = open_store()
    assert s.get_cursor("watch") is None
    s.set_cursor("watch", '{"a": 1}')
    s.set_cursor("watch", '{"a": 2}', at=T0)
    s.set_cursor("other", "x")
    assert open_store().get_cursor("watch") == '{"a": 2}'
    s.delete_cursor("watch")
    assert s.get_cursor("watch") is None and s.get_cursor("other") == "x"
    with pytest.raises(TypeError, match="must be a string"):
        s.set_cursor("watch", 3)


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


def test_reseed_restores_fired_keys(store):
    from driftgate.triggers.state import reseed_from_events

    events = [{"kind": "trigger_fired", "run_key": "delta:t@v1", "subject": "table_update", "details": {"v": 1},
               "at": T0},
              {"kind": "trigger_skipped", "run_key": "delta:t@v2", "subject": "table_update", "at": T0}]
    assert reseed_from_events(store, events) == 1
    assert store.get("delta:t@v1").status == "succeeded" and store.get("delta:t@v2") is None
    assert reseed_from_events(store, events) == 0


# ---------------------------------------------------------------------------------- SQLite only


def test_a_directory_means_state_db_in_it(tmp_path):
    s = StateStore(tmp_path)
    assert s.path.name == "state.db" and s.where == str(tmp_path / "state.db")


def test_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(TriggerError, match=r"state\.db: not a readable driftgate state database.*move it aside"):
        StateStore(bad)


# ---------------------------------------------------------------------------------- warehouse only


def test_tables_are_delta_serializable_and_requests_are_documented_shapes(warehouse):
    s = _warehouse_store()
    s.claim("k", source="webhook", details={"a": 1}, at=T0)
    assert warehouse.properties[KEYS] == {"delta.isolationLevel": "Serializable"}
    assert warehouse.properties["main.driftgate.driftgate_trigger_cursors"] == {"delta.isolationLevel": "Serializable"}
    claim = next(b for m, p, b in warehouse.requests if m == "POST" and b and b["statement"].startswith("INSERT"))
    assert claim["warehouse_id"] == FakeWarehouse.warehouse_id and claim["wait_timeout"] == "30s"
    assert (claim["disposition"], claim["format"], claim["on_wait_timeout"]) == ("INLINE", "JSON_ARRAY", "CONTINUE")
    assert {"name": "run_key", "value": "k", "type": "STRING"} in claim["parameters"]
    assert "'k'" not in claim["statement"]  # values travel as parameters, never in the SQL text
    (row,) = warehouse.rows(KEYS)
    assert (row["run_key"], row["source"], row["details"], row["status"]) == ("k", "webhook", '{"a": 1}', "claimed")
    assert row["claimed_at"] == "2026-07-01T12:00:00.000000+00:00" and row["take_id"] is None


def test_a_failed_statement_is_a_trigger_error_with_its_code(warehouse):
    s = _warehouse_store()
    warehouse.fail_next("BAD_REQUEST", "[INSUFFICIENT_PERMISSIONS] User does not have MODIFY on Table "
                        "'main.driftgate.driftgate_run_keys'.", sql_state="42501", matching="^INSERT")
    with pytest.raises(TriggerError, match=r"driftgate_run_keys \(SQL warehouse abcdef0123456789\): the SQL warehouse "
                                           r"failed a statement: BAD_REQUEST \(SQLSTATE 42501\): "
                                           r"\[INSUFFICIENT_PERMISSIONS\]"):
        s.claim("k", source="webhook", details={})
    assert s.get("k") is None


def test_a_table_dropped_under_the_store_is_a_trigger_error(warehouse):
    """Only a write given a ``create`` statement recreates a missing table (the audit); the store's are not."""
    s = _warehouse_store()
    warehouse.db.execute(f'DROP TABLE "{KEYS}"')
    for call in (lambda: s.claim("k", source="webhook"), lambda: s.get("k")):
        with pytest.raises(TriggerError, match=r"driftgate_run_keys \(SQL warehouse abcdef0123456789\): the SQL "
                                               r"warehouse failed a statement: BAD_REQUEST \(SQLSTATE 42P01\): "
                                               r"\[TABLE_OR_VIEW_NOT_FOUND\]"):
            call()
    assert not any(st.startswith("CREATE TABLE IF NOT EXISTS `main`.`driftgate`.`driftgate_run_keys`")
                   for st in warehouse.statements()[2:])


def test_a_missing_schema_fails_when_the_store_opens(warehouse):
    with pytest.raises(TriggerError, match=r"SCHEMA_NOT_FOUND.*`main`.`nowhere`"):
        WarehouseStateStore(warehouse_id=FakeWarehouse.warehouse_id, catalog_name="main", schema_name="nowhere")


def test_a_lost_write_conflict_is_run_again_then_read_back(warehouse):
    s = _warehouse_store()
    conflict = ("[DELTA_CONCURRENT_APPEND.WHOLE_TABLE_READ] Transaction conflict detected. A concurrent INSERT "
                "added data to table `main`.`driftgate`.`driftgate_run_keys` committed at version 7.")
    warehouse.fail_next("ABORTED", conflict, sql_state="2D521", matching="^INSERT INTO `main`.`driftgate`.`driftgate_run_keys`",
                        times=2)
    assert s.claim("k", source="webhook", details={}) is True
    assert sum(st.startswith("INSERT") for st in warehouse.statements()) == 3


def test_conflicts_beyond_the_budget_are_a_trigger_error(warehouse):
    s = _warehouse_store(retry_timeout_seconds=1)
    warehouse.fail_next("ABORTED", "[DELTA_CONCURRENT_APPEND] Transaction conflict detected.", sql_state="2D521",
                        matching="^UPDATE", times=1000)
    s.claim("k", source="webhook", details={})
    with pytest.raises(TriggerError, match=r"still losing Delta write conflicts .*budget of 1 s.*"
                                           r"triggers.state.retry_timeout_seconds"):
        s.take("k")


def test_unavailable_answers_are_retried_by_the_sdk_within_the_budget(warehouse):
    import time

    warehouse.unavailable = 1
    # one 503, retried by the SDK (a roomy budget: its backoff sleeps about a second)
    assert _warehouse_store(retry_timeout_seconds=30).claim("k", source="webhook", details={}) is True
    s = _warehouse_store(retry_timeout_seconds=2)
    warehouse.unavailable = 10_000
    started = time.monotonic()
    with pytest.raises(TriggerError, match=r"did not answer within the budget of 2 s "
                                           r"\(triggers.state.retry_timeout_seconds\): TEMPORARILY_UNAVAILABLE"):
        s.get("k")
    # the budget plus at most one backoff sleep of the SDK, with room for a loaded machine; the
    # SDK's own default would retry for 300 s
    assert time.monotonic() - started < 2 + 10


def test_write_conflicts_are_known_by_sqlstate_or_message():
    from driftgate.workspace.warehouse import is_write_conflict

    assert is_write_conflict("anything", "2D521")
    assert is_write_conflict("[DELTA_CONCURRENT_DELETE_READ] Transaction conflict detected.", None)
    assert is_write_conflict("io.delta.exceptions.ConcurrentAppendException: Files were added", None)
    assert not is_write_conflict("[TABLE_OR_VIEW_NOT_FOUND] The table `a`.`b`.`c` cannot be found.", "42P01")
    assert not is_write_conflict(None, None)


def test_slow_statements_are_polled_and_results_read_in_chunks(warehouse):
    s = _warehouse_store()
    warehouse.pending_polls, warehouse.chunk_rows = 2, 2
    for i in range(5):
        s.claim(f"k{i}", source="webhook", details={}, at=T0 + timedelta(minutes=i))
    assert [r.run_key for r in s.history("webhook")] == ["k4", "k3", "k2", "k1", "k0"]
    paths = [p for m, p, _ in warehouse.requests if m == "GET"]
    assert any(p.endswith("/result/chunks/2") for p in paths)
    assert any(p.count("/") == 5 and "/result/" not in p for p in paths)  # GET /api/2.0/sql/statements/{id}


def test_a_statement_outliving_the_budget_is_cancelled(warehouse):
    s = _warehouse_store(retry_timeout_seconds=1)
    s.sql.poll_seconds = 0.3
    warehouse.pending_polls = 1000
    with pytest.raises(TriggerError, match=r"still RUNNING when the budget of 1 s ran out.*cancelled it"):
        s.get_cursor("watch")
    assert any(p.endswith("/cancel") for m, p, _ in warehouse.requests if m == "POST")


def test_without_credentials_in_the_environment_the_store_says_so(monkeypatch):
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID",
                "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    with pytest.raises(TriggerError, match="set DATABRICKS_HOST and DATABRICKS_TOKEN"):
        _warehouse_store()


# ---------------------------------------------------------------------------------- configuration


def test_a_partial_warehouse_config_is_refused_naming_file_and_key(tmp_path):
    from tests.webhook_support import REPO

    (tmp_path / "base").mkdir()
    for layer in ("base", "local"):
        (tmp_path / layer).mkdir(exist_ok=True)
        (tmp_path / layer / "driftgate.yml").write_text((REPO / "conf" / layer / "driftgate.yml").read_text())
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "state.yml").write_text("triggers:\n  state:\n    backend: warehouse\n"
                                                 "    warehouse_id: abc\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, "local")
    assert str(err.value).startswith(f"{tmp_path / 'user' / 'state.yml'}:")
    assert "triggers.state: backend 'warehouse' needs warehouse_id, catalog_name and schema_name; expected " \
           "catalog_name, schema_name to be set, got None" in str(err.value)
    assert err.value.key == "triggers.state"


def test_a_bad_identifier_and_a_bad_wait_are_refused():
    with pytest.raises(ConfigError, match=r"--set triggers.state.schema_name: triggers.state.schema_name: must be a "
                                          r"plain Unity Catalog identifier .*got 'a.b'"):
        load_settings(None, "local", ["triggers.state.schema_name=a.b"])
    with pytest.raises(ConfigError, match=r"triggers.state.wait_timeout_seconds: .*less than or equal to 50"):
        load_settings(None, "local", ["triggers.state.wait_timeout_seconds=60"])


def test_sqlite_without_a_local_folder_is_refused_not_put_in_tmp():
    settings = load_settings(None, "databricks")
    with pytest.raises(ConfigError, match=r"triggers.state.backend: 'sqlite' needs a local folder .*expected "
                                          r"'warehouse' with warehouse_id, catalog_name and schema_name"):
        open_state_store(settings.triggers.state, folder=None)


def test_state_store_for_picks_the_configured_backend(tmp_path, warehouse):
    class Ws:
        root = None
        settings = load_settings(None, "databricks", list(WAREHOUSE_SETS))

    store = state_store_for(Ws)
    assert isinstance(store, WarehouseStateStore) and store.run_keys_name == KEYS

    class LocalWs:
        root = tmp_path
        settings = load_settings(None, "local")

    assert state_store_for(LocalWs).where == str(tmp_path / "state.db")
