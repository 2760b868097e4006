"""What every command-line and job entry point shares: options, settings, errors.

Entry points stay thin: parse parameters, build settings and a workspace, call
one task function (:mod:`driftgate.tasks`), print its result. Exit codes: 0 done; 1 a
:class:`DriftgateError` (one red line on stderr); 2 "not built yet"; 3 a refusal (a
promotion or rollback that was refused, awaits approval, was a dry run or had nothing to
promote): an outcome, recorded like any other, not an error.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator

import typer
from rich.console import Console

from driftgate.core.errors import DriftgateError

if TYPE_CHECKING:  # settings load every stage's section model: only the commands that need them pay for it
    from driftgate.core.settings import Settings

__all__ = ["EXIT_ERROR", "EXIT_NOT_BUILT", "EXIT_REFUSED", "ConfOpt", "EnvOpt", "SetOpt", "AsOfOpt", "parse_as_of", "console", "err_console", "settings_from", "workspace_from",
           "cli_errors", "not_built", "progress_bar", "show_stage_warnings"]

EXIT_ERROR, EXIT_NOT_BUILT, EXIT_REFUSED = 1, 2, 3

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
    """``--as-of`` as an aware UTC datetime (naive means UTC); None stays None."""
    from datetime import timezone

    from driftgate.tasks import parse_time

    when = parse_time(text, option)
    return when.astimezone(timezone.utc) if when is not None else None


def settings_from(conf: Path | None, env: str | None, sets: list[str] | None) -> Settings:
    from driftgate.core.settings import load_settings

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
        raise typer.Exit(EXIT_ERROR) from None


def not_built(stage: str) -> None:
    err_console.print(f"driftgate {stage}: not built yet", highlight=False)
    sys.exit(EXIT_NOT_BUILT)


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
