"""The local trigger runner: tick triggers, claim run keys, launch at most one run at a time.

For each tick of each trigger the runner:

1. reads the trigger's cursor from the :class:`~driftgate.triggers.state.StateStore`;
2. calls ``trigger.tick``; a skip reason is logged (never silent);
3. for each run request claims its ``run_key`` (atomic insert), then hands it to the single
   launch worker, which ``take``s the key (atomic ``claimed/queued → running``) before
   calling the launcher, so a key is launched at most once across replays, restarts and
   concurrent runners;
4. saves the cursor the tick returned.

Concurrency mirrors a job with ``max_concurrent_runs: 1``: while a run is active a new
request is queued (``queue=True``, like ``queue.enabled``) or skipped with a reason.
Queued keys are durable: after a restart :meth:`TriggerRunner.recover` requeues keys that
were claimed or queued but never started. A key found ``running`` after a restart is
reported, not relaunched: that run may have done its work before the crash.
"""
from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from driftgate.core.errors import DriftgateError
from driftgate.triggers.base import Clock, RunRequest, TickContext, TickResult, Trigger
from driftgate.triggers.state import TriggerState

__all__ = ["TriggerRunner", "TickOutcome", "Launcher", "utc_now"]

log = logging.getLogger("driftgate.triggers")

Launcher = Callable[[RunRequest, Trigger], Any]
"""Starts the job for one request; returns something with ``job_run_id`` / ``run_id``, or None."""

EventSink = Callable[[str, dict[str, Any]], None]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class TickOutcome:
    """What one tick of one trigger led to."""

    trigger: str
    at: datetime
    skip: str | None = None
    launched: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        parts = []
        for label, keys in (("launching", self.launched), ("queued", self.queued),
                            ("already claimed", self.duplicates), ("skipped (busy)", self.skipped)):
            if keys:
                parts.append(f"{label}: {', '.join(keys)}")
        if self.skip:
            parts.append(f"skip: {self.skip}")
        if self.error:
            parts.append(f"error: {self.error}")
        return f"[{self.trigger}] " + "; ".join(parts)


class TriggerRunner:
    """Tick triggers and launch their run requests, at most one at a time.

    Args:
        triggers: the triggers to tick (names must be unique).
        state: the durable state store.
        launcher: called once per launched request (in the worker thread, or inline when
            ``background=False``).
        ws: the workspace passed to triggers in their tick context.
        clock: returns the current UTC time; tests pass a controllable one.
        queue: queue requests while a run is active (True) or skip them (False).
        background: launch in a worker thread (``watch``) or inline (tests, one-shot).
        on_event: receives ``(kind, fields)`` for ``trigger_fired`` / ``trigger_skipped``
            (the watch command writes them to the audit trail).
    """

    def __init__(
        self,
        triggers: Iterable[Trigger],
        state: TriggerState,
        launcher: Launcher,
        *,
        ws: Any = None,
        clock: Clock = utc_now,
        queue: bool = True,
        background: bool = True,
        on_event: EventSink | None = None,
    ):
        self.triggers = list(triggers)
        names = [t.name for t in self.triggers]
        if len(set(names)) != len(names):
            raise ValueError(f"trigger names must be unique, got {names}")
        self.state = state
        self.launcher = launcher
        self.ws = ws
        self.clock = clock
        self.queue = queue
        self.background = background
        self.on_event = on_event
        self._pending: queue_mod.Queue[tuple[RunRequest, Trigger] | None] = queue_mod.Queue()
        self._inflight: set[str] = set()
        self._active: str | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.results: dict[str, Any] = {}

    # -- ticking -----------------------------------------------------------------------------

    def tick(self) -> list[TickOutcome]:
        """One pass over every trigger."""
        return [self.tick_one(t) for t in self.triggers]

    def tick_one(self, trigger: Trigger) -> TickOutcome:
        now = self.clock()
        outcome = TickOutcome(trigger.name, now)
        cursor = self.state.get_cursor(trigger.name)
        try:
            result = trigger.tick(TickContext(now=now, cursor=cursor, ws=self.ws, state=self.state))
            if not isinstance(result, TickResult):
                raise TypeError(f"tick must return a TickResult, got {type(result).__name__}")
        except Exception as exc:  # a broken trigger must not stop the others; its cursor stays
            outcome.error = f"{type(exc).__name__}: {exc}"
            log.error("%s: tick failed: %s", trigger.describe(), outcome.error)
            return outcome
        if result.skip is not None:
            outcome.skip = result.skip.reason
            log.info("%s: %s", trigger.describe(), result.skip.reason)
        for request in result.requests:
            self._submit(request, trigger, outcome, now)
        if result.cursor is not None and result.cursor != cursor:
            self.state.set_cursor(trigger.name, result.cursor, at=now)
        return outcome

    def _submit(self, request: RunRequest, trigger: Trigger, outcome: TickOutcome, now: datetime) -> None:
        key = request.run_key
        fresh = self.state.claim(key, source=trigger.name, details=request.details, at=now)
        record = self.state.get(key)
        if not fresh and (record is None or record.status not in ("claimed", "queued")):
            outcome.duplicates.append(key)
            self._event("trigger_skipped", key, trigger, "duplicate",
                        {"reason": f"run key already {record.status if record else 'gone'}"})
            return
        with self._lock:
            if key in self._inflight:
                return
            busy = self._active is not None or bool(self._inflight)
            if busy and not self.queue:
                self.state.finish(key, "skipped", reason="a run is already active (max_concurrent_runs 1, queue off)",
                                  at=now)
                outcome.skipped.append(key)
                self._event("trigger_skipped", key, trigger, "busy", {"reason": "a run is already active"})
                return
            self._inflight.add(key)
        if busy:
            self.state.set_status(key, "queued", reason="waiting for the active run (max_concurrent_runs 1)")
            outcome.queued.append(key)
            self._event("trigger_fired", key, trigger, "queued", request.details)
        else:
            outcome.launched.append(key)
            self._event("trigger_fired", key, trigger, "launching", request.details)
        self._pending.put((request, trigger))
        if self.background:
            self._ensure_worker()
        else:
            self._drain()

    # -- launching ---------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="driftgate-launch", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            self._launch(*item)

    def _drain(self) -> None:
        while True:
            try:
                item = self._pending.get_nowait()
            except queue_mod.Empty:
                return
            if item is not None:
                self._launch(*item)

    def _launch(self, request: RunRequest, trigger: Trigger) -> None:
        key = request.run_key
        try:
            if not self.state.take(key, at=self.clock()):
                log.info("%s: %s was taken by another runner; not launching", trigger.describe(), key)
                return
            with self._lock:
                self._active = key
            log.info("%s: launching %s", trigger.describe(), key)
            try:
                result = self.launcher(request, trigger)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                level = log.error if not isinstance(exc, DriftgateError) else log.warning
                level("%s: run %s failed: %s", trigger.describe(), key, reason)
                self.state.finish(key, "failed", reason=reason[:2000], at=self.clock())
                self.results[key] = exc
                return
            run_id = getattr(result, "job_run_id", None) or getattr(result, "run_id", None)
            self.state.finish(key, "succeeded", run_id=str(run_id) if run_id else None, at=self.clock())
            self.results[key] = result
        finally:
            with self._lock:
                self._active = None
                self._inflight.discard(key)

    def recover(self) -> list[str]:
        """Requeue keys of these triggers that were claimed or queued but never started."""
        requeued = []
        from driftgate.triggers.queued import QueuedTrigger

        for trigger in self.triggers:
            # A queued trigger's source may be shared with another worker (the webhook's), whose
            # "claimed" keys are its own; only "queued" ones are meant for this runner.
            statuses = ("queued",) if isinstance(trigger, QueuedTrigger) else ("claimed", "queued")
            for record in self.state.pending(trigger.name, statuses=statuses):
                with self._lock:
                    if record.run_key in self._inflight:
                        continue
                    self._inflight.add(record.run_key)
                self._pending.put((RunRequest(record.run_key, dict(record.details)), trigger))
                requeued.append(record.run_key)
            for record in self.state.history(trigger.name, limit=20):
                if record.status == "running":
                    log.warning("%s: %s was running when the runner stopped; not relaunched (check the run)",
                                trigger.describe(), record.run_key)
        if requeued:
            log.info("requeued %d request(s) from before the restart: %s", len(requeued), ", ".join(requeued))
            if self.background:
                self._ensure_worker()
            else:
                self._drain()
        return requeued

    def busy(self) -> bool:
        with self._lock:
            return self._active is not None or bool(self._inflight)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no run is active or queued (True), or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Let the active run finish, then stop the worker (queued keys stay queued in the store)."""
        if self._worker is not None and self._worker.is_alive():
            self._pending.put(None)
            self._worker.join(timeout)

    def run_forever(self, *, poll_interval: float = 5.0, stop: threading.Event | None = None,
                    max_ticks: int | None = None, on_tick: Callable[[TickOutcome], None] | None = None) -> None:
        """Tick every ``poll_interval`` seconds until ``stop`` is set (or ``max_ticks`` passes)."""
        stop = stop or threading.Event()
        self.recover()
        n = 0
        while not stop.is_set():
            for outcome in self.tick():
                if on_tick is not None:
                    on_tick(outcome)
            n += 1
            if max_ticks is not None and n >= max_ticks:
                break
            stop.wait(poll_interval)

    def _event(self, kind: str, key: str, trigger: Trigger, status: str, details: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, {"run_key": key, "subject": trigger.name, "status": status, "at": self.clock(),
                                 "details": {"trigger": trigger.kind or trigger.name, **details}})
        except Exception as exc:  # the audit trail must not stop a launch
            log.error("could not record %s for %s: %s", kind, key, exc)
