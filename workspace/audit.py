"""The audit trail: one append-only Delta table of everything driftgate did.

Monitor refreshes that wrote rows, gate decisions, trigger firings and skips, received alerts, launches, trainings,
shadow results, promotions, refusals and rollbacks each append one row to
``<project.audit_schema>.driftgate_events``. ``driftgate status`` reads it back.
Rows are small; ``details`` holds the record as JSON.

Where no workspace is open (the serverless handlers, ``driftgate serve`` beside a Databricks workspace),
:class:`driftgate.workspace.warehouse_audit.WarehouseAudit` appends the same rows to the same table
through a SQL warehouse.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

__all__ = ["EVENT_KINDS", "EVENTS_TABLE", "events_table", "record_event", "record_events", "events_arrow", "read_events",
           "read_event_groups", "has_event"]

EVENT_KINDS = (
    "gate_decision", "trigger_fired", "trigger_skipped", "alert_received", "launch",
    "train", "shadow", "promotion", "refusal", "rollback", "job_run", "notification", "monitor_refresh",
    "init", "traffic_logged", "labels_logged", "baseline_refresh", "job_cooldown",
    "feature_importance",
)

_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("at", pa.timestamp("us", tz="UTC")),
    ("kind", pa.string()),
    ("run_key", pa.string()),
    ("subject", pa.string()),
    ("status", pa.string()),
    ("details", pa.string()),
])


EVENTS_TABLE = "driftgate_events"
"""The events table's name inside ``project.audit_schema``."""


def events_table(ws) -> str:
    return f"{ws.settings.project.audit_schema}.{EVENTS_TABLE}"


def record_event(
    ws,
    kind: str,
    *,
    run_key: str | None = None,
    subject: str | None = None,
    status: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> str:
    """Append one event (one Delta commit). Returns its ``event_id``.

    Args:
        ws: the open workspace.
        kind: one of :data:`EVENT_KINDS`.
        run_key: the deterministic key of the run this event belongs to, if any.
        subject: what it is about (a table, ``model@version``, an alert id).
        status: a short outcome (``EXCEEDED``, ``PASS``, ``launched``, ...).
        details: JSON-serialisable record.
        event_id: a caller-chosen id (an interrupted step's intent id), so the caller can tell
            afterwards whether this event was recorded (:func:`has_event`); a fresh UUID otherwise.
    """
    return record_events(ws, [{"kind": kind, "run_key": run_key, "subject": subject, "status": status,
                               "details": details, "at": at, "event_id": event_id}])[0]


def record_events(ws, events: list[dict[str, Any]]) -> list[str]:
    """Append several events in one Delta commit. Returns their ``event_id`` values.

    Args:
        ws: the open workspace.
        events: dicts with ``kind`` and optionally ``run_key``, ``subject``, ``status``, ``details``, ``at``
            (as :func:`record_event` takes them), and ``event_id`` (default: a fresh UUID).
    """
    data = events_arrow(events)
    if data.num_rows:
        ws.tables.write(events_table(ws), data, mode="append")
    return data.column("event_id").to_pylist()


def events_arrow(events: list[dict[str, Any]]) -> pa.Table:
    """The rows of ``events`` (as :func:`record_events` takes them) with the events table's schema: a fresh
    ``event_id`` where none is given, ``at`` now where none is given, ``details`` as sorted JSON.

    Raises:
        ValueError: a kind not in :data:`EVENT_KINDS`.
    """
    for ev in events:
        if ev["kind"] not in EVENT_KINDS:
            raise ValueError(f"audit kind must be one of {EVENT_KINDS}, got {ev['kind']!r}")
    now = datetime.now(timezone.utc)
    rows = {
        "event_id": [ev.get("event_id") or uuid.uuid4().hex for ev in events],
        "at": [ev.get("at") or now for ev in events],
        "kind": [ev["kind"] for ev in events],
        "run_key": [ev.get("run_key") for ev in events],
        "subject": [ev.get("subject") for ev in events],
        "status": [ev.get("status") for ev in events],
        "details": [json.dumps(ev.get("details") or {}, default=str, sort_keys=True) for ev in events],
    }
    return pa.table(rows, schema=_SCHEMA)


def read_events(ws, kinds: list[str] | tuple[str, ...] | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent events first, optionally only of ``kinds``; details decoded."""
    return read_event_groups(ws, {"": kinds}, limit)[""]


def read_event_groups(ws, groups: dict[str, list[str] | tuple[str, ...] | None],
                      limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """:func:`read_events` for several groups of kinds with one read of the events table
    (``status`` shows three groups). Each group: its most recent ``limit`` events, details decoded."""
    name = events_table(ws)
    if not ws.tables.exists(name):
        return {group: [] for group in groups}
    wanted = None if any(not kinds for kinds in groups.values()) else \
        sorted({k for kinds in groups.values() for k in kinds})
    filters = [("kind", "in", wanted)] if wanted else None
    rows = ws.tables.read(name, filters=filters).to_pylist()
    rows.sort(key=lambda r: r["at"], reverse=True)
    out = {}
    for group, kinds in groups.items():
        picked = [dict(r) for r in rows if not kinds or r["kind"] in kinds][:limit]
        for r in picked:
            r["details"] = json.loads(r["details"] or "{}")
        out[group] = picked
    return out


def has_event(ws, event_id: str) -> bool:
    """Whether the event ``event_id`` was recorded."""
    name = events_table(ws)
    if not ws.tables.exists(name):
        return False
    return ws.tables.read(name, columns=["event_id"], filters=[("event_id", "=", event_id)]).num_rows > 0
