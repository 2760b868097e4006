"""What every command-line and job entry point shares: options, settings, errors.

Entry points stay thin: parse parameters, build settings and a workspace, call
one stage function, publish its result. A :class:`DriftgateError` becomes one red
line on stderr and exit code 1; "not built yet" is exit code 2.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console

from driftgate.core.settings import Settings, load_settings
from driftgate.core.errors import DriftgateError

__all__ = ["ConfOpt", "EnvOpt", "SetOpt", "AsOfOpt", "parse_as_of", "console", "err_console", "settings_from", "workspace_from",
           "cli_errors", "not_built", "progress_bar", "show_stage_warnings"]

console = Console()
err_console = Console(stderr=True)

ConfOpt = Annotated[Path | None, typer.Option("--conf", help="conf folder (default ./conf)", show_default=False)]
EnvOpt = Annotated[str | None, typer.Option("--env", help="local (default), databricks, or demo (the churn demo world)", show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="act as of this UTC time (ISO 8601), e.g. to replay history; default now", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a setting: --set gate.combine=all (repeatable)", show_default=False),
]


def parse_as_of(text: str | None, option: str = "--as-of"):
    """An ISO 8601 time as an aware UTC datetime (naive means UTC); None stays None."""
    from datetime import datetime, timezone

    from driftgate.core.errors import ConfigError

    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: must be an ISO 8601 time like 2026-06-22T06:00:00Z, got {text!r}") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def settings_from(conf: Path | None, env: str | None, sets: list[str] | None) -> Settings:
    return load_settings(conf, env, tuple(sets or ()))


def workspace_from(conf: Path | None, env: str | None, sets: list[str] | None, **kwargs):
    from driftgate.workspace import open_workspace

    return open_workspace(settings_from(conf, env, sets), **kwargs)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn driftgate errors into one clear line and a non-zero exit."""
    try:
        yield
    except DriftgateError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def not_built(stage: str) -> None:
    err_console.print(f"driftgate {stage}: not built yet", highlight=False)
    sys.exit(2)


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator:
    """A transient bar on stderr; yields the ``(done, total)`` callback stages take (or None)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True)
    task = bar.add_task(description, total=None)
    bar.start()
    try:
        yield lambda done, total: bar.update(task, completed=done, total=total)
    finally:
        bar.stop()


def show_stage_warnings() -> None:
    """Stages report through the ``driftgate`` loggers; the CLI shows their warnings on stderr."""
    import logging

    log = logging.getLogger("driftgate")
    if not any(getattr(h, "_driftgate_cli", False) for h in log.handlers):
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        handler.setLevel(logging.WARNING)
        handler._driftgate_cli = True
        log.addHandler(handler)
