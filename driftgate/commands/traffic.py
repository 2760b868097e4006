"""Command-line entry points for logging served traffic and late labels into the inference table."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, workspace_from

FileArg = Annotated[Path | None, typer.Argument(help="rows to log: .csv, .parquet or .jsonl", show_default=False)]


def log_traffic(
    path: FileArg = None,
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    model_version: Annotated[str | None, typer.Option(
        "--model-version", help="the version that served the rows (default: their model-id column, or the "
                                "champion when the rows carry no prediction and are scored now)")] = None,
    serving_table: Annotated[str | None, typer.Option(
        "--serving-table", help="read a Databricks Model Serving inference (payload) table instead of a file")] = None,
    since_ms: Annotated[int | None, typer.Option(
        "--since-ms", help="with --serving-table: only requests after this epoch millisecond")] = None,
) -> None:
    """Append served requests (inputs, prediction, probability, model id, time, request id) to the inference table.

    Columns are the inference-table contract's (monitor.inference_log.*). Rows without a prediction
    are scored with the champion.
    """
    from driftgate.core.errors import ConfigError
    from driftgate.monitoring.traffic import log_serving_payload, log_traffic as append, read_rows

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        if (path is None) == (serving_table is None):
            raise ConfigError("log-traffic: give a file or --serving-table (one of them)")
        if serving_table is not None:
            n = log_serving_payload(ws, serving_table, since_ms=since_ms, model_id=model_version)
        else:
            n = append(ws, read_rows(path), model_version=model_version)
    console.print(f"logged {n} served row(s) into {ws.settings.project.inference_table}", highlight=False)


def log_labels(
    path: Annotated[Path, typer.Argument(help="request id + label rows: .csv, .parquet or .jsonl")],
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
) -> None:
    """Merge late labels into the inference table by request id (a Delta MERGE)."""
    from driftgate.monitoring.traffic import log_labels as merge, read_rows

    with cli_errors():
        ws = workspace_from(conf, env, set_)
        n = merge(ws, read_rows(path))
    console.print(f"merged labels into {n} row(s) of {ws.settings.project.inference_table}", highlight=False)
