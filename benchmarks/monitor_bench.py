"""Monitor speed: driftgate's embedded engine against Evidently, direct SciPy, and a plain read.

Builds a baseline and a current window of ``--rows`` rows each (20 numeric columns of mixed
shapes, 5 categorical columns of 20 Zipf-weighted levels; drift injected into 5 numeric and
1 categorical column), writes them as Parquet, and times in the same run, each method in
its own process (so peak memory is its own), median of ``--repeats`` runs:

- ``read``: one plain read pass of both files into Arrow (the floor);
- ``driftgate``: the embedded engine (``monitoring.engine.compute``) on the Arrow tables:
  profiles of both sides plus KS, Wasserstein, PSI, chi-squared, JS, TV, L-inf drift;
- ``scipy``: the same drift statistics computed directly with NumPy/SciPy
  (``ks_2samp``, ``wasserstein_distance``, decile PSI, ``chi2_contingency``, ``jensenshannon``);
- ``evidently``: Evidently's ``Report([DataDriftPreset()]).run`` on pandas frames
  (needs the ``bench`` extra: ``pip install -e '.[bench]'``; skipped above ``--evidently-max-rows``).

Peak memory is the process's peak RSS above its RSS once the input is loaded, relative to
the input's in-memory size.

``--incremental`` times the other target instead: ``monitoring.refresh`` of one new day
appended to ``--days`` days of history (local Delta tables) against a refresh of a table
holding that one day alone. Usage::

    python benchmarks/monitor_bench.py                      # 1,000,000 rows, 3 repeats
    python benchmarks/monitor_bench.py --rows 10000000 --repeats 1
    python benchmarks/monitor_bench.py --incremental --rows 20000 --days 30
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
N_NUMERIC, N_CATEGORICAL, LEVELS = 20, 5, 20
DRIFTED = {"num_00": "mean +0.25 sd", "num_01": "mean +0.25 sd", "num_02": "mean +0.25 sd",
           "num_03": "scale x1.3", "num_04": "10% of rows +2 sd", "cat_00": "level shares reweighted"}


def _frame(rows: int, seed: int, drift: bool, day: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    start = np.datetime64("2026-01-01T00:00:00", "us") + np.timedelta64(day, "D")
    cols["ts"] = pa.array(start + (np.arange(rows) * (86_400_000_000 // rows)).astype("timedelta64[us]"),
                          pa.timestamp("us", tz="UTC"))
    for i in range(N_NUMERIC):
        kind = i % 4
        if kind == 0:
            x = rng.normal(0, 1, rows)
        elif kind == 1:
            x = rng.lognormal(0, 0.5, rows)
        elif kind == 2:
            x = rng.uniform(0, 10, rows)
        else:
            x = rng.exponential(2.0, rows)
        sd = x.std()
        if drift and i in (0, 1, 2):
            x = x + 0.25 * sd
        if drift and i == 3:
            x = x.mean() + (x - x.mean()) * 1.3
        if drift and i == 4:
            hit = rng.random(rows) < 0.1
            x = np.where(hit, x + 2 * sd, x)
        cols[f"num_{i:02d}"] = pa.array(x)
    weights = 1.0 / np.arange(1, LEVELS + 1)
    for j in range(N_CATEGORICAL):
        w = weights[::-1] if (drift and j == 0) else weights
        codes = rng.choice(LEVELS, rows, p=w / w.sum())
        levels = pa.array([f"level_{k:02d}" for k in range(LEVELS)])
        cols[f"cat_{j:02d}"] = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), levels).cast(pa.string())
    return pa.table(cols)


def _build(rows: int, folder: Path) -> None:
    for name, seed, drift, day in (("baseline", 1, False, 0), ("current", 2, True, 1)):
        table = _frame(rows, seed, drift, day)
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=1 << 20)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the methods, each run in its own process ---------------------------------------------------


def _read(folder: Path):
    return pq.read_table(folder / "baseline.parquet"), pq.read_table(folder / "current.parquet")


def _driftgate(base: pa.Table, cur: pa.Table) -> int:
    from monitoring import engine
    from monitoring.config import MonitorConfig, TimeSeriesConfig

    cfg = MonitorConfig(table_name="bench.bench.current", output_schema_name="bench.bench",
                        baseline_table_name="bench.bench.baseline", inference_log=None,
                        time_series=TimeSeriesConfig(timestamp_col="ts", granularities=["1 day"]),
                        exclude_columns=[])
    plan = engine.plan_for(cfg, cur.schema)
    profile, drift = engine.compute(plan, cur, base)
    return drift.num_rows


def _scipy(base: pa.Table, cur: pa.Table) -> int:
    import pyarrow.compute as pc
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    out = 0
    for name in cur.column_names:
        if name.startswith("num_"):
            a = base[name].to_numpy()
            b = cur[name].to_numpy()
            stats.ks_2samp(a, b)
            stats.wasserstein_distance(a, b)
            edges = np.quantile(a, np.arange(1, 10) / 10)
            p = np.bincount(np.searchsorted(edges, a), minlength=10) / a.size
            q = np.bincount(np.searchsorted(edges, b), minlength=10) / b.size
            p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
            float(np.sum((q - p) * np.log(q / p)))
            out += 1
        elif name.startswith("cat_"):
            va, vb = pc.value_counts(base[name]), pc.value_counts(cur[name])
            ca = dict(zip(va.field("values").to_pylist(), va.field("counts").to_pylist()))
            cb = dict(zip(vb.field("values").to_pylist(), vb.field("counts").to_pylist()))
            keys = sorted(set(ca) | set(cb))
            x = np.array([ca.get(k, 0) for k in keys], float)
            y = np.array([cb.get(k, 0) for k in keys], float)
            stats.chi2_contingency(np.vstack([x, y]))
            p, q = x / x.sum(), y / y.sum()
            jensenshannon(p, q, base=2)
            float(0.5 * np.abs(p - q).sum()), float(np.abs(p - q).max())
            out += 1
    return out


def _evidently(base: pa.Table, cur: pa.Table) -> int:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, now = base.drop_columns(["ts"]).to_pandas(), cur.drop_columns(["ts"]).to_pandas()
    Report([DataDriftPreset()]).run(current_data=now, reference_data=ref)
    return len(ref.columns)


def _worker(method: str, folder: Path, repeats: int) -> None:
    sys.path.insert(0, str(REPO))
    if method != "read":
        base, cur = _read(folder)
        loaded = _rss_mb()
        input_mb = (base.nbytes + cur.nbytes) / 2**20
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if method == "read":
            base, cur = _read(folder)
        elif method == "driftgate":
            _driftgate(base, cur)
        elif method == "scipy":
            _scipy(base, cur)
        elif method == "evidently":
            _evidently(base, cur)
        times.append(time.perf_counter() - t0)
        if method == "read":
            loaded, input_mb = _rss_mb(), (base.nbytes + cur.nbytes) / 2**20
            del base, cur
    print(json.dumps({"method": method, "median_s": statistics.median(times), "runs": times,
                      "peak_extra_mb": max(0.0, _peak_mb() - loaded), "input_mb": input_mb}))


def _run(method: str, folder: Path, repeats: int) -> dict | None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, __file__, "--worker", method, "--dir", str(folder),
                           "--repeats", str(repeats)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {method}: failed ({tail})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _incremental(rows_per_day: int, days: int, repeats: int) -> None:
    """One new day into ``days`` days of history vs that day alone, through monitoring.refresh."""
    sys.path.insert(0, str(REPO))
    import monitoring
    from driftgate.config import load_settings
    from workspace.context import Workspace
    from workspace.registry import FakeRegistry
    from workspace.tables import DeltaTableStore
    from workspace.task_values import LocalTaskValues

    def workspace(root: Path):
        settings = load_settings(REPO / "conf", "local", (f"workspace.root={root}",))
        return Workspace(settings=settings, tables=DeltaTableStore(root / "lakehouse"), registry=FakeRegistry(),
                         task_values=LocalTaskValues(root, "bench", "monitor"), tracking_uri="", registry_uri="",
                         root=root)

    from monitoring.config import MonitorConfig, TimeSeriesConfig

    cfg = MonitorConfig(table_name="bench.bench.current", output_schema_name="bench.bench",
                        baseline_table_name="bench.bench.baseline", inference_log=None,
                        time_series=TimeSeriesConfig(timestamp_col="ts", granularities=["1 day"]),
                        exclude_columns=[])
    baseline = _frame(rows_per_day, 1, False, -7)
    new_day = _frame(rows_per_day, 99, True, days)
    grown, alone = [], []
    with tempfile.TemporaryDirectory(prefix="monitor-inc-") as tmp:
        for r in range(repeats):
            ws = workspace(Path(tmp) / f"history{r}")
            ws.tables.write(cfg.baseline_table_name, baseline)
            for day in range(days):
                ws.tables.write(cfg.table_name, _frame(rows_per_day, 2 + day, day >= days // 2, day))
            monitoring.refresh(ws, cfg)
            ws.tables.write(cfg.table_name, new_day)
            t0 = time.perf_counter()
            res = monitoring.refresh(ws, cfg)
            grown.append(time.perf_counter() - t0)
            assert len(res.windows) == 1, res.summary()
            t0 = time.perf_counter()
            assert monitoring.refresh(ws, cfg).noop
            noop = time.perf_counter() - t0
            one = workspace(Path(tmp) / f"alone{r}")
            one.tables.write(cfg.baseline_table_name, baseline)
            one.tables.write(cfg.table_name, new_day)
            t0 = time.perf_counter()
            monitoring.refresh(one, cfg)
            alone.append(time.perf_counter() - t0)
    g, a = statistics.median(grown), statistics.median(alone)
    print(f"{rows_per_day:,} rows/day, 25 columns: refresh of 1 new day into {days} days of history "
          f"{g * 1000:.0f} ms vs that day alone {a * 1000:.0f} ms = {g / a:.2f}x (target <= 1.5x); "
          f"no-op refresh {noop * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side (baseline and current)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidently-repeats", type=int, default=1)
    parser.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    parser.add_argument("--methods", default="read,driftgate,scipy,evidently")
    parser.add_argument("--incremental", action="store_true", help="time incremental refresh instead")
    parser.add_argument("--days", type=int, default=30, help="days of history (--incremental)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, Path(args.dir), args.repeats)
        return
    if args.incremental:
        _incremental(args.rows, args.days, args.repeats)
        return

    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        _build(args.rows, folder)
        print(f"{args.rows:,} rows per side, {N_NUMERIC} numeric + {N_CATEGORICAL} categorical ({LEVELS} levels); "
              f"drift in {', '.join(DRIFTED)}; built in {time.perf_counter() - t0:.1f}s; {os.cpu_count()} cores")
        results: dict[str, dict] = {}
        for method in args.methods.split(","):
            if method == "evidently" and args.rows > args.evidently_max_rows:
                print(f"  evidently: skipped above {args.evidently_max_rows:,} rows (does not finish in minutes)")
                continue
            repeats = args.evidently_repeats if method == "evidently" else args.repeats
            res = _run(method, folder, repeats)
            if res is not None:
                results[method] = res
                print(f"  {method:10s} median {res['median_s']:8.3f}s over {len(res['runs'])} run(s); "
                      f"peak extra memory {res['peak_extra_mb']:7.0f} MB "
                      f"({res['peak_extra_mb'] / res['input_mb']:.2f}x the {res['input_mb']:.0f} MB input)")
        dg = results.get("driftgate")
        if dg:
            print("ratios (how many times driftgate's engine is faster):")
            for other in ("evidently", "scipy"):
                if other in results:
                    print(f"  vs {other:10s} {results[other]['median_s'] / dg['median_s']:8.1f}x")
            if "read" in results:
                print(f"  engine / plain read  {dg['median_s'] / results['read']['median_s']:8.1f}x the read pass")


if __name__ == "__main__":
    main()
