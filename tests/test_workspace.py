"""The workspace adapters: Delta tables, task values, the registry contract, the audit trail."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from driftgate.workspace.audit import read_events, record_event
from driftgate.core.errors import DriftgateError, RegistryError, TableError
from driftgate.workspace import FakeRegistry, LocalTaskValues, MlflowRegistry

T = "main.test_schema.events"


def _rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "day": [i % 3 for i in range(start, start + n)]})


def test_delta_table_write_append_version(ws):
    tables = ws.tables
    assert not tables.exists(T)
    assert tables.write(T, _rows(0, 5), mode="overwrite") == 0
    assert tables.write(T, _rows(5, 3)) == 1
    assert tables.exists(T) and tables.version(T) == 1
    assert sorted(tables.read(T)["id"].to_pylist()) == list(range(8))
    # Time travel and the UC-style folder layout.
    assert tables.read(T, version=0).num_rows == 5
    assert (ws.root / "lakehouse" / "main" / "test_schema" / "events" / "_delta_log").is_dir()


def test_delta_read_since_returns_only_appended_rows(ws):
    tables = ws.tables
    tables.write(T, _rows(0, 5), mode="overwrite")
    v = tables.version(T)
    tables.write(T, _rows(5, 2))
    tables.write(T, _rows(7, 1))
    assert sorted(tables.read_since(T, v)["id"].to_pylist()) == [5, 6, 7]
    assert tables.read_since(T, tables.version(T)).num_rows == 0


def test_replace_where_rewrites_only_the_predicate(ws):
    tables = ws.tables
    tables.write(T, _rows(0, 9), mode="overwrite")
    tables.write(T, pa.table({"id": [100], "day": [1]}), replace_where="day = 1")
    rows = tables.read(T).to_pylist()
    assert sorted(r["id"] for r in rows if r["day"] == 1) == [100]
    assert len([r for r in rows if r["day"] != 1]) == 6


def test_filters_are_pushed_into_the_read(ws):
    ws.tables.write(T, _rows(0, 9), mode="overwrite")
    got = ws.tables.read(T, columns=["id"], filters=[("day", "=", 2)])
    assert got.column_names == ["id"] and sorted(got["id"].to_pylist()) == [2, 5, 8]


def test_failed_write_leaves_table_intact(ws):
    ws.tables.write(T, _rows(0, 4), mode="overwrite")
    with pytest.raises(TableError, match=T):
        ws.tables.write(T, pa.table({"id": ["not", "ints"], "day": [1, 2]}))
    assert ws.tables.version(T) == 0 and ws.tables.read(T).num_rows == 4


def test_open_handles_follow_writes_and_a_recreated_table(tmp_path):
    """Handles are reused between calls; another writer's commits and a table deleted and
    created again (the demo's reset) are seen, never a stale snapshot."""
    import shutil

    from deltalake import write_deltalake

    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(tmp_path)
    name = "main.s.t"
    store.write(name, pa.table({"a": [1, 2]}))
    assert store.read(name).num_rows == 2
    write_deltalake(str(store.path(name)), pa.table({"a": [3]}), mode="append")  # another writer
    assert store.version(name) == 1 and sorted(store.read(name).column("a").to_pylist()) == [1, 2, 3]
    shutil.rmtree(store.path(name))
    write_deltalake(str(store.path(name)), pa.table({"a": [9]}))  # recreated from version 0
    assert store.version(name) == 0 and store.read(name).column("a").to_pylist() == [9]


def test_every_tenth_commit_writes_a_checkpoint(tmp_path):
    from driftgate.workspace.tables import CHECKPOINT_INTERVAL, DeltaTableStore

    store = DeltaTableStore(tmp_path)
    for i in range(CHECKPOINT_INTERVAL + 1):
        store.write("main.s.t", pa.table({"a": [i]}))
    log = store.path("main.s.t") / "_delta_log"
    assert (log / f"{CHECKPOINT_INTERVAL:020d}.checkpoint.parquet").exists()
    assert store.read("main.s.t").num_rows == CHECKPOINT_INTERVAL + 1


def _timed_rows(day: int, n: int = 4):
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 6, 1, tzinfo=timezone.utc) + timedelta(days=day)
    # microseconds past the millisecond that Delta's timestamp statistics are truncated to
    stamps = [start + timedelta(hours=5 * i, microseconds=999) for i in range(n)]
    return pa.table({"id": [day * 100 + i for i in range(n)], "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                     "x": [float(i) for i in range(n)]})


def test_filtered_reads_skip_files_and_return_what_a_full_scan_returns(tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from driftgate.workspace import tables as tables_module
    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(tmp_path)
    name = "main.s.t"
    for day in range(6):
        store.write(name, _timed_rows(day))
    store.write(name, pa.table({"id": [999], "ts": pa.array([None], pa.timestamp("us", tz="UTC")), "x": [None]},
                               schema=_timed_rows(0).schema))
    opened = []
    real = tables_module._read_skipping

    def spy(table, columns, filters):
        out = real(table, columns, filters)
        opened.append(out is not None)
        return out

    monkeypatch.setattr(tables_module, "_read_skipping", spy)
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    last_of_day2 = max(_timed_rows(2).column("ts").to_pylist())
    cases = [
        [("ts", ">=", start + timedelta(days=2)), ("ts", "<", start + timedelta(days=3))],
        [("ts", ">", last_of_day2 - timedelta(microseconds=1))],  # inside the truncated millisecond
        [("ts", "<=", start + timedelta(days=1, microseconds=999))],
        [("ts", "=", last_of_day2)],
        [("x", ">", 2.5)],
        [("id", "in", [101, 402])],
    ]
    for filters in cases:
        got = store.read(name, filters=filters)
        expected = store._table(name).to_pyarrow_table(filters=filters)
        assert got.schema == expected.schema
        assert sorted(got.column("id").to_pylist()) == sorted(expected.column("id").to_pylist()), filters
    assert opened[:4] == [True, True, True, True]  # days outside the range were never opened
    assert opened[4:] == [False, False]  # every file may match / no statistics for 'in': plain scan
    projected = store.read(name, columns=["id"], filters=cases[0])
    assert projected.column_names == ["id"] and projected.num_rows == 4


def test_partitioned_tables_are_read_without_file_skipping(tmp_path):
    from deltalake import DeltaTable

    from driftgate.workspace.tables import DeltaTableStore, _read_skipping

    store = DeltaTableStore(tmp_path)
    store.write("main.s.p", pa.table({"day": [1, 2], "v": [1.0, 2.0]}), partition_by=["day"])
    table = DeltaTable(str(store.path("main.s.p")))
    assert _read_skipping(table, None, [("v", ">", 1.5)]) is None  # partition values live in paths
    assert store.read("main.s.p", filters=[("v", ">", 1.5)]).column("day").to_pylist() == [2]


def test_read_since_follows_the_log_and_falls_back_after_compaction(tmp_path, monkeypatch):
    from driftgate.workspace import tables as tables_module
    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(tmp_path)
    name = "main.s.t"
    for day in range(3):
        store.write(name, _timed_rows(day))
    v = store.version(name)
    store.write(name, _timed_rows(3))
    assert tables_module._added_files(store.path(name), v, v + 1) is not None
    assert sorted(store.read_since(name, v).column("id").to_pylist()) == [300, 301, 302, 303]
    store._table(name).optimize.compact()  # rearranges rows: no data change
    assert tables_module._added_files(store.path(name), v, store.version(name)) is None
    store.write(name, _timed_rows(4))
    # the fallback (snapshot diff) sees the compacted file as new: rows again, never rows lost
    assert {400, 401, 402, 403} <= set(store.read_since(name, v + 1).column("id").to_pylist())
    current = store.version(name)
    (store.path(name) / "_delta_log" / f"{v + 1:020d}.json").unlink()  # as log cleanup would
    assert tables_module._added_files(store.path(name), v, current) is None


def test_commit_metadata_round_trips_and_compaction_carries_it(tmp_path):
    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(tmp_path)
    name = "main.s.t"
    for day in range(4):
        store.write(name, _timed_rows(day), metadata={"source_version": str(day)})
    assert store.commit_metadata(name) == {"driftgate.source_version": "3"}
    store.write(name, _timed_rows(9))  # a writer that records nothing
    assert store.commit_metadata(name) == {}
    store.write(name, _timed_rows(10), metadata={"driftgate.source_version": "10"})
    assert not store.compact(name, min_files=50)
    before = sorted(store.read(name).column("id").to_pylist())
    assert store.compact(name, min_files=3)
    assert len(store.files(name)) == 1 and sorted(store.read(name).column("id").to_pylist()) == before
    assert store.commit_metadata(name) == {"driftgate.source_version": "10"}


def test_missing_table_is_a_table_error(ws):
    with pytest.raises(TableError, match="main.nope.missing: table does not exist"):
        ws.tables.version("main.nope.missing")


def test_bad_table_name_is_refused(ws):
    with pytest.raises(ValueError, match="catalog.schema.name"):
        ws.tables.path("just_a_table")


def test_local_task_values_round_trip_and_size_limit(tmp_path):
    values = LocalTaskValues(tmp_path, "run-1", "evaluate_drift")
    values.set("drift_exceeded", True)
    values.set("decision", {"status": "EXCEEDED"})
    reader = LocalTaskValues(tmp_path, "run-1", "train")
    assert reader.get("evaluate_drift", "drift_exceeded") is True
    assert reader.get("evaluate_drift", "decision") == {"status": "EXCEEDED"}
    assert reader.get("evaluate_drift", "missing", default=7) == 7
    assert LocalTaskValues(tmp_path, "run-2", "x").get("evaluate_drift", "drift_exceeded") is None
    with pytest.raises(DriftgateError, match="at most 48 KiB"):
        values.set("big", "x" * 50_000)


@pytest.fixture(params=["fake", "mlflow"])
def registry_and_uri(request, ws):
    """Both registry implementations pass the same contract."""
    if request.param == "fake":
        return FakeRegistry(), "runs:/abc/model"
    import mlflow
    from sklearn.dummy import DummyClassifier

    ws.activate_mlflow()
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
    return ws.registry, f"runs:/{run.info.run_id}/model"


def test_registry_contract(registry_and_uri):
    registry, uri = registry_and_uri
    name = "main.test_schema.model"
    v1 = registry.register(uri, name, tags={"why": "test"})
    v2 = registry.register(uri, name)
    assert (v1.version, v2.version) == ("1", "2")
    assert registry.alias_version(name, "champion") is None
    registry.set_alias(name, "champion", v1.version)
    assert registry.alias_version(name, "champion") == "1"
    registry.set_alias(name, "champion", v2.version)
    assert registry.alias_version(name, "champion") == "2"
    assert "champion" in registry.get_version(name, "2").aliases
    registry.set_tag(name, "2", "approved", "true")
    assert registry.get_version(name, "2").tags["approved"] == "true"
    registry.delete_alias(name, "champion")
    assert registry.alias_version(name, "champion") is None
    with pytest.raises(RegistryError, match="version 99"):
        registry.get_version(name, "99")
    with pytest.raises(RegistryError):
        registry.set_alias(name, "champion", "99")


def test_registering_a_logged_model_keeps_its_run_and_model_id(ws):
    """``models:/m-...`` (what MLflow 3's log_model returns) registers with run_id and model_id."""
    import mlflow
    from sklearn.dummy import DummyClassifier

    from driftgate.workspace.registry import logged_model_id

    ws.activate_mlflow()
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
    assert info.model_uri == f"models:/{info.model_id}"
    name = "main.test_schema.lineage"
    sent = []
    create = ws.registry.client.create_model_version
    ws.registry.client.create_model_version = lambda **kw: sent.append(kw) or create(**kw)
    v1 = ws.registry.register(info.model_uri, name)  # run found from the logged model
    v2 = ws.registry.register(info.model_uri, name, run_id=run.info.run_id)
    for v in (v1, v2, ws.registry.get_version(name, "1")):
        assert (v.run_id, v.model_id) == (run.info.run_id, info.model_id)
    assert [(kw["run_id"], kw["model_id"]) for kw in sent] == [(run.info.run_id, info.model_id)] * 2
    linked = mlflow.MlflowClient(ws.tracking_uri).get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    assert [(d["name"], d["version"]) for d in json.loads(linked)] == [(name, "1"), (name, "2")]
    assert logged_model_id("models:/m-abc") == "m-abc"
    assert logged_model_id("models:/main.s.m/3") is None and logged_model_id("models:/main.s.m@champion") is None
    assert logged_model_id("runs:/r/model") is None


def test_mlflow_registry_maps_mlflow_errors(ws):
    with pytest.raises(RegistryError) as err:
        ws.registry.get_version("main.test_schema.absent", "1")
    assert err.value.model == "main.test_schema.absent"
    assert isinstance(err.value.__cause__, Exception)
    assert isinstance(ws.registry, MlflowRegistry)


def test_audit_trail_is_appended_and_read_newest_first(ws):
    record_event(ws, "train", subject="m@1", status="registered", details={"auc": 0.8})
    record_event(ws, "launch", run_key="delta:t@v3", status="launched")
    events = read_events(ws)
    assert [e["kind"] for e in events] == ["launch", "train"]
    assert read_events(ws, ["train"])[0]["details"] == {"auc": 0.8}
    with pytest.raises(ValueError, match="audit kind"):
        record_event(ws, "bogus")


class _RecordingSpark:
    """Records what SparkTableStore asks of a Spark session (Delta on Spark is not available here)."""

    def __init__(self, user_metadata=None):
        self.options: dict[str, str] = {}
        self.saved: list[str] = []
        self.user_metadata = user_metadata
        self.catalog = type("Catalog", (), {"tableExists": lambda _self, name: False})()

    def sql(self, text):
        assert text.startswith("DESCRIBE HISTORY")
        row = {"version": 7, "userMetadata": self.user_metadata}
        return type("Result", (), {"collect": lambda _self: [row]})()

    def createDataFrame(self, frame, schema=None):
        spark = self

        class Writer:
            def format(self, _):
                return self

            def option(self, key, value):
                spark.options[key] = value
                return self

            def mode(self, _):
                return self

            def saveAsTable(self, name):
                spark.saved.append(name)

        return type("DF", (), {"write": Writer()})()


def test_spark_store_keeps_commit_metadata_in_delta_user_metadata():
    import json

    from driftgate.workspace.spark_tables import SparkTableStore

    spark = _RecordingSpark()
    store = SparkTableStore(spark)
    assert store.write("main.s.t", pa.table({"a": [1]}), metadata={"source_version": "4"}) == 7
    assert json.loads(spark.options["userMetadata"]) == {"driftgate.source_version": "4"}
    assert spark.saved == ["main.s.t"]
    # a table driftgate creates carries a change data feed (incremental refresh reads it)
    assert spark.options["delta.enableChangeDataFeed"] == "true" and spark.options["mergeSchema"] == "true"
    assert SparkTableStore(_RecordingSpark('{"driftgate.source_version": "4", "other": 1}')).commit_metadata(
        "main.s.t") == {"driftgate.source_version": "4"}
    assert SparkTableStore(_RecordingSpark("not json")).commit_metadata("main.s.t") == {}
    assert SparkTableStore(_RecordingSpark(None)).commit_metadata("main.s.t") == {}


def test_guarded_writes_land_once(tmp_path, monkeypatch):
    from driftgate.core.errors import TableConflict
    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(tmp_path)
    name, app = "main.s.t", "driftgate.test"
    store.write(name, _timed_rows(0), txn=(app, 1))
    assert store.transaction_version(name, app) == 1
    with pytest.raises(TableConflict, match="already recorded step 1"):
        store.write(name, _timed_rows(1), txn=(app, 1))
    assert store.read(name).num_rows == 4 and store.version(name) == 0

    # Two writers planned step 2: the second checks on a handle older than the first's commit,
    # so only Delta's commit-time check can stop it.
    other = DeltaTableStore(tmp_path)
    stale = other._table(name)
    store.write(name, _timed_rows(2), txn=(app, 2))
    monkeypatch.setattr(other, "_cached", lambda path: stale)
    with pytest.raises(TableConflict, match="concurrent writer"):
        other.write(name, _timed_rows(2), txn=(app, 2))
    assert sorted(store.read(name).column("id").to_pylist()) == [0, 1, 2, 3, 200, 201, 202, 203]
    store.write(name, _timed_rows(3), txn=(app, 3))  # the next step is free
    assert store.transaction_version(name, app) == 3


def test_a_databricks_experiment_gets_its_parent_folder_first(httpserver, tmp_path, monkeypatch):
    """workspace/mkdirs (documented: POST /api/2.0/workspace/mkdirs {"path"}, 200 {}) runs before
    create_experiment, so /Shared/driftgate/churn_model does not fail with RESOURCE_DOES_NOT_EXIST."""
    import dataclasses

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace
    from driftgate.workspace.context import ensure_parent_folder

    httpserver.expect_request("/.well-known/databricks-config").respond_with_data("", status=404)
    httpserver.expect_request("/api/2.0/workspace/mkdirs", method="POST",
                              json={"path": "/Shared/driftgate"}).respond_with_json({})
    client = WorkspaceClient(config=Config(host=httpserver.url_for("/").rstrip("/"), token="dapi-test"))
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root (./mlruns) stays in tmp
    repo_conf = Path(__file__).resolve().parent.parent / "conf"
    local = open_workspace(load_settings(repo_conf, "local", (f"workspace.root={tmp_path / 'dg'}",)))
    ws = dataclasses.replace(local, root=None, workspace_client=client)  # Databricks: no local root
    exp_id = ws.experiment_id("/Shared/driftgate/churn_model")
    assert exp_id and ws.experiment_id("/Shared/driftgate/churn_model") == exp_id  # found: no second mkdirs
    mkdirs = [r for r, _ in httpserver.log if r.path == "/api/2.0/workspace/mkdirs"]
    assert len(mkdirs) == 1
    assert ensure_parent_folder("churn_model", client) is None  # a bare name has no folder
