"""Moving the registry aliases: promote and roll back, check-then-set, all or nothing.

Each move first re-reads the aliases it depends on and refuses if they are not what
the shadow evaluation saw (an alias set by hand, a second promotion that won, a
deleted version). The move is then written down as a durable intent and carried out
(:mod:`driftgate.promotion.intent`): a failure in the process (registry error, timeout)
puts every alias back as it was before; a process that dies (SIGKILL, a lost node) leaves
the intent, which the next ``promote``, ``rollback``, ``status`` or job start finishes
(:func:`driftgate.promotion.recovery.recover`). ``champion`` is never left half-moved for
longer than it takes to notice. Locally a file lock serialises promotions; on Databricks the
deployment job runs with ``max_concurrent_runs: 1``.
"""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import datetime, timezone

from driftgate.workspace.audit import record_event
from driftgate.core.errors import PromotionRefused, RegistryError
from driftgate.promotion import notify
from driftgate.promotion.intent import (
    APPLY, CHALLENGER, CHAMPION, PREVIOUS, Move, aliases, carry_out, exclusive, tag_shadow_run, write_phase,
)
from driftgate.promotion.recovery import recover, recover_locked
from driftgate.promotion.results import PromotionResult, ShadowResult
from driftgate.core.faults import fault_point

__all__ = ["promote", "rollback", "aliases"]

_log = logging.getLogger("driftgate.promotion")


def _refused(ws, message: str, *, version: str | None, champion: str | None,
             status: str = "refused", details: dict | None = None, shadow: ShadowResult | None = None
             ) -> PromotionResult:
    tag_shadow_run(ws, shadow.run_id if shadow else None, status)
    name = ws.settings.project.model_name
    if version is not None and status == "refused":
        # Shown on the version's page in the registry UI; the audit trail holds the full record.
        with contextlib.suppress(Exception):
            ws.registry.set_tag(name, version, "driftgate_decision", "refused")
            ws.registry.set_tag(name, version, "driftgate_refusal_reason", message[:5000])
    record_event(ws, "refusal" if status == "refused" else "promotion", subject=f"{name}@{version}",
                 status=status, details={"reason": message, "champion": champion, **(details or {})})
    if status == "refused":
        notify.send(ws, "refusal", message, {"version": version, "champion": champion})
    return PromotionResult(False, champion, message, status, challenger_version=version, model_name=name)


def _execute(ws, move: Move, what: str) -> None:
    """Write the intent, then carry the move out (see :mod:`driftgate.promotion.intent`)."""
    write_phase(ws, move, APPLY)  # durable before the first alias moves; a failure here moved nothing
    fault_point(f"{move.op}.intent")
    carry_out(ws, move, what)


def _intent_id() -> str:
    return uuid.uuid4().hex


def _approved(ws, version: str) -> bool:
    cfg = ws.settings.promotion
    name = ws.settings.project.model_name
    deadline = time.monotonic() + cfg.approval_timeout_seconds
    pause = 0.2
    while True:
        tags = ws.registry.get_version(name, version).tags
        if str(tags.get(cfg.approval_tag, "")).strip().lower() == "approved":
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 15.0)  # back off: approvals take minutes, not milliseconds


def _dry_run(ws, what: str) -> None:
    banner = f"DRY RUN (promotion.dry_run=true): {what}; no alias was moved"
    _log.warning(banner)  # the CLI shows warnings of the driftgate loggers on stderr


def promote(ws, shadow: ShadowResult) -> PromotionResult:
    """Make the shadow-tested challenger the champion, only if its evaluation passed.

    Checks, then sets: the challenger version must still exist and still hold the
    ``challenger`` alias, and ``champion`` must still be the version it was compared
    against. Then ``previous_champion`` ← old champion, ``champion`` ← challenger,
    ``challenger`` removed, both versions tagged. With no champion yet, a challenger
    that passed the absolute floors becomes champion.

    Args:
        ws: the open workspace.
        shadow: the result of :func:`driftgate.promotion.shadow` for this challenger.

    Returns:
        A :class:`PromotionResult`; ``promoted`` is False for every refusal (recorded
        in the audit trail with its reason), ``awaiting_approval`` or ``dry_run``.

    Raises:
        PromotionRefused: a registry step failed; every alias was restored.
        RegistryError: a registry step failed and the aliases could not be restored.
    """
    cfg = ws.settings.promotion
    name, reg = ws.settings.project.model_name, ws.registry
    version, compared = shadow.challenger_version, shadow.champion_version
    recover(ws)  # a promotion a dead process left half-done is finished before anything is judged
    if shadow.model_name != name:
        return _refused(ws, f"the shadow result is for {shadow.model_name}, not {name}",
                        version=version, champion=compared, shadow=shadow)
    if shadow.status != "PASS":
        why = "; ".join(shadow.reasons) or "no reason recorded"
        return _refused(ws, f"challenger v{version} not promoted: shadow evaluation {shadow.status}: {why}",
                        version=version, champion=compared, details={"shadow_run_id": shadow.run_id}, shadow=shadow)
    with exclusive(ws):
        try:
            info = reg.get_version(name, version)
        except RegistryError as exc:
            return _refused(ws, f"challenger v{version} no longer exists in {name}: {exc}",
                            version=version, champion=compared, shadow=shadow)
        now = aliases(ws)
        if now[CHALLENGER] != version:
            return _refused(ws, f"the challenger alias points at {now[CHALLENGER] or 'nothing'}, not the evaluated "
                                f"v{version}: it was set by hand or by another run meanwhile", version=version,
                            champion=now[CHAMPION], shadow=shadow)
        if now[CHAMPION] != compared:
            return _refused(ws, f"champion is now {now[CHAMPION] or 'unset'}, not v{compared or 'none'} that "
                                f"v{version} was compared against: another promotion or a manual change won; "
                                "shadow-test again", version=version, champion=now[CHAMPION],
                            shadow=shadow)
        if cfg.require_approval and not _approved(ws, version):
            return _refused(ws, f"challenger v{version} passed and awaits approval: set tag "
                                f"{cfg.approval_tag}=approved on {name} version {version}, then run promote again",
                            version=version, champion=compared, status="awaiting_approval", shadow=shadow)
        if cfg.dry_run:
            _dry_run(ws, f"would promote {name} v{version} over v{compared or 'none'}")
            return _refused(ws, f"DRY RUN: v{version} passed and would have become champion",
                            version=version, champion=compared, status="dry_run", shadow=shadow)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        new_tags = {"driftgate_decision": "promoted", "driftgate_promoted_at": stamp,
                    "driftgate_replaced_version": compared or "none",
                    "driftgate_shadow_run_id": shadow.run_id or "", "driftgate_train_run_id": info.run_id or "",
                    **{f"driftgate_{k}": f"{v:.4f}" for k, v in shadow.metrics.items()
                       if k.startswith(("challenger_", "delta_")) and isinstance(v, (int, float)) and v == v}}
        old_tags = {"driftgate_decision": "replaced", "driftgate_replaced_by": version,
                    "driftgate_replaced_at": stamp, "driftgate_shadow_run_id": shadow.run_id or "",
                    **{f"driftgate_{k}": f"{v:.4f}" for k, v in shadow.metrics.items()
                       if k.startswith("champion_") and isinstance(v, (int, float)) and v == v}}
        reason = (f"v{version} promoted to champion over v{compared}" if compared
                  else f"v{version} became the first champion (passed the absolute floors)")
        tags = [(version, k, v) for k, v in new_tags.items()]
        if compared is not None:
            tags += [(compared, k, v) for k, v in old_tags.items()]
        move = Move(
            intent_id=_intent_id(), op="promote", model=name, version=version, before=now,
            moves=(((PREVIOUS, compared),) if compared is not None else ()) + ((CHAMPION, version), (CHALLENGER, None)),
            tags=tuple(tags),
            event={"kind": "promotion", "status": "promoted", "subject": f"{name}@{version}", "details": {
                "champion": version, "previous_champion": compared, "shadow_run_id": shadow.run_id,
                "train_run_id": info.run_id, "metrics": shadow.metrics, "reason": reason}},
            notify_kind="promotion", notify_details={"version": version, "previous": compared},
            failed_tag=(version, "driftgate_decision", "promotion_failed"), shadow_run_id=shadow.run_id,
            started_at=time.time())
        _execute(ws, move, f"promoting v{version}")
        if ws.settings.monitor.baseline_policy == "champion":
            from driftgate.promotion.bootstrap import refresh_baseline

            refresh_baseline(ws, version, shadow)
    return PromotionResult(True, version, reason, "promoted", previous_champion=compared,
                           challenger_version=version, model_name=name)


def rollback(ws, *, reason: str) -> PromotionResult:
    """Restore ``previous_champion`` as ``champion``, with a recorded reason.

    The rolled-back version is tagged with the reason; ``previous_champion`` is
    cleared so a second rollback cannot flip back to the version just rejected.

    Args:
        ws: the open workspace.
        reason: why (recorded in the audit trail and as a version tag); required.

    Returns:
        A :class:`PromotionResult` (``status`` rolled_back, refused or dry_run).

    Raises:
        PromotionRefused: a registry step failed; every alias was restored.
    """
    cfg = ws.settings.promotion
    name, reg = ws.settings.project.model_name, ws.registry
    if not reason or not reason.strip():
        raise PromotionRefused("rollback: --reason is required and must say why", model=name)
    with exclusive(ws):
        recover_locked(ws)
        now = aliases(ws)
        target, current = now[PREVIOUS], now[CHAMPION]
        if target is None:
            return _refused(ws, f"{name}: no previous_champion to roll back to", version=None, champion=current)
        try:
            reg.get_version(name, target)
        except RegistryError as exc:
            return _refused(ws, f"{name}: previous champion v{target} no longer exists: {exc}", version=target,
                            champion=current)
        if target == current:
            return _refused(ws, f"{name}: v{target} is already champion", version=target, champion=current)
        if cfg.dry_run:
            _dry_run(ws, f"would roll {name} back from v{current} to v{target}")
            return _refused(ws, f"DRY RUN: would roll back to v{target}", version=target, champion=current,
                            status="dry_run")
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        tags = [(target, "driftgate_decision", "restored"), (target, "driftgate_restored_at", stamp)]
        if current is not None:
            tags += [(current, "driftgate_decision", "rolled_back"), (current, "driftgate_rollback_reason", reason[:5000])]
        message = f"rolled back {name} from v{current} to v{target}: {reason}"
        move = Move(
            intent_id=_intent_id(), op="rollback", model=name, version=target, before=now,
            moves=((CHAMPION, target), (PREVIOUS, None)), tags=tuple(tags),
            event={"kind": "rollback", "status": "rolled_back", "subject": f"{name}@{target}", "details": {
                "from": current, "to": target, "reason": reason}},
            notify_kind="rollback", notify_details={"from": current, "to": target}, started_at=time.time())
        _execute(ws, move, f"rolling back to v{target}")
    return PromotionResult(True, target, message, "rolled_back", previous_champion=current, model_name=name)
