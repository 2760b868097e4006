"""Trigger state in Unity Catalog: two Delta tables written through a Databricks SQL warehouse.

For callers that have no Spark and no shared disk (``driftgate serve`` next to a workspace, the
serverless handlers): every operation is one or two SQL statements sent with the Statement
Execution API (``POST /api/2.0/sql/statements``, INLINE disposition, JSON_ARRAY format, named
parameter markers) through ``databricks-sdk``, which reads the host and credentials from the
environment (``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` or another SDK auth), never from conf.

Tables (created with ``CREATE TABLE IF NOT EXISTS`` when the store opens; the schema must exist):

* ``<catalog>.<schema>.driftgate_trigger_cursors``: ``name``, ``cursor_value``, ``updated_at``;
* ``<catalog>.<schema>.driftgate_run_keys``: the columns of :class:`~driftgate.triggers.state.RunKeyRecord`
  plus ``claim_id`` (who inserted the row) and ``take_id`` (who moved it to ``running``).

Timestamps are stored as fixed-width ISO-8601 UTC text, as in the SQLite store, so ``MAX`` and
``ORDER BY`` compare instants.

**Why a claim is atomic.** A Delta table enforces no primary key, so a claim is an
``INSERT INTO run_keys SELECT <row> WHERE NOT EXISTS (SELECT 1 FROM run_keys WHERE run_key = :k)``
with a fresh ``claim_id``, followed by reading back which ``claim_id`` owns the key. Both tables are
created with ``delta.isolationLevel = 'Serializable'``. The claim statement reads the table (the
``NOT EXISTS`` subquery) and commits optimistically: if another transaction committed files to the
table after the snapshot this one read (the table is unpartitioned, so any concurrent write
overlaps the read), Delta refuses the commit with a concurrent-modification error
(``DELTA_CONCURRENT_APPEND``, SQLSTATE 2D521) instead of committing. Under Serializable this holds
for every concurrent writer, blind appends included (WriteSerializable, the default, lets a blind
append slip past a reader; no writer here is blind, but the stronger level costs a table this small
nothing). So of two claimants of one key, at most one commits its insert from a snapshot without
the key; the other either saw the key (and inserted nothing) or lost the commit. A lost commit is
answered by re-running the same conditional statement (it may have lost to a claim of a different
key) until it commits, then by the read-back: exactly one ``claim_id`` is found, and only its
claimant returns True. The read-back also settles statements whose outcome is unknown (a timeout
after the warehouse took the statement): if that insert did commit, its ``claim_id`` is there.
Row-level concurrency (tables with deletion vectors) may narrow conflicts to the rows a statement
read; the argument needs no more, since the rows a claim's ``NOT EXISTS`` reads are its key's rows.
The read-back picks the smallest ``claim_id`` should two rows of one key ever exist, so all readers
agree on one owner even then.

``take`` is the same pattern: ``UPDATE ... SET status = 'running', take_id = :t WHERE run_key = :k AND
status IN ('claimed', 'queued')``, re-run on a conflict, then read back ``take_id``. Other writes
(``finish``, ``set_status``, ``release``, cursors) are re-run on a conflict; they are idempotent.

Every operation shares one budget, ``triggers.state.retry_timeout_seconds``, as the SQL warehouse client
(:class:`driftgate.workspace.warehouse.SqlWarehouse`) spends it: the SDK's own retries, polling, and re-running
after conflicts. A statement that fails, a request the API refuses, or a spent budget raise :class:`TriggerError`
naming the table, the error code and the warehouse's message.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from driftgate.core.errors import TriggerError
from driftgate.triggers.state import (RunKeyRecord, TriggerState, _check_claim, _check_cursor, _check_status,
                                      _details_text, _iso, _NOT_FIRED, _parse, _record)
from driftgate.workspace.warehouse import SqlWarehouse, quoted

__all__ = ["WarehouseStateStore"]

_COLUMNS = "run_key, source, details, status, run_id, reason, claimed_at, finished_at"


class WarehouseStateStore(TriggerState):
    """Cursors and run keys in two Unity Catalog tables, through a SQL warehouse (``triggers.state.backend:
    warehouse``).

    Args:
        warehouse_id: the SQL warehouse that runs the statements.
        catalog_name, schema_name: where the tables live (the schema must exist).
        cursors_table, run_keys_table: the tables' names.
        wait_timeout_seconds: the API's ``wait_timeout`` (5-50 s); longer statements are polled.
        retry_timeout_seconds: budget of one operation (SDK retries, polling, conflict re-runs).
        client: a ``WorkspaceClient`` (default: one from the environment, with the budget as its retry timeout).
        create: create the tables if missing (``CREATE TABLE IF NOT EXISTS``).
        poll_seconds: first pause between polls of a running statement, and between conflict re-runs.

    Raises:
        TriggerError: the tables could not be created (no such schema, no warehouse, no permission).
    """

    def __init__(self, *, warehouse_id: str, catalog_name: str, schema_name: str,
                 cursors_table: str = "driftgate_trigger_cursors", run_keys_table: str = "driftgate_run_keys",
                 wait_timeout_seconds: int = 30, retry_timeout_seconds: float = 60.0, client=None,
                 create: bool = True, poll_seconds: float = 0.25):
        self.cursors_name = f"{catalog_name}.{schema_name}.{cursors_table}"
        self.run_keys_name = f"{catalog_name}.{schema_name}.{run_keys_table}"
        self._cursors, self._keys = quoted(self.cursors_name), quoted(self.run_keys_name)
        self.where = f"{self.run_keys_name} (SQL warehouse {warehouse_id})"
        self.sql = SqlWarehouse(warehouse_id, where=self.where, error=TriggerError,
                                budget_key="triggers.state.retry_timeout_seconds",
                                wait_timeout_seconds=wait_timeout_seconds, retry_timeout_seconds=retry_timeout_seconds,
                                client=client, poll_seconds=poll_seconds)
        if create:
            self.create_tables()

    @classmethod
    def from_config(cls, config, *, client=None, create: bool = True) -> "WarehouseStateStore":
        """The store ``triggers.state`` (a :class:`~driftgate.triggers.config.StateConfig`) describes."""
        return cls(warehouse_id=config.warehouse_id, catalog_name=config.catalog_name, schema_name=config.schema_name,
                   cursors_table=config.cursors_table, run_keys_table=config.run_keys_table,
                   wait_timeout_seconds=config.wait_timeout_seconds,
                   retry_timeout_seconds=config.retry_timeout_seconds, client=client, create=create)

    # -- statements ------------------------------------------------------------------------

    def create_tables(self) -> None:
        props = "USING DELTA TBLPROPERTIES ('delta.isolationLevel' = 'Serializable')"
        self.sql.write(f"CREATE TABLE IF NOT EXISTS {self._cursors} (name STRING NOT NULL, "
                       f"cursor_value STRING NOT NULL, updated_at STRING NOT NULL) {props}", {})
        self.sql.write(f"CREATE TABLE IF NOT EXISTS {self._keys} (run_key STRING NOT NULL, source STRING NOT NULL, "
                       "details STRING NOT NULL, status STRING NOT NULL, run_id STRING, reason STRING, "
                       f"claimed_at STRING NOT NULL, finished_at STRING, claim_id STRING NOT NULL, take_id STRING) "
                       f"{props}", {})

    # -- cursors ---------------------------------------------------------------------------

    def get_cursor(self, trigger_name: str) -> str | None:
        rows = self.sql.execute(f"SELECT cursor_value FROM {self._cursors} WHERE name = :name", {"name": trigger_name})
        return rows[0][0] if rows else None

    def set_cursor(self, trigger_name: str, cursor: str, *, at: datetime | None = None) -> None:
        _check_cursor(trigger_name, cursor)
        params = {"name": trigger_name, "cursor_value": cursor, "at": _iso(at)}
        deadline = self.sql.deadline()
        # Insert if absent, then set: both conditional on the name, so re-running either is harmless.
        self.sql.write(f"INSERT INTO {self._cursors} (name, cursor_value, updated_at) "
                       f"SELECT :name, :cursor_value, :at WHERE NOT EXISTS (SELECT 1 FROM {self._cursors} WHERE name = :name)", params, deadline)
        self.sql.write(f"UPDATE {self._cursors} SET cursor_value = :cursor_value, updated_at = :at "
                       "WHERE name = :name", params, deadline)

    def delete_cursor(self, trigger_name: str) -> None:
        self.sql.write(f"DELETE FROM {self._cursors} WHERE name = :name", {"name": trigger_name})

    # -- run keys --------------------------------------------------------------------------

    def claim(self, run_key: str, *, source: str, details: dict[str, Any] | None = None, status: str = "claimed",
              at: datetime | None = None) -> bool:
        _check_claim(run_key, status)
        claim_id = uuid.uuid4().hex
        rows = self.sql.written_then_read(
            f"INSERT INTO {self._keys} (run_key, source, details, status, claimed_at, claim_id) "
            "SELECT :run_key, :source, :details, :status, :claimed_at, :claim_id "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self._keys} WHERE run_key = :run_key)",
            f"SELECT claim_id FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
            {"run_key": run_key, "source": source, "details": _details_text(details), "status": status,
             "claimed_at": _iso(at), "claim_id": claim_id})
        return bool(rows) and rows[0][0] == claim_id

    def _update_existing(self, sql: str, params: dict[str, Any]) -> None:
        rows = self.sql.written_then_read(sql, f"SELECT 1 FROM {self._keys} WHERE run_key = :run_key LIMIT 1", params)
        if not rows:
            raise KeyError(f"run key {params['run_key']!r} was never claimed")

    def finish(self, run_key: str, status: str, run_id: str | None = None, reason: str | None = None, *,
               at: datetime | None = None) -> None:
        _check_status(status)
        self._update_existing(
            f"UPDATE {self._keys} SET status = :status, run_id = COALESCE(:run_id, run_id), "
            "reason = COALESCE(:reason, reason), finished_at = :finished_at WHERE run_key = :run_key",
            {"status": status, "run_id": run_id, "reason": reason, "finished_at": _iso(at), "run_key": run_key})

    def set_status(self, run_key: str, status: str, *, reason: str | None = None) -> None:
        _check_status(status)
        self._update_existing(
            f"UPDATE {self._keys} SET status = :status, reason = COALESCE(:reason, reason) WHERE run_key = :run_key",
            {"status": status, "reason": reason, "run_key": run_key})

    def take(self, run_key: str, *, at: datetime | None = None) -> bool:
        take_id = uuid.uuid4().hex
        rows = self.sql.written_then_read(
            f"UPDATE {self._keys} SET status = 'running', finished_at = NULL, take_id = :take_id "
            "WHERE run_key = :run_key AND status IN ('claimed', 'queued')",
            f"SELECT take_id FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
            {"run_key": run_key, "take_id": take_id})
        return bool(rows) and rows[0][0] == take_id

    def release(self, run_key: str) -> None:
        self.sql.write(f"DELETE FROM {self._keys} WHERE run_key = :run_key", {"run_key": run_key})

    def get(self, run_key: str) -> RunKeyRecord | None:
        rows = self.sql.execute(f"SELECT {_COLUMNS} FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
                          {"run_key": run_key})
        return _record(rows[0]) if rows else None

    def pending(self, source: str, statuses: tuple[str, ...] = ("claimed", "queued")) -> list[RunKeyRecord]:
        if not statuses:
            return []
        marks, params = self.sql.marks("status", tuple(statuses))
        rows = self.sql.execute(f"SELECT {_COLUMNS} FROM {self._keys} WHERE source = :source AND status IN ({marks}) "
                          "ORDER BY claimed_at, run_key", {"source": source, **params})
        return [_record(r) for r in rows]

    def history(self, source: str | None = None, limit: int = 50) -> list[RunKeyRecord]:
        where, params = (" WHERE source = :source", {"source": source}) if source is not None else ("", {})
        rows = self.sql.execute(f"SELECT {_COLUMNS} FROM {self._keys}{where} ORDER BY claimed_at DESC, run_key "
                          f"LIMIT {int(limit)}", params)
        return [_record(r) for r in rows]

    def last_fired(self, source: str) -> datetime | None:
        marks, params = self.sql.marks("not_fired", _NOT_FIRED)
        rows = self.sql.execute(f"SELECT MAX(claimed_at) FROM {self._keys} WHERE source = :source "
                          f"AND status NOT IN ({marks})", {"source": source, **params})
        return _parse(rows[0][0]) if rows and rows[0][0] else None

