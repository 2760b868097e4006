"""The audit trail through a SQL warehouse, for callers with no workspace open.

The serverless handlers and ``driftgate serve`` beside a Databricks workspace have no Spark, yet their
events (``alert_received``, ``trigger_fired`` / ``trigger_skipped``, ``launch``) belong in the table every
other step appends to, ``<project.audit_schema>.driftgate_events``, which ``driftgate status``, recovery
and reseeding read. :class:`WarehouseAudit` appends them there through the SQL warehouse of
``triggers.state`` (:class:`~driftgate.workspace.warehouse.SqlWarehouse`, the Statement Execution API).

* **Same table, same rows.** Columns and types come from :mod:`driftgate.workspace.audit`'s schema
  (Arrow types mapped as Spark maps them: ``at`` is a ``TIMESTAMP``); rows are built by
  :func:`~driftgate.workspace.audit.events_arrow`, as :func:`~driftgate.workspace.audit.record_events`
  builds them. Where a write finds no table, it is created (``CREATE TABLE IF NOT EXISTS``, Delta
  defaults) and the write runs again, so creating it is the only step that needs ``CREATE TABLE``.
* **Batched.** A batch of events is one ``INSERT ... SELECT ... FROM VALUES (...), (...)`` with named,
  typed parameters (up to :data:`ROWS_PER_STATEMENT` rows, and :data:`CHARS_PER_STATEMENT` characters of
  values, per statement).
* **Idempotent.** Each event gets its ``event_id`` when it is handed over (a fresh UUID unless the caller
  gives one), and the insert skips ids already in the table (``WHERE NOT EXISTS``), so sending a batch again
  (the SDK retrying a request whose answer was lost, a write-conflict re-run, a retry after a failure whose
  outcome is unknown) adds no second row.
* **Never loses a delivery.** The caller's contract (the webhook worker's) is that an audit failure is
  logged and does not stop a launch. A write that fails raises :class:`~driftgate.core.errors.TableError`
  (the worker logs it) and keeps its events, which go out again, with the same ids, in front of the next
  write or :meth:`WarehouseAudit.flush` (the serverless handlers flush on an invocation that audited
  nothing). At most ``max_pending`` events are kept; older ones are logged in full and dropped.
"""
from __future__ import annotations

import functools
import logging
import threading
from datetime import datetime, timezone
from typing import Any

from driftgate.core.errors import DriftgateError, TableError
from driftgate.workspace.audit import _SCHEMA, EVENTS_TABLE, events_arrow
from driftgate.workspace.warehouse import SqlValue, SqlWarehouse, quoted, sql_type

__all__ = ["WarehouseAudit", "ROWS_PER_STATEMENT", "CHARS_PER_STATEMENT", "events_ddl"]

log = logging.getLogger("driftgate.audit")

ROWS_PER_STATEMENT = 256
"""Most events in one INSERT (the webhook worker's batches, ``RECORD_BATCH``, fit in one)."""
CHARS_PER_STATEMENT = 4 * 2**20
"""Most characters of parameter values in one INSERT (the API takes statements of up to 16 MiB)."""
_COLUMNS = tuple((f.name, sql_type(f.type)) for f in _SCHEMA)


def events_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the events table ``catalog.schema.driftgate_events``: the audit schema's
    columns, nullable, as Spark creates the table on its first append."""
    columns = ", ".join(f"`{name}` {type_}" for name, type_ in _COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {quoted(table)} ({columns}) USING DELTA"


class WarehouseAudit:
    """An audit function (``audit(kind, **fields)``, ``audit.many(events)``) appending to
    ``<audit_schema>.driftgate_events`` through a SQL warehouse.

    Args:
        warehouse_id: the SQL warehouse (``triggers.state.warehouse_id``).
        audit_schema: ``catalog.schema`` of the table (``project.audit_schema``); the schema must exist.
        wait_timeout_seconds, retry_timeout_seconds, poll_seconds: as :class:`SqlWarehouse` takes them.
        client: a ``WorkspaceClient`` (default: one from the environment).
        max_pending: most events kept for a retry after failed writes.
    """

    def __init__(self, *, warehouse_id: str, audit_schema: str, wait_timeout_seconds: int = 30,
                 retry_timeout_seconds: float = 60.0, client=None, poll_seconds: float = 0.25,
                 max_pending: int = 10 * ROWS_PER_STATEMENT):
        if max_pending < 1:
            raise ValueError(f"WarehouseAudit: max_pending must be at least 1, got {max_pending}")
        self.table = f"{audit_schema}.{EVENTS_TABLE}"
        self.where = f"{self.table} (SQL warehouse {warehouse_id})"
        self.sql = SqlWarehouse(warehouse_id, where=self.where, error=functools.partial(TableError, table=self.table),
                                budget_key="triggers.state.retry_timeout_seconds",
                                wait_timeout_seconds=wait_timeout_seconds, retry_timeout_seconds=retry_timeout_seconds,
                                client=client, poll_seconds=poll_seconds)
        self.max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings, *, client=None) -> "WarehouseAudit":
        """The sink of ``settings``: the warehouse and budget of ``triggers.state`` (backend ``warehouse``),
        the table in ``project.audit_schema``."""
        state = settings.triggers.state
        return cls(warehouse_id=state.warehouse_id, audit_schema=settings.project.audit_schema,
                   wait_timeout_seconds=state.wait_timeout_seconds,
                   retry_timeout_seconds=state.retry_timeout_seconds, client=client)

    @property
    def pending(self) -> int:
        """Events kept from failed writes, waiting for the next one."""
        return len(self._pending)

    def __call__(self, kind: str, **fields: Any) -> None:
        """Append one event (fields as :func:`driftgate.workspace.audit.record_event` takes them)."""
        self.many([{"kind": kind, **fields}])

    def many(self, events: list[dict[str, Any]]) -> None:
        """Append ``events`` (after any kept from failed writes), in as few statements as the bounds allow.

        Raises:
            ValueError: an unknown kind (nothing is kept).
            TableError: the write failed; the events are kept for the next write.
        """
        rows = events_arrow(events).to_pylist()
        with self._lock:
            self._pending += rows
            self._send()

    def flush(self) -> None:
        """Send the events kept from failed writes, if any.

        Raises:
            TableError: the write failed again; the events are still kept.
        """
        with self._lock:
            if self._pending:
                self._send()

    def _send(self) -> None:
        try:
            while self._pending:
                batch = _batch(self._pending)
                self.sql.write(*self._insert(batch), create=events_ddl(self.table))
                del self._pending[:len(batch)]
        except DriftgateError as exc:
            self._trim()
            raise TableError(f"{self.where}: could not append {len(self._pending)} audit event(s), kept to send "
                             f"again with the next write: {str(exc).removeprefix(self.where + ': ')}",
                             table=self.table) from exc

    def _trim(self) -> None:
        extra = len(self._pending) - self.max_pending
        if extra > 0:
            for row in self._pending[:extra]:
                log.error("audit: dropped after failed writes to %s (more than %d kept): %s", self.table,
                          self.max_pending, row)
            del self._pending[:extra]

    def _insert(self, rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """``INSERT`` of ``rows`` that skips event ids already in the table, and its parameters."""
        names = ", ".join(f"`{name}`" for name, _ in _COLUMNS)
        params: dict[str, Any] = {}
        values = []
        for i, row in enumerate(rows):
            marks = []
            for name, type_ in _COLUMNS:
                params[f"{name}_{i}"] = SqlValue(_text(row[name]), type_)
                marks.append(f":{name}_{i}")
            values.append(f"({', '.join(marks)})")
        table = quoted(self.table)
        sql = (f"INSERT INTO {table} ({names}) SELECT {', '.join(f'batch.`{n}`' for n, _ in _COLUMNS)} "
               f"FROM VALUES {', '.join(values)} AS batch({names}) "
               f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS seen WHERE seen.`event_id` = batch.`event_id`)")
        return sql, params


def _text(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return None if value is None else str(value)


def _batch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first rows that fit in one statement (at least one)."""
    size = 0
    for n, row in enumerate(rows[:ROWS_PER_STATEMENT]):
        size += sum(len(str(v)) for v in row.values() if v is not None)
        if n and size > CHARS_PER_STATEMENT:
            return rows[:n]
    return rows[:ROWS_PER_STATEMENT]
