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
import threading
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
CREATE INDEX IF NOT EXISTS requests_launched ON requests (launched_at);
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


_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    # SQLite lets one writer in at a time; writers that lose the race sleep in its busy
    # handler with a coarse backoff (tens of ms). Queuing the threads of this process on
    # a lock instead keeps every write quick; other processes still meet SQLite's lock.
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.Lock())


class AlertQueue:
    """Durable, multi-thread and multi-process safe queue of alert requests.

    Args:
        path: the database file; a directory means ``<dir>/webhook_queue.db``.
        synchronous: SQLite's ``synchronous`` for this handle's connections: ``FULL`` (the
            receiver: an acknowledged alert is on disk before the answer goes out) or
            ``NORMAL`` (the worker: its bookkeeping survives a process crash, and redoing a
            step after a power loss is safe because launches are guarded by the state store).
        checkpoints: False leaves checkpointing to whoever calls :meth:`checkpoint` (the
            worker), so an acknowledgement never pays for copying the log into the database.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", checkpoints: bool = True):
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.synchronous = synchronous
        self.checkpoints = checkpoints
        path = Path(path)
        if path.is_dir():
            path = path / "webhook_queue.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._lock = _write_lock(path)
        with self._write() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connect() as conn:
            yield conn

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One long-lived connection per thread: opening and closing one per call makes
        # SQLite checkpoint and delete the WAL each time, which cost ~15 ms a request here.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            if not self.checkpoints:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._local.conn = conn
        yield conn

    def put(self, run_key: str, action: str, alert: dict[str, Any], *, now: float, delivery: bool = True) -> bool:
        """Queue a request; False if the key is already queued (then one more delivery is counted)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO requests (run_key, action, alert, received_at, not_before) VALUES (?, ?, ?, ?, ?)",
                (run_key, action, json.dumps(alert, sort_keys=True, default=str), now, now),
            )
            if cur.rowcount == 1:
                return True
            if delivery:
                conn.execute("UPDATE requests SET deliveries = deliveries + 1 WHERE run_key = ?", (run_key,))
            return False

    def contains(self, run_key: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM requests WHERE run_key = ?", (run_key,)).fetchone() is not None

    def take(self, *, now: float, lease_seconds: float, launches: bool = True) -> QueueItem | None:
        """Lease the oldest due request (queued and past ``not_before``, or with an expired lease).

        Args:
            launches: False leaves ``launch`` requests where they are (during a cooldown).
        """
        actions = "('launch', 'record')" if launches else "('record')"
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE requests SET status = 'taken', lease_until = ? WHERE run_key = ("
                f"  SELECT run_key FROM requests WHERE action IN {actions} AND ((status = 'queued' AND not_before <= ?)"
                "  OR (status = 'taken' AND lease_until < ?)) ORDER BY received_at, run_key LIMIT 1"
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
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET status = 'queued', lease_until = NULL, not_before = ?, "
                "attempts = COALESCE(?, attempts), note = COALESCE(?, note), decision = COALESCE(?, decision) "
                "WHERE run_key = ?",
                (not_before, attempts, note, json.dumps(decision, default=str) if decision else None, run_key),
            )

    def mark(self, run_key: str, note: str, *, lease_until: float | None = None) -> None:
        """Note a step on a taken request (``launching``), so a worker that retakes it knows."""
        with self._write() as conn:
            conn.execute("UPDATE requests SET note = ?, lease_until = COALESCE(?, lease_until) WHERE run_key = ?",
                         (note, lease_until, run_key))

    def finish(self, run_key: str, outcome: str, *, now: float, run_id: str | None = None,
               note: str | None = None, launched: bool = False) -> None:
        """Mark a request done with ``outcome`` (``launched``, ``skipped``, ``failed``, ``recorded``)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE requests SET status = 'done', lease_until = NULL, outcome = ?, run_id = ?, "
                "note = COALESCE(?, note), finished_at = ?, launched_at = CASE WHEN ? THEN ? ELSE launched_at END "
                "WHERE run_key = ?",
                (outcome, run_id, note, now, launched, now, run_key),
            )

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database without blocking writers (PASSIVE)."""
        with self._connect() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def last_launch(self) -> float | None:
        """When the most recent launch happened (for the cooldown), or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(launched_at) FROM requests").fetchone()
        return row[0] if row and row[0] is not None else None

    def cover(self, *, received_before: float, note: str, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Finish every queued ``launch`` request received before a launch as ``skipped`` (one statement)."""
        with self._write() as conn:
            rows = conn.execute(
                "UPDATE requests SET status = 'done', outcome = 'skipped', note = ?, finished_at = ?, lease_until = NULL "
                "WHERE status = 'queued' AND action = 'launch' AND received_at <= ? RETURNING run_key, alert",
                (note, now, received_before),
            ).fetchall()
        return [(key, json.loads(alert)) for key, alert in rows]

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
