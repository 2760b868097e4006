"""``driftgate backtest`` on the demo world: wall time of a 30-window replay with two rule sets,
and how much of it is training.

Builds the demo world (``driftgate.pipeline.start_demo``: the seeded churn world, champion v1
serving ``--windows`` days with the price-rise drift from day 6) in a temp folder, then runs,
through the command line (a subprocess, as a user would)::

    driftgate backtest --env demo --from <first served day> --to <+windows days> \\
        --rules default.yml --rules patient.yml --every 7 --change-at <drift onset>

Prints the backtest's wall time against the 10-minute budget, each policy's seconds, training
seconds (the train runs' MLflow durations) and setup (bootstrapping the first champion), and
the training share. Do not run it for figures on a loaded machine.

    python benchmarks/backtest_bench.py                 # 30 daily windows
    python benchmarks/backtest_bench.py --windows 4     # quick check that it works
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

BUDGET_SECONDS = 600.0
RULES = {  # the base defaults' cooldown, and a stricter PSI threshold with a week's cooldown
    "default.yml": "gate:\n  retrain_cooldown: 3 days\n",
    "patient.yml": ("gate:\n  retrain_cooldown: 7 days\n  rules:\n"
                    "    - name: numeric_drift_psi\n      threshold: 0.25\n"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=30)
    ap.add_argument("--every", type=int, default=7)
    args = ap.parse_args()

    import pandas as pd

    from driftgate.core.settings import load_settings
    from driftgate.pipeline import start_demo
    from driftgate.workspace import open_workspace

    tmp = Path(tempfile.mkdtemp(prefix="driftgate-backtest-bench-"))
    sets = [f"workspace.root={tmp / '.driftgate'}", f"demo.served_days={args.windows + 2}"]
    began = time.perf_counter()
    ws = open_workspace(load_settings(REPO / "conf", "demo", tuple(sets)))
    start = start_demo(ws, say=lambda _: None, today=datetime(2026, 9, 1, tzinfo=timezone.utc))
    world_s = time.perf_counter() - began
    for name, text in RULES.items():
        (tmp / name).write_text(text)
    first = start.world.history_end
    cmd = [sys.executable, "-m", "driftgate.cli", "backtest", "--conf", str(REPO / "conf"), "--env", "demo",
           *[a for s in sets for a in ("--set", s)],
           "--from", first.isoformat(), "--to", (first + timedelta(days=args.windows)).isoformat(),
           "--rules", str(tmp / "default.yml"), "--rules", str(tmp / "patient.yml"), "--every", str(args.every),
           "--change-at", start.world.drift_onset.isoformat(), "--output", str(tmp / "out")]
    began = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    summary = pd.read_csv(tmp / "out" / "summary.csv")
    training = summary["train_seconds"].sum() + summary["setup_seconds"].sum()
    print(f"world built in {world_s:.1f} s (not counted); backtest of {args.windows} daily windows, two rule sets, "
          f"every {args.every} d, never: {wall:.1f} s wall = {wall / BUDGET_SECONDS:.2f} of the 10-minute budget")
    print(summary[["policy", "gate_firings", "retrains", "promotions", "mean_roc_auc", "seconds", "train_seconds",
                   "setup_seconds"]].to_string(index=False))
    print(f"training (retrains + first champions): {training:.1f} s = {training / wall:.2f} of wall time; "
          f"per window {wall / args.windows:.1f} s")


if __name__ == "__main__":
    main()
