"""Command-line entry points of the gating package (registered in driftgate/cli.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from driftgate.runtime import AsOfOpt, ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of, workspace_from

if TYPE_CHECKING:  # the gating package loads pyarrow and numpy: not for --help
    from driftgate.gating.decision import Decision

_COLOURS = {"EXCEEDED": "bold red", "OK": "bold green", "INSUFFICIENT_DATA": "bold yellow",
            "STALE": "bold yellow", "ERROR": "bold magenta"}


def gate(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    now: Annotated[str | None, typer.Option(help="the same as --as-of (kept for scripts)")] = None,
    trigger: Annotated[str, typer.Option(help="what asked for the decision (recorded)")] = "manual",
    record: Annotated[bool, typer.Option(
        help="record the decision (MLflow run, decisions row, audit event, task values); --no-record records "
             "and publishes nothing, to replay history or ask what-if")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="print the decision as JSON only")] = False,
) -> None:
    """Evaluate the drift gate and print the decision with its reasons.

    The evaluate_drift task (:func:`driftgate.tasks.evaluate`): records the decision, notifies
    an EXCEEDED one and sets the task values. Exit code 0 whatever the verdict.
    """
    from driftgate import tasks

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        when = parse_as_of(as_of) or parse_as_of(now, "--now")
        if record:
            decision = tasks.evaluate(ws, job=tasks.JobContext(trigger=trigger), now=when)
        else:
            from driftgate import gating

            decision = gating.evaluate(ws, ws.settings.gate, now=when, trigger=trigger, publish=False, record=False)
    if json_out:
        console.print_json(decision.to_json())
    else:
        render(decision)


def render(decision: Decision) -> None:
    """Print a decision: the verdict, then one row per rule with its reason."""
    colour = _COLOURS.get(decision.status, "bold")
    console.print(f"[{colour}]{decision.status}[/]  drift_exceeded={str(decision.drift_exceeded).lower()}  "
                  f"(combine {decision.combine}, profile {decision.profile}, trigger {decision.trigger}, "
                  f"as of {decision.evaluated_at:%Y-%m-%d %H:%M} UTC)")
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("rule", "status", "condition", "fired (latest window)", "reason"):
        table.add_column(col, overflow="fold")
    for r in decision.reasons:
        cond = f"{r.metric}{' |x|' if r.abs else ''} {r.op} {r.threshold:g}; {r.aggregate}; {r.persistence}"
        fired = ", ".join(r.fired_columns[:6]) + (" ..." if len(r.fired_columns) > 6 else "")
        table.add_row(r.name, f"[{_COLOURS.get(r.status, '')}]{r.status}[/]", cond, fired or "-", r.reason)
    console.print(table)
    console.print(f"decision {decision.decision_id}", style="dim")
