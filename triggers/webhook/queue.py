"""The durable queue between the receiver (fast acknowledgement) and the worker (gate + launch).

One SQLite file beside the trigger state (``<root>/webhook_queue.db``). A request is
keyed by its run key, so duplicate deliveries only bump a counter. A worker takes
a request with a lease; if the worker dies, the lease runs out and the request is
taken again. A launch in progress renews its lease with a heartbeat and names its owner
(``host:pid``), so a dead owner is seen within a lease (minutes), or at once on restart.
TRIGGERED requests (``launch``) are taken before ``record`` ones (other states), whatever
their age. Requests leave the queue only as ``done`` with an outcome (``launched``,
``skipped``, ``failed``, ``recorded``), never silently.
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
    finished_at  REAL,
    data_at      REAL,
    owner        TEXT,
    heartbeat_at REAL
);
CREATE INDEX IF NOT EXISTS requests_due ON requests (status, not_before);
CREATE INDEX IF NOT EXISTS requests_launched ON requests (launched_at);
"""
# Columns added after the first release; older queue files get them on open.
_ADDED = {"data_at": "REAL", "owner": "TEXT", "heartbeat_at": "REAL"}
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
            have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
            for name, kind in _ADDED.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")

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

    def close_thread(self) -> None:
        """Close this thread's connection (threads that end, such as heartbeats)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def put(self, run_key: str, action: str, alert: dict[str, Any], *, now: float, delivery: bool = True,
            data_at: float | None = None) -> bool:
        """Queue a request; False if the key is already queued (then one more delivery is counted).

        Args:
            data_at: when the alert's data was written (its evaluation time, else ``now``); a run
                covers this request only if its gate evaluated after it.
        """
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO requests (run_key, action, alert, received_at, not_before, data_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_key, action, json.dumps(alert, sort_keys=True, default=str), now, now,
                 now if data_at is None else data_at),
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
        """Lease the due request to work on next (queued and past ``not_before``, or with an expired lease):
        the oldest ``launch`` request, else the oldest ``record`` one.

        Args:
            launches: False leaves ``launch`` requests where they are (during a cooldown).
        """
        items = self._take(now=now, lease_seconds=lease_seconds,
                           actions="('launch', 'record')" if launches else "('record')", limit=1)
        return items[0] if items else None

    def take_records(self, *, now: float, lease_seconds: float, limit: int) -> list[QueueItem]:
        """Lease up to ``limit`` due ``record`` requests at once (their audit events go out in one write)."""
        return self._take(now=now, lease_seconds=lease_seconds, actions="('record')", limit=limit)

    def _take(self, *, now: float, lease_seconds: float, actions: str, limit: int) -> list[QueueItem]:
        with self._write() as conn:
            rows = conn.execute(
                f"UPDATE requests SET status = 'taken', lease_until = ? WHERE run_key IN ("
                f"  SELECT run_key FROM requests WHERE action IN {actions} AND ((status = 'queued' AND not_before <= ?)"
                "  OR (status = 'taken' AND lease_until < ?)) ORDER BY action = 'launch' DESC, received_at, run_key"
                f"  LIMIT ?) RETURNING {_COLUMNS}",
                (now + lease_seconds, now, now, limit),
            ).fetchall()
        items = [QueueItem(run_key, action, json.loads(alert), received_at, attempts, deliveries,
                           json.loads(decision) if decision else None, note)
                 for run_key, action, alert, received_at, attempts, deliveries, decision, note in rows]
        return sorted(items, key=lambda i: (i.action != "launch", i.received_at, i.run_key))

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

    def mark(self, run_key: str, note: str, *, lease_until: float | None = None, owner: str | None = None,
             now: float | None = None) -> None:
        """Note a step on a taken request (``launching``), so a worker that retakes it knows; ``owner``
        (``host:pid``) and ``now`` start its heartbeat."""
        with self._write() as conn:
            conn.execute("UPDATE requests SET note = ?, lease_until = COALESCE(?, lease_until), "
                         "owner = COALESCE(?, owner), heartbeat_at = COALESCE(?, heartbeat_at) WHERE run_key = ?",
                         (note, lease_until, owner, now, run_key))

    def heartbeat(self, run_key: str, *, owner: str, now: float, lease_until: float) -> bool:
        """Renew the lease of a request this owner still holds; False if it was lost meanwhile."""
        with self._write() as conn:
            cur = conn.execute("UPDATE requests SET heartbeat_at = ?, lease_until = ? "
                               "WHERE run_key = ? AND status = 'taken' AND owner = ?",
                               (now, lease_until, run_key, owner))
            return cur.rowcount == 1

    def expire(self, run_key: str) -> None:
        """End a taken request's lease now (its owner is known dead), so the next take recovers it."""
        with self._write() as conn:
            conn.execute("UPDATE requests SET lease_until = 0 WHERE run_key = ? AND status = 'taken'", (run_key,))

    def in_flight(self) -> list[dict[str, Any]]:
        """Taken requests with their step, owner, lease and last heartbeat (health checks, recovery)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT run_key, action, note, owner, lease_until, heartbeat_at, received_at "
                                "FROM requests WHERE status = 'taken' ORDER BY received_at").fetchall()
        names = ("run_key", "action", "note", "owner", "lease_until", "heartbeat_at", "received_at")
        return [dict(zip(names, row)) for row in rows]

    def finish(self, run_key: str, outcome: str, *, now: float, run_id: str | None = None,
               note: str | None = None, launched: bool = False) -> None:
        """Mark a request done with ``outcome`` (``launched``, ``skipped``, ``failed``, ``recorded``)."""
        self.finish_many([run_key], outcome, now=now, run_id=run_id, note=note, launched=launched)

    def finish_many(self, run_keys: list[str], outcome: str, *, now: float, run_id: str | None = None,
                    note: str | None = None, launched: bool = False) -> None:
        """:meth:`finish` for several requests in one transaction."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE requests SET status = 'done', lease_until = NULL, outcome = ?, run_id = ?, "
                "note = COALESCE(?, note), finished_at = ?, launched_at = CASE WHEN ? THEN ? ELSE launched_at END "
                "WHERE run_key = ?",
                [(outcome, run_id, note, now, launched, now, key) for key in run_keys],
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

    def cover(self, *, data_before: float, note: str, now: float) -> list[tuple[str, dict[str, Any]]]:
        """Finish as ``skipped`` every queued ``launch`` request whose data was written before ``data_before``
        (a gate's evaluation time), in one statement; later ones wait for a gate of their own."""
        with self._write() as conn:
            rows = conn.execute(
                "UPDATE requests SET status = 'done', outcome = 'skipped', note = ?, finished_at = ?, lease_until = NULL "
                "WHERE status = 'queued' AND action = 'launch' AND COALESCE(data_at, received_at) <= ? "
                "RETURNING run_key, alert",
                (note, now, data_before),
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
