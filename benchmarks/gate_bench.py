"""Gate speed on a large drift metrics table: pushdown read + decide vs a full read.

Builds a local Delta drift table of ~1,000,000 rows (days × columns × drift types ×
model ids × slices, written in ten commits as refreshes would), then times, in the same run:

* ``baseline``: read the whole table (every column, every row), then decide;
* ``gate read+decide``: ``gating.evaluate.read_metrics`` (projection + filters pushed into
  the Delta scan, window horizon from the staleness limit) followed by ``gating.decide``;
* ``evaluate``: the full stage incl. recording (MLflow run, decisions row, audit event).

Prints medians and the speed-up ratio. Usage::

    python benchmarks/gate_bench.py            # ~1,000,000 rows
    python benchmarks/gate_bench.py --days 40  # ~100,000 rows, quick
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from driftgate.gating.testing import DRIFT_SCHEMA, profile_rows  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
MODELS = ["*", "1", "2", "3"]
SLICES = [(None, None), ("senior", "true"), ("senior", "false"), *[("plan", p) for p in ("basic", "standard", "premium")],
          *[("region", r) for r in ("north", "south", "east", "west", "central")]]


def drift_table(days: range, n_columns: int, rng: np.random.Generator) -> pa.Table:
    """Rows for ``days`` of a monitor with every combination of the dimensions above."""
    cols = [f"feature_{i:02d}" for i in range(n_columns)]
    combos = [(dt, m, sk, sv, c) for dt in ("BASELINE", "CONSECUTIVE") for m in MODELS for sk, sv in SLICES
              for c in cols]
    n_days, n_combo = len(days), len(combos)
    n = n_days * n_combo
    day_idx = np.repeat(np.array(list(days)), n_combo)
    starts = np.array([np.datetime64(START.replace(tzinfo=None), "us")]) + day_idx.astype("timedelta64[D]")
    ends = starts + np.timedelta64(1, "D")
    ts = pa.timestamp("us", tz="UTC")
    window = pa.StructArray.from_arrays([pa.array(starts, ts), pa.array(ends, ts)], ["start", "end"])
    window_cmp = pa.StructArray.from_arrays([pa.array(starts - np.timedelta64(1, "D"), ts), pa.array(starts, ts)],
                                            ["start", "end"])

    def tiled(i):
        return pa.array([c[i] for c in combos] * n_days, pa.string())

    psi = rng.gamma(1.0, 0.05, n)
    pvalue = rng.uniform(0, 1, n)
    test = pa.StructArray.from_arrays([pa.array(rng.uniform(0, 0.3, n)), pa.array(pvalue)], ["statistic", "pvalue"])
    null_f = pa.nulls(n, pa.float64())
    columns = {
        "window": window, "granularity": pa.array(["1 day"] * n), "model_id": tiled(1),
        "monitor_version": pa.array(np.ones(n, dtype=np.int64)), "slice_key": tiled(2), "slice_value": tiled(3),
        "column_name": tiled(4), "data_type": pa.array(["double"] * n), "window_cmp": window_cmp,
        "drift_type": tiled(0), "count_delta": pa.array(rng.normal(0, 20, n)), "avg_delta": pa.array(rng.normal(0, 1, n)),
        "percent_null_delta": null_f, "percent_zeros_delta": null_f, "percent_distinct_delta": null_f,
        "non_null_columns_delta": pa.nulls(n, DRIFT_SCHEMA.field("non_null_columns_delta").type),
        "js_distance": pa.array(rng.uniform(0, 0.2, n)), "ks_test": test,
        "wasserstein_distance": pa.array(rng.gamma(1.0, 0.1, n)), "population_stability_index": pa.array(psi),
        "chi_squared_test": pa.nulls(n, DRIFT_SCHEMA.field("chi_squared_test").type), "tv_distance": null_f,
        "l_infinity_distance": null_f,
    }
    # columns the gate does not read here (row counts) stay NULL
    return pa.Table.from_arrays([columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in DRIFT_SCHEMA],
                                schema=DRIFT_SCHEMA)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=380)
    ap.add_argument("--columns", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from deltalake import DeltaTable

    from driftgate.core.settings import load_settings
    from driftgate.gating import decide, evaluate
    from driftgate.gating.evaluate import metric_tables, read_metrics
    from driftgate.workspace import open_workspace

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        settings = load_settings(repo / "conf", "local", (f"workspace.root={tmp}/.driftgate",))
        ws = open_workspace(settings)
        gate = settings.gate
        names = metric_tables(ws, gate)
        rng = np.random.default_rng(7)
        t = time.perf_counter()
        rows = 0
        step = max(1, args.days // 10)
        for first in range(0, args.days, step):
            part = drift_table(range(first, min(first + step, args.days)), args.columns, rng)
            rows += part.num_rows
            ws.tables.write(names["drift"], part, mode="append")
        ws.tables.write(names["profile"], profile_rows(args.days), mode="overwrite")
        # gating.testing.profile_rows starts in 2026; shift "now" to the bench's last window instead
        prof = ws.tables.read(names["profile"])
        shift = (datetime(2026, 6, 1, tzinfo=timezone.utc) - START)
        w = prof["window"].combine_chunks()
        starts = pa.compute.subtract(w.field("start"), pa.scalar(shift, pa.duration("us")))
        ends = pa.compute.subtract(w.field("end"), pa.scalar(shift, pa.duration("us")))
        prof = prof.set_column(prof.schema.get_field_index("window"), "window",
                               pa.StructArray.from_arrays([starts, ends], ["start", "end"]))
        ws.tables.write(names["profile"], prof, mode="overwrite")
        build = time.perf_counter() - t
        now = START + timedelta(days=args.days, hours=3)
        model_col = settings.monitor.inference_log.model_id_col
        print(f"drift table: {rows:,} rows in {len(DeltaTable(str(ws.tables.path(names['drift']))).file_uris())} "
              f"files (built in {build:.1f}s); rules: {[r.name for r in gate.rules]}")

        def baseline():
            frames = {k: DeltaTable(str(ws.tables.path(v))).to_pyarrow_table() for k, v in names.items()}
            return decide(frames, gate, now=now, model_id_col=model_col)

        def pushdown():
            return decide(read_metrics(ws, gate, now=now), gate, now=now, model_id_col=model_col)

        t_base, d_base = timed(baseline, args.repeat)
        t_push, d_push = timed(pushdown, args.repeat)
        t_eval, d_eval = timed(lambda: evaluate(ws, gate, now=now, publish=False), max(1, args.repeat // 2))
        assert d_base.status == d_push.status == d_eval.status, (d_base.status, d_push.status, d_eval.status)
        read_rows = read_metrics(ws, gate, now=now)["drift"].num_rows
        print(f"baseline (full read + decide):   {t_base * 1000:8.1f} ms")
        print(f"gate read+decide (pushdown):     {t_push * 1000:8.1f} ms   ({read_rows:,} drift rows read)")
        print(f"evaluate (read+decide+record):   {t_eval * 1000:8.1f} ms")
        print(f"speed-up read+decide vs baseline: {t_base / t_push:.1f}x   decision: {d_push.status}")


if __name__ == "__main__":
    main()
