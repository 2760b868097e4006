"""``driftgate dashboard``: write the self-contained HTML page over the local tables."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftgate.runtime import AsOfOpt, ConfOpt, EnvOpt, SetOpt, cli_errors, console, parse_as_of, workspace_from

__all__ = ["dashboard"]


def dashboard(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path, typer.Option("--out", help="where to write the page")] = Path(".driftgate/dashboard.html"),
    as_of: AsOfOpt = None,
) -> None:
    """Write one HTML page (no network fetches): drift per rule with thresholds, quality and its
    estimate, gate decisions, retrains, promotions and refusals on one time axis, the champion's lineage.

    --as-of draws the tables and events as they stood at that time.
    """
    from driftgate.dashboard import write_dashboard

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        record = write_dashboard(ws, out, as_of=parse_as_of(as_of))
    console.print(f"wrote {out} ({len(record.job_runs)} job runs, {len(record.lineage)} versions, "
                  f"{len(record.marks)} events)", highlight=False, soft_wrap=True)
