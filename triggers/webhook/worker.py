"""The worker: takes queued alerts, asks the shared gate, launches only on EXCEEDED.

An alert is a hint; the gate decides. For each request taken from the queue:

1. ``record`` requests (states other than TRIGGERED) are written to the audit trail, in
   batches (one write for up to :data:`RECORD_BATCH` of them), and only when no TRIGGERED
   request is due: those are always taken first.
2. The cooldown (``min_time_between_triggers_seconds``, as the table trigger's) leaves
   launch requests untouched in the queue until the last launch is far enough behind.
3. The gate runs (``gating.evaluate(ws, gate, trigger="webhook")``, injected as a
   callable); anything but EXCEEDED finishes the request as skipped, with the reason.
4. The launcher starts the job with the run key; throttling and 5xx answers keep the
   request queued with exponential backoff until it launches or is given up, with
   the reason recorded. Waiting requests whose data was written before the gate time of
   that run (taken just before the launch: the job's gate evaluates after it) are
   covered by it and finish as skipped; later ones get a gate evaluation of their own.
5. While a launch runs (a local one trains for minutes), a heartbeat renews its lease
   (``webhook.lease_seconds``) under this process's ``host:pid``. Any exception at the
   launch boundary finishes the request as failed with the reason. A launch whose owner
   died (its lease ran out, or, at start, its pid is gone) is recorded as failed with a
   ``launch``/``orphaned`` audit event, and its MLflow runs left ``RUNNING`` are ended as
   ``FAILED``; a Jobs API launch is retried instead (the idempotency token makes it the same run).

Every step appends to the audit trail (``alert_received``, ``trigger_fired`` /
``trigger_skipped``, ``launch``) and the run key's record in the state store. An audit write that
fails is logged and never stops or repeats a step.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable

from driftgate.core.errors import DriftgateError, LaunchError
from driftgate.triggers.state import TriggerState
from driftgate.triggers.webhook.config import WebhookConfig
from driftgate.triggers.webhook.queue import AlertQueue, QueueItem
from driftgate.triggers.webhook.receiver import SOURCE
from driftgate.workspace.jobs import JobLauncher, LaunchRequest, TransientLaunchError, owner_is_dead, process_owner

__all__ = ["Worker", "AuditFn", "GateFn", "audit_to_workspace", "audit_to_log", "RECORD_BATCH"]

log = logging.getLogger("driftgate.webhook")

GateFn = Callable[..., Any]
"""``gate(run_key=...)`` runs the shared gate and returns its ``Decision`` (``.status``, ``.reasons``,
``.decision_id``); the run key lets the decision be traced back to the alert."""
AuditFn = Callable[..., Any]
"""``audit(kind, *, run_key, subject, status, details)``, as :func:`driftgate.workspace.audit.record_event` without
``ws``; an optional ``audit.many(events)`` writes several at once (else they go one by one), and an optional
``audit.flush()`` sends events kept from a failed write (:meth:`Worker.drain` calls it when it audited nothing)."""

_DONE = ("succeeded", "failed", "skipped")
RECORD_BATCH = 200
"""Most ``record`` requests (OK/UNKNOWN/ERROR deliveries) audited in one write."""


class audit_to_workspace:  # noqa: N801 - used like the function it replaced
    """Audit into the workspace's ``driftgate_events`` table (``many``: one Delta commit for a batch)."""

    def __init__(self, ws):
        self.ws = ws

    def __call__(self, kind: str, **kwargs: Any) -> None:
        from driftgate.workspace.audit import record_event

        record_event(self.ws, kind, **kwargs)

    def many(self, events: list[dict[str, Any]]) -> None:
        from driftgate.workspace.audit import record_events

        record_events(self.ws, events)


def audit_to_log(kind: str, **kwargs: Any) -> None:
    """Audit as log lines, where no table is reachable (no workspace and no ``warehouse`` state backend)."""
    log.info("audit %s %s", kind, {k: v for k, v in kwargs.items() if v is not None})


def _status(decision: Any) -> str:
    return str(getattr(decision, "status", decision))  # statuses are StrEnums: str() is the value


def _decision_record(decision: Any) -> dict[str, Any]:
    if decision is None:
        return {"status": "DEFERRED_TO_JOB", "reasons": ["the job's evaluate_drift task runs the gate"]}
    reasons = getattr(decision, "reasons", None) or []
    return {"status": _status(decision), "decision_id": getattr(decision, "decision_id", None),
            "summary": getattr(decision, "summary", "") or "", "reasons": [_reason(r) for r in reasons][:20]}


def _reason(result: Any) -> str:
    """One line per rule (``RuleResult`` has ``name``, ``status`` and ``reason``), or the text given."""
    name, reason = getattr(result, "name", None), getattr(result, "reason", None)
    if name is None or reason is None:
        return str(result)
    status = _status(getattr(result, "status", ""))
    return f"{name}: {status} ({reason})" if status else f"{name}: {reason}"


class Worker:
    """Consume the alert queue: gate, cooldown, launch, audit.

    Args:
        config: the ``webhook`` settings (cooldown, retries, poll interval).
        queue: the queue the receiver fills.
        store: the shared trigger state (run key records).
        launcher: starts the retraining job.
        gate: runs the shared gate; None leaves the gate to the job's own first task.
        audit: where audit events go (:func:`audit_to_workspace` or :func:`audit_to_log`).
        clock: unix-seconds clock.
    """

    def __init__(self, config: WebhookConfig, *, queue: AlertQueue, store: TriggerState, launcher: JobLauncher,
                 gate: GateFn | None, audit: AuditFn = audit_to_log, clock: Callable[[], float] = time.time):
        self.config = config
        self.queue = queue
        self.store = store
        self.launcher = launcher
        self.gate = gate
        self.audit = audit
        self.clock = clock
        self.owner = process_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The SQLite store opens a connection per call; while this one stays open, closing
        # those does not checkpoint and delete the WAL each time (fewer fsyncs, ~6x faster).
        self._keep_open = store.keep_open()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Consume the queue in a background thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="driftgate-webhook-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - the loop must survive one bad request
                log.exception("webhook worker: unexpected error")
                worked = None
            if worked is None:
                self._checkpoint()
                self._stop.wait(self.config.poll_seconds)

    def drain(self, max_items: int = 1000) -> list[str]:
        """Process every due request now (serverless handlers and tests); returns outcomes."""
        outcomes = []
        for _ in range(max_items):
            outcome = self.run_once()
            if outcome is None:
                break
            outcomes.append(outcome)
        if not outcomes:
            self._flush_audit()
        self._checkpoint()
        return outcomes

    def _checkpoint(self) -> None:
        # The receiver does not checkpoint (it would stall an acknowledgement); the worker does.
        try:
            self.queue.checkpoint()
        except Exception:  # noqa: BLE001 - a busy log is checkpointed next time
            log.debug("webhook worker: checkpoint skipped", exc_info=True)

    def recover(self) -> list[str]:
        """Release requests held by a process of this host that no longer exists (a crash or a kill),
        so the next take handles them now instead of when their lease runs out. Returns their keys."""
        released = []
        for row in self.queue.in_flight():
            if row["owner"] != self.owner and owner_is_dead(row["owner"]):
                self.queue.expire(row["run_key"])
                released.append(row["run_key"])
                log.warning("webhook: %s was held by %s, which is gone; recovering it", row["run_key"], row["owner"])
        return released

    def health(self) -> dict[str, Any]:
        """What the worker holds: requests being launched (owner, heartbeat age) and stuck ones
        (lease run out, or owner dead), for ``/healthz``."""
        now = self._now()
        launching, stuck = [], []
        for row in self.queue.in_flight():
            beat = row["heartbeat_at"]
            entry = {"run_key": row["run_key"], "step": row["note"], "owner": row["owner"],
                     "heartbeat_age_seconds": round(now - beat, 1) if beat is not None else None}
            expired = row["lease_until"] is not None and row["lease_until"] < now
            if expired or (row["owner"] != self.owner and owner_is_dead(row["owner"])):
                stuck.append({**entry, "why": "owner gone" if not expired else "lease expired: no heartbeat"})
            elif row["note"] == "launching":
                launching.append(entry)
        return {"launching": launching, "stuck": stuck}

    def run_once(self) -> str | None:
        """Process one due request (or one batch of ``record`` requests); returns its outcome, or None if
        nothing was due."""
        now = self.clock()
        last = self.queue.last_launch()
        # During a cooldown, launch requests are not even taken: they wait, untouched, and the
        # first one due afterwards launches and covers the rest (no write per waiting alert).
        cooling = last is not None and now < last + self.config.min_time_between_triggers_seconds
        item = self.queue.take(now=now, lease_seconds=self.config.lease_seconds, launches=not cooling)
        if item is None:
            return None
        if item.action == "record":
            more = self.queue.take_records(now=now, lease_seconds=self.config.lease_seconds, limit=RECORD_BATCH - 1)
            return self._record([item, *more])
        return self._launch(item)

    # -- steps -----------------------------------------------------------------------------

    def _audit(self, kind: str, **kwargs: Any) -> None:
        self._audit_many([{"kind": kind, **kwargs}])

    def _audit_many(self, events: list[dict[str, Any]]) -> None:
        # The audit trail must not stop a launch or leave a request half-done.
        many = getattr(self.audit, "many", None)
        try:
            if many is not None:
                many(events)
                return
            for event in events:
                self.audit(event["kind"], **{k: v for k, v in event.items() if k != "kind"})
        except Exception:  # noqa: BLE001
            log.exception("webhook worker: could not record %s for %s", events[0]["kind"], events[0].get("run_key"))

    def _flush_audit(self) -> None:
        # An audit that keeps the events of a failed write (``flush``) sends them again when an invocation
        # audited nothing itself (any audit write sends them first anyway).
        flush = getattr(self.audit, "flush", None)
        if flush is None:
            return
        try:
            flush()
        except Exception:  # noqa: BLE001 - as any audit failure: logged, never in the way of a delivery
            log.exception("webhook worker: could not send the audit events kept from a failed write")

    def _now(self) -> float:
        return self.clock()

    def _at(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, timezone.utc)

    def _record(self, items: list[QueueItem]) -> str:
        self._audit_many([
            {"kind": "alert_received", "run_key": i.alert.get("run_key"), "subject": i.alert.get("alert_id"),
             "status": i.alert.get("state"), "details": {**i.alert, "deliveries": i.deliveries, "launched": False}}
            for i in items])
        self.queue.finish_many([i.run_key for i in items], "recorded", now=self._now())
        return "recorded"

    def _finish(self, item: QueueItem, outcome: str, store_status: str, *, run_id: str | None = None,
                reason: str | None = None, launched: bool = False) -> str:
        now = self._now()
        note = reason or (f"run {run_id} {store_status}" if run_id else None)
        self.queue.finish(item.run_key, outcome, now=now, run_id=run_id, note=note, launched=launched)
        self._claim(item)
        self.store.finish(item.run_key, store_status, run_id=run_id, reason=reason, at=self._at(now))
        return outcome

    def _launch(self, item: QueueItem) -> str:
        alert, key = item.alert, item.run_key
        record = self.store.get(key)
        # "launching": this worker took the key and stopped mid-launch; "retry": it holds the key
        # between attempts. Either way the key is already ours (status running).
        owned = item.note in ("launching", "retry")
        if record is not None and (record.status in _DONE or (record.status == "running" and not owned)):
            # Finished earlier, or taken by another runner (``driftgate watch`` consumes the same keys).
            self.queue.finish(key, "duplicate", now=self._now(), note=f"run key already {record.status}")
            return "duplicate"
        if item.note == "launching" and not self.launcher.idempotent:
            return self._orphaned(item)  # before the cooldown and the gate: nothing is started again
        if item.attempts == 0 and item.decision is None and item.note is None:
            self._audit("alert_received", run_key=key, subject=alert.get("alert_id"), status=alert.get("state"),
                       details={**alert, "deliveries": item.deliveries})

        now = self._now()
        last = self.queue.last_launch()
        cooldown = self.config.min_time_between_triggers_seconds
        if item.decision is None and last is not None and now < last + cooldown:
            until = last + cooldown
            if item.note != "cooldown":
                self._audit("trigger_skipped", run_key=key, subject=alert.get("alert_id"), status="cooldown",
                           details={"reason": f"cooldown: last launch at {self._at(last).isoformat()}, "
                                              f"waiting until {self._at(until).isoformat()}"})
            self.queue.defer(key, not_before=until, note="cooldown")
            return "deferred"

        decision = item.decision
        if decision is None:
            decision = self._evaluate(item)
            if decision is None:
                return "failed"
            if decision["status"] not in ("EXCEEDED", "DEFERRED_TO_JOB"):
                reasons = "; ".join(decision.get("reasons") or []) or "no reasons given"
                reason = f"gate said {decision['status']}: {reasons}"
                self._audit("trigger_skipped", run_key=key, subject=alert.get("alert_id"), status=decision["status"],
                           details={"reason": reason, "decision": decision})
                return self._finish(item, "skipped", "skipped", reason=reason)
            self._audit("trigger_fired", run_key=key, subject=alert.get("alert_id"), status=decision["status"],
                       details={"decision": decision, "alert": alert})

        # Parameters the job defines (resources/retraining_job.yml; the Jobs API takes no others): the
        # run key also travels as the idempotency token, and as ``run_key`` the job's tasks record it
        # (driftgate.tasks.run_key_for_job), as the local graph does.
        request = LaunchRequest(run_key=key, trigger=SOURCE, parameters={"trigger": SOURCE, "run_key": key})
        if not owned:  # an owned key (retry, or a Jobs API launch cut short) relaunches with the same token
            self._claim(item)
            if not self.store.take(key, at=self._at(self._now())):
                self.queue.finish(key, "duplicate", now=self._now(), note="taken by another runner")
                return "duplicate"
        attempts = item.attempts + 1
        # The job's gate evaluates after this moment: alerts whose data is older are answered by this run.
        gate_time = self._now()
        self.queue.mark(key, "launching", lease_until=gate_time + self.config.lease_seconds, owner=self.owner,
                        now=gate_time)
        try:
            with self._heartbeat(key):
                result = self.launcher.launch(request)
        except TransientLaunchError as exc:
            return self._retry_or_give_up(item, attempts, decision, str(exc))
        except Exception as exc:  # noqa: BLE001 - the launch boundary: nothing may leave the request running
            known = isinstance(exc, LaunchError | DriftgateError)
            if not known:
                log.exception("webhook: launching %s failed", key)
            reason = f"launch refused: {exc}" if known else f"launch failed: {type(exc).__name__}: {exc}"
            self._audit("launch", run_key=key, subject=alert.get("alert_id"), status="failed",
                       details={"reason": reason, "attempts": attempts})
            return self._finish(item, "failed", "failed", reason=reason)
        state = result.state
        self._audit("launch", run_key=key, subject=alert.get("alert_id"), status="launched",
                   details={"run_id": result.run_id, "state": state, "attempts": attempts, **result.details})
        outcome = self._finish(item, "launched", state, run_id=result.run_id, launched=True)
        self._cover_waiting(key, result.run_id, gate_time)
        log.info("webhook: launched run %s for %s", result.run_id, key)
        return outcome

    @contextmanager
    def _heartbeat(self, key: str):
        """Renew the lease of ``key`` every third of ``webhook.lease_seconds`` while the launch runs."""
        stop = threading.Event()
        lease = self.config.lease_seconds
        interval = max(0.05, lease / 3)

        def beat() -> None:
            try:
                while not stop.wait(interval):
                    now = self._now()
                    if not self.queue.heartbeat(key, owner=self.owner, now=now, lease_until=now + lease):
                        log.error("webhook: lost the lease of %s while launching it", key)
            finally:
                self.queue.close_thread()

        thread = threading.Thread(target=beat, name=f"driftgate-heartbeat-{key}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(interval + 5)

    def _orphaned(self, item: QueueItem) -> str:
        """A launch whose process died mid-run (in-process): record it failed, end its MLflow runs."""
        key, alert = item.run_key, item.alert
        abandon = getattr(self.launcher, "abandon", None)
        ended: list[str] = []
        if abandon is not None:
            try:
                ended = abandon(key)
            except Exception:  # noqa: BLE001 - recording the failure matters more than the cleanup
                log.exception("webhook: could not end the MLflow runs of %s", key)
        reason = ("the process running this launch died (crash or kill) before it finished; not started again"
                  + (f"; MLflow runs {', '.join(ended)} ended as FAILED" if ended else ""))
        self._audit("launch", run_key=key, subject=alert.get("alert_id"), status="orphaned",
                   details={"reason": reason, "mlflow_runs_failed": ended})
        log.error("webhook: %s: %s", key, reason)
        return self._finish(item, "failed", "failed", reason=reason)

    def _claim(self, item: QueueItem) -> None:
        # Claimed only once the worker acts on the key (skip or launch), so requests held by
        # the cooldown stay invisible to ``driftgate watch``'s webhook trigger. A False answer
        # means an earlier attempt claimed it; ``take`` still decides who launches.
        self.store.claim(item.run_key, source=SOURCE, details=item.alert, status="claimed",
                         at=self._at(item.received_at))

    def _evaluate(self, item: QueueItem) -> dict[str, Any] | None:
        if self.gate is None:
            return _decision_record(None)
        try:
            return _decision_record(self.gate(run_key=item.run_key))
        except Exception as exc:  # noqa: BLE001 - a gate that cannot decide must not launch
            reason = f"gate could not evaluate: {type(exc).__name__}: {exc}"
            self._audit("trigger_skipped", run_key=item.run_key, subject=item.alert.get("alert_id"), status="ERROR",
                       details={"reason": reason})
            self._finish(item, "failed", "failed", reason=reason)
            return None

    def _retry_or_give_up(self, item: QueueItem, attempts: int, decision: dict[str, Any], error: str) -> str:
        launch = self.config.launch
        key = item.run_key
        if attempts >= launch.max_attempts:
            reason = f"gave up after {attempts} attempts: {error}"
            self._audit("launch", run_key=key, subject=item.alert.get("alert_id"), status="gave_up",
                       details={"reason": reason, "attempts": attempts})
            log.error("webhook: %s", reason)
            return self._finish(item, "failed", "failed", reason=reason)
        backoff = min(launch.max_backoff_seconds, launch.backoff_seconds * 2 ** (attempts - 1))
        self._audit("launch", run_key=key, subject=item.alert.get("alert_id"), status="retrying",
                   details={"error": error, "attempts": attempts, "retry_in_seconds": backoff})
        # The key stays taken (running) between attempts, so no other runner launches it meanwhile.
        self.queue.defer(key, not_before=self._now() + backoff, attempts=attempts, decision=decision, note="retry")
        return "retrying"

    def _cover_waiting(self, launched_key: str, run_id: str, gate_time: float) -> None:
        """Requests whose data was written before this run's gate evaluated are answered by it; an alert
        that arrived while the run ran is newer than its gate and keeps its own turn."""
        reason = f"covered by run {run_id} ({launched_key}), whose gate evaluated after this alert's data"
        for key, alert in self.queue.cover(data_before=gate_time, note=reason, now=self._now()):
            if self.store.get(key) is not None:  # held between launch attempts
                self.store.finish(key, "skipped", reason=reason, at=self._at(self._now()))
            self._audit("trigger_skipped", run_key=key, subject=alert.get("alert_id"), status="covered",
                       details={"reason": reason, "alert": alert})
