"""Finish what a dead process left: unfinished promotion and rollback intents, and the alias invariant.

:func:`recover` runs at the start of ``promote``, ``rollback``, ``status`` and every job
(``driftgate.tasks`` calls it). For each intent of the model that is not closed
(:mod:`driftgate.promotion.intent`), deterministically:

1. its outcome event is already recorded → the intent is closed, nothing moves;
2. it was being reverted → the revert is finished (aliases back as before, one ``refusal`` event);
3. every alias reads either its value before or its value after the move, and the versions the
   move points at still exist → the move is **completed** (rolled forward: remaining aliases,
   every tag, one ``promotion``/``rollback`` event with ``recovered: true``). The decision was
   made (shadow PASS, approval, check-then-set) before the intent was written;
4. a version the move points at is gone → the move is **reverted**;
5. an alias reads something else (moved by hand since) → nothing is moved, the intent closes as
   **abandoned** with one ``refusal`` event of status ``error`` naming the aliases to check.

Afterwards the aliases are checked against :func:`check_alias_invariant`.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from driftgate.core.errors import PromotionRefused, RegistryError
from driftgate.promotion.intent import (
    ALIASES, CHALLENGER, CHAMPION, PREVIOUS, REVERT, Move, aliases, carry_out, close_recorded, exclusive, finish,
    open_intents, revert,
)
from driftgate.workspace.audit import events_table

__all__ = ["RecoveryResult", "recover", "recovery_grace_seconds", "DATABRICKS_GRACE_SECONDS", "recover_locked", "check_alias_invariant", "alias_invariant"]

_log = logging.getLogger("driftgate.promotion")


@dataclass(frozen=True)
class RecoveryResult:
    """What :func:`recover` did with one unfinished intent."""

    intent_id: str
    op: str
    """``promote`` or ``rollback``."""
    model: str
    version: str
    phase: str
    """The phase the intent was left in (``apply`` or ``revert``)."""
    outcome: str
    """``completed``, ``reverted``, ``abandoned``, or ``closed`` (outcome recorded before the crash)."""
    aliases: dict[str, str | None]
    """The aliases after recovery."""
    violations: tuple[str, ...]
    """:func:`check_alias_invariant` of those aliases (empty when they are sound)."""
    message: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["violations"] = list(self.violations)
        return data


def check_alias_invariant(current: Mapping[str, str | None], *, promoted: bool = False,
                          open_intents: int = 0) -> list[str]:
    """What is wrong with these aliases, one sentence each (empty: they satisfy the invariant).

    The invariant, outside a move in progress:

    - no promotion or rollback intent is left open;
    - once a model has had a promotion (``promoted``), ``champion`` exists;
    - ``previous_champion`` exists only beside a ``champion``, and differs from it;
    - ``challenger`` never equals ``champion`` (a completed promotion removes ``challenger``).
    """
    champion, previous, challenger = current.get(CHAMPION), current.get(PREVIOUS), current.get(CHALLENGER)
    out = []
    if open_intents:
        out.append(f"{open_intents} promotion/rollback intent(s) left unfinished")
    if promoted and champion is None:
        out.append("champion is unset although a promotion completed")
    if previous is not None and champion is None:
        out.append(f"previous_champion is v{previous} but champion is unset")
    if previous is not None and previous == champion:
        out.append(f"previous_champion equals champion (v{champion}): nothing to roll back to")
    if challenger is not None and challenger == champion:
        out.append(f"challenger equals champion (v{champion})")
    return out


def _ever_promoted(ws, model: str) -> bool:
    name = events_table(ws)
    if not ws.tables.exists(name):
        return False
    rows = ws.tables.read(name, columns=["subject"], filters=[("kind", "=", "promotion"),
                                                            ("status", "=", "promoted")])
    return any(str(s).startswith(f"{model}@") for s in rows.column("subject").to_pylist())


def alias_invariant(ws) -> list[str]:
    """:func:`check_alias_invariant` of the workspace's model as it stands now."""
    model = ws.settings.project.model_name
    return check_alias_invariant(aliases(ws), promoted=_ever_promoted(ws, model),
                                 open_intents=len(open_intents(ws, model)))


DATABRICKS_GRACE_SECONDS = 600.0
"""On Databricks no lock tells a dead promotion from one still running (a ``driftgate promote``
elsewhere): callers that are not the promotion itself leave intents younger than this alone."""


def recovery_grace_seconds(ws) -> float:
    """``min_age_seconds`` for a :func:`recover` at job start or in ``status``: 0 locally (the
    promotion lock serialises), :data:`DATABRICKS_GRACE_SECONDS` on Databricks."""
    return 0.0 if ws.root is not None else DATABRICKS_GRACE_SECONDS


def recover(ws, *, min_age_seconds: float = 0.0) -> RecoveryResult | None:
    """Finish the model's unfinished promotion or rollback, if a process died in one.

    Args:
        ws: the open workspace.
        min_age_seconds: leave intents younger than this alone (``status`` on Databricks, where
            no lock tells a dead promotion from one still running in a job).

    Returns:
        None when nothing was unfinished, else what was done (the last intent's, when several).

    Raises:
        RegistryError: the registry is unreachable; the intent stays open for the next call.
    """
    with exclusive(ws):
        return recover_locked(ws, min_age_seconds=min_age_seconds)


def recover_locked(ws, *, min_age_seconds: float = 0.0) -> RecoveryResult | None:
    """:func:`recover` for a caller already holding the promotion lock."""
    model = ws.settings.project.model_name
    result = None
    for move, phase in open_intents(ws, model):
        if min_age_seconds and time.time() - move.started_at < min_age_seconds:
            continue
        outcome, message = _recover_one(ws, move, phase)
        now = aliases(ws)
        violations = tuple(check_alias_invariant(now, promoted=_ever_promoted(ws, model)))
        result = RecoveryResult(move.intent_id, move.op, model, move.version, phase, outcome, now, violations,
                                message)
        level = logging.WARNING if violations or outcome == "abandoned" else logging.INFO
        _log.log(level, "recovered interrupted %s of %s v%s (intent %s): %s%s", move.op, model, move.version,
                 move.intent_id, message, f"; alias invariant: {'; '.join(violations)}" if violations else "")
    return result


def _recover_one(ws, move: Move, phase: str) -> tuple[str, str]:
    what = f"{move.op} of v{move.version}"
    if close_recorded(ws, move):
        return "closed", f"the {what} had recorded its outcome; intent closed"
    if phase == REVERT:
        return "reverted", revert(ws, move, f"{what} was interrupted while being undone", phase_written=True)
    now = aliases(ws)
    stray = [f"{a} reads {now[a] or 'nothing'} (before: {move.before[a] or 'nothing'}, "
             f"after: {move.after[a] or 'nothing'})" for a in ALIASES if now[a] not in (move.before[a], move.after[a])]
    if stray:
        return "abandoned", _abandon(ws, move, stray)
    gone = []
    for version in sorted({v for v in move.after.values() if v is not None}):
        try:
            ws.registry.get_version(move.model, version)
        except RegistryError:
            gone.append(version)
    if gone:
        # a deleted version took its aliases with it: they stay unset
        kept = dataclasses.replace(move, before={a: None if v in gone else v for a, v in move.before.items()})
        return "reverted", revert(ws, kept, f"{what} was interrupted and v{', v'.join(gone)} no longer exists")
    try:
        carry_out(ws, move, f"completing the interrupted {what}", resume=True,
                  extra={"recovered": True, "recovered_at": _now()})
    except PromotionRefused as exc:
        return "reverted", str(exc)
    return "completed", f"the interrupted {what} was completed: {move.reason}"


def _abandon(ws, move: Move, stray: list[str]) -> str:
    message = (f"{move.model}: the interrupted {move.op} of v{move.version} can be neither completed nor undone: "
               f"{'; '.join(stray)}: an alias was moved by hand since. No alias was moved; check them "
               f"(driftgate status) and fix them by hand")
    details = {"reason": message, "before": move.before, "after": move.after, "intent_id": move.intent_id}
    finish(ws, move, "refusal", "error", details, "refusal", message, {"version": move.version})
    return message


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
