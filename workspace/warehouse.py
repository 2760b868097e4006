"""A Databricks SQL warehouse through the Statement Execution API, for callers without Spark.

One client for every driftgate table written through a SQL warehouse (the trigger state of
:mod:`driftgate.triggers.warehouse_state`, the audit trail of :mod:`driftgate.workspace.warehouse_audit`).
Each statement is ``POST /api/2.0/sql/statements`` (INLINE disposition, JSON_ARRAY format, named
parameter markers) through ``databricks-sdk``, which reads the host and credentials from the environment
(``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` or another SDK auth), never from conf.

Every operation shares one budget (``retry_timeout_seconds``): the SDK's own retries of 429/503 answers
(its ``retry_timeout_seconds``), polling a statement that outlived ``wait_timeout_seconds``, and re-running
a write that lost a Delta write conflict (:meth:`SqlWarehouse.write`). A statement that fails
(``status.state`` ``FAILED``), a request the API refuses, or a spent budget raise the caller's driftgate
error naming the table, the error code and the warehouse's message.
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa

from driftgate.core.errors import DriftgateError, TableError

__all__ = ["SqlWarehouse", "SqlValue", "WriteConflict", "CONFLICT_SQLSTATE", "is_write_conflict", "sql_type",
           "quoted"]

CONFLICT_SQLSTATE = "2D521"
"""SQLSTATE of Delta's concurrent-modification errors (``DELTA_CONCURRENT_APPEND`` and its siblings)."""
MISSING_TABLE_SQLSTATE = "42P01"
"""SQLSTATE of ``TABLE_OR_VIEW_NOT_FOUND``."""
_CONFLICT = re.compile(r"\b(DELTA_CONCURRENT_[A-Z_]+|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED|"
                       r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception|"
                       r"MetadataChangedException|ProtocolChangedException)\b")

# Arrow types of driftgate's tables → the Databricks SQL types Spark gives them (pyspark's
# ``from_arrow_schema``; tests/test_webhook_serverless.py checks the two agree).
_SQL_TYPES: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_string, "STRING"), (pa.types.is_large_string, "STRING"), (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_int8, "TINYINT"), (pa.types.is_int16, "SMALLINT"), (pa.types.is_int32, "INT"),
    (pa.types.is_int64, "BIGINT"), (pa.types.is_float32, "FLOAT"), (pa.types.is_float64, "DOUBLE"),
    (pa.types.is_date32, "DATE"),
)


def sql_type(type_: pa.DataType) -> str:
    """The Databricks SQL type of an Arrow scalar type, as Spark maps it (``timestamp`` with a zone is
    ``TIMESTAMP``, without one ``TIMESTAMP_NTZ``).

    Raises:
        TableError: a type with no scalar SQL counterpart here (nested types, decimals).
    """
    if pa.types.is_timestamp(type_):
        return "TIMESTAMP" if type_.tz is not None else "TIMESTAMP_NTZ"
    for test, name in _SQL_TYPES:
        if test(type_):
            return name
    raise TableError(f"SQL warehouse: Arrow type {type_} has no scalar Databricks SQL type here")


def quoted(name: str) -> str:
    """A dotted table name with each part in backticks (``a.b.c`` → ```a`.`b`.`c```)."""
    return ".".join(f"`{part}`" for part in name.split("."))


def is_write_conflict(message: str | None, sql_state: str | None) -> bool:
    """True for a Delta optimistic-concurrency conflict: the statement did not commit and may be run again."""
    return sql_state == CONFLICT_SQLSTATE or bool(_CONFLICT.search(message or ""))


class _MissingTable(Exception):
    """A statement failed because a table it names does not exist."""


class WriteConflict(Exception):
    """A statement lost a Delta write conflict (nothing it wrote was committed); :meth:`SqlWarehouse.write`
    runs it again."""


@dataclass(frozen=True)
class SqlValue:
    """A parameter with a SQL type other than ``STRING`` (the API casts ``value`` to ``type`` and refuses
    a value that does not cast)."""

    value: Any
    type: str


Rows = list[list[str | None]]


class SqlWarehouse:
    """Statements on one SQL warehouse, bounded by one budget per operation.

    Args:
        warehouse_id: the SQL warehouse that runs the statements.
        where: what the statements are about, for messages (``<table> (SQL warehouse <id>)``).
        error: the driftgate error raised on a failure (called with the message).
        budget_key: the configuration key of ``retry_timeout_seconds``, for messages.
        wait_timeout_seconds: the API's ``wait_timeout`` (5-50 s); longer statements are polled.
        retry_timeout_seconds: budget of one operation (SDK retries, polling, conflict re-runs).
        client: a ``WorkspaceClient`` (default: one from the environment, with the budget as its retry timeout).
        poll_seconds: first pause between polls of a running statement, and between conflict re-runs.
    """

    def __init__(self, warehouse_id: str, *, where: str, error: Callable[[str], DriftgateError], budget_key: str,
                 wait_timeout_seconds: int = 30, retry_timeout_seconds: float = 60.0, client=None,
                 poll_seconds: float = 0.25):
        self.warehouse_id = warehouse_id
        self.where = where
        self.error = error
        self.budget_key = budget_key
        self.wait_timeout_seconds = int(wait_timeout_seconds)
        self.retry_timeout_seconds = float(retry_timeout_seconds)
        self.poll_seconds = poll_seconds
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config

            try:
                self._client = WorkspaceClient(config=Config(retry_timeout_seconds=int(self.retry_timeout_seconds)))
            except Exception as exc:  # noqa: BLE001 - no host or credentials in the environment
                raise self.error(f"{self.where}: cannot reach Databricks ({exc}); set DATABRICKS_HOST and "
                                 "DATABRICKS_TOKEN (or another databricks-sdk auth) in the environment") from exc
        return self._client

    def deadline(self) -> float:
        """The end of a new operation's budget (``time.monotonic`` seconds)."""
        return time.monotonic() + self.retry_timeout_seconds

    def _ran_out(self) -> str:
        return f"when the budget of {self.retry_timeout_seconds:g} s ran out ({self.budget_key})"

    def execute(self, sql: str, params: dict[str, Any], deadline: float | None = None) -> Rows:
        """Run one statement to its end; its rows (JSON_ARRAY: strings or None).

        Args:
            sql: the statement, with ``:name`` parameter markers.
            params: marker name → value (sent as text, ``STRING``), or a :class:`SqlValue` with its type.
            deadline: the operation's end (default: a new budget).

        Raises:
            WriteConflict: it lost a Delta write conflict.
            DriftgateError: (``error``) it failed, was refused, or outlived the budget.
        """
        try:
            return self._run(sql, params, deadline)
        except _MissingTable as exc:
            raise self.error(str(exc)) from None

    def _run(self, sql: str, params: dict[str, Any], deadline: float | None) -> Rows:
        """:meth:`execute`, with a statement that failed for want of its table raised as :class:`_MissingTable`."""
        from databricks.sdk.errors import DatabricksError
        from databricks.sdk.service.sql import (Disposition, ExecuteStatementRequestOnWaitTimeout, Format,
                                                StatementState)

        deadline = deadline if deadline is not None else self.deadline()
        api = self.client.statement_execution
        try:
            resp = api.execute_statement(
                statement=sql, warehouse_id=self.warehouse_id, parameters=_parameters(params) or None,
                wait_timeout=f"{self.wait_timeout_seconds}s", on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
                disposition=Disposition.INLINE, format=Format.JSON_ARRAY)
            pause = self.poll_seconds
            while resp.status is not None and resp.status.state in (StatementState.PENDING, StatementState.RUNNING):
                if time.monotonic() + pause > deadline:
                    api.cancel_execution(resp.statement_id)
                    raise self.error(f"{self.where}: statement {resp.statement_id} still {resp.status.state.value} "
                                     f"{self._ran_out()}; cancelled it")
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                resp = api.get_statement(resp.statement_id)
            state = resp.status.state if resp.status is not None else None
            if state == StatementState.FAILED:
                error = resp.status.error
                code = error.error_code.value if error is not None and error.error_code is not None else "UNKNOWN"
                message = (error.message if error is not None else None) or "no message"
                if is_write_conflict(message, resp.status.sql_state):
                    raise WriteConflict(message)
                text = (f"{self.where}: the SQL warehouse failed a statement: {code}"
                        f"{f' (SQLSTATE {resp.status.sql_state})' if resp.status.sql_state else ''}: {message}")
                if resp.status.sql_state == MISSING_TABLE_SQLSTATE or "[TABLE_OR_VIEW_NOT_FOUND]" in message:
                    raise _MissingTable(text)
                raise self.error(text)
            if state != StatementState.SUCCEEDED:
                raise self.error(f"{self.where}: statement {resp.statement_id} ended "
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
            raise self.error(f"{self.where}: the Statement Execution API refused a request: "
                             f"{exc.error_code or type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # the SDK's retries ran out (TimeoutError), or the host is unreachable
            last = exc.__cause__
            detail = f"{getattr(last, 'error_code', None) or type(last).__name__}: {last}" if last else str(exc)
            raise self.error(f"{self.where}: the Statement Execution API did not answer within the budget of "
                             f"{self.retry_timeout_seconds:g} s ({self.budget_key}): {detail}") from exc

    def write(self, sql: str, params: dict[str, Any], deadline: float | None = None, *,
              create: str | None = None) -> None:
        """Run a write, again after each lost write conflict, until it commits or the budget is spent.

        Only for writes that may be run twice (conditional inserts, updates to a value, deletes).

        Args:
            create: a ``CREATE TABLE IF NOT EXISTS`` to run, then the write again, if the write fails for want
                of its table (``TABLE_OR_VIEW_NOT_FOUND``): the privilege to create it is needed only then.
        """
        deadline = deadline if deadline is not None else self.deadline()
        pause = self.poll_seconds / 5
        while True:
            try:
                self._run(sql, params, deadline)
                return
            except _MissingTable as exc:
                if create is None:
                    raise self.error(str(exc)) from None
                self.write(create, {}, deadline)
                create = None
                continue
            except WriteConflict as exc:
                if time.monotonic() + pause > deadline:
                    raise self.error(f"{self.where}: still losing Delta write conflicts "
                                     f"{self._ran_out()}: {exc}") from exc
            time.sleep(pause * random.uniform(0.5, 1.5))  # jitter: writers that collided do not collide again
            pause = min(pause * 2, 2.0)

    def written_then_read(self, write: str, read: str, params: dict[str, Any]) -> Rows:
        """:meth:`write`, then a read with the same parameters, within one budget."""
        deadline = self.deadline()
        self.write(write, params, deadline)
        return self.execute(read, params, deadline)

    @staticmethod
    def marks(prefix: str, values: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
        """``(":p0, :p1", {"p0": v0, "p1": v1})``: markers and parameters for a list of values."""
        params = {f"{prefix}{i}": v for i, v in enumerate(values)}
        return ", ".join(f":{k}" for k in params), params


def _parameters(params: dict[str, Any]) -> list:
    from databricks.sdk.service.sql import StatementParameterListItem

    out = []
    for name, given in params.items():
        value, type_ = (given.value, given.type) if isinstance(given, SqlValue) else (given, "STRING")
        out.append(StatementParameterListItem(name=name, value=None if value is None else str(value), type=type_))
    return out
