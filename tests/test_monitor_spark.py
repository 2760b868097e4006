"""The Spark engine produces the same rows as the embedded engine: on a classic local[2] session and on a
local Spark Connect session (the API of serverless and standard compute: no ``sparkContext``)."""
from __future__ import annotations

import math
import os
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest

from driftgate import monitoring
from tests.monitor_data import START, inference_log
from driftgate.workspace.tables import DeltaTableStore

pytestmark = pytest.mark.spark

# Spark's Python workers must run this interpreter and import this checkout (set before the
# session fixture starts the JVM, which is why it happens at import time).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, os.environ.get("PYTHONPATH")) if p)


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


def test_spark_engine_matches_embedded(spark, settings, tmp_path):
    assert_parity(settings, tmp_path)


def test_spark_engine_matches_embedded_on_spark_connect(tmp_path):
    """A Spark Connect session cannot share this process with the classic one: run it in its own."""
    import subprocess

    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "parity on pyspark.sql.connect.session.SparkSession" in proc.stdout


def assert_parity(settings, tmp_path):
    cfg = settings.monitor.model_copy(update={"slicing_exprs": ["senior", "age < 40", "plan"]})
    log = inference_log(4, rows_per_day=150, seed=3, drift_from=2)
    base = inference_log(2, rows_per_day=150, seed=4)
    stores = {}
    for engine_name in ("embedded", "spark"):
        store = DeltaTableStore(tmp_path / engine_name)
        store.write(cfg.table_name, log)
        store.write(cfg.baseline_table_name, base)
        ws = SimpleNamespace(tables=store, settings=settings)
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
        for a, b in zip(embedded, sparked):
            _close(a, b, _key(cfg, a))


if __name__ == "__main__":  # the Spark Connect half of the parity test, in a process of its own
    from pathlib import Path

    from pyspark.sql import SparkSession

    from driftgate.core.settings import load_settings

    root = Path(sys.argv[1])
    session = (SparkSession.builder.remote("local[2]").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    assert not hasattr(type(session), "sparkContext") or "connect" in type(session).__module__
    assert_parity(load_settings(Path(_REPO) / "conf", "local", (f"workspace.root={root / '.driftgate'}",)), root)
    print(f"parity on {type(session).__module__}.{type(session).__name__}")
    session.stop()
