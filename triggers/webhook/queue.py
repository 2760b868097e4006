"""The durable queue between the receiver (fast acknowledgement) and the worker (gate + launch).

One SQLite file beside the trigger state (``<root>/webhook_queue.db``). A request is
keyed by its run key, so duplicate deliveries only bump a counter. A worker takes
a request with a lease; if the worker dies, the lease runs out and the request is
taken again. Requests leave the queue only as ``done`` with an outcome
(``launched``, ``skipped``, ``failed``, ``recorded``), never silently.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = ["AlertQueue", "QueueItem"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    run_key      TEXT PRIMARY KEY,
    action       TEXT NOT NULL,
    alert        TEXT NOT NULL,
    received_at  REAL NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued',
    not_before   REAL NOT NULL,
    lease_until  REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    decision     TEXT,
    note         TEXT,
    outcome      TEXT,
    run_id       TEXT,
    launched_at  REAL,
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS requests_due ON requests (status, not_before);
"""
_COLUMNS = "run_key, action, alert, received_at, attempts, deliveries, decision, note"


@dataclass(frozen=True)
class QueueItem:
    """A request taken from the queue."""

    run_key: str
    action: str
    """``launch`` (a TRIGGERED alert) or ``record`` (any other state: audit only)."""
    alert: dict[str, Any]
    received_at: float
    attempts: int = 0
    deliveries: int = 1
    decision: dict[str, Any] | None = None
    """The gate's verdict, once taken (a retried launch does not ask the gate again)."""
    note: str | None = None


class AlertQueue:
    """Durable, multi-thread and multi-process safe queue of alert requests.

    Args:
        path: the database file; a directory means ``<dir>/webhook_queue.db``.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_dir():
            path = path / "webhook_queue.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    def put(self, run_key: str, action: str, alert: dict[str, Any], *, now: float) -> bool:
        """Queue a request; False (and one more delivery counted) if the key is already queued."""
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO requests (run_key, action, alert, received_at, not_before) VALUES (?, ?, ?, ?, ?)",
                (run_key, action, json.dumps(alert, sort_keys=True), now, now),
            )
            if cur.rowcount == 1:
                return True
            conn.execute("UPDATE requests SET deliveries = deliveries + 1 WHERE run_key = ?", (run_key,))
            return False

    def contains(self, run_key: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM requests WHERE run_key = ?", (run_key,)).fetchone() is not None

    def take(self, *, now: float, lease_seconds: float) -> QueueItem | None:
        """Lease the oldest due request (queued and past ``not_before``, or with an expired lease)."""
        with self._connect() as conn:
            row = conn.execute(
                f"UPDATE requests SET status = 'taken', lease_until = ? WHERE run_key = ("
                "  SELECT run_key FROM requests WHERE (status = 'queued' AND not_before <= ?)"
                "  OR (status = 'taken' AND lease_until < ?) ORDER BY received_at, run_key LIMIT 1"
                f") RETURNING {_COLUMNS}",
                (now + lease_seconds, now, now),
            ).fetchone()
        if row is None:
            return None
        run_key, action, alert, received_at, attempts, deliveries, decision, note = row
        return QueueItem(run_key, action, json.loads(alert), received_at, attempts, deliveries,
                         json.loads(decision) if decision else None, note)

    def defer(self, run_key: str, *, not_before: float, attempts: int | None = None, note: str | None = None,
              decision: dict[str, Any] | None = None) -> None:
        """Put a taken request back, due again at ``not_before``."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE requests SET status = 'queued', lease_until = NULL, not_before = ?, "
                "attempts = COALESCE(?, attempts), note = COALESCE(?, note), decision = COALESCE(?, decision) "
                "WHERE run_key = ?",
                (not_before, attempts, note, json.dumps(decision, default=str) if decision else None, run_key),
            )

    def mark(self, run_key: str, note: str) -> None:
        """Note a step on a taken request (``launching``), so a worker that retakes it knows."""
        with self._connect() as conn:
            conn.execute("UPDATE requests SET note = ? WHERE run_key = ?", (note, run_key))

    def finish(self, run_key: str, outcome: str, *, now: float, run_id: str | None = None,
               note: str | None = None, launched: bool = False) -> None:
        """Mark a request done with ``outcome`` (``launched``, ``skipped``, ``failed``, ``recorded``)."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE requests SET status = 'done', lease_until = NULL, outcome = ?, run_id = ?, "
                "note = COALESCE(?, note), finished_at = ?, launched_at = CASE WHEN ? THEN ? ELSE launched_at END "
                "WHERE run_key = ?",
                (outcome, run_id, note, now, launched, now, run_key),
            )

    def last_launch(self) -> float | None:
        """When the most recent launch happened (for the cooldown), or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(launched_at) FROM requests").fetchone()
        return row[0] if row and row[0] is not None else None

    def waiting(self, *, action: str = "launch", received_before: float | None = None) -> list[str]:
        """Run keys of queued (not taken) requests, oldest first."""
        sql = "SELECT run_key FROM requests WHERE status = 'queued' AND action = ?"
        args: tuple = (action,)
        if received_before is not None:
            sql += " AND received_at <= ?"
            args += (received_before,)
        with self._connect() as conn:
            return [r[0] for r in conn.execute(sql + " ORDER BY received_at", args).fetchall()]

    def get(self, run_key: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM requests WHERE run_key = ?", (run_key,)).fetchone()
        return dict(row) if row else None

    def counts(self) -> dict[str, int]:
        """Requests per status (``queued``, ``taken``, ``done``), for health checks."""
        with self._connect() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall()
        return {status: n for status, n in rows}
