"""Command-line entry points of the monitoring package (registered in driftgate/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftgate.runtime import (AsOfOpt, ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of, progress_bar,
                               workspace_from)


def monitor(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="write a drift-over-time chart (.png or .html)")] = None,
    top: Annotated[int, typer.Option("--top", help="rows in the most-drifted-columns table")] = 8,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    as_of: AsOfOpt = None,
) -> None:
    """Refresh the profile and drift metric tables (incremental); the refresh is logged as an MLflow run."""
    from rich.table import Table

    from driftgate import tasks
    from driftgate.monitoring.report import drift_chart, most_drifted

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        cfg = ws.settings.monitor
        with progress_bar("profiling windows", enabled=not quiet) as callback:
            when = parse_as_of(as_of)
            result = tasks.monitor(ws, progress=callback, now=when)
        console.print(
            f"monitor [bold]{result.mode}[/]: {cfg.table_name}@v{result.source_version} -> "
            f"{len(result.windows)} window(s), {result.profile_rows} profile rows, {result.drift_rows} drift rows "
            f"in {result.seconds:.2f}s", highlight=False)
        if not ws.tables.exists(cfg.drift_metrics_table):
            return
        drift = ws.tables.read(cfg.drift_metrics_table)
        if when is not None:  # replaying: the report and chart stop at --as-of
            import pyarrow as pa
            import pyarrow.compute as pc

            starts = pc.struct_field(drift.column("window"), "start")
            drift = drift.filter(pc.less(starts, pa.scalar(when, starts.type)))
        for drift_type in ("BASELINE", "CONSECUTIVE"):
            ranked = most_drifted(drift, cfg, drift_type=drift_type, limit=top)
            if not ranked:
                continue
            table = Table(title=f"most drifted columns ({drift_type.lower()}, window {ranked[0].window_start})")
            for name in ("column", "metric", "value", "rows"):
                table.add_column(name, justify="right" if name in ("value", "rows") else "left")
            for d in ranked:
                table.add_row(d.column_name, d.metric, f"{d.value:.3f}", str(d.count))
            console.print(table)
        if chart is not None:
            out = drift_chart(drift, cfg, chart)
            console.print(f"chart written to {out}", highlight=False)
