"""Tuning with vs without pruning: wall time and best score of the same study, in one run.

Builds the demo world (``driftgate.demo.build_world``: ~60 days of labelled churn
requests and their point-in-time features) in two fresh workspaces, then runs the
same Optuna study (TPE, same seed, same search space, same folds) twice:

* ``baseline``: no pruning (``tuning.pruner=none``), every trial scores every fold;
* ``pruned``: the configured pruner (median by default) on the running CV score.

Prints wall time and best CV score of each, the time saved and the score gap. The
issue's target: pruning saves at least 30% of the time for a best score within noise.
Usage::

    python benchmarks/tune_bench.py                          # 50 trials on the demo data
    python benchmarks/tune_bench.py --trials 15 --rows-per-day 150   # quick check
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# One OpenMP thread per fit: on a shared machine, HistGradientBoosting's spinning threads
# otherwise measure the neighbours' load more than the study. Both studies run alike.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from driftgate.config import load_settings  # noqa: E402


def run_study(root: Path, pruner: str, args) -> tuple[float, object]:
    import training
    from driftgate import demo
    from workspace import open_workspace

    settings = load_settings(REPO / "conf", "local", (
        f"workspace.root={root}", f"demo.rows_per_day={args.rows_per_day}", f"tuning.pruner={pruner}",
        f"tuning.cv_folds={args.folds}", f"tuning.study_name=bench-{pruner}",
    ))
    ws = open_workspace(settings)
    demo.build_world(ws)
    ws.activate_mlflow()
    start = time.perf_counter()
    result = training.tune(ws, n_trials=args.trials)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rows-per-day", type=int, default=600, help="demo traffic (600 = the demo's)")
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftgate-tune-bench-") as tmp:
        results = {}
        for label, pruner in (("baseline (no pruning)", "none"), ("pruned (median)", "median")):
            seconds, result = run_study(Path(tmp) / pruner, pruner, args)
            results[label] = (seconds, result)
            print(f"{label:24s} {seconds:8.1f} s  best {result.metric} {result.best_value:.4f}  "
                  f"({result.n_complete} complete, {result.n_pruned} pruned)", flush=True)
    (base_s, base), (pruned_s, pruned) = results.values()
    saved = 1 - pruned_s / base_s
    print(f"time ratio pruned/baseline {pruned_s / base_s:.2f}  (saved {saved:.0%}; target >= 30%)")
    print(f"best score gap {pruned.best_value - base.best_value:+.4f} "
          f"({'pruned better' if pruned.best_value >= base.best_value else 'baseline better'})")


if __name__ == "__main__":
    main()
