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

Every operation shares one budget, ``triggers.state.retry_timeout_seconds``: the SDK's own retries
of 429/503 answers (its ``retry_timeout_seconds``), polling a statement that outlived
``wait_timeout_seconds``, and re-running after conflicts. A statement that fails (``status.state``
``FAILED``), a request the API refuses, or a spent budget raise :class:`TriggerError` naming the
table, the error code and the warehouse's message.
"""
from __future__ import annotations

import random
import re
import time
import uuid
from datetime import datetime
from typing import Any

from driftgate.core.errors import TriggerError
from driftgate.triggers.state import (RunKeyRecord, TriggerState, _check_claim, _check_cursor, _check_status,
                                      _details_text, _iso, _NOT_FIRED, _parse, _record)

__all__ = ["WarehouseStateStore", "CONFLICT_SQLSTATE", "is_write_conflict"]

CONFLICT_SQLSTATE = "2D521"
"""SQLSTATE of Delta's concurrent-modification errors (``DELTA_CONCURRENT_APPEND`` and its siblings)."""
_CONFLICT = re.compile(r"\b(DELTA_CONCURRENT_[A-Z_]+|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED|"
                       r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception|"
                       r"MetadataChangedException|ProtocolChangedException)\b")
_COLUMNS = "run_key, source, details, status, run_id, reason, claimed_at, finished_at"


def is_write_conflict(message: str | None, sql_state: str | None) -> bool:
    """True for a Delta optimistic-concurrency conflict: the statement did not commit and may be run again."""
    return sql_state == CONFLICT_SQLSTATE or bool(_CONFLICT.search(message or ""))


class _Conflict(Exception):
    """A statement lost a Delta write conflict (nothing it wrote was committed)."""


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
        self.warehouse_id = warehouse_id
        self.retry_timeout_seconds = float(retry_timeout_seconds)
        self.wait_timeout_seconds = int(wait_timeout_seconds)
        self.poll_seconds = poll_seconds
        self._client = client
        self.cursors_name = f"{catalog_name}.{schema_name}.{cursors_table}"
        self.run_keys_name = f"{catalog_name}.{schema_name}.{run_keys_table}"
        self._cursors = ".".join(f"`{p}`" for p in (catalog_name, schema_name, cursors_table))
        self._keys = ".".join(f"`{p}`" for p in (catalog_name, schema_name, run_keys_table))
        self.where = f"{self.run_keys_name} (SQL warehouse {warehouse_id})"
        if create:
            self.create_tables()

    @classmethod
    def from_config(cls, config, *, client=None, create: bool = True) -> "WarehouseStateStore":
        """The store ``triggers.state`` (a :class:`~driftgate.triggers.config.StateConfig`) describes."""
        return cls(warehouse_id=config.warehouse_id, catalog_name=config.catalog_name, schema_name=config.schema_name,
                   cursors_table=config.cursors_table, run_keys_table=config.run_keys_table,
                   wait_timeout_seconds=config.wait_timeout_seconds,
                   retry_timeout_seconds=config.retry_timeout_seconds, client=client, create=create)

    @property
    def client(self):
        if self._client is None:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config

            try:
                self._client = WorkspaceClient(config=Config(retry_timeout_seconds=int(self.retry_timeout_seconds)))
            except Exception as exc:  # noqa: BLE001 - no host or credentials in the environment
                raise TriggerError(f"{self.where}: cannot reach Databricks ({exc}); set DATABRICKS_HOST and "
                                   "DATABRICKS_TOKEN (or another databricks-sdk auth) in the environment") from exc
        return self._client

    # -- statements ------------------------------------------------------------------------

    def create_tables(self) -> None:
        props = "USING DELTA TBLPROPERTIES ('delta.isolationLevel' = 'Serializable')"
        self._write(f"CREATE TABLE IF NOT EXISTS {self._cursors} (name STRING NOT NULL, cursor_value STRING NOT NULL, "
                    f"updated_at STRING NOT NULL) {props}", {})
        self._write(f"CREATE TABLE IF NOT EXISTS {self._keys} (run_key STRING NOT NULL, source STRING NOT NULL, "
                    "details STRING NOT NULL, status STRING NOT NULL, run_id STRING, reason STRING, "
                    f"claimed_at STRING NOT NULL, finished_at STRING, claim_id STRING NOT NULL, take_id STRING) {props}",
                    {})

    def _execute(self, sql: str, params: dict[str, Any], deadline: float) -> list[list[str | None]]:
        """Run one statement to its end; its rows (JSON_ARRAY: strings or None).

        Raises:
            _Conflict: it lost a Delta write conflict.
            TriggerError: it failed, was refused, or outlived the budget.
        """
        from databricks.sdk.errors import DatabricksError
        from databricks.sdk.service.sql import (Disposition, ExecuteStatementRequestOnWaitTimeout, Format,
                                                StatementParameterListItem, StatementState)

        api = self.client.statement_execution
        parameters = [StatementParameterListItem(name=k, value=None if v is None else str(v), type="STRING")
                      for k, v in params.items()]
        try:
            resp = api.execute_statement(
                statement=sql, warehouse_id=self.warehouse_id, parameters=parameters or None,
                wait_timeout=f"{self.wait_timeout_seconds}s", on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
                disposition=Disposition.INLINE, format=Format.JSON_ARRAY)
            pause = self.poll_seconds
            while resp.status is not None and resp.status.state in (StatementState.PENDING, StatementState.RUNNING):
                if time.monotonic() + pause > deadline:
                    api.cancel_execution(resp.statement_id)
                    raise TriggerError(f"{self.where}: statement {resp.statement_id} still "
                                       f"{resp.status.state.value} when the budget of {self.retry_timeout_seconds:g} s "
                                       "ran out (triggers.state.retry_timeout_seconds); cancelled it")
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                resp = api.get_statement(resp.statement_id)
            state = resp.status.state if resp.status is not None else None
            if state == StatementState.FAILED:
                error = resp.status.error
                code = error.error_code.value if error is not None and error.error_code is not None else "UNKNOWN"
                message = (error.message if error is not None else None) or "no message"
                if is_write_conflict(message, resp.status.sql_state):
                    raise _Conflict(message)
                raise TriggerError(f"{self.where}: the SQL warehouse failed a statement: {code}"
                                   f"{f' (SQLSTATE {resp.status.sql_state})' if resp.status.sql_state else ''}: "
                                   f"{message}")
            if state != StatementState.SUCCEEDED:
                raise TriggerError(f"{self.where}: statement {resp.statement_id} ended "
                                   f"{state.value if state else 'without a state'}, expected SUCCEEDED")
            result = resp.result
            rows = list(result.data_array or []) if result is not None else []
            chunk = result.next_chunk_index if result is not None else None
            while chunk is not None:
                part = api.get_statement_result_chunk_n(resp.statement_id, chunk)
                rows += part.data_array or []
                chunk = part.next_chunk_index
            return rows
        except DatabricksError as exc:
            raise TriggerError(f"{self.where}: the Statement Execution API refused a request: "
                               f"{exc.error_code or type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # the SDK's retries ran out (TimeoutError), or the host is unreachable
            last = exc.__cause__
            detail = f"{getattr(last, 'error_code', None) or type(last).__name__}: {last}" if last else str(exc)
            raise TriggerError(f"{self.where}: the Statement Execution API did not answer within the budget of "
                               f"{self.retry_timeout_seconds:g} s (triggers.state.retry_timeout_seconds): "
                               f"{detail}") from exc

    def _deadline(self) -> float:
        return time.monotonic() + self.retry_timeout_seconds

    def _write(self, sql: str, params: dict[str, Any], deadline: float | None = None) -> None:
        """Run a write, again after each lost write conflict, until it commits or the budget is spent."""
        deadline = deadline if deadline is not None else self._deadline()
        pause = self.poll_seconds / 5
        while True:
            try:
                self._execute(sql, params, deadline)
                return
            except _Conflict as exc:
                if time.monotonic() + pause > deadline:
                    raise TriggerError(f"{self.where}: still losing Delta write conflicts when the budget of "
                                       f"{self.retry_timeout_seconds:g} s ran out "
                                       f"(triggers.state.retry_timeout_seconds): {exc}") from exc
            time.sleep(pause * random.uniform(0.5, 1.5))  # jitter: claimants that collided do not collide again
            pause = min(pause * 2, 2.0)

    def _rows(self, sql: str, params: dict[str, Any]) -> list[list[str | None]]:
        return self._execute(sql, params, self._deadline())

    def _written_then_read(self, write: str, read: str, params: dict[str, Any]) -> list[list[str | None]]:
        deadline = self._deadline()
        self._write(write, params, deadline)
        return self._execute(read, params, deadline)

    @staticmethod
    def _marks(prefix: str, values: tuple[str, ...]) -> tuple[str, dict[str, str]]:
        params = {f"{prefix}{i}": v for i, v in enumerate(values)}
        return ", ".join(f":{k}" for k in params), params

    # -- cursors ---------------------------------------------------------------------------

    def get_cursor(self, trigger_name: str) -> str | None:
        rows = self._rows(f"SELECT cursor_value FROM {self._cursors} WHERE name = :name", {"name": trigger_name})
        return rows[0][0] if rows else None

    def set_cursor(self, trigger_name: str, cursor: str, *, at: datetime | None = None) -> None:
        _check_cursor(trigger_name, cursor)
        params = {"name": trigger_name, "cursor_value": cursor, "at": _iso(at)}
        deadline = self._deadline()
        # Insert if absent, then set: both conditional on the name, so re-running either is harmless.
        self._write(f"INSERT INTO {self._cursors} (name, cursor_value, updated_at) SELECT :name, :cursor_value, :at "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {self._cursors} WHERE name = :name)", params, deadline)
        self._write(f"UPDATE {self._cursors} SET cursor_value = :cursor_value, updated_at = :at WHERE name = :name",
                    params, deadline)

    def delete_cursor(self, trigger_name: str) -> None:
        self._write(f"DELETE FROM {self._cursors} WHERE name = :name", {"name": trigger_name})

    # -- run keys --------------------------------------------------------------------------

    def claim(self, run_key: str, *, source: str, details: dict[str, Any] | None = None, status: str = "claimed",
              at: datetime | None = None) -> bool:
        _check_claim(run_key, status)
        claim_id = uuid.uuid4().hex
        rows = self._written_then_read(
            f"INSERT INTO {self._keys} (run_key, source, details, status, claimed_at, claim_id) "
            "SELECT :run_key, :source, :details, :status, :claimed_at, :claim_id "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self._keys} WHERE run_key = :run_key)",
            f"SELECT claim_id FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
            {"run_key": run_key, "source": source, "details": _details_text(details), "status": status,
             "claimed_at": _iso(at), "claim_id": claim_id})
        return bool(rows) and rows[0][0] == claim_id

    def _update_existing(self, sql: str, params: dict[str, Any]) -> None:
        rows = self._written_then_read(sql, f"SELECT 1 FROM {self._keys} WHERE run_key = :run_key LIMIT 1", params)
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
        rows = self._written_then_read(
            f"UPDATE {self._keys} SET status = 'running', finished_at = NULL, take_id = :take_id "
            "WHERE run_key = :run_key AND status IN ('claimed', 'queued')",
            f"SELECT take_id FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
            {"run_key": run_key, "take_id": take_id})
        return bool(rows) and rows[0][0] == take_id

    def release(self, run_key: str) -> None:
        self._write(f"DELETE FROM {self._keys} WHERE run_key = :run_key", {"run_key": run_key})

    def get(self, run_key: str) -> RunKeyRecord | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM {self._keys} WHERE run_key = :run_key ORDER BY claim_id LIMIT 1",
                          {"run_key": run_key})
        return _record(rows[0]) if rows else None

    def pending(self, source: str, statuses: tuple[str, ...] = ("claimed", "queued")) -> list[RunKeyRecord]:
        if not statuses:
            return []
        marks, params = self._marks("status", tuple(statuses))
        rows = self._rows(f"SELECT {_COLUMNS} FROM {self._keys} WHERE source = :source AND status IN ({marks}) "
                          "ORDER BY claimed_at, run_key", {"source": source, **params})
        return [_record(r) for r in rows]

    def history(self, source: str | None = None, limit: int = 50) -> list[RunKeyRecord]:
        where, params = (" WHERE source = :source", {"source": source}) if source is not None else ("", {})
        rows = self._rows(f"SELECT {_COLUMNS} FROM {self._keys}{where} ORDER BY claimed_at DESC, run_key "
                          f"LIMIT {int(limit)}", params)
        return [_record(r) for r in rows]

    def last_fired(self, source: str) -> datetime | None:
        marks, params = self._marks("not_fired", _NOT_FIRED)
        rows = self._rows(f"SELECT MAX(claimed_at) FROM {self._keys} WHERE source = :source "
                          f"AND status NOT IN ({marks})", {"source": source, **params})
        return _parse(rows[0][0]) if rows and rows[0][0] else None

