"""``driftgate backtest``: what each rule set would have done on this inference table's history."""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of, settings_from

_COLUMNS = (("policy", "policy"), ("windows", "windows"), ("gate_firings", "fired"),
            ("cooldown_skips", "cooldown"), ("retrains", "retrains"), ("promotions", "promoted"),
            ("mean_roc_auc", "AUC"), ("mean_accuracy", "accuracy"), ("roc_auc_vs_never", "ΔAUC never"),
            ("detection_delay_days", "detect (d)"), ("promotion_delay_days", "promote (d)"),
            ("rows_to_promotion", "rows→promote"), ("seconds", "seconds"), ("train_seconds", "train s"))


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def backtest(
    start: Annotated[str, typer.Option("--from", help="first served time to replay (ISO 8601, UTC)")],
    end: Annotated[str, typer.Option("--to", help="end of the replay, exclusive (ISO 8601, UTC)")],
    rules: Annotated[list[str] | None, typer.Option(
        "--rules", help="a rule set: a YAML file (a conf layer: gate: {...}) or '\\[name:]key=value;key=value' "
                        "(repeatable; none: the configuration as it is)", show_default=False)] = None,
    every: Annotated[int, typer.Option(
        "--every", help="baseline: retrain every N days (the same shadow criteria promote); 0: no such baseline")] = 7,
    change_at: Annotated[str | None, typer.Option(
        "--change-at", help="a known change time: detection and promotion delays are measured from it",
        show_default=False)] = None,
    window_days: Annotated[int, typer.Option("--window-days", help="days per replayed window")] = 1,
    output: Annotated[Path | None, typer.Option(
        "--output", help="folder for the scratch workspaces, tables and chart (default: a new temp folder)",
        show_default=False)] = None,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", help="MLflow experiment of the report runs (default: the project's)",
        show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
) -> None:
    """Replay a date range of the inference table for each rule set, the never-retrained first
    champion and retraining every N days, each in a scratch workspace; report per window and in total.

    Your workspace is only read (plus one MLflow run per rule set with the report).
    """
    from driftgate.backtest import RuleSet, parse_rule_set, run_backtest

    with cli_errors():
        sets = tuple(set_ or ())
        rule_sets = [parse_rule_set(r) for r in rules or []] or [RuleSet("configured", (), "conf")]
        out = output or Path(tempfile.mkdtemp(prefix="driftgate-backtest-"))
        result = run_backtest(
            lambda extra: settings_from(conf, env, [*sets, *extra]),
            start=parse_as_of(start, "--from"), end=parse_as_of(end, "--to"), rule_sets=rule_sets,
            every_days=every or None, change_at=parse_as_of(change_at, "--change-at"), output=out,
            window_days=window_days, experiment=experiment,
            say=lambda msg: console.print(f"[dim]•[/] {msg}", highlight=False))
    if json_out:
        console.print_json(json.dumps([asdict(s) for s in result.summaries], default=str).replace("NaN", "null"))
        return
    table = Table(title=f"backtest {start} → {end}")
    for _, title in _COLUMNS:
        table.add_column(title, justify="left" if title == "policy" else "right")
    for summary in result.summaries:
        table.add_row(*(_cell(getattr(summary, key)) for key, _ in _COLUMNS))
    # 14 columns: wider than 80 even in a pipe
    Console(width=max(console.width, 160), highlight=False).print(table)
    for name, path in result.files.items():
        console.print(f"{name}: {path}", highlight=False)
    for name, run_id in result.run_ids.items():
        console.print(f"MLflow run ({name}): {run_id}", highlight=False)
