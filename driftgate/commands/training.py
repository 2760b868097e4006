"""Command-line entry points of the training package (registered in driftgate/cli.py)."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, workspace_from

TriggerOpt = Annotated[str, typer.Option("--trigger", help="why this run happened (tagged on the run)")]
DecisionOpt = Annotated[Optional[str], typer.Option("--decision-id", help="the gate decision that asked for it",
                                                    show_default=False)]
ParamsOpt = Annotated[Optional[str], typer.Option(
    "--params", help='estimator parameters as JSON, e.g. \'{"learning_rate": 0.05}\'', show_default=False)]
BestOpt = Annotated[bool, typer.Option("--use-best-params/--no-best-params",
                                       help="start from the tuning study's best parameters")]
TrialsOpt = Annotated[Optional[int], typer.Option(
    "--n-trials", "-n", min=0, show_default=False,
    help="total finished trials wanted in the study (default / 0: tuning.n_trials)")]
TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", min=0, show_default=False, help="seconds this call may spend (default / 0: tuning.timeout_seconds)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _params(raw: str | None) -> dict | None:
    from driftgate.core.errors import ConfigError

    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params: must be a JSON object, got {raw!r} ({exc.msg})", key="params") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--params: must be a JSON object, got {type(value).__name__}", key="params")
    return value


def train(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    trigger: TriggerOpt = "manual",
    decision_id: DecisionOpt = None,
    params: ParamsOpt = None,
    use_best_params: BestOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train, log and register a candidate as an MLflow run; a registered one becomes the challenger."""
    from driftgate import tasks

    with cli_errors():
        parsed = _params(params)
        ws = workspace_from(conf, env, set_)
        with console.status(f"training {ws.settings.training.estimator} on {ws.settings.training.table}"):
            result = tasks.train(ws, job=tasks.JobContext(trigger=trigger), decision_id=decision_id,
                                 params=parsed, use_best_params=use_best_params)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    wanted = {ws.settings.tuning.metric, *ws.settings.training.quality_floor, "roc_auc", "log_loss"}
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k.split("_", 1)[1] in wanted}
    console.print(f"run [bold]{result.run_id}[/]  {shown}", highlight=False)
    if result.registered:
        console.print(f"[green]registered[/] {ws.settings.project.model_name} version {result.version} "
                      "as the challenger")
    else:
        console.print(f"[yellow]not registered[/]: {result.refused_reason}")


def tune(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    n_trials: TrialsOpt = None,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune hyperparameters with an Optuna study (nested MLflow runs, resumable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftgate import tasks

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        n_trials, timeout = n_trials or None, timeout or None  # 0 (the MLproject default) means "as configured"
        target = n_trials or ws.settings.tuning.n_trials
        metric = ws.settings.tuning.metric
        columns = (TextColumn("[bold]tuning[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("starting", total=target)

            def on_trial(p) -> None:
                best = "n/a" if p.best_value is None else f"{p.best_value:.4f}"
                bar.update(task, completed=p.finished,
                           description=f"best {metric} {best}  (trial {p.last_number} {p.last_state.lower()})")

            result = tasks.tune(ws, n_trials=n_trials, timeout=timeout, progress=on_trial)
            bar.update(task, completed=result.n_finished)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    console.print(
        f"study [bold]{result.study_name}[/] ({result.storage}): {result.n_finished} finished "
        f"({result.n_complete} complete, {result.n_pruned} pruned), {result.n_new} run now",
        highlight=False,
    )
    if result.best_trial is not None:
        console.print(f"best {result.metric} {result.best_value:.4f} (trial {result.best_trial}): "
                      f"{json.dumps(result.best_params, sort_keys=True)}", highlight=False)
        console.print("retrain with them: [bold]driftgate train --use-best-params[/]")
