"""Command-line entry points of the triggers package (registered in driftgate/cli.py)."""
from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, cli_errors, console, workspace_from


def watch(
    conf: ConfOpt = None,
    env: EnvOpt = None,
    set_: SetOpt = None,
    once: Annotated[bool, typer.Option("--once", help="tick every trigger once, wait for launched runs, exit")] = False,
    poll: Annotated[float | None, typer.Option(help="seconds between ticks (default triggers.poll_interval_seconds)")]
    = None,
    request: Annotated[str | None, typer.Option(help="queue a manual run with this reason and exit")] = None,
    max_ticks: Annotated[int | None, typer.Option(help="stop after this many ticks")] = None,
) -> None:
    """Watch Delta tables and run the retraining job on updates (table_update trigger).

    Also runs the schedule, manual, webhook and plug-in triggers that are enabled. At most
    one job run at a time; new requests queue behind it (or are skipped: triggers.queue=false).
    """
    from driftgate.triggers.queued import request_run
    from driftgate.triggers.registry import build_triggers
    from driftgate.triggers.runner import TriggerRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with cli_errors():
        ws = workspace_from(conf, env, set_)
        state = _open_state(ws)
        if request is not None:
            key, fresh = request_run(state, source="manual", reason=request)
            console.print(f"queued manual run {key}" if fresh else f"{key} was already queued")
            return
        runner = TriggerRunner(build_triggers(ws.settings), state, pipeline_launcher(ws), ws=ws,
                               queue=ws.settings.triggers.queue, on_event=audit_sink(ws))
        names = ", ".join(t.describe() for t in runner.triggers) or "none"
        console.print(f"watching with {names}; state in {state.where}")
        if once:
            runner.recover()
            for outcome in runner.tick():
                console.print(outcome.describe(), highlight=False, markup=False)
            runner.wait_idle(timeout=24 * 3600)
            runner.stop()
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            runner.run_forever(poll_interval=poll or ws.settings.triggers.poll_interval_seconds, stop=stop,
                               max_ticks=max_ticks,
                               on_tick=lambda o: console.print(o.describe(), highlight=False, markup=False) if not o.skip
                               or o.error else None)
        except KeyboardInterrupt:
            console.print("stopping: letting the active run finish; queued requests stay queued")
        runner.wait_idle(timeout=24 * 3600)
        runner.stop()


def pipeline_launcher(ws):
    """Launch the local retraining job graph (the same graph as the Databricks job)."""

    def launch(request, trigger):
        from driftgate.pipeline import run_retraining_job

        result = run_retraining_job(ws, trigger=trigger.kind or trigger.name, run_key=request.run_key)
        summary = getattr(result, "as_dict", lambda: {})()
        console.print(f"run {request.run_key}: {summary or result}", highlight=False)
        return result

    return launch


def audit_sink(ws):
    """Write trigger events to the audit trail."""
    from driftgate.workspace import audit

    def sink(kind: str, fields: dict) -> None:
        audit.record_event(ws, kind, run_key=fields.get("run_key"), subject=fields.get("subject"),
                           status=fields.get("status"), details=fields.get("details"), at=fields.get("at"))

    return sink


def _open_state(ws):
    """The state store (``triggers.state``); a corrupt SQLite file is moved aside and the fired keys restored
    from the audit trail."""
    from driftgate.workspace import audit
    from driftgate.triggers.state import open_state_store, reseed_from_events

    state, moved = open_state_store(ws.settings.triggers.state, folder=ws.root, quarantine=True)
    if moved is not None:
        events = audit.read_events(ws, ["trigger_fired"], limit=100_000)
        restored = reseed_from_events(state, events)
        console.print(f"[yellow]warning:[/] {state.where} was not a readable state database; moved it to {moved} "
                      f"and restored {restored} fired run key(s) from the audit trail")
    return state
