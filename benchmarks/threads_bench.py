"""Threads: a small fit under OpenMP's own default against ``training.n_jobs`` choices.

Fits the demo's HistGradientBoosting pipeline (the training stage's, uncalibrated) on
``--rows`` rows, ``--repeat`` times each, with

* ``openmp-default``: no limit (what the product did before ``training.n_jobs``);
* ``n_jobs-default``: ``threadpool_limits(training.n_jobs default)``: the cores available to
  the process (affinity, capped by a container's CPU quota);
* ``n_jobs=1``: one thread;

and prints the median wall time of each and its ratio to ``n_jobs=1`` measured in the same run.
On a quiet machine with few cores the three are close; the difference shows when other
processes compete for the cores (the 33 s vs 3.5 s spike) or when a container's quota is
below the machine's core count. Do not set OMP_NUM_THREADS when running it.

    python benchmarks/threads_bench.py --rows 1095 --repeat 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1095)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if "OMP_NUM_THREADS" in os.environ:
        print("note: OMP_NUM_THREADS is set, so 'openmp-default' is not OpenMP's own default", flush=True)

    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from driftgate.training.config import TrainingConfig, available_cores
    from driftgate.training.model import build_pipeline, quiet_fit

    sys.path.insert(0, str(REPO / "tests"))
    import training_world as tw

    frame = tw.events(days=max(1, args.rows // 40), rows_per_day=40).head(args.rows)
    cfg = TrainingConfig()
    x, y = frame[tw.NUMERIC + tw.CATEGORICAL], frame["label"].to_numpy()

    def fit_seconds() -> float:
        model = build_pipeline(cfg, "binary", {"early_stopping": False, "random_state": 0}, tw.NUMERIC,
                               tw.CATEGORICAL, calibrate=False)
        start = time.perf_counter()
        with quiet_fit():
            model.fit(x, y)
        return time.perf_counter() - start

    fit_seconds()  # warm-up: imports, loads OpenMP, first allocation
    openmp = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    print(f"{len(frame):,} rows; machine cores {os.cpu_count()}, available to the process {available_cores()}, "
          f"OpenMP default threads {openmp}", flush=True)
    plan = [("openmp-default", None), ("n_jobs-default", available_cores()), ("n_jobs=1", 1)]
    times = {}
    for label, limit in plan:
        runs = []
        for _ in range(args.repeat):
            if limit is None:
                runs.append(fit_seconds())
            else:
                with threadpool_limits(limits=limit):
                    runs.append(fit_seconds())
        times[label] = statistics.median(runs)
    base = times["n_jobs=1"]
    for label, seconds in times.items():
        print(f"{label:16s} median {seconds * 1000:8.1f} ms  ratio to n_jobs=1 {seconds / base:5.2f}", flush=True)


if __name__ == "__main__":
    main()
