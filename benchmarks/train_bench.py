"""Training at scale: wall time and peak memory of ``training.train`` on 1,000,000 rows.

Builds the demo world scaled to ``--rows`` labelled requests (``driftgate.demo``'s
generator: training set + point-in-time feature table, real local Delta tables), then
measures in the same run:

* ``baseline``: the bare estimator (HistGradientBoosting, same parameters) fitted once
  on the already-joined, already-encoded training split: the floor of what training costs;
* ``train``: the whole stage: Delta reads, point-in-time join, time split, calibrated
  pipeline (3 calibration folds), metrics on three splits, MLflow tracking with lineage,
  model logging and registration.

Prints wall times, their ratio, and peak resident memory (sampled) of each.
Usage::

    python benchmarks/train_bench.py                  # 1,000,000 rows
    python benchmarks/train_bench.py --rows 100000    # quick check
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# One OpenMP thread (override with OMP_NUM_THREADS=2): on a shared machine spinning threads
# measure the neighbours' load more than the training; baseline and stage run alike.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from driftgate.core.settings import load_settings  # noqa: E402


class PeakRSS:
    """Samples this process's resident memory every 50 ms; ``peak`` is the maximum seen."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.peak = self.start = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from driftgate import training
    from driftgate import demo
    from driftgate.training.features import LocalFeatureSource, load_training_data
    from driftgate.training.estimators import fit_threads, new_estimator
    from driftgate.training.model import build_pipeline, column_kinds, estimator_params, model_input, quiet_fit, time_split
    from driftgate.workspace import FakeRegistry, open_workspace

    days = 60
    with tempfile.TemporaryDirectory(prefix="driftgate-train-bench-") as tmp:
        settings = load_settings(REPO / "conf", "local", (
            f"workspace.root={tmp}", f"demo.history_days={days}", f"demo.rows_per_day={args.rows // days}",
            f"demo.customers={max(4000, args.rows // 50)}", "training.window_days=null",
        ))
        ws = open_workspace(settings)
        t = time.perf_counter()
        demo.build_world(ws)
        print(f"demo world written in {time.perf_counter() - t:.1f} s", flush=True)
        cfg = settings.training

        # Baseline: the bare estimator on prepared arrays (join, split and encoding done outside the clock).
        data = load_training_data(ws, cfg, LocalFeatureSource(ws.tables))
        problem_type = settings.project.problem_type
        split = time_split(data.frame, cfg, problem_type)
        numeric, categorical = column_kinds(data.frame, data.features)
        prep = build_pipeline(cfg, problem_type, {}, numeric, categorical, calibrate=False).steps[0][1]
        with quiet_fit():
            x = prep.fit_transform(model_input(split.train, data.features, categorical))
        y = split.train[cfg.label_col].to_numpy()
        n_rows = len(data.frame)
        del data
        with PeakRSS() as base_mem:
            t = time.perf_counter()
            with fit_threads(cfg):  # the same thread limits as training's fits
                new_estimator(cfg, problem_type, estimator_params(cfg, problem_type)).fit(x, y)
            base_s = time.perf_counter() - t
        del x, split
        print(f"baseline (bare {cfg.estimator} fit, {len(y):,} train rows of {n_rows:,})  {base_s:7.1f} s  peak +{(base_mem.peak - base_mem.start) / 2**20:,.0f} MiB", flush=True)

        import dataclasses

        bench_ws = dataclasses.replace(ws, registry=FakeRegistry())
        with PeakRSS() as mem:
            t = time.perf_counter()
            result = training.train(bench_ws, reason={"trigger": "benchmark"})
            train_s = time.perf_counter() - t
        print(f"train (whole stage, {n_rows:,} rows)  {train_s:7.1f} s  peak +{(mem.peak - mem.start) / 2**20:,.0f} MiB "
              f"(process peak {mem.peak / 2**20:,.0f} MiB)  test roc_auc {result.metrics['test_roc_auc']:.4f}")
        print(f"time ratio train/baseline {train_s / base_s:.2f}  "
              f"(calibration fits {cfg.calibration_folds} models on {cfg.calibration_folds - 1}/"
              f"{cfg.calibration_folds} of the rows each)")


if __name__ == "__main__":
    main()
