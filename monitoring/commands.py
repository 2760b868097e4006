"""Command-line entry points of the monitoring package (registered in driftgate/cli.py)."""
from __future__ import annotations

from typing import Annotated

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, workspace_from


def monitor(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    top: Annotated[int, typer.Option("--top", help="how many of the most drifted columns to show")] = 10,
    granularity: Annotated[str | None, typer.Option("--granularity", help="window size shown (default: the first)")] = None,
) -> None:
    """Refresh the profile and drift metric tables, then show the most drifted columns."""
    import monitoring
    from monitoring.report import drifted_columns

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        cfg = ws.settings.monitor
        result = monitoring.refresh(ws, cfg, progress=True)
        console.print(f"[bold]monitor[/] {cfg.table_name}: {result.summary()}", highlight=False)
        rows = drifted_columns(ws, cfg, top=top, granularity=granularity)
        if not rows:
            console.print("no drift rows yet (a baseline table or two windows are needed)")
            return
        from rich.table import Table

        table = Table(title=f"most drifted columns, latest window ({rows[0]['window_start']:%Y-%m-%d %H:%M} UTC)")
        for name in ("column", "type", "drift vs", "PSI", "KS D", "KS p", "JS", "chi2 p", "avg delta"):
            table.add_column(name, justify="left" if name in ("column", "type", "drift vs") else "right")
        for r in rows:
            table.add_row(r["column_name"], r["data_type"] or "", r["drift_type"].lower(),
                          *(_fmt(r[k]) for k in ("psi", "ks_statistic", "ks_pvalue", "js_distance", "chi2_pvalue",
                                                 "avg_delta")))
        console.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if abs(value) and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.3f}"
