"""One contract for every table store: the local Delta store and the Spark store.

``delta``: :class:`DeltaTableStore` on a temp folder (``deltalake``, the real thing).

``spark``: :class:`SparkTableStore` on a real local Spark session (``local[2]``, the shared
``spark`` fixture). The delta-spark jars cannot be fetched on this machine, so the stand-in is
``SparkTableStore(spark, table_format="parquet")``: plain Spark tables in the session catalog
(``spark_catalog.<schema>.<table>``, the schema created with a temp-folder location), written
with ``saveAsTable`` and read with ``spark.read.table`` exactly as the Delta tables are, so the
reads, projections, filters (nested fields too), appends, overwrites, schema lookups, error
mapping and the type checks run for real. What only Delta tables have (versions, history,
time travel, change feed, ``replaceWhere``, commit info, restore to a version, schema merge)
is checked on the stand-in as a refusal with a :class:`TableError` ("needs a Delta table"),
never as silently wrong rows; on Databricks those paths are Delta SQL, exercised by
``tests/test_workspace.py`` through a recording session.
"""
from __future__ import annotations

import itertools
import operator
import os
import sys
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from driftgate.core.errors import TableConflict, TableError
from driftgate.workspace.spark_tables import SparkTableStore
from driftgate.workspace.tables import DeltaTableStore, TableStore

_UTC = pa.timestamp("us", tz="UTC")
_WINDOW = pa.struct([("start", _UTC), ("end", _UTC)])
_DAY0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
_schemas = itertools.count()


def _rows(start: int, n: int) -> pa.Table:
    days = [_DAY0 + timedelta(days=i % 4) for i in range(start, start + n)]
    return pa.table({
        "id": pa.array(range(start, start + n), pa.int64()),
        "kind": pa.array(["a", "b", "c"][i % 3] for i in range(start, start + n)),
        "score": pa.array([i / 10 for i in range(start, start + n)], pa.float64()),
        "window": pa.array([{"start": d, "end": d + timedelta(days=1)} for d in days], _WINDOW),
    })


class Subject:
    """A store under test and a fresh table name for it."""

    def __init__(self, kind: str, store: TableStore, prefix: str):
        self.kind, self.store, self.prefix = kind, store, prefix
        self.delta = kind == "delta"

    def name(self, table: str = "t") -> str:
        return f"{self.prefix}.{table}"


@pytest.fixture(params=["delta", pytest.param("spark", marks=pytest.mark.spark)])
def subject(request, tmp_path):
    if request.param == "delta":
        return Subject("delta", DeltaTableStore(tmp_path), "main.s")
    return Subject("spark", SparkTableStore(request.getfixturevalue("spark"), table_format="parquet"),
                   request.getfixturevalue("spark_schema"))


@pytest.fixture
def spark_schema(spark, tmp_path, request) -> str:
    """A fresh schema of the local Spark session's catalog, dropped afterwards."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    schema = f"contract_{os.getpid()}_{next(_schemas)}"
    spark.sql(f"CREATE DATABASE {schema} LOCATION '{tmp_path / schema}'")
    request.addfinalizer(lambda: spark.sql(f"DROP DATABASE IF EXISTS {schema} CASCADE"))
    return f"spark_catalog.{schema}"


def _ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


# -- the interface itself


def test_every_store_is_a_table_store_and_the_interface_has_explicit_defaults():
    with pytest.raises(TypeError, match="abstract"):
        TableStore()  # type: ignore[abstract]

    class Minimal(TableStore):
        def exists(self, name): return True
        def version(self, name): return 0
        def last_modified(self, name): return 0.0
        def read(self, name, columns=None, filters=None, version=None): return pa.table({"a": [1]})
        def read_since(self, name, version): return pa.table({"a": []})
        def write(self, name, data, mode="append", replace_where=None, partition_by=None, metadata=None,
                  txn=None):
            self._refuse_txn(name, txn)
            return 0
        def restore(self, name, version): return None

    store = Minimal()
    assert store.schema("c.s.t") == pa.schema([("a", pa.int64())])
    assert store.commit_metadata("c.s.t") == {} and store.transaction_version("c.s.t", "app") is None
    assert store.compact("c.s.t") is False and store.files("c.s.t") is None and store.location("c.s.t") is None
    assert store.table_id("c.s.t") is None and store.scratch_dir() is None and store.spark_session() is None
    assert store.supports_transactions is False and store.keeps_commit_metadata is False
    with pytest.raises(TableError, match="c.s.t: this table store cannot MERGE"):
        store.merge("c.s.t", pa.table({"a": [1]}), on="a", update=[])
    with pytest.raises(TableError, match="records no application transactions"):
        store.write("c.s.t", pa.table({"a": [1]}), txn=("app", 1))
    assert issubclass(DeltaTableStore, TableStore) and issubclass(SparkTableStore, TableStore)


# -- reads and writes


def test_write_creates_then_appends_and_reads_back(subject):
    store, name = subject.store, subject.name()
    assert not store.exists(name)
    store.write(name, _rows(0, 6), mode="overwrite")
    store.write(name, _rows(6, 3))
    assert store.exists(name)
    got = store.read(name)
    assert _ids(got) == list(range(9))
    assert store.schema(name) == _rows(0, 1).schema
    assert got.schema == _rows(0, 1).schema


def test_overwrite_replaces_rows_and_schema(subject):
    store, name = subject.store, subject.name()
    store.write(name, _rows(0, 6))
    store.write(name, pa.table({"other": ["x", "y"]}), mode="overwrite")
    assert store.read(name).to_pylist() == [{"other": "x"}, {"other": "y"}] or \
        sorted(store.read(name).column("other").to_pylist()) == ["x", "y"]
    assert store.schema(name).names == ["other"]


FILTERS = [
    [("kind", "=", "a")],
    [("kind", "==", "b"), ("score", ">", 0.5)],
    [("kind", "!=", "a")],
    [("id", ">=", 3), ("id", "<", 7)],
    [("id", "<=", 2)],
    [("kind", "in", ["a", "c"])],
    [("kind", "not in", ["a", "c"])],
    [("window.start", ">=", _DAY0 + timedelta(days=2))],
    [("window.start", "=", _DAY0 + timedelta(days=1)), ("kind", "in", ["b"])],
]


_OPS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
        "<": operator.lt, "<=": operator.le, "in": lambda v, xs: v in xs, "not in": lambda v, xs: v not in xs}


def _expected(table: pa.Table, filters) -> list[int]:
    out = []
    for row in table.to_pylist():
        ok = True
        for col, op, value in filters:
            v = row
            for part in col.split("."):
                v = v[part]
            ok &= _OPS[op](v, value)
        if ok:
            out.append(row["id"])
    return sorted(out)


def test_filtered_projected_reads_match_a_python_filter(subject):
    store, name = subject.store, subject.name()
    data = _rows(0, 12)
    store.write(name, data.slice(0, 6))
    store.write(name, data.slice(6))  # two files, so file skipping has something to skip
    for filters in FILTERS:
        got = store.read(name, columns=["id", "kind"], filters=filters)
        assert got.column_names == ["id", "kind"], filters
        want = _expected(data, filters)
        assert want and _ids(got) == want, filters


def test_a_bad_filter_or_a_missing_table_is_a_table_error(subject):
    store, name = subject.store, subject.name()
    with pytest.raises(TableError, match=name.rsplit(".", 1)[-1]):
        store.read(name)
    store.write(name, _rows(0, 3))
    with pytest.raises(TableError, match="filter operator"):
        store.read(name, filters=[("id", "~", 1)])


# -- lossy appends are refused (Unity Catalog refuses them; deltalake would convert silently)


LOSSY = [
    ("score_int", pa.array([1], pa.int64()), pa.array([52.7]), "double"),
    ("flag", pa.array([True]), pa.array([2], pa.int64()), "int64"),
    ("at", pa.array([_DAY0], _UTC), pa.array([datetime(2026, 6, 2)], pa.timestamp("us")), "without time zone"),
    ("small", pa.array([1], pa.int32()), pa.array([2], pa.int64()), "int64"),
    ("big", pa.array([1], pa.int64()), pa.array([2.0]), "double"),
]


@pytest.mark.parametrize("column,stored,appended,detail", LOSSY, ids=[c[0] for c in LOSSY])
def test_lossy_type_changes_on_append_are_refused(subject, column, stored, appended, detail):
    store, name = subject.store, subject.name()
    store.write(name, pa.table({"id": [1], column: stored}))
    with pytest.raises(TableError) as err:
        store.write(name, pa.table({"id": [2], column: appended}))
    message = str(err.value)
    assert name in message and repr(column) in message and str(stored.type) in message \
        and str(appended.type) in message and detail in message
    assert _ids(store.read(name)) == [1]


def test_safe_widening_is_allowed_and_keeps_the_column_type(subject):
    store, name = subject.store, subject.name()
    store.write(name, pa.table({"id": pa.array([1], pa.int64()), "x": pa.array([1.5], pa.float64())}))
    store.write(name, pa.table({"id": pa.array([2], pa.int32()), "x": pa.array([2], pa.int32())}))
    got = store.read(name)
    assert got.schema.field("id").type == pa.int64() and got.schema.field("x").type == pa.float64()
    assert sorted(got.column("x").to_pylist()) == [1.5, 2.0]


# -- what needs Delta (the stand-in refuses it, see the module docstring)


def _needs_delta(subject, call):
    """On the stand-in: a refusal naming Delta. Returns whether the Delta assertions should run."""
    if subject.delta:
        return True
    with pytest.raises(TableError, match="needs a Delta table"):
        call()
    return False


def test_versions_time_travel_and_rows_since_a_version(subject):
    store, name = subject.store, subject.name()
    store.write(name, _rows(0, 5))
    if not _needs_delta(subject, lambda: store.version(name)):
        with pytest.raises(TableError, match="needs a Delta table"):
            store.read_since(name, 0)
        with pytest.raises(TableError, match="needs a Delta table"):
            store.read(name, version=0)
        return
    v0 = store.version(name)
    assert store.write(name, _rows(5, 2)) == v0 + 1
    store.write(name, _rows(7, 1))
    assert store.version(name) == v0 + 2 and store.last_modified(name) > 0
    assert _ids(store.read(name, version=v0)) == list(range(5))
    assert _ids(store.read_since(name, v0)) == [5, 6, 7]
    assert store.read_since(name, store.version(name)).num_rows == 0


def test_replace_where_rewrites_only_the_predicate(subject):
    store, name = subject.store, subject.name()
    store.write(name, _rows(0, 9))
    if not _needs_delta(subject, lambda: store.write(name, _rows(100, 1), replace_where="kind = 'a'")):
        assert _ids(store.read(name)) == list(range(9))
        return
    store.write(name, _rows(99, 1).set_column(1, "kind", pa.array(["a"])), replace_where="kind = 'a'")
    rows = store.read(name)
    assert _ids(rows.filter(pc.equal(rows.column("kind"), "a"))) == [99]
    assert rows.num_rows == 7


def test_new_columns_on_append_are_added(subject):
    store, name = subject.store, subject.name()
    store.write(name, pa.table({"id": [1]}))
    extended = pa.table({"id": [2], "extra": ["x"]})
    if not _needs_delta(subject, lambda: store.write(name, extended)):
        return
    store.write(name, extended)
    assert sorted(store.read(name).to_pylist(), key=lambda r: r["id"]) == [{"id": 1, "extra": None},
                                                                          {"id": 2, "extra": "x"}]


def test_commit_metadata_round_trips(subject):
    store, name = subject.store, subject.name()
    store.write(name, _rows(0, 2), metadata={"source_version": "4", "driftgate.newest": "x"})
    if not subject.delta:
        assert store.commit_metadata(name) == {}  # plain tables keep no commit info
        return
    assert store.commit_metadata(name) == {"driftgate.source_version": "4", "driftgate.newest": "x"}
    store.write(name, _rows(2, 1))
    assert store.commit_metadata(name) == {}


def test_restore_puts_a_table_back_or_drops_a_new_one(subject):
    store, name, fresh = subject.store, subject.name(), subject.name("fresh")
    store.write(fresh, _rows(0, 2))
    store.restore(fresh, None)
    assert not store.exists(fresh)
    store.write(name, _rows(0, 3))
    if not _needs_delta(subject, lambda: store.restore(name, 0)):
        return
    v = store.version(name)
    store.write(name, _rows(3, 3))
    store.restore(name, v)
    assert _ids(store.read(name)) == [0, 1, 2] and store.version(name) == v + 2


def test_merge_updates_matched_rows_only(subject):
    store, name = subject.store, subject.name()
    store.write(name, pa.table({"rid": ["a", "b", "c"], "label": pa.array([None, None, 1], pa.int64())}))
    late = pa.table({"rid": ["b", "c", "zz"], "label": pa.array([1, None, 0], pa.int64())})
    if not _needs_delta(subject, lambda: store.merge(name, late, on="rid", update=["label"])):
        return
    assert store.merge(name, late, on="rid", update=["label"]) == 2
    rows = sorted(store.read(name).to_pylist(), key=lambda r: r["rid"])
    assert rows == [{"rid": "a", "label": None}, {"rid": "b", "label": 1}, {"rid": "c", "label": None}]
    assert store.schema(name).field("label").type == pa.int64()


@pytest.mark.spark
def test_spark_merge_source_keeps_its_arrow_types(spark):
    """The MERGE source view has the Arrow schema (a nullable int label stays an integer, a map a
    map), not what pandas would infer (double, and no type at all for a map). MERGE itself needs
    Delta: the wrapper below answers it and records the view's schema, the view is real Spark."""
    seen = {}

    class DeltaSpark:  # the real session, but MERGE INTO is recorded instead of run
        def __getattr__(self, attr):
            return getattr(spark, attr)

        def sql(self, text):
            if text.startswith("MERGE INTO"):
                view = text.split(" USING ")[1].split()[0]
                seen["schema"] = spark.table(view).schema
                return spark.createDataFrame([(1, 1)], "num_affected_rows long, num_updated_rows long")
            return spark.sql(text)

    source = pa.table({"rid": ["b", "c"], "label": pa.array([1, None], pa.int64()),
                       "extra": pa.array([[("k", 1.0)], None], pa.map_(pa.string(), pa.float64()))})
    assert SparkTableStore(DeltaSpark()).merge("main.s.t", source, on="rid", update=["label"]) == 1
    fields = {f.name: f.dataType.simpleString() for f in seen["schema"].fields}
    assert fields == {"rid": "string", "label": "bigint", "extra": "map<string,double>"}


class _VersionedSpark:
    """A real Spark session that answers Delta's version reads from saved snapshot tables.

    ``spark.read.option("versionAsOf", v).table(name)`` reads ``snapshots[v]``; ``SHOW
    TBLPROPERTIES`` says whether the change data feed is on; ``readChangeFeed`` returns ``feed``
    (rows with Delta's documented ``_change_type``/``_commit_version``/``_commit_timestamp``).
    Everything else, and every DataFrame operation, is the real session's."""

    def __init__(self, spark, snapshots, cdf=False, feed=None):
        self.spark, self.snapshots, self.cdf, self.feed, self.asked = spark, snapshots, cdf, feed, []

    def __getattr__(self, attr):
        return getattr(self.spark, attr)

    def sql(self, text):
        if text.startswith("SHOW TBLPROPERTIES"):
            return self.spark.createDataFrame([("delta.enableChangeDataFeed", str(self.cdf).lower())],
                                              "key string, value string")
        return self.spark.sql(text)

    @property
    def read(self):
        outer, options = self, {}

        class Reader:
            def option(self, key, value):
                options[key] = value
                return self

            def table(self, name):
                outer.asked.append(dict(options))
                if "versionAsOf" in options:
                    return outer.spark.read.table(outer.snapshots[int(options["versionAsOf"])])
                if options.get("readChangeFeed") == "true":
                    return outer.feed
                return outer.spark.read.table(name)

        return Reader()


def _spark_table(spark, prefix, name, table: pa.Table) -> str:
    from driftgate.workspace.spark_arrow import to_spark_frame

    full = f"{prefix}.{name}"
    to_spark_frame(spark, table).write.format("parquet").mode("overwrite").saveAsTable(full)
    return full


@pytest.mark.spark
def test_spark_rows_since_a_version_without_a_change_feed_are_the_snapshot_difference(spark, spark_schema):
    """Without a change data feed, ``read_since`` diffs the two versions: new rows and late-label
    updates (an UPDATE's new image) come back, unchanged rows do not, and a column added since
    the old version is NULL there (not a failed diff)."""
    label = pa.int64()
    old = pa.table({"rid": ["a", "b"], "label": pa.array([None, None], label)})
    now = pa.table({"rid": ["a", "b", "c"], "label": pa.array([None, 1, 0], label),
                    "extra": pa.array([None, None, 2.5], pa.float64())})
    v3 = _spark_table(spark, spark_schema, "v3", old)
    current = _spark_table(spark, spark_schema, "t", now)
    versioned = _VersionedSpark(spark, {3: v3})
    got = SparkTableStore(versioned).read_since(current, 3)
    assert sorted(got.to_pylist(), key=lambda r: r["rid"]) == [{"rid": "b", "label": 1, "extra": None},
                                                                 {"rid": "c", "label": 0, "extra": 2.5}]
    assert got.schema.field("label").type == label
    assert {"versionAsOf": 3} in versioned.asked


@pytest.mark.spark
def test_spark_rows_since_a_version_from_the_change_feed(spark):
    """With the feed on: from the next version, inserts and update post-images only, without
    Delta's change columns."""
    feed = spark.createDataFrame(
        [("a", None, "update_preimage", 4), ("a", 1, "update_postimage", 4), ("d", 0, "insert", 5),
         ("b", None, "delete", 5)],
        "rid string, label bigint, _change_type string, _commit_version long").selectExpr(
        "*", "current_timestamp() AS _commit_timestamp")
    versioned = _VersionedSpark(spark, {}, cdf=True, feed=feed)
    got = SparkTableStore(versioned).read_since("main.s.t", 3)
    assert sorted(got.to_pylist(), key=lambda r: r["rid"]) == [{"rid": "a", "label": 1}, {"rid": "d", "label": 0}]
    assert versioned.asked[-1] == {"readChangeFeed": "true", "startingVersion": 4}


def test_guarded_writes_land_once_or_are_refused(subject):
    store, name = subject.store, subject.name()
    if not store.supports_transactions:
        with pytest.raises(TableError, match="records no application transactions"):
            store.write(name, _rows(0, 2), txn=("driftgate.test", 1))
        assert not store.exists(name)
        return
    store.write(name, _rows(0, 2), txn=("driftgate.test", 1))
    assert store.transaction_version(name, "driftgate.test") == 1
    with pytest.raises(TableConflict):
        store.write(name, _rows(2, 2), txn=("driftgate.test", 1))
    assert _ids(store.read(name)) == [0, 1]


def test_compaction_never_changes_rows(subject):
    store, name = subject.store, subject.name()
    for i in range(3):
        store.write(name, _rows(i * 2, 2))
    ran = store.compact(name, min_files=2)
    assert ran is subject.delta  # the Spark store leaves compaction to the platform
    assert _ids(store.read(name)) == list(range(6))


@pytest.mark.parametrize("stored,appended,refused", [
    (pa.struct([("a", pa.int64())]), pa.struct([("a", pa.float64())]), "field 'a'"),
    (pa.struct([("a", pa.int64())]), pa.struct([("a", pa.int32()), ("b", pa.string())]), None),
    (pa.list_(pa.int64()), pa.list_(pa.float64()), "converted"),
    (pa.map_(pa.string(), pa.float64()), pa.map_(pa.string(), pa.float32()), None),
    (pa.int64(), pa.null(), None),
    (pa.string(), pa.large_string(), None),
    (pa.timestamp("us", tz="UTC"), pa.timestamp("ns", tz="UTC"), None),
    (pa.timestamp("us"), pa.timestamp("us", tz="UTC"), "lose it"),
    (pa.int32(), pa.uint32(), "converted"),
    (pa.float64(), pa.int32(), None),
])
def test_type_check_rules(stored, appended, refused):
    from driftgate.workspace.tables import check_append_types

    table, data = pa.schema([("c", stored)]), pa.schema([("c", appended), ("new", pa.int8())])
    if refused is None:
        check_append_types("main.s.t", table, data)
    else:
        with pytest.raises(TableError, match=refused):
            check_append_types("main.s.t", table, data)
