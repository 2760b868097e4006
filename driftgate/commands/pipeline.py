"""Command-line entry points of the whole loop: ``demo`` and ``run``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from driftgate.runtime import AsOfOpt, ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of, workspace_from


def demo(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Build the demo world and run the whole loop once (settings: --env demo unless another is given)."""
    from driftgate.pipeline import run_demo

    with cli_errors():
        ws = workspace_from(conf, env or "demo", set_)
        summary = run_demo(ws, say=lambda msg: console.print(f"[dim]•[/] {msg}", highlight=False))
    print_demo_summary(summary, ws)


def run(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    trigger: str = "manual",
    run_key: str | None = None,
    as_of: AsOfOpt = None,
) -> None:
    """Run the retraining job once: evaluate → condition → train → shadow → promote.

    --as-of replays the job at that time: the gate judges staleness and open windows against it
    and shadow leaves out rows served after it (the tables should hold history up to it).
    """
    from driftgate.pipeline import run_retraining_job

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        result = run_retraining_job(ws, trigger=trigger, run_key=run_key, now=parse_as_of(as_of))
    console.print_json(json.dumps(result.as_dict(), default=str))


def print_demo_summary(summary, ws) -> None:
    name = ws.settings.project.model_name
    console.rule("[bold]driftgate demo: summary")
    for i, run in enumerate(summary.runs, 1):
        decision = run.decision
        status = decision.status
        console.print(f"[bold]job run {i}[/] ({run.run_key}): gate [bold]{status}[/]", highlight=False)
        for reason in _reason_lines(decision)[:6]:
            console.print(f"    {reason}", highlight=False)
        if run.branch == "skip":
            console.print("    retraining branch skipped", highlight=False)
            continue
        train = run.train
        if not train.registered:
            console.print(f"    candidate not registered: {train.refused_reason}", highlight=False)
            continue
        shadow = run.shadow
        console.print(
            f"    challenger v{train.version}: shadow {shadow.status} "
            f"against champion v{shadow.champion_version}", highlight=False)
        for reason in list(getattr(shadow, "reasons", []))[:4]:
            console.print(f"      - {reason}", highlight=False)
        verdict = "[green]promoted[/]" if run.promoted else "[yellow]refused[/]"
        console.print(f"    {verdict}: {getattr(run.promotion, 'reason', '')}", highlight=False)
    table = Table(title=None, show_header=True)
    table.add_column("model")
    table.add_column("champion now")
    table.add_column("served rows")
    table.add_row(name, f"v{summary.champion}", str(summary.served_rows))
    console.print(table)
    root = ws.root
    console.print(f"Tables: {root / 'lakehouse'}  ·  MLflow UI: make mlflow-ui "
                  f"(backend sqlite:///{root / 'mlflow.db'})", highlight=False)


def _reason_lines(decision) -> list[str]:
    lines = []
    for rule in getattr(decision, "reasons", []) or []:
        lines.append(f"{rule.name}: {rule.status} - {rule.reason}")
    return lines


def init(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    train: Annotated[bool, typer.Option("--train", help="train the first champion from training.table")] = False,
    version: Annotated[str | None, typer.Option(
        "--version", help="adopt this registered version as the first champion (with --holdout)")] = None,
    holdout: Annotated[Path | None, typer.Option(
        "--holdout", help="the adopted version's held-out rows (.csv, .parquet, .jsonl): inputs, label, timestamp")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Create the workspace and the MLflow experiment; with --train or --version, bootstrap the model.

    Without options it prints the experiment name only (what `make demo` reads). With --train it
    trains and registers the first model from training.table; with --version it adopts a
    registered version. Either way the version becomes champion (if the model has none) and its
    scored held-out rows become the monitor's baseline table; an `init` audit event records it.
    """
    from driftgate.core.errors import ConfigError

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        ws.experiment_id()
        if not train and version is None:
            if holdout is not None:
                raise ConfigError("--holdout: goes with --version (the registered version those rows belong to)")
            print(ws.settings.project.experiment_name)
            return
        if train and version is not None:
            raise ConfigError("--train and --version: choose one (train a first model, or adopt a registered one)")
        from driftgate.monitoring.traffic import read_rows
        from driftgate.promotion.bootstrap import bootstrap

        rows = read_rows(holdout) if holdout is not None else None
        result = bootstrap(ws, version=version, holdout=rows)
    if json_out:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    what = "trained and registered" if result.trained else "adopted"
    champion = "made champion" if result.champion_set else "already champion"
    console.print(f"{result.model_name} version {result.version}: {what}, {champion}; baseline "
                  f"{result.baseline_table} ({result.baseline_rows} scored held-out rows)", highlight=False)
