"""Checks run on a real Spark session, classic (in the test process) or Spark Connect (in a subprocess:
the two kinds of session cannot share one process). ``python tests/spark_checks.py ROOT`` runs them on a
local Spark Connect session."""
from __future__ import annotations

import math
import os
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]


def awkward_batch() -> pa.Table:
    """What pandas inference gets wrong: maps, structs, nullable ints, an all-null column, nested lists."""
    return pa.table({
        "confusion_matrix": pa.array([[("a", 1)], None, []], pa.map_(pa.string(), pa.int64())),
        "window": pa.array([{"start": 0, "end": 1}, None, {"start": None, "end": 5}],
                           pa.struct([("start", pa.timestamp("us", tz="UTC")), ("end", pa.timestamp("us", tz="UTC"))])),
        "count": pa.array([1, None, 3], pa.int64()),
        "ks_pvalue": pa.array([None, None, None], pa.float64()),
        "frequent_items": pa.array([[{"item": "x", "count": 2}], None, []],
                                   pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
    })


def assert_arrow_round_trip(spark, convert=None) -> None:
    """``to_spark_frame`` keeps the Arrow schema and every value, and an empty batch keeps its schema."""
    from driftgate.workspace.spark_arrow import spark_schema, to_spark_frame

    convert = convert or to_spark_frame
    batch = awkward_batch()
    df = convert(spark, batch)
    assert df.schema == spark_schema(batch.schema)
    assert df.schema["count"].dataType.simpleString() == "bigint"  # not double
    assert df.schema["confusion_matrix"].dataType.simpleString() == "map<string,bigint>"
    assert df.schema["window"].dataType.simpleString().startswith("struct<")  # not a map
    assert df.schema["ks_pvalue"].dataType.simpleString() == "double"  # not void
    back = sorted(df.toArrow().to_pylist(), key=lambda r: (r["count"] is None, r["count"] or 0))
    want = sorted(batch.to_pylist(), key=lambda r: (r["count"] is None, r["count"] or 0))
    assert back == want
    empty = convert(spark, batch.schema.empty_table())
    assert empty.schema == df.schema and empty.count() == 0


def assert_engine_parity(settings, tmp_path, spark) -> None:
    """The Spark engine writes the same metric rows as the embedded engine (full, then incremental)."""
    from driftgate import monitoring
    from driftgate.monitoring.importance import write_importance
    from driftgate.workspace.tables import DeltaTableStore
    from tests.monitor_data import START, inference_log

    cfg = settings.monitor.model_copy(update={"slicing_exprs": ["senior", "age < 40", "plan"]})
    log = inference_log(4, rows_per_day=150, seed=3, drift_from=2)
    base = inference_log(2, rows_per_day=150, seed=4)
    stores = {}
    for engine_name in ("embedded", "spark"):
        # the Spark engine computes through the session it is given, never another active one
        store = DeltaTableStore(tmp_path / engine_name, spark=spark if engine_name == "spark" else None)
        store.write(cfg.table_name, log)
        store.write(cfg.baseline_table_name, base)
        ws = SimpleNamespace(tables=store, settings=settings)
        # the champion's importance (the baseline's model id is "1"): both engines write ':importance_weighted'
        write_importance(ws, "1", {"monthly_charges": 0.3, "tenure_months": 0.1, "plan": 0.05, "age": -0.01},
                         {}, scoring="roc_auc", rows=300)
        mon = cfg.model_copy(update={"engine": engine_name})
        first = monitoring.refresh(ws, mon)
        assert first.mode == "full" and first.drift_rows > 0
        store.write(cfg.table_name, inference_log(1, rows_per_day=150, seed=5, start=START + timedelta(days=4)))
        assert monitoring.refresh(ws, mon).mode == "incremental"
        stores[engine_name] = store
    for table in (cfg.profile_metrics_table, cfg.drift_metrics_table):
        embedded = _rows(stores["embedded"], table, cfg)
        sparked = _rows(stores["spark"], table, cfg)
        assert len(embedded) == len(sparked) > 100
        if table == cfg.drift_metrics_table:
            assert any(r["column_name"] == ":importance_weighted" and r["importance_weighted_drift"] > 0
                       for r in embedded)
        else:
            assert any(r["estimated_roc_auc"] is not None for r in embedded)
        for a, b in zip(embedded, sparked):
            _close(a, b, _key(cfg, a))


def _key(cfg, r):
    return (r["granularity"], str(r["window"]["start"]), r.get("log_type") or "", r.get("drift_type") or "",
            r[cfg.model_id_col], r["slice_key"] or "", r["slice_value"] or "", r["column_name"])


def _close(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b)), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _rows(store, name, cfg):
    return sorted(store.read(name).to_pylist(), key=lambda r: _key(cfg, r))


def connect_session():
    """A local Spark Connect server on a free port (so parallel runs do not fight over 15002), and a
    client session of it: what ``builder.remote("local[2]")`` does, but with the port chosen."""
    import socket

    from pyspark.sql.connect.session import SparkSession as ConnectSession

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = {"spark.connect.grpc.binding.port": str(port), "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"}
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)  # inherited from a Connect parent: the server is classic
    ConnectSession._start_connect_server("local[2]", conf)
    # what pyspark's own builder.remote("local") sets after starting the server: this process is
    # now a Connect client, so pyspark.sql.functions and getActiveSession() take the Connect path
    # (without it they would quietly use the server's classic session living in this process)
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    return ConnectSession.builder.remote(f"sc://localhost:{port}").getOrCreate()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from driftgate.core.settings import load_settings

    root = Path(sys.argv[1])
    session = connect_session()
    kind = f"{type(session).__module__}.{type(session).__name__}"
    assert "connect" in kind, kind
    assert_arrow_round_trip(session)
    print(f"arrow round trip on {kind}")
    assert_engine_parity(load_settings(REPO / "conf", "local", (f"workspace.root={root / '.driftgate'}",)), root,
                         session)
    print(f"engine parity on {kind}")
    session.stop()
    os._exit(0)  # the local Connect server's threads would otherwise keep the process alive
