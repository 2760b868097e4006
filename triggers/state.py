"""Durable trigger state: cursors and run keys, behind one interface (:class:`TriggerState`).

Every trigger path (the table-update watcher, the schedule, the webhook receiver)
shares this store so that a replay, a retry or a restart cannot launch twice:

* a **run key** is claimed before anything is launched; the claim is atomic across
  threads and processes, so exactly one caller gets ``True`` for a key;
* a **cursor** is an opaque string per trigger, saved by the runner after a tick;
* ``last_fired(source)`` answers cooldown questions (``min_time_between_triggers_seconds``).

Two implementations (``triggers.state.backend``):

* ``sqlite`` (:class:`StateStore`, the default): one SQLite file, ``<root>/state.db``; its
  primary key makes a claim atomic. Each method opens its own short connection, so one store
  may be shared by threads (the webhook's workers) and by processes on one machine.
* ``warehouse`` (:class:`driftgate.triggers.warehouse_state.WarehouseStateStore`): two Delta
  tables in Unity Catalog written through a SQL warehouse (Statement Execution API), for
  callers without Spark or a shared disk: the webhook service and the serverless handlers.

:func:`open_state_store` picks one from the configuration; no backend falls back to ``/tmp``.
"""
from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from driftgate.core.errors import ConfigError, TriggerError
from driftgate.core.records import RunKeyStatus

__all__ = ["TriggerState", "StateStore", "RunKeyRecord", "RUN_STATUSES", "state_store_for", "open_state_store",
           "reseed_from_events"]

RUN_STATUSES = tuple(RunKeyStatus)
"""``claimed`` is the status a key gets from :meth:`StateStore.claim`; the others come from ``finish``."""

# Statuses that do not count as "the trigger fired" for cooldowns: a skipped request
# never started anything.
_NOT_FIRED = ("skipped",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    name        TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_keys (
    run_key     TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    details     TEXT NOT NULL,
    status      TEXT NOT NULL,
    run_id      TEXT,
    reason      TEXT,
    claimed_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS run_keys_source ON run_keys (source, claimed_at);
"""


@dataclass(frozen=True)
class RunKeyRecord:
    """One claimed run key and what became of it."""

    run_key: str
    source: str
    status: RunKeyStatus
    claimed_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    reason: str | None = None
    finished_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunKeyStatus(self.status))


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(timezone.utc)
    if at.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware (UTC), got naive {at.isoformat()}")
    return at.astimezone(timezone.utc)


def _iso(at: datetime | None) -> str:
    # Fixed-width ISO text sorts like the instant it names, so MAX() in SQL is correct.
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _check_status(status: str) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")


def _check_claim(run_key: str, status: str) -> None:
    if not run_key:
        raise ValueError("run_key must be a non-empty string")
    _check_status(status)


def _check_cursor(trigger_name: str, cursor: Any) -> None:
    if not isinstance(cursor, str):
        raise TypeError(f"cursor for {trigger_name!r} must be a string, got {type(cursor).__name__}")


def _details_text(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, default=str, sort_keys=True)


class TriggerState(ABC):
    """What the trigger runner, the queued triggers, the webhook worker and :func:`reseed_from_events`
    need from a state store. Every implementation passes ``tests/test_triggers_state.py``.

    Timestamps (``at``) must be timezone-aware; the default is now (UTC). Statuses are
    :data:`RUN_STATUSES`. Failures of the storage itself raise :class:`TriggerError`.
    """

    where: str
    """Where the state lives, for messages (a file path, or the run-key table and its warehouse)."""

    # -- cursors
    @abstractmethod
    def get_cursor(self, trigger_name: str) -> str | None:
        """The cursor saved for ``trigger_name``, or None if it never ticked."""

    @abstractmethod
    def set_cursor(self, trigger_name: str, cursor: str, *, at: datetime | None = None) -> None:
        """Save ``cursor`` for ``trigger_name`` (replacing the previous one)."""

    @abstractmethod
    def delete_cursor(self, trigger_name: str) -> None:
        """Forget the cursor of ``trigger_name``."""

    # -- run keys
    @abstractmethod
    def claim(self, run_key: str, *, source: str, details: dict[str, Any] | None = None, status: str = "claimed",
              at: datetime | None = None) -> bool:
        """Claim ``run_key`` for ``source``; True only for the first claimant, across threads and processes.

        Args:
            run_key: deterministic key of the fact that triggered (``delta:{table}@v{version}``).
            source: the trigger that claims it (``table_update``, ``webhook``, ``schedule``...).
            details: JSON-serialisable context kept with the key.
            status: initial status (``claimed``; ``queued`` for work a worker picks up later).
            at: claim time (default now, UTC); tests pass a controlled clock.
        """

    @abstractmethod
    def finish(self, run_key: str, status: str, run_id: str | None = None, reason: str | None = None, *,
               at: datetime | None = None) -> None:
        """Record what became of a claimed key (``succeeded``, ``failed``, ``skipped``, ``running``...).

        Raises:
            KeyError: ``run_key`` was never claimed.
        """

    @abstractmethod
    def take(self, run_key: str, *, at: datetime | None = None) -> bool:
        """Atomically move a ``claimed`` or ``queued`` key to ``running``; True for exactly one caller.

        The launch guard: whoever claimed a key, only the caller that takes it launches.
        """

    @abstractmethod
    def set_status(self, run_key: str, status: str, *, reason: str | None = None) -> None:
        """Change a key's status without finishing it (e.g. ``queued`` behind a running job).

        Raises:
            KeyError: ``run_key`` was never claimed.
        """

    @abstractmethod
    def release(self, run_key: str) -> None:
        """Forget a claim whose launch never started, so a retry may claim it again."""

    @abstractmethod
    def get(self, run_key: str) -> RunKeyRecord | None:
        """The record of ``run_key``, or None if it was never claimed."""

    @abstractmethod
    def pending(self, source: str, statuses: tuple[str, ...] = ("claimed", "queued")) -> list[RunKeyRecord]:
        """Keys of ``source`` claimed or queued but not yet started or finished, oldest first."""

    @abstractmethod
    def history(self, source: str | None = None, limit: int = 50) -> list[RunKeyRecord]:
        """Most recent claims first, optionally of one ``source``."""

    @abstractmethod
    def last_fired(self, source: str) -> datetime | None:
        """When ``source`` last claimed a key that was not skipped (for cooldowns), or None."""

    def keep_open(self) -> Any:
        """A handle a long-lived caller holds to make its many short calls cheaper (SQLite: a connection
        that keeps the WAL from being checkpointed and deleted on every call); None where there is none."""
        return None


class StateStore(TriggerState):
    """Cursors and run keys of every trigger, in one SQLite file (``triggers.state.backend: sqlite``).

    Args:
        path: the database file (``<root>/state.db``); a directory means ``<dir>/state.db``.

    Raises:
        TriggerError: the file exists but is not a readable state database (the
            message names the file and how to start fresh).
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_dir():
            path = path / "state.db"
        self.path = path
        self.where = str(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as conn:
                conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise TriggerError(
                f"{self.path}: not a readable driftgate state database ({exc}); move it aside to start "
                "fresh (claimed run keys and cursors are then forgotten)"
            ) from exc

    @classmethod
    def open_or_quarantine(cls, path: str | Path, *, at: datetime | None = None) -> tuple["StateStore", Path | None]:
        """Open the store; if the file is corrupt, move it aside and start a fresh one.

        Returns:
            ``(store, moved_to)``; ``moved_to`` is None when the file was fine. After a move,
            reseed the fresh store (:func:`reseed_from_events`) so fired keys stay fired.
        """
        try:
            return cls(path), None
        except TriggerError:
            path = Path(path)
            path = path / "state.db" if path.is_dir() else path
            moved = path.with_name(f"{path.name}.corrupt-{_utc(at).strftime('%Y%m%dT%H%M%S')}")
            path.rename(moved)
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            return cls(path), moved

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit connection; every write is one statement, which SQLite applies atomically.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            yield conn
        finally:
            conn.close()

    # -- cursors ---------------------------------------------------------------------------

    def keep_open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("SELECT 1 FROM run_keys LIMIT 1").fetchall()
        return conn

    def get_cursor(self, trigger_name: str) -> str | None:
        with self._connect() as conn, closing(conn.execute(
            "SELECT cursor FROM cursors WHERE name = ?", (trigger_name,)
        )) as cur:
            row = cur.fetchone()
        return row[0] if row else None

    def set_cursor(self, trigger_name: str, cursor: str, *, at: datetime | None = None) -> None:
        _check_cursor(trigger_name, cursor)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO cursors (name, cursor, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                (trigger_name, cursor, _iso(at)),
            )

    def delete_cursor(self, trigger_name: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM cursors WHERE name = ?", (trigger_name,))

    # -- run keys --------------------------------------------------------------------------

    def claim(
        self,
        run_key: str,
        *,
        source: str,
        details: dict[str, Any] | None = None,
        status: str = "claimed",
        at: datetime | None = None,
    ) -> bool:
        """SQLite's primary key makes the one ``INSERT OR IGNORE`` atomic: True if this call inserted the key."""
        _check_claim(run_key, status)
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO run_keys (run_key, source, details, status, claimed_at) VALUES (?, ?, ?, ?, ?)",
                (run_key, source, _details_text(details), status, _iso(at)),
            )
            return cur.rowcount == 1

    def finish(
        self,
        run_key: str,
        status: str,
        run_id: str | None = None,
        reason: str | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        _check_status(status)
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE run_keys SET status = ?, run_id = COALESCE(?, run_id), reason = COALESCE(?, reason), "
                "finished_at = ? WHERE run_key = ?",
                (status, run_id, reason, _iso(at), run_key),
            )
            if cur.rowcount == 0:
                raise KeyError(f"run key {run_key!r} was never claimed")

    def take(self, run_key: str, *, at: datetime | None = None) -> bool:
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE run_keys SET status = 'running', finished_at = NULL, claimed_at = claimed_at "
                "WHERE run_key = ? AND status IN ('claimed', 'queued')",
                (run_key,),
            )
            return cur.rowcount == 1

    def set_status(self, run_key: str, status: str, *, reason: str | None = None) -> None:
        _check_status(status)
        with self._connect() as conn:
            cur = conn.execute("UPDATE run_keys SET status = ?, reason = COALESCE(?, reason) WHERE run_key = ?",
                               (status, reason, run_key))
            if cur.rowcount == 0:
                raise KeyError(f"run key {run_key!r} was never claimed")

    def release(self, run_key: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM run_keys WHERE run_key = ?", (run_key,))

    def get(self, run_key: str) -> RunKeyRecord | None:
        with self._connect() as conn, closing(conn.execute(
            "SELECT run_key, source, details, status, run_id, reason, claimed_at, finished_at "
            "FROM run_keys WHERE run_key = ?",
            (run_key,),
        )) as cur:
            row = cur.fetchone()
        return _record(row) if row else None

    def pending(self, source: str, statuses: tuple[str, ...] = ("claimed", "queued")) -> list[RunKeyRecord]:
        marks = ",".join("?" for _ in statuses)
        with self._connect() as conn, closing(conn.execute(
            "SELECT run_key, source, details, status, run_id, reason, claimed_at, finished_at FROM run_keys "
            f"WHERE source = ? AND status IN ({marks}) ORDER BY claimed_at, run_key",
            (source, *statuses),
        )) as cur:
            rows = cur.fetchall()
        return [_record(r) for r in rows]

    def history(self, source: str | None = None, limit: int = 50) -> list[RunKeyRecord]:
        sql = "SELECT run_key, source, details, status, run_id, reason, claimed_at, finished_at FROM run_keys"
        args: tuple = ()
        if source is not None:
            sql += " WHERE source = ?"
            args = (source,)
        sql += " ORDER BY claimed_at DESC LIMIT ?"
        with self._connect() as conn, closing(conn.execute(sql, (*args, int(limit)))) as cur:
            rows = cur.fetchall()
        return [_record(r) for r in rows]

    def last_fired(self, source: str) -> datetime | None:
        marks = ",".join("?" for _ in _NOT_FIRED)
        with self._connect() as conn, closing(conn.execute(
            f"SELECT MAX(claimed_at) FROM run_keys WHERE source = ? AND status NOT IN ({marks})",
            (source, *_NOT_FIRED),
        )) as cur:
            row = cur.fetchone()
        return _parse(row[0]) if row and row[0] else None


def _record(row) -> RunKeyRecord:
    run_key, source, details, status, run_id, reason, claimed_at, finished_at = row
    return RunKeyRecord(
        run_key=run_key,
        source=source,
        status=status,
        claimed_at=_parse(claimed_at),
        details=json.loads(details or "{}"),
        run_id=run_id,
        reason=reason,
        finished_at=_parse(finished_at),
    )


def open_state_store(config, *, folder: str | Path | None, quarantine: bool = False,
                     client=None) -> tuple[TriggerState, Path | None]:
    """The store ``triggers.state`` (``config``, a :class:`~driftgate.triggers.config.StateConfig`) selects.

    Args:
        config: ``settings.triggers.state``.
        folder: the local folder of ``state.db`` for the ``sqlite`` backend (the workspace root, or the
            webhook's state folder); None where there is no local folder (a Databricks workspace).
        quarantine: ``sqlite`` only: move a corrupt file aside and start afresh (see
            :meth:`StateStore.open_or_quarantine`) instead of raising.
        client: ``warehouse`` only: a ``WorkspaceClient`` (default: from the environment).

    Returns:
        ``(store, moved_to)``; ``moved_to`` is where a corrupt SQLite file went, else None.

    Raises:
        ConfigError: ``sqlite`` without a local folder: no silent fallback to ``/tmp``.
        TriggerError: the store cannot be opened (corrupt file, unreachable warehouse, missing schema).
    """
    if config.backend == "warehouse":
        from driftgate.triggers.warehouse_state import WarehouseStateStore

        return WarehouseStateStore.from_config(config, client=client), None
    if folder is None:
        raise ConfigError(
            "triggers.state.backend: 'sqlite' needs a local folder and this workspace has none (Databricks); "
            "expected 'warehouse' with warehouse_id, catalog_name and schema_name, or $DRIFTGATE_STATE_DIR for the "
            "webhook, got 'sqlite'", key="triggers.state.backend")
    path = Path(folder) / "state.db"
    if quarantine:
        return StateStore.open_or_quarantine(path)
    return StateStore(path), None


def state_store_for(ws, *, quarantine: bool = False) -> TriggerState:
    """The workspace's state store: ``<root>/state.db`` locally, or the Unity Catalog tables of
    ``triggers.state`` (``backend: warehouse``); a Databricks workspace with ``sqlite`` is refused
    (:class:`ConfigError`), since it has no local folder to keep state in."""
    return open_state_store(ws.settings.triggers.state, folder=ws.root, quarantine=quarantine)[0]


def reseed_from_events(state: TriggerState, events: list[dict[str, Any]]) -> int:
    """Re-claim, as ``succeeded``, the run keys of ``trigger_fired`` audit events.

    After a corrupt state file was moved aside, this keeps every key that was already fired
    from firing again, and gives triggers their last fire to resume from. ``events`` are
    :func:`driftgate.workspace.audit.read_events` rows (``run_key``, ``subject`` = trigger name,
    ``details``, ``at``). Returns how many keys were restored.
    """
    restored = 0
    for ev in sorted(events, key=lambda e: e["at"]):
        if ev.get("kind", "trigger_fired") != "trigger_fired" or not ev.get("run_key"):
            continue
        details = dict(ev.get("details") or {})
        details.pop("trigger", None)
        at = ev["at"] if ev["at"].tzinfo else ev["at"].replace(tzinfo=timezone.utc)
        if state.claim(ev["run_key"], source=ev.get("subject") or "unknown", details=details, at=at):
            state.finish(ev["run_key"], "succeeded", reason="restored from the audit trail", at=at)
            restored += 1
    return restored
