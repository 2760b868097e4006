"""Command-line entry points of the promotion package (registered in driftgate/cli.py)."""
from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from driftgate.runtime import (EXIT_REFUSED, AsOfOpt, ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of,
                               workspace_from)

_COLOURS = {"PASS": "bold green", "FAIL": "bold red", "INSUFFICIENT_DATA": "bold yellow", "NO_LABELS": "bold yellow",
            "promoted": "bold green", "rolled_back": "bold green", "refused": "bold red",
            "awaiting_approval": "bold yellow", "dry_run": "bold yellow", "skipped": "bold yellow"}

JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON only")]


def shadow(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    version: Annotated[str | None, typer.Option(help="challenger version (default: the one `train` registered, "
                                                     "else the challenger alias)")] = None,
    as_of: AsOfOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Shadow-evaluate the challenger against the champion on recent traffic.

    The shadow task (:func:`driftgate.tasks.shadow`); the version becomes the challenger.
    Exit code 0 whatever the verdict; ``promote`` acts on it.
    """
    from driftgate import tasks

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        result = tasks.shadow(ws, version=version, now=parse_as_of(as_of))
    if result is None:
        console.print("nothing to shadow-test: the last `train` registered no candidate (pass --version)")
    elif json_out:
        typer.echo(result.to_json())
    else:
        render_shadow(result)


def promote(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Promote the challenger the last `shadow` evaluated, only if it passed.

    The promote task (:func:`driftgate.tasks.promote`), as in the job: run ``driftgate shadow``
    first. Exit code 0 when promoted, 3 when not (refused, awaiting approval, dry run, nothing
    to promote: the reason is printed and recorded), 1 on an error.
    """
    from driftgate import promotion, tasks

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        promotion.recover(ws)  # finish a promotion a dead process left, whatever the task finds next
        outcome = tasks.promote(ws)
    _finish(outcome, json_out)


def rollback(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    reason: Annotated[str, typer.Option(help="why the champion is rolled back (recorded; required)")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Restore the previous champion, with a recorded reason. Exit code 3 when refused."""
    from driftgate import promotion

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        outcome = promotion.rollback(ws, reason=reason)
    _finish(outcome, json_out)


def _finish(outcome, json_out: bool) -> None:
    if json_out:
        typer.echo(outcome.to_json())
    else:
        colour = _COLOURS.get(outcome.status, "bold")
        console.print(f"[{colour}]{outcome.status}[/]  champion={outcome.champion_version or 'none'}  "
                      f"{outcome.reason}", highlight=False, soft_wrap=True)
    if not outcome.promoted:
        raise typer.Exit(EXIT_REFUSED)


def render_shadow(result) -> None:
    """Verdict line, metric table, guard and fairness lines of a shadow evaluation."""
    from driftgate.promotion import report

    colour = _COLOURS.get(result.status, "bold")
    console.print(f"[{colour}]{result.status}[/]  challenger v{result.challenger_version} vs champion "
                  f"{'v' + result.champion_version if result.champion_version else '(none)'}  "
                  f"({result.n_labelled}/{result.n_rows} rows labelled, run {result.run_id})", highlight=False)
    metrics = report.metric_table(result)
    if not metrics.empty:
        table = Table("metric", "champion", "challenger", "delta", header_style="bold")
        for r in metrics.itertuples():
            table.add_row(r.metric, _num(r.champion), _num(r.challenger), _num(r.delta, sign=True))
        console.print(table)
    for key in ("agreement_rate", "probability_js_distance"):
        if key in result.metrics:
            console.print(f"{key}: {_num(result.metrics[key])}")
    for reason in result.reasons:
        console.print(f"  • {reason}", highlight=False, soft_wrap=True)


def _num(value, sign: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def status(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    limit: Annotated[int, typer.Option(help="rows per table")] = 5,
    as_of: AsOfOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show champion, challenger, previous champion, recent decisions and runs.

    --as-of also shows what the gate says as of that time (evaluated, not recorded).
    """
    with cli_errors():
        ws = workspace_from(conf, env, set_)
        data = collect_status(ws, limit=limit)
        when = parse_as_of(as_of)
        if when is not None:
            from driftgate import gating

            decision = gating.evaluate(ws, ws.settings.gate, now=when, trigger="status", publish=False,
                                       record=False)
            data["gate_as_of"] = {"as_of": when.isoformat(), "status": decision.status,
                                  "summary": decision.summary}
    if json_out:
        typer.echo(json.dumps(data, default=str, indent=2))
        return
    if "gate_as_of" in data:
        g = data["gate_as_of"]
        console.print(f"gate as of {g['as_of']}: [bold]{g['status']}[/] ({g['summary']})", highlight=False)
    name = ws.settings.project.model_name
    if data["recovery"]:
        rec = data["recovery"]
        console.print(f"[bold yellow]recovered[/] an interrupted {rec['op']} of v{rec['version']} "
                      f"({rec['outcome']}): {rec['message']}", highlight=False, soft_wrap=True)
    for violation in data["invariant"]:
        console.print(f"[bold red]alias invariant violated[/]: {violation}", highlight=False, soft_wrap=True)
    models = Table("alias", "version", "decision", "key metrics", "run", title=f"{name}", header_style="bold")
    for row in data["aliases"]:
        models.add_row(row["alias"], row["version"] or "-", row.get("decision") or "-",
                       ", ".join(f"{k}={v}" for k, v in row.get("metrics", {}).items()) or "-", row.get("run_id") or "-")
    console.print(models)
    for title, key in (("last gate decisions", "gate"), ("last trigger firings and job runs", "runs"),
                       ("last promotion events", "promotion")):
        table = Table("at (UTC)", "kind", "status", "subject", "detail", title=title, header_style="bold")
        for e in data[key]:
            table.add_row(f"{e['at']:%Y-%m-%d %H:%M:%S}", e["kind"], e["status"] or "-", e["subject"] or "-",
                          _detail(e["details"]))
        if not data[key]:
            table.add_row("-", "-", "-", "-", "nothing recorded yet")
        console.print(table)


def _detail(details: dict[str, Any]) -> str:
    for key in ("reason", "summary", "reasons", "branch", "run_key"):
        if details.get(key):
            value = details[key]
            text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
            return text[:120]
    return ""


def collect_status(ws, *, limit: int = 5) -> dict[str, Any]:
    """What ``driftgate status`` shows, as data: aliases with key metrics, and recent audit events.

    An interrupted promotion or rollback is finished first (``recovery``; on Databricks, where no
    lock tells a dead promotion from a running one, only intents older than 10 minutes), and the
    aliases are checked against the alias invariant (``invariant``: the violations, if any).
    """
    from driftgate.workspace.audit import read_event_groups
    from driftgate.core.errors import RegistryError
    from driftgate.promotion import alias_invariant, recover, recovery_grace_seconds
    from driftgate.promotion.moves import aliases

    name = ws.settings.project.model_name
    recovered = recover(ws, min_age_seconds=recovery_grace_seconds(ws))
    rows = []
    for alias, version in aliases(ws).items():
        row: dict[str, Any] = {"alias": alias, "version": version}
        if version is not None:
            try:
                info = ws.registry.get_version(name, version)
                row["run_id"] = info.run_id
                # A challenger's standing is its shadow verdict; others carry their last promotion decision.
                keys = ("driftgate_shadow_status", "driftgate_decision") if alias == "challenger" else (
                    "driftgate_decision", "driftgate_shadow_status")
                row["decision"] = next((info.tags[k] for k in keys if info.tags.get(k)), None)
                row["metrics"] = _key_metrics(ws, info)
            except RegistryError as exc:
                row["decision"] = f"unreadable: {exc}"
        rows.append(row)
    return {
        "model": name,
        "recovery": recovered.to_dict() if recovered else None,
        "invariant": alias_invariant(ws),
        "aliases": rows,
        **read_event_groups(ws, {"gate": ["gate_decision"],
                                 "runs": ["trigger_fired", "trigger_skipped", "launch", "job_run"],
                                 "promotion": ["shadow", "promotion", "refusal", "rollback"]}, limit),
    }


_KEY_METRICS = ("roc_auc", "accuracy", "f1", "root_mean_squared_error", "r2_score")
"""What ``status`` shows of a version: classification and regression headline metrics."""


def _key_metrics(ws, info) -> dict[str, str]:
    """The version's shadow figures if it was shadow-tested, else its training run's metrics."""
    shown = {k.removeprefix("driftgate_challenger_"): v for k, v in info.tags.items()
             if k.startswith("driftgate_challenger_") and any(m in k for m in _KEY_METRICS)}
    if shown or not info.run_id:
        return shown
    metrics = ws.registry.run_metrics(info.run_id)
    keys = [k for k in sorted(metrics) if any(m in k for m in _KEY_METRICS)][:3]
    return {k: f"{metrics[k]:.4f}" for k in keys}


__all__ = ["shadow", "promote", "rollback", "status", "collect_status", "render_shadow"]
