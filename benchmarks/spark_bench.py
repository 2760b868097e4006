"""Spark engine against the embedded engine: one full refresh of the same Delta table, in one run.

Builds an inference log of ``--rows`` rows over ``--days`` daily windows (10 numeric and 3
categorical features, a binary model's prediction, probability and label) plus a baseline of
``--baseline-rows`` rows, as local Delta tables. Then, in this one process:

- embedded: ``monitoring.refresh`` with ``monitor.engine=embedded`` (Arrow on the driver);
- spark: the same refresh with ``monitor.engine=spark`` on a ``local[2]`` session (Spark reads,
  windows and groups; the shared kernel runs per window on the executors, ``applyInArrow``).
  The session start is reported apart and not counted.

Both write their profile and drift metric tables; the bench checks the two engines wrote
identical rows (floats to 1e-9 relative) and prints the times and the ratio spark / embedded.

Usage::

    python benchmarks/spark_bench.py                      # 10M rows, 10 days
    python benchmarks/spark_bench.py --rows 200000        # quick check
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 6, 1, tzinfo=timezone.utc)
TABLE, BASELINE, SCHEMA = "main.bench.inference_log", "main.bench.inference_baseline", "main.bench"


def build(rows: int, days: int, seed: int, drift: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp() * 1_000_000)
    ts = start_us + np.sort(rng.integers(0, days * 86_400_000_000, rows))
    cols: dict[str, object] = {"timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                               "model_id": pa.array(np.full(rows, "1"))}
    day = (ts - start_us) // 86_400_000_000
    shift = (day >= days // 2) * 0.5 if drift else np.zeros(rows)
    for i in range(10):
        cols[f"num_{i}"] = rng.normal(shift if i < 3 else 0.0, 1.0, rows)
    levels = np.array([f"level_{k}" for k in range(12)])
    for j in range(3):
        cols[f"cat_{j}"] = pa.array(levels[rng.integers(0, 12, rows)])
    logit = 0.8 * cols["num_0"] - 0.5 * cols["num_1"]
    prob = 1 / (1 + np.exp(-logit))
    cols["probability"] = prob
    cols["prediction"] = pa.array((prob > 0.5).astype(np.int64))
    cols["label"] = pa.array((rng.random(rows) < prob).astype(np.int64))
    return pa.table(cols)


def monitor_config(engine: str):
    from driftgate.monitoring.config import MonitorConfig

    return MonitorConfig.model_validate({
        "table_name": TABLE, "output_schema_name": SCHEMA, "baseline_table_name": BASELINE, "engine": engine,
        "exclude_columns": [], "slicing_exprs": [], "custom_metrics": [],
        "inference_log": {"timestamp_col": "timestamp", "granularities": ["1 day"], "model_id_col": "model_id",
                          "prediction_col": "prediction", "label_col": "label",
                          "prediction_proba_col": "probability", "problem_type": "classification"}})


def refresh(root: Path, engine: str, log: pa.Table, base: pa.Table) -> tuple[float, object]:
    from driftgate import monitoring
    from driftgate.workspace.tables import DeltaTableStore

    store = DeltaTableStore(root)
    for batch in range(0, log.num_rows, 2_000_000):  # appended in batches, as a served log grows
        store.write(TABLE, log.slice(batch, 2_000_000))
    store.write(BASELINE, base)
    cfg = monitor_config(engine)
    t0 = time.perf_counter()
    result = monitoring.refresh(SimpleNamespace(tables=store), cfg)
    return time.perf_counter() - t0, (store, cfg, result)


def rows_of(store, table: str) -> list[dict]:
    rows = store.read(table).to_pylist()
    key = ("granularity", "log_type", "drift_type", "model_id", "slice_key", "slice_value", "column_name")
    return sorted(rows, key=lambda r: (str(r["window"]), *(str(r.get(k)) for k in key)))


def same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.path.insert(0, str(REPO))

    t0 = time.perf_counter()
    log, base = build(args.rows, args.days, 1, drift=True), build(args.baseline_rows, 3, 2, drift=False)
    print(f"built {log.num_rows:,} + {base.num_rows:,} rows in {time.perf_counter() - t0:.1f}s "
          f"({log.nbytes / 2**20:.0f} MiB)")
    from pyspark.sql import SparkSession

    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "4")
             .config("spark.driver.memory", "8g").getOrCreate())
    print(f"spark session start: {time.perf_counter() - t0:.1f}s (not counted)")
    with tempfile.TemporaryDirectory() as tmp:
        emb_s, (emb_store, cfg, emb) = refresh(Path(tmp) / "embedded", "embedded", log, base)
        spk_s, (spk_store, _, spk) = refresh(Path(tmp) / "spark", "spark", log, base)
        identical = True
        for table in (cfg.profile_metrics_table, cfg.drift_metrics_table):
            a, b = rows_of(emb_store, table), rows_of(spk_store, table)
            ok = len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
            identical &= ok
            print(f"{table}: {len(a)} embedded rows, {len(b)} spark rows, identical: {ok}")
    spark.stop()
    print(f"\n| engine | full refresh of {args.rows:,} rows, {args.days} windows | ratio |")
    print("|---|---|---|")
    print(f"| embedded | {emb_s:.1f} s | 1.00x |")
    print(f"| spark local[2] | {spk_s:.1f} s | {spk_s / emb_s:.2f}x |")
    print(f"identical rows: {identical}")
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
