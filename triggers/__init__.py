"""Pluggable triggers: what starts the retraining job.

A trigger ticks (``Trigger.tick(context) -> TickResult``: run requests with run keys, or
a skip reason, plus the next cursor); :class:`TriggerRunner` claims run keys in the
durable state store (:class:`TriggerState`: SQLite or Unity Catalog tables) and launches at most one run at a time. Built in:
``table_update``, ``schedule``, ``manual``, ``webhook``; more come from packages that
register under the entry-point group ``driftgate.triggers`` (see docs/triggers.md).
"""
if __name__ != "driftgate.triggers":  # the triggers/ folder installs as driftgate.triggers only (setup.py)
    raise ImportError(f"import driftgate.triggers, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.triggers.base import RunRequest, SkipReason, TickContext, TickResult, Trigger
from driftgate.triggers.queued import ManualTrigger, QueuedTrigger, WebhookTrigger, request_run
from driftgate.triggers.registry import GROUP, available, build_triggers, create, load
from driftgate.triggers.runner import TickOutcome, TriggerRunner
from driftgate.triggers.schedule import ScheduleTrigger
from driftgate.triggers.state import RunKeyRecord, StateStore, TriggerState, open_state_store, state_store_for
from driftgate.triggers.table_update import TableUpdateTrigger, run_key_for

__all__ = [
    "Trigger", "RunRequest", "SkipReason", "TickResult", "TickContext",
    "TableUpdateTrigger", "ScheduleTrigger", "ManualTrigger", "WebhookTrigger", "QueuedTrigger",
    "TriggerRunner", "TickOutcome", "TriggerState", "StateStore", "RunKeyRecord", "state_store_for", "open_state_store",
    "GROUP", "available", "load", "create", "build_triggers", "request_run", "run_key_for",
]
