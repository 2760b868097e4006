"""Command-line start-up: ``driftgate --help``, ``status`` and ``config`` against ``import typer``.

Every figure is the median of ``--repeat`` fresh processes, measured in the same run as the
baseline ``python -c "import typer"`` (the rounds interleave the commands, so load on the
machine hits them alike). Targets (issue 12, a responsive CLI):

* ``driftgate --help``  at most  4x the baseline (loads no settings, stage or heavy library);
* ``driftgate status``  at most 25x the baseline (settings, the registry's aliases through
  MLflow, the audit trail's Delta table);
* ``driftgate config``  is shown for information (settings only), without a target.

``status`` reads a small local workspace the script builds first (not timed) in a temp dir:
one registered model with three versions (a dummy scikit-learn classifier logged in an MLflow
run with validation metrics), aliases ``champion`` → v2, ``previous_champion`` → v1,
``challenger`` → v3 (with shadow tags), and eight audit events (gate decisions, trigger
firings, a job run, a shadow, a promotion) in the Delta events table. Usage::

    python benchmarks/cli_bench.py                # 5 rounds
    python benchmarks/cli_bench.py --repeat 9 --check   # exit 1 if a target is missed
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1", "COLUMNS": "120"}
TARGETS = {"driftgate --help": 4.0, "driftgate status": 25.0}


def driftgate_command() -> list[str]:
    """The console script next to this interpreter (what a user types), else ``python -m driftgate.cli``."""
    script = Path(sys.executable).with_name("driftgate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "driftgate.cli"]


def prepare_workspace(root: Path) -> list[str]:
    """Build the small workspace ``status`` reads; returns the options that point a command at it."""
    os.environ.update({k: ENV[k] for k in ("MLFLOW_DISABLE_TELEMETRY", "OMP_NUM_THREADS")})
    options = ["--conf", str(REPO / "conf"), "--env", "local", "--set", f"workspace.root={root}"]
    import mlflow
    import numpy as np
    from sklearn.dummy import DummyClassifier

    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace
    from driftgate.workspace.audit import record_event

    ws = open_workspace(load_settings(REPO / "conf", "local", (f"workspace.root={root}",)))
    ws.activate_mlflow()
    name = ws.settings.project.model_name
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    versions = []
    for i in range(3):
        with mlflow.start_run(run_name=f"train-{i}"):
            mlflow.log_metrics({"val_roc_auc": 0.70 + i / 100, "val_accuracy_score": 0.65 + i / 100})
            info = mlflow.sklearn.log_model(DummyClassifier().fit(x, y), name="model", pip_requirements=["scikit-learn"])
        versions.append(ws.registry.register(info.model_uri, name).version)
    for alias, version in (("previous_champion", versions[0]), ("champion", versions[1]), ("challenger", versions[2])):
        ws.registry.set_alias(name, alias, version)
    ws.registry.set_tag(name, versions[1], "driftgate_decision", "promoted")
    ws.registry.set_tag(name, versions[2], "driftgate_shadow_status", "FAIL")
    ws.registry.set_tag(name, versions[2], "driftgate_challenger_roc_auc", "0.7012")
    for kind, subject, status, details in (
            ("gate_decision", "drift", "OK", {"summary": "no rule fired"}),
            ("trigger_fired", "table_update", "fired", {"run_key": "delta:t@v3"}),
            ("gate_decision", "drift", "EXCEEDED", {"summary": "psi on usage_gb"}),
            ("job_run", "job", "SUCCESS", {"branch": "retrain"}),
            ("shadow", f"v{versions[1]}", "PASS", {"reasons": ["roc_auc +0.03"]}),
            ("promotion", f"v{versions[1]}", "promoted", {"reason": "shadow passed"}),
            ("trigger_fired", "table_update", "fired", {"run_key": "delta:t@v4"}),
            ("gate_decision", "drift", "EXCEEDED", {"summary": "f1 drop"})):
        record_event(ws, kind, subject=subject, status=status, details=details)
    return options


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per command (median)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="driftgate-cli-bench-"))
    try:
        t0 = time.perf_counter()
        options = prepare_workspace(tmp / ".driftgate")
        print(f"workspace: {tmp / '.driftgate'} (built in {time.perf_counter() - t0:.1f}s)")
        cli = driftgate_command()
        commands = {
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "driftgate --help": [*cli, "--help"],
            "driftgate status": [*cli, "status", *options],
            "driftgate config": [*cli, "config", *options],
        }
        for argv_ in commands.values():  # warm the file cache and byte-code once, untimed
            timed(argv_, tmp)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.repeat):
            for label, argv_ in commands.items():
                times[label].append(timed(argv_, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    medians = {label: statistics.median(ts) for label, ts in times.items()}
    baseline = medians["python -c 'import typer'"]
    missed = []
    print(f"{'command':<28} {'median s':>9} {'x baseline':>11} {'target':>8}")
    for label, median in medians.items():
        ratio = median / baseline
        target = TARGETS.get(label)
        verdict = "" if target is None else ("  ok" if ratio <= target else "  MISSED")
        if target is not None and ratio > target:
            missed.append(label)
        print(f"{label:<28} {median:>9.3f} {ratio:>10.1f}x {f'{target:g}x' if target else '-':>8}{verdict}")
    print(f"median of {args.repeat} fresh processes each; command: {' '.join(cli)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
