"""Monitor speed: driftgate's embedded engine against Evidently, direct SciPy and a plain read pass.

Builds a baseline and a current window of ``--rows`` rows each (20 numeric columns, 5
categorical columns with 20 levels; 6 numeric and 2 categorical columns drift), then
times in this one run (median of ``--repeats``):

- floor: one plain pass over every value (sum of numeric columns, value counts of categorical ones);
- driftgate: ``monitoring.engine.compute`` = full profile of both sides + BASELINE drift rows
  (KS, Wasserstein, PSI, chi-squared, JS, TV, L-infinity, deltas) for all 25 columns;
- scipy: the same drift statistics computed directly (``ks_2samp``, ``wasserstein_distance``,
  decile PSI, ``chi2_contingency``, ``jensenshannon``, TV, L-infinity) column by column;
- evidently: ``Report([DataDriftPreset()]).run(current, reference)`` (0.7.23; install the
  ``bench`` extra), once, in a subprocess with a time limit.

It prints the ratios and driftgate's peak memory (measured in a fresh subprocess) as a
multiple of the input size, then the incremental-refresh figures: a no-op refresh, and
one new day refreshed into 30 days of history (built by 30 daily refreshes) against that
one day computed alone: in the same process, in a new one, and in a new one without the
summaries the previous refresh saved.

Usage::

    python benchmarks/monitor_bench.py                 # 1M rows, incremental check
    python benchmarks/monitor_bench.py --rows 10000000 --skip-evidently --skip-incremental
    python benchmarks/monitor_bench.py --rows 100000 --repeats 3   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_NUM, N_CAT, LEVELS = 20, 5, 20
DRIFT_NUM, DRIFT_CAT = 6, 2


def build(rows: int, seed: int, drifted: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(N_NUM):
        shift = 0.25 * (1 + i % 3) if drifted and i < DRIFT_NUM else 0.0
        if i % 4 == 0:
            cols[f"num_{i}"] = rng.normal(shift, 1.0, rows)
        elif i % 4 == 1:
            cols[f"num_{i}"] = rng.lognormal(shift, 0.7, rows)
        elif i % 4 == 2:
            cols[f"num_{i}"] = rng.gamma(2.0 + shift, 3.0, rows)
        else:
            cols[f"num_{i}"] = rng.poisson(3 + 2 * shift, rows).astype(np.float64)
    levels = np.array([f"level_{k:02d}" for k in range(LEVELS)])
    base_p = 1 / np.arange(1, LEVELS + 1) ** 1.1
    for j in range(N_CAT):
        p = base_p[::-1] if drifted and j < DRIFT_CAT else base_p
        p = p / p.sum()
        cols[f"cat_{j}"] = pa.array(levels[rng.choice(LEVELS, rows, p=p)])
    return pa.table(cols)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def floor_pass(ref: pa.Table, cur: pa.Table) -> None:
    for t in (ref, cur):
        for name in t.column_names:
            col = t.column(name)
            if pa.types.is_floating(col.type):
                pc.sum(col)
            else:
                pc.value_counts(col)


def driftgate_run(ref: pa.Table, cur: pa.Table):
    from driftgate.monitoring import engine
    from driftgate.monitoring.config import MonitorConfig

    cfg = MonitorConfig(snapshot={}, baseline_table_name="main.bench.baseline", table_name="main.bench.current",
                        exclude_columns=[])
    plan = engine.plan_for(cfg, cur.schema)
    return engine.compute(plan, cur, ref, workers=2)


def scipy_run(ref: pa.Table, cur: pa.Table) -> dict:
    from scipy import stats as sps
    from scipy.spatial.distance import jensenshannon

    out = {}
    for name in ref.column_names:
        if name.startswith("num_"):
            a, b = ref.column(name).to_numpy(), cur.column(name).to_numpy()
            ks = sps.ks_2samp(a, b)
            w = sps.wasserstein_distance(a, b)
            edges = np.unique(np.quantile(a, np.arange(1, 10) / 10))
            p = np.bincount(np.searchsorted(edges, a), minlength=edges.size + 1) / a.size
            q = np.bincount(np.searchsorted(edges, b), minlength=edges.size + 1) / b.size
            p, q = np.where(p > 0, p, 1e-4), np.where(q > 0, q, 1e-4)
            out[name] = (ks.statistic, ks.pvalue, w, float(np.sum((q - p) * np.log(q / p))))
        else:
            a = ref.column(name).to_numpy(zero_copy_only=False)
            b = cur.column(name).to_numpy(zero_copy_only=False)
            ua, ca_ = np.unique(a, return_counts=True)
            ub, cb_ = np.unique(b, return_counts=True)
            keys = np.union1d(ua, ub)
            ca = np.zeros(keys.size)
            cb = np.zeros(keys.size)
            ca[np.searchsorted(keys, ua)] = ca_
            cb[np.searchsorted(keys, ub)] = cb_
            chi = sps.chi2_contingency(np.vstack([ca, cb]))
            p, q = ca / ca.sum(), cb / cb.sum()
            out[name] = (chi.statistic, chi.pvalue, jensenshannon(p, q, base=2), 0.5 * np.abs(p - q).sum(),
                         np.abs(p - q).max())
    return out


def _evidently_child(rows: int) -> None:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = build(rows, 1, False).to_pandas()
    cur = build(rows, 2, True).to_pandas()
    t0 = time.perf_counter()
    Report([DataDriftPreset()]).run(cur, ref)
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def _memory_child(rows: int) -> None:
    """Peak resident memory while driftgate runs, sampled every 2 ms, minus the resident size before."""
    import gc
    import threading

    import psutil

    ref, cur = build(rows, 1, False), build(rows, 2, True)
    input_bytes = ref.nbytes + cur.nbytes
    driftgate_run(ref.slice(0, 1000), cur.slice(0, 1000))  # imports and warm-up outside the measurement
    gc.collect()
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = before
    done = threading.Event()
    worker = threading.Thread(target=lambda: (driftgate_run(ref, cur), done.set()))
    worker.start()
    while not done.is_set():
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.002)
    worker.join()
    print(json.dumps({"input_bytes": input_bytes, "extra_bytes": max(peak - before, 0)}))


def _child(args: list[str], timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout,
                             check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        print(exc.stderr[-2000:], file=sys.stderr)
        raise
    return json.loads(out.stdout.strip().splitlines()[-1])


def incremental(rows_per_day: int, repeats: int) -> dict:
    """No-op refresh; one new day into 30 days vs. that one day alone (same baseline)."""
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace

    from driftgate import monitoring
    from driftgate.monitoring.config import MonitorConfig
    from driftgate.workspace.tables import DeltaTableStore

    cfg = MonitorConfig(slicing_exprs=["senior"])
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from monitor_data import inference_log

    base = inference_log(1, rows_per_day, seed=99, start=start - timedelta(days=5))
    with tempfile.TemporaryDirectory() as tmp:
        history = DeltaTableStore(Path(tmp) / "history")
        history.write(cfg.baseline_table_name, base)
        ws = SimpleNamespace(tables=history)
        for day in range(30):  # a daily job: append one day, refresh (the metric tables grow as in use)
            history.write(cfg.table_name, inference_log(1, rows_per_day, seed=day, start=start + timedelta(days=day)))
            monitoring.refresh(ws, cfg)
        noop = median_time(lambda: monitoring.refresh(ws, cfg), max(repeats, 5))
        import importlib

        refresh_module = importlib.import_module("driftgate.monitoring.refresh")

        into, cold, bare, alone = [], [], [], []

        def one_more_day(seed: int, offset: int) -> float:
            history.write(cfg.table_name, inference_log(1, rows_per_day, seed=seed, start=start + timedelta(days=offset)))
            t0 = time.perf_counter()
            r = monitoring.refresh(ws, cfg)
            assert r.mode == "incremental"
            return time.perf_counter() - t0

        for k in range(repeats):
            offset = 30 + 3 * k
            into.append(one_more_day(100 + k, offset))
            # what the next daily job (a new process) starts with: no summaries in memory, no
            # open table handles; the summaries the last refresh saved beside the tables
            refresh_module._SUMMARIES.clear()
            history = DeltaTableStore(history.root)
            ws = SimpleNamespace(tables=history)
            cold.append(one_more_day(200 + k, offset + 1))
            # the same without the saved summaries: the previous day is read back and profiled
            refresh_module._SUMMARIES.clear()
            shutil.rmtree(Path(history.root) / refresh_module.SUMMARY_DIR)
            history = DeltaTableStore(history.root)
            ws = SimpleNamespace(tables=history)
            bare.append(one_more_day(300 + k, offset + 2))
            single = DeltaTableStore(Path(tmp) / f"alone{k}")
            single.write(cfg.baseline_table_name, base)
            single.write(cfg.table_name, inference_log(1, rows_per_day, seed=100 + k, start=start + timedelta(days=offset)))
            t0 = time.perf_counter()
            monitoring.refresh(SimpleNamespace(tables=single), cfg)
            alone.append(time.perf_counter() - t0)
    return {"noop": noop, "into_30": statistics.median(into), "into_30_cold": statistics.median(cold),
            "into_30_bare": statistics.median(bare), "alone": statistics.median(alone)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scipy-repeats", type=int, default=3)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-timeout", type=float, default=1800)
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--skip-scipy", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only-incremental", action="store_true", help="just the incremental-refresh figures")
    parser.add_argument("--child", choices=["evidently", "memory"])
    args = parser.parse_args()
    if args.child == "evidently":
        return _evidently_child(args.rows)
    if args.child == "memory":
        return _memory_child(args.rows)

    if args.only_incremental:
        return report_incremental(args.rows_per_day)
    print(f"monitor_bench: {args.rows:,} baseline + {args.rows:,} current rows, {N_NUM} numeric + {N_CAT} "
          f"categorical ({LEVELS} levels) columns, cores={os.cpu_count()}")
    ref, cur = build(args.rows, 1, False), build(args.rows, 2, True)
    driftgate_run(ref.slice(0, 2000), cur.slice(0, 2000))  # warm-up (imports)
    t_floor = median_time(lambda: floor_pass(ref, cur), args.repeats)
    t_dg = median_time(lambda: driftgate_run(ref, cur), args.repeats)
    print(f"  floor (one read pass)   {t_floor:9.3f} s")
    print(f"  driftgate embedded      {t_dg:9.3f} s   {t_dg / t_floor:6.1f}x the floor")
    if not args.skip_scipy:
        t_sp = median_time(lambda: scipy_run(ref, cur), args.scipy_repeats)
        _, drift = driftgate_run(ref, cur)
        direct = scipy_run(ref, cur)
        worst_ks = max(abs(r["ks_test"]["statistic"] - direct[r["column_name"]][0]) for r in drift.to_pylist()
                       if r["column_name"].startswith("num_"))
        print(f"  direct numpy/scipy      {t_sp:9.3f} s   driftgate is {t_sp / t_dg:6.1f}x faster (target >= 5x)")
        print(f"  max |KS - exact KS|     {worst_ks:9.5f}     (bound 0.005)")
    mem = None if args.skip_memory else _child(["--child", "memory", "--rows", str(args.rows)], timeout=3600)
    if mem:
        ratio = mem["extra_bytes"] / mem["input_bytes"]
        print(f"  peak memory             input {mem['input_bytes'] / 1e6:,.0f} MB + driftgate working set "
              f"{mem['extra_bytes'] / 1e6:,.0f} MB = {1 + ratio:.2f}x the input (target < 2x)")
    if not args.skip_evidently:
        ev = _child(["--child", "evidently", "--rows", str(args.rows)], timeout=args.evidently_timeout)
        if ev is None:
            print(f"  evidently DataDriftPreset  > {args.evidently_timeout:.0f} s (stopped); driftgate is "
                  f"> {args.evidently_timeout / t_dg:,.0f}x faster")
        else:
            print(f"  evidently DataDriftPreset {ev['seconds']:9.3f} s   driftgate is "
                  f"{ev['seconds'] / t_dg:6.0f}x faster (target >= 100x, aim 300x; one run)")
    if not args.skip_incremental:
        report_incremental(args.rows_per_day)


def report_incremental(rows_per_day: int, repeats: int = 5) -> None:
    inc = incremental(rows_per_day, repeats)
    alone = inc["alone"]
    print(f"  incremental ({rows_per_day:,} rows/day, slices on senior, baseline set, 30 daily refreshes "
          f"before; medians of {repeats}):")
    print(f"    no-op refresh                 {inc['noop'] * 1000:8.1f} ms")
    print(f"    that one day alone            {alone:8.3f} s   (a table holding only that day)")
    print(f"    one new day into 30 days      {inc['into_30']:8.3f} s   {inc['into_30'] / alone:.2f}x alone "
          "(same process as the previous refresh)")
    print(f"    same, new process             {inc['into_30_cold']:8.3f} s   {inc['into_30_cold'] / alone:.2f}x alone "
          "(the daily job: summaries from the saved file; target <= 1.5x)")
    print(f"    same, nothing saved           {inc['into_30_bare']:8.3f} s   {inc['into_30_bare'] / alone:.2f}x alone "
          "(previous day read back and profiled)")


if __name__ == "__main__":
    main()
