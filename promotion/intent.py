"""Crash-safe alias moves: a durable intent before the first move, one outcome event after the last.

A promotion or rollback is a plan (:class:`Move`): the aliases as they were, the alias moves in
order, the version tags and the audit event of the outcome. Before the first alias moves, the
plan is appended to ``<project.audit_schema>.driftgate_intents`` (one Delta commit: a Delta
table locally, a Unity Catalog table on Databricks, both through ``ws.tables``). Its life is a
sequence of appended phases::

    apply ──► (revert) ──► closed

and its outcome event goes to the audit trail with ``event_id`` = the intent id, so whether the
outcome was recorded is one lookup (:func:`driftgate.workspace.audit.has_event`) and recording
it twice is impossible by construction. A process that dies anywhere in between (SIGKILL, a lost
node, a cancelled job) leaves an intent that is not ``closed``;
:func:`driftgate.promotion.recovery.recover` finishes it.

Why a table row, not a registered-model tag: the plan holds every tag the move sets (the shadow
metrics) and the outcome event, more than a Unity Catalog tag value takes, and an appended Delta
row is atomic on both backends while keeping the history of every move.

Every step boundary is a named :func:`~driftgate.core.faults.fault_point`:
``<op>.intent``, ``<op>.alias.<alias>``, ``<op>.tag`` (after each tag), ``<op>.event``,
``<op>.closed``; on the revert path ``<op>.revert`` and ``<op>.restore.<alias>``.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import pyarrow as pa

from driftgate.core.errors import PromotionRefused, RegistryError
from driftgate.core.faults import fault_point
from driftgate.workspace.audit import has_event, record_event

__all__ = ["Move", "CHAMPION", "PREVIOUS", "CHALLENGER", "ALIASES", "intents_table", "open_intents",
           "write_phase", "aliases", "exclusive", "carry_out", "revert", "close_recorded", "finish", "restore", "tag_shadow_run"]

_log = logging.getLogger("driftgate.promotion")

CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous_champion", "challenger"
ALIASES = (CHAMPION, PREVIOUS, CHALLENGER)
"""In restore order: champion first."""

APPLY, REVERT, CLOSED = "apply", "revert", "closed"
_RANK = {APPLY: 0, REVERT: 1, CLOSED: 2}

_SCHEMA = pa.schema([
    ("intent_id", pa.string()),
    ("at", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()),
    ("op", pa.string()),
    ("phase", pa.string()),
    ("record", pa.string()),
])


@dataclass(frozen=True)
class Move:
    """Everything needed to finish (or undo) one promotion or rollback from another process."""

    intent_id: str
    op: str
    """``promote`` or ``rollback``."""
    model: str
    version: str
    """The version the move is about (the challenger promoted, the version restored)."""
    before: dict[str, str | None]
    """Every alias in :data:`ALIASES` as read right before the first move."""
    moves: tuple[tuple[str, str | None], ...]
    """``(alias, version)`` in order; None deletes the alias."""
    tags: tuple[tuple[str, str, str], ...]
    """``(version, key, value)`` set after the aliases moved."""
    event: dict[str, Any]
    """The outcome event: ``kind``, ``status``, ``subject``, ``details`` (with ``reason``)."""
    notify_kind: str
    notify_details: dict[str, Any] = field(default_factory=dict)
    failed_tag: tuple[str, str, str] | None = None
    """Tag set on a version when the move fails and is reverted."""
    shadow_run_id: str | None = None
    started_at: float = 0.0
    """When the intent was written (epoch seconds)."""

    @property
    def after(self) -> dict[str, str | None]:
        out = dict(self.before)
        out.update(dict(self.moves))
        return out

    @property
    def reason(self) -> str:
        return str(self.event["details"].get("reason", ""))

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Move":
        data = json.loads(text)
        data["moves"] = tuple(tuple(m) for m in data["moves"])
        data["tags"] = tuple(tuple(t) for t in data["tags"])
        if data.get("failed_tag") is not None:
            data["failed_tag"] = tuple(data["failed_tag"])
        return cls(**data)


def intents_table(ws) -> str:
    return f"{ws.settings.project.audit_schema}.driftgate_intents"


def write_phase(ws, move: Move, phase: str) -> None:
    """Append one phase row of ``move`` (one Delta commit)."""
    row = {"intent_id": [move.intent_id], "at": [datetime.now(timezone.utc)], "model": [move.model],
           "op": [move.op], "phase": [phase], "record": [move.to_json()]}
    ws.tables.write(intents_table(ws), pa.table(row, schema=_SCHEMA), mode="append")


def open_intents(ws, model: str) -> list[tuple[Move, str]]:
    """``(move, latest phase)`` of every intent of ``model`` that is not closed, oldest first."""
    name = intents_table(ws)
    if not ws.tables.exists(name):
        return []
    rows = ws.tables.read(name, filters=[("model", "=", model)]).to_pylist()
    latest: dict[str, dict] = {}
    first_seen: dict[str, datetime] = {}
    for r in rows:
        first_seen[r["intent_id"]] = min(first_seen.get(r["intent_id"], r["at"]), r["at"])
        have = latest.get(r["intent_id"])
        if have is None or _RANK[r["phase"]] > _RANK[have["phase"]]:
            latest[r["intent_id"]] = r
    pending = [r for r in latest.values() if r["phase"] != CLOSED]
    pending.sort(key=lambda r: first_seen[r["intent_id"]])
    return [(Move.from_json(r["record"]), r["phase"]) for r in pending]


def aliases(ws) -> dict[str, str | None]:
    """Where ``champion``, ``previous_champion`` and ``challenger`` point now."""
    name = ws.settings.project.model_name
    return {a: ws.registry.alias_version(name, a) for a in ALIASES}


@contextlib.contextmanager
def exclusive(ws) -> Iterator[None]:
    """Serialise alias moves and recovery (a file lock locally; on Databricks the job runs one at a time)."""
    if ws.root is None:
        yield
        return
    import fcntl

    ws.root.mkdir(parents=True, exist_ok=True)
    # flock locks an open file description, so two threads of one process exclude each other too.
    with open(ws.root / "promotion.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tag_shadow_run(ws, run_id: str | None, outcome: str) -> None:
    """Note the promotion outcome on the shadow evaluation's MLflow run (best effort: it annotates)."""
    if not run_id or not ws.tracking_uri:
        return
    try:
        from mlflow import MlflowClient

        MlflowClient(ws.tracking_uri).set_tag(run_id, "driftgate.promotion", outcome)
    except Exception:  # noqa: BLE001 - the audit trail already holds the outcome
        _log.debug("could not tag shadow run %s", run_id, exc_info=True)


def _set(reg, name: str, alias: str, version: str | None) -> None:
    if version is None:
        reg.delete_alias(name, alias)
    else:
        reg.set_alias(name, alias, version)


def finish(ws, move: Move, kind: str, status: str, details: dict[str, Any], notify_kind: str,
           notify_text: str, notify_details: dict[str, Any]) -> None:
    """Record the outcome event (id = intent id), close the intent, then notify (after the fact)."""
    from driftgate.promotion import notify

    record_event(ws, kind, subject=move.event["subject"], status=status, details=details,
                 event_id=move.intent_id)
    fault_point(f"{move.op}.event")
    try:
        write_phase(ws, move, CLOSED)
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded; the next recovery closes the intent
        _log.warning("%s: %s done, intent %s not closed yet: %s", move.model, move.op, move.intent_id, exc)
    fault_point(f"{move.op}.closed")
    notify.send(ws, notify_kind, notify_text, notify_details)


def carry_out(ws, move: Move, what: str, *, resume: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Move the aliases, tag the versions, record the outcome and close the intent.

    With ``resume`` (recovery), aliases already where the plan puts them are not written again.
    Every step is idempotent, so a resumed move ends exactly as an uninterrupted one. Once the
    outcome event is recorded nothing is undone (a failure after it leaves the intent for
    :func:`close_recorded`).

    Raises:
        PromotionRefused: a step before the outcome event failed; the aliases were restored.
        RegistryError: a step failed and an alias could not be restored (the intent stays open).
    """
    try:
        _steps(ws, move, resume)
    except BaseException as exc:
        message = revert(ws, move, f"{what} failed ({type(exc).__name__}: {exc})")
        if not isinstance(exc, Exception):
            raise  # a KeyboardInterrupt stays one, after the aliases are back
        raise PromotionRefused(message, model=move.model, version=move.version) from exc
    finish(ws, move, move.event["kind"], move.event["status"], {**move.event["details"], **(extra or {})},
           move.notify_kind, move.reason, move.notify_details)
    tag_shadow_run(ws, move.shadow_run_id, move.event["status"])


def _steps(ws, move: Move, resume: bool) -> None:
    name, reg = move.model, ws.registry
    for alias, version in move.moves:
        if resume and reg.alias_version(name, alias) == version:
            continue
        _set(reg, name, alias, version)
        fault_point(f"{move.op}.alias.{alias}")
    want = move.after[CHAMPION]
    got = reg.alias_version(name, CHAMPION)
    if got != want:
        raise RegistryError(f"{name}: alias 'champion' reads {got} right after being set to {want}",
                            model=name, version=want)
    for version, key, value in move.tags:
        reg.set_tag(name, version, key, value)
        fault_point(f"{move.op}.tag")


def restore(ws, move: Move) -> list[str]:
    """Put every alias back where ``move.before`` had it, champion first; returns what failed."""
    name, reg = move.model, ws.registry
    failures = []
    for alias in ALIASES:
        want = move.before[alias]
        try:
            if reg.alias_version(name, alias) == want:
                continue
        except Exception:  # noqa: BLE001 - unreadable: try to write it back anyway
            pass
        try:
            _set(reg, name, alias, want)
            fault_point(f"{move.op}.restore.{alias}")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{alias} -> {want}: {exc}")
    return failures


def revert(ws, move: Move, why: str, *, phase_written: bool = False) -> str:
    """Undo ``move``: record the decision, restore the aliases, record the refusal, close the intent.

    Returns the refusal message. Raises :class:`RegistryError` when an alias cannot be put back:
    the intent then stays open in phase ``revert`` and the next recovery tries again.
    """
    if not phase_written:
        try:
            write_phase(ws, move, REVERT)
        except Exception as exc:  # noqa: BLE001 - restore anyway; recovery would roll forward otherwise
            _log.warning("%s: could not record the revert of intent %s: %s", move.model, move.intent_id, exc)
        fault_point(f"{move.op}.revert")
    failures = restore(ws, move)
    if failures:
        message = (f"{move.model}: {why} and restoring the aliases failed too: {'; '.join(failures)}. Aliases "
                   f"before: {move.before}. Fix them by hand, or let the next promote, rollback, status or job "
                   f"start retry (intent {move.intent_id} stays open).")
        from driftgate.promotion import notify

        notify.send(ws, "refusal", message, {"version": move.version})
        raise RegistryError(message, model=move.model, version=move.version)
    if move.failed_tag is not None:
        with contextlib.suppress(Exception):
            ws.registry.set_tag(move.model, *move.failed_tag)
    message = f"{move.model}: {why}; aliases restored to {move.before}"
    finish(ws, move, "refusal", "refused", {"reason": message, "before": move.before, "intent_id": move.intent_id},
           "refusal", message, {"version": move.version})
    return message


def close_recorded(ws, move: Move) -> bool:
    """Close an intent whose outcome event is already recorded (the process died right after it)."""
    if not has_event(ws, move.intent_id):
        return False
    write_phase(ws, move, CLOSED)
    return True
