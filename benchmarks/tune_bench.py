"""Tuning with vs without pruning: wall time and best score of the same study, in one run.

Builds the demo world (``driftgate.demo.build_world``: ~60 days of labelled churn
requests and their point-in-time features) once, then runs the same Optuna study (TPE,
same search space, same folds, every trial a nested MLflow run) several times:

* ``baseline``: no pruning (``tuning.pruner=none``), every trial scores every fold;
* ``noise``: the baseline again with the next seed, so the seed-to-seed difference of the
  best score says what "within noise" means on this data (skip with ``--no-noise``);
* one study per pruner in ``--pruners`` (default: the configured one), same seed as the baseline.

Prints wall time and best CV score of each, the time saved and the score gap against the
baseline. The issue's target: pruning saves at least 30% of the time for a best score within
noise. Usage::

    python benchmarks/tune_bench.py                                  # 50 trials on the demo data
    python benchmarks/tune_bench.py --pruners median,successive_halving,hyperband
    python benchmarks/tune_bench.py --trials 15 --rows-per-day 150 --no-noise   # quick check
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
# otherwise measure the neighbours' load more than the study. All studies run alike.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from driftgate.core.settings import load_settings  # noqa: E402


def settings_for(root: Path, args, *extra: str):
    return load_settings(REPO / "conf", "local", (
        f"workspace.root={root}", f"demo.rows_per_day={args.rows_per_day}", f"tuning.cv_folds={args.folds}",
        *extra))


def run_study(root: Path, label: str, pruner: str, seed: int, args) -> tuple[float, object]:
    import dataclasses

    from driftgate import training
    from driftgate.workspace import open_workspace

    base = open_workspace(settings_for(root, args))
    name, _, percentile = pruner.partition(":")  # "percentile:25" keeps the top 25% at each fold
    extra = [f"tuning.percentile={percentile}"] if percentile else []
    settings = settings_for(root, args, f"tuning.pruner={name}", f"training.seed={seed}",
                            f"tuning.study_name=bench-{label.replace(':', '-')}", *extra)
    ws = dataclasses.replace(base, settings=settings)
    ws.activate_mlflow()
    start = time.perf_counter()
    result = training.tune(ws, n_trials=args.trials)
    return time.perf_counter() - start, result


def auc_standard_error(root: Path, args, auc: float) -> float:
    """Sampling noise of a CV ROC AUC near ``auc`` on this data: the Hanley-McNeil standard
    error of each fold's AUC (its positives and negatives), combined for the mean of the folds."""
    import math

    import pandas as pd

    from driftgate.training.features import feature_source, load_training_data
    from driftgate.training.model import time_folds, time_split
    from driftgate.workspace import open_workspace

    ws = open_workspace(settings_for(root, args))
    cfg = ws.settings.training
    data = load_training_data(ws, cfg, feature_source(ws))
    split = time_split(data.frame, cfg)
    window = pd.concat([split.train, split.validation])
    y = window[cfg.label_col].to_numpy()
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variances = []
    for _, test in time_folds(window[cfg.timestamp_col], args.folds):
        n1, n2 = int(y[test].sum()), int(len(test) - y[test].sum())
        variances.append((auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n2 - 1) * (q2 - auc ** 2)) / (n1 * n2))
    return math.sqrt(sum(variances)) / len(variances)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rows-per-day", type=int, default=600, help="demo traffic (600 = the demo's)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--pruners", default=None,
                        help="comma-separated pruners to compare, e.g. median,percentile:25,hyperband "
                             "(default: tuning.pruner from conf)")
    parser.add_argument("--no-noise", action="store_true", help="skip the second-seed baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftgate-tune-bench-") as tmp:
        from driftgate import demo
        from driftgate.workspace import open_workspace

        root = Path(tmp) / ".driftgate"
        settings = settings_for(root, args)
        seed = settings.training.seed
        pruners = [p.strip() for p in (args.pruners or settings.tuning.pruner).split(",") if p.strip()]
        demo.build_world(open_workspace(settings))

        plan = [("baseline", "none", seed)]
        if not args.no_noise:
            plan.append(("noise", "none", seed + 1))
        plan += [(p, p, seed) for p in pruners]
        results = {}
        for label, pruner, s in plan:
            seconds, result = run_study(root, label, pruner, s, args)
            results[label] = (seconds, result)
            print(f"{label:20s} pruner={pruner:19s} seed={s:<3d} {seconds:7.1f} s  best {result.metric} "
                  f"{result.best_value:.4f}  ({result.n_complete} complete, {result.n_pruned} pruned)", flush=True)
        base_s, base = results["baseline"]
        se = auc_standard_error(root, args, base.best_value) if base.metric == "roc_auc" else 0.0

    noise = abs(results["noise"][1].best_value - base.best_value) if "noise" in results else 0.0
    if "noise" in results:
        print(f"optimiser noise: the unpruned study's best moves by {noise:.4f} from seed {seed} to seed {seed + 1}")
    if se:
        print(f"estimate noise: standard error of the best CV roc_auc (Hanley-McNeil over the folds) {se:.4f}")
    within = max(noise, se)
    for p in pruners:
        s, r = results[p]
        gap = r.best_value - base.best_value
        ok = (1 - s / base_s) >= 0.30 and abs(gap) <= within
        print(f"{p:20s} time ratio {s / base_s:.2f} (saved {1 - s / base_s:.0%}; target >= 30%), "
              f"best score gap {gap:+.4f} (within noise: |gap| <= {within:.4f})"
              f"  -> {'meets' if ok else 'misses'} the target")


if __name__ == "__main__":
    main()
