"""An offline Databricks SQL warehouse: the Statement Execution API on a real local HTTP server
(werkzeug, via pytest-httpserver) that really executes the statements it is sent. Databricks SQL is
transpiled to SQLite with ``sqlglot`` and run on one SQLite database, so what the SQL means is
tested, not assumed; named parameter markers (``:name``) are bound from the request's ``parameters``.

Shapes transcribed from the documentation (https://docs.databricks.com/api/workspace/statementexecution/executestatement,
``.../getstatement``, ``.../getstatementresultchunkn``, ``.../cancelexecution``; the same text is in
``databricks.sdk.service.sql.StatementExecutionAPI``'s docstrings):

* ``POST /api/2.0/sql/statements`` ``{warehouse_id, statement, parameters: [{name, value?, type?}],
  wait_timeout: "0s" | "5s".."50s", on_wait_timeout: CONTINUE | CANCEL, disposition, format}`` →
  ``200 {statement_id, status: {state, error?: {error_code, message}, sql_state?}, manifest: {format,
  schema: {column_count, columns: [{name, position, type_name, type_text}]}, total_chunk_count, chunks,
  total_row_count, truncated}, result: {chunk_index, row_offset, row_count, data_array, next_chunk_index?}}``.
  A statement that fails is still a 200, with ``status.state: FAILED``; a request the API refuses is a
  4xx ``{error_code, message}``. A parameter without ``value`` is NULL; without ``type``, a STRING. With
  ``format: JSON_ARRAY`` each value is its string representation or ``null``.
* ``GET /api/2.0/sql/statements/{id}`` → the same object (polling a statement still ``PENDING``/``RUNNING``);
  ``GET .../result/chunks/{n}`` → ``{chunk_index, row_offset, row_count, data_array, next_chunk_index?}``;
  ``POST .../cancel`` → ``{}``.

Only ``INLINE`` / ``JSON_ARRAY`` are served (other dispositions and formats are refused with 400).

Delta's optimistic concurrency is modelled, as documented for an unpartitioned table under
``Serializable`` isolation (https://docs.databricks.com/optimizations/isolation-level.html): a write
reads a snapshot of every table it names, and commits only if none of them received a commit since;
otherwise it fails with ``[DELTA_CONCURRENT_APPEND...]`` and SQLSTATE ``2D521``
(https://docs.databricks.com/error-messages/delta-concurrent-append-error-class.html). ``commit_delay``
widens the window between snapshot and commit so concurrent callers really collide. The documentation
does not say which ``status.error.error_code`` a conflict carries; ``ABORTED`` is used here and the store
does not depend on it.

Failure injection: :meth:`FakeWarehouse.fail_next` (a FAILED statement), ``unavailable`` (503 answers),
``lost_answers`` (the statement runs, then the answer is lost: a 503, which the SDK retries by sending it
again); slow statements: ``pending_polls`` (each statement answers ``RUNNING`` that many times before it
runs); chunked results: ``chunk_rows``.

Typed parameters are checked as documented ("a value is correct if the provided string can be converted
to the requested type using the ``cast`` function"): a ``TIMESTAMP`` value must be an ISO-8601 instant
and is stored as UTC ISO text; a value that does not cast fails the statement. SQLite cannot name the
columns of an inline table (``VALUES (...) AS t(a, b)``); such a table is run as
``(SELECT column1 AS a, column2 AS b FROM (VALUES ...)) AS t``, which means the same.
"""
from __future__ import annotations

import itertools
import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from werkzeug import Request, Response

STATEMENTS = "/api/2.0/sql/statements"
_WAIT = re.compile(r"^(0|[5-9]|[1-4][0-9]|50)s$")
_INTS = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "LONG", "SHORT", "BYTE"}
_FLOATS = {"DOUBLE", "FLOAT", "REAL"}
ERROR_CODES = ("UNKNOWN", "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "IO_ERROR", "BAD_REQUEST",
               "SERVICE_UNDER_MAINTENANCE", "WORKSPACE_TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED",
               "RESOURCE_EXHAUSTED", "ABORTED", "NOT_FOUND", "ALREADY_EXISTS", "UNAUTHENTICATED")
"""The documented values of ``status.error.error_code`` (the StatementResponse object)."""


def _timestamp(name: str, value: str) -> str:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:  # a zoneless text would be read in the session time zone: refuse it here
        raise _Failed("BAD_REQUEST", f"[INVALID_PARAMETER_VALUE] parameter {name}: cannot cast '{value}' to "
                      "TIMESTAMP (this fake takes ISO-8601 instants with an offset)", "22018")
    return at.astimezone(timezone.utc).isoformat()


def _name_inline_columns(tree: exp.Expression) -> None:
    """``VALUES (...) AS t(a, b)`` → ``(SELECT column1 AS a, column2 AS b FROM (VALUES (...))) AS t``."""
    for values in list(tree.find_all(exp.Values)):
        alias = values.args.get("alias")
        if alias is None or not alias.columns:
            continue
        select = exp.select(*[exp.alias_(exp.column(f"column{i + 1}"), col.copy())
                              for i, col in enumerate(alias.columns)])
        select = select.from_(exp.Subquery(this=exp.Values(expressions=values.expressions)))
        values.replace(exp.Subquery(this=select, alias=exp.TableAlias(this=alias.this.copy())))


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


class _Failed(Exception):
    def __init__(self, error_code: str, message: str, sql_state: str | None = None):
        super().__init__(message)
        self.error_code, self.message, self.sql_state = error_code, message, sql_state


@dataclass
class FakeWarehouse:
    warehouse_id: str = "abcdef0123456789"
    schemas: set[str] = field(default_factory=lambda: {"main.driftgate"})
    commit_delay: float = 0.0
    pending_polls: int = 0
    chunk_rows: int | None = None
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    conflicts: int = 0
    properties: dict[str, dict[str, str]] = field(default_factory=dict)
    unavailable: int = 0
    """Answer this many of the next requests ``503 TEMPORARILY_UNAVAILABLE`` (the SDK retries those)."""
    lost_answers: int = 0
    """Run this many of the next statements, then answer ``503`` as if the answer was lost on its way back."""

    def __post_init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._failures: list[tuple[re.Pattern, _Failed]] = []
        self._statements: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ test helpers
    def fail_next(self, error_code: str, message: str, *, sql_state: str | None = None, matching: str = ".*",
                  times: int = 1) -> None:
        """The next ``times`` statements whose text matches ``matching`` fail with this error."""
        assert error_code in ERROR_CODES, f"{error_code} is not a documented status.error.error_code"
        self._failures += [(re.compile(matching, re.S), _Failed(error_code, message, sql_state))] * times

    def rows(self, table: str, where: str = "1 = 1") -> list[dict[str, Any]]:
        """Rows of ``catalog.schema.table`` as dicts (for assertions)."""
        with self._lock:
            cur = self.db.execute(f'SELECT * FROM "{table}" WHERE {where}')
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def statements(self) -> list[str]:
        return [body["statement"] for method, path, body in self.requests if method == "POST" and path == STATEMENTS]

    # ------------------------------------------------------------------ dispatch
    def __call__(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.method == "POST" else None
        self.requests.append((request.method, request.path, body if body is not None else dict(request.args)))
        path = request.path
        if self.unavailable > 0 and path.startswith(STATEMENTS):
            self.unavailable -= 1
            return _json({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The service is temporarily "
                          "unavailable. Please try again later."}, 503)
        if request.method == "POST" and path == STATEMENTS:
            answer = self.execute(body or {})
            if self.lost_answers > 0:
                self.lost_answers -= 1
                return _json({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "upstream request timeout"}, 503)
            return answer
        match = re.fullmatch(rf"{STATEMENTS}/([^/]+)(/cancel|/result/chunks/(\d+))?", path)
        if match is None or match.group(1) not in self._statements:
            return _json({"error_code": "NOT_FOUND", "message": f"no statement at {path}"}, 404)
        stmt = self._statements[match.group(1)]
        if request.method == "POST" and match.group(2) == "/cancel":
            if stmt["state"] in ("PENDING", "RUNNING"):
                stmt["state"] = "CANCELED"
            return _json({})
        if request.method == "GET" and match.group(3) is not None:
            return _json(self._chunk(stmt, int(match.group(3))))
        if request.method == "GET" and match.group(2) is None:
            return _json(self._advance(stmt))
        return _json({"error_code": "ENDPOINT_NOT_FOUND", "message": f"{request.method} {path}"}, 404)

    def execute(self, a: dict[str, Any]) -> Response:
        if a.get("warehouse_id") != self.warehouse_id:
            return _json({"error_code": "RESOURCE_DOES_NOT_EXIST",
                          "message": f"Warehouse {a.get('warehouse_id')} does not exist."}, 404)
        wait = a.get("wait_timeout", "10s")
        if not _WAIT.match(str(wait)):
            return _json({"error_code": "INVALID_PARAMETER_VALUE",
                          "message": f"wait_timeout must be 0s or between 5s and 50s, got {wait}"}, 400)
        if a.get("disposition", "INLINE") != "INLINE" or a.get("format", "JSON_ARRAY") != "JSON_ARRAY":
            return _json({"error_code": "INVALID_PARAMETER_VALUE",
                          "message": "this fake serves only INLINE disposition in JSON_ARRAY format"}, 400)
        if not a.get("statement"):
            return _json({"error_code": "INVALID_PARAMETER_VALUE", "message": "statement is required"}, 400)
        statement_id = f"01ef-{next(self._ids):08d}"
        stmt = {"id": statement_id, "sql": a["statement"], "parameters": a.get("parameters") or [],
                "state": "PENDING", "polls": self.pending_polls, "snapshot": None}
        self._statements[statement_id] = stmt
        return _json(self._advance(stmt))

    # ------------------------------------------------------------------ running a statement
    def _advance(self, stmt: dict[str, Any]) -> dict[str, Any]:
        if stmt["state"] in ("PENDING", "RUNNING"):
            if stmt["polls"] > 0:
                stmt["polls"] -= 1
                stmt["state"] = "RUNNING"
            else:
                self._run(stmt)
        return self._response(stmt)

    def _run(self, stmt: dict[str, Any]) -> None:
        try:
            columns, rows = self._execute(stmt["sql"], stmt["parameters"])
        except _Failed as failed:
            stmt.update(state="FAILED", error={"error_code": failed.error_code, "message": failed.message},
                        sql_state=failed.sql_state)
            return
        stmt.update(state="SUCCEEDED", columns=columns, rows=rows)

    def _execute(self, sql: str, parameters: list[dict[str, Any]]) -> tuple[list[dict], list[list[str | None]]]:
        for i, (pattern, failure) in enumerate(self._failures):
            if pattern.search(sql):
                del self._failures[i]
                raise failure
        try:
            tree = sqlglot.parse_one(sql, read="databricks")
        except sqlglot.errors.ParseError as exc:
            raise _Failed("BAD_REQUEST", f"[PARSE_SYNTAX_ERROR] Syntax error: {exc}", "42601") from None
        values = self._bind(tree, parameters)
        _name_inline_columns(tree)
        tables = self._rename_tables(tree)
        written = self._target(tree)
        if isinstance(tree, exp.Create):
            return self._create(tree, written)
        for name in tables:
            if not self._exists(name):
                raise _Failed("BAD_REQUEST", f"[TABLE_OR_VIEW_NOT_FOUND] The table or view `{name}` cannot be found.",
                              "42P01")
        text = tree.sql(dialect="sqlite", unsupported_level=ErrorLevel.IGNORE)
        if written is None:
            with self._lock:
                return self._fetch(text, values)
        with self._lock:
            snapshot = {t: self._versions.get(t, 0) for t in tables}
        time.sleep(self.commit_delay)  # the warehouse writes its files between reading and committing
        with self._lock:
            moved = [t for t, v in snapshot.items() if self._versions.get(t, 0) != v]
            if moved:
                self.conflicts += 1
                t = moved[0]
                raise _Failed("ABORTED", f"[DELTA_CONCURRENT_APPEND.WHOLE_TABLE_READ] Transaction conflict detected. "
                              f"A concurrent write added data to table `{t}` committed at version "
                              f"{self._versions[t]}. This transaction read the entire table and conflicted with "
                              "the concurrent modification. Please retry the operation.", "2D521")
            cur = self.db.execute(text, values)
            count = max(cur.rowcount, 0)
            if count:
                self._versions[written] = self._versions.get(written, 0) + 1
        label = "num_inserted_rows" if isinstance(tree, exp.Insert) else None
        columns = [{"name": "num_affected_rows", "position": 0, "type_name": "LONG", "type_text": "bigint"}]
        row = [str(count)]
        if label:
            columns.append({"name": label, "position": 1, "type_name": "LONG", "type_text": "bigint"})
            row.append(str(count))
        return columns, [row]

    def _bind(self, tree: exp.Expression, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        given = {}
        for p in parameters:
            value, kind = p.get("value"), str(p.get("type") or "STRING").upper()
            if value is not None and kind in _INTS:
                value = int(value)
            elif value is not None and kind in _FLOATS:
                value = float(value)
            elif value is not None and kind == "TIMESTAMP":
                value = _timestamp(p["name"], value)
            given[p["name"]] = value
        for marker in tree.find_all(exp.Placeholder):
            if marker.name and marker.name not in given:
                raise _Failed("BAD_REQUEST", f"[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {marker.name}. "
                              "Please, fix `args` and provide a mapping of the parameter to a SQL literal.", "42P02")
        return given

    def _rename_tables(self, tree: exp.Expression) -> list[str]:
        names = []
        for table in tree.find_all(exp.Table):
            if not (table.catalog and table.db):
                raise _Failed("BAD_REQUEST", f"[TABLE_OR_VIEW_NOT_FOUND] The table or view `{table.name}` cannot be "
                              "found (this fake needs catalog.schema.table names).", "42P01")
            schema = f"{table.catalog}.{table.db}"
            if schema not in self.schemas:
                raise _Failed("BAD_REQUEST", f"[SCHEMA_NOT_FOUND] The schema `{table.catalog}`.`{table.db}` cannot "
                              "be found. Verify the spelling and correctness of the schema and catalog.", "42704")
            name = f"{schema}.{table.name}"
            table.set("catalog", None)
            table.set("db", None)
            table.set("this", exp.to_identifier(name, quoted=True))
            names.append(name)
        return list(dict.fromkeys(names))

    @staticmethod
    def _target(tree: exp.Expression) -> str | None:
        if isinstance(tree, exp.Create | exp.Insert | exp.Update | exp.Delete):
            table = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
            return table.name
        return None

    def _exists(self, name: str) -> bool:
        with self._lock:
            return self._exists_locked(name)

    def _create(self, tree: exp.Create, name: str) -> tuple[list[dict], list[list[str | None]]]:
        props = tree.args.get("properties")
        if props is not None:
            found = {}
            for prop in props.expressions:
                if isinstance(prop, exp.Property) and not isinstance(prop, exp.FileFormatProperty):
                    found[prop.name] = prop.args["value"].name
            props.pop()
        else:
            found = {}
        with self._lock:
            exists = self._exists_locked(name)
            if not exists:
                self.db.execute(tree.sql(dialect="sqlite", unsupported_level=ErrorLevel.IGNORE))
                self.properties[name] = found
        return [], []

    def _exists_locked(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone() is not None

    def _fetch(self, text: str, values: dict[str, Any]) -> tuple[list[dict], list[list[str | None]]]:
        cur = self.db.execute(text, values)
        rows = cur.fetchall()
        kinds = {str: ("STRING", "string"), int: ("LONG", "bigint"), float: ("DOUBLE", "double")}
        columns = []
        for i, d in enumerate(cur.description or []):
            sample = next((r[i] for r in rows if r[i] is not None), "")
            type_name, type_text = kinds.get(type(sample), ("STRING", "string"))
            columns.append({"name": d[0], "position": i, "type_name": type_name, "type_text": type_text})
        return columns, [[None if v is None else str(v) for v in r] for r in rows]

    # ------------------------------------------------------------------ answers
    def _chunks(self, stmt: dict[str, Any]) -> list[list[list[str | None]]]:
        rows = stmt["rows"]
        size = self.chunk_rows or max(len(rows), 1)
        return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]

    def _chunk(self, stmt: dict[str, Any], index: int) -> dict[str, Any]:
        chunks = self._chunks(stmt)
        offset = sum(len(c) for c in chunks[:index])
        out = {"chunk_index": index, "row_offset": offset, "row_count": len(chunks[index]),
               "data_array": chunks[index]}
        if index + 1 < len(chunks):
            out["next_chunk_index"] = index + 1
            out["next_chunk_internal_link"] = f"{STATEMENTS}/{stmt['id']}/result/chunks/{index + 1}"
        return out

    def _response(self, stmt: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"statement_id": stmt["id"], "status": {"state": stmt["state"]}}
        if stmt["state"] == "FAILED":
            body["status"]["error"] = stmt["error"]
            if stmt.get("sql_state"):
                body["status"]["sql_state"] = stmt["sql_state"]
        if stmt["state"] != "SUCCEEDED":
            return body
        chunks = self._chunks(stmt)
        body["manifest"] = {
            "format": "JSON_ARRAY",
            "schema": {"column_count": len(stmt["columns"]), "columns": stmt["columns"]},
            "total_chunk_count": len(chunks),
            "chunks": [{"chunk_index": i, "row_offset": sum(len(c) for c in chunks[:i]), "row_count": len(c)}
                       for i, c in enumerate(chunks)],
            "total_row_count": len(stmt["rows"]),
            "truncated": False,
        }
        body["result"] = self._chunk(stmt, 0)
        return body


@contextmanager
def serving(fake: FakeWarehouse) -> Iterator[str]:
    """Serve ``fake`` on a threaded local HTTP server (concurrent statements really overlap); yields its URL."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)
    server.expect_request(re.compile(".*")).respond_with_handler(fake)
    server.start()
    try:
        yield server.url_for("/").rstrip("/")
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def warehouse(monkeypatch) -> Iterator[FakeWarehouse]:
    """A fake warehouse the real ``databricks-sdk`` reaches through the environment (host and token)."""
    fake = FakeWarehouse()
    with serving(fake) as url:
        for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("DATABRICKS_HOST", url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-offline-test")
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
        yield fake


WAREHOUSE_SETS = ("triggers.state.backend=warehouse", f"triggers.state.warehouse_id={FakeWarehouse.warehouse_id}",
                  "triggers.state.catalog_name=main", "triggers.state.schema_name=driftgate")
"""``--set`` overrides that point ``triggers.state`` at the fake warehouse's ``main.driftgate`` schema."""
