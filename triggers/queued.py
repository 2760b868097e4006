"""Triggers fed by requests queued in the state store: ``manual`` and ``webhook``.

Something outside the runner (``driftgate watch --request``, the alert webhook receiver)
claims a run key in the :class:`~driftgate.triggers.state.StateStore` with status ``queued``;
the next tick of the matching trigger turns every queued key into a :class:`RunRequest`.
The key is already claimed, so the runner's atomic ``take`` decides who launches it.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from driftgate.triggers.base import RunRequest, TickContext, TickResult, Trigger

__all__ = ["QueuedTrigger", "ManualTrigger", "WebhookTrigger", "request_run"]


class QueuedTrigger(Trigger):
    """Emit one run request per key queued in the state store under this trigger's name."""

    kind = ""

    def tick(self, context: TickContext) -> TickResult:
        if context.state is None:
            raise ValueError(f"{self.describe()}: needs the state store in the tick context")
        # Only "queued": a key another worker merely "claimed" is that worker's to take.
        queued = context.state.pending(self.name, statuses=("queued",))
        if not queued:
            return TickResult.skipped(f"no queued {self.name} requests")
        return TickResult.fire(*[
            RunRequest(run_key=r.run_key, details=dict(r.details),
                       job_parameters={"reason": self.name, **{k: str(v) for k, v in
                                                                r.details.get("job_parameters", {}).items()}})
            for r in queued
        ])


class ManualTrigger(QueuedTrigger):
    """Runs asked for by hand: ``driftgate watch --request "why"`` queues one."""

    kind = "manual"


class WebhookTrigger(QueuedTrigger):
    """Runs asked for by SQL alerts through a receiver that only queues.

    driftgate's own receivers (``driftgate serve`` and the serverless handlers) do not use
    it: their worker asks the gate and calls the Jobs API itself. This trigger is for a
    receiver of your own that shares the state store: it validates and dedupes each
    delivery, then calls ``request_run(state, source="webhook", run_key=...)`` (run key
    ``alert:{alert_id}:{evaluated_at}``), and ``driftgate watch`` launches the key. Keys
    the serve worker merely claimed are its own and are left alone here. Off by default
    (``triggers.webhook.enabled``).
    """

    kind = "webhook"


def request_run(state, *, source: str = "manual", reason: str = "", run_key: str | None = None,
                details: dict[str, Any] | None = None, at: datetime | None = None) -> tuple[str, bool]:
    """Queue a run request for a queued trigger; returns ``(run_key, newly_queued)``."""
    key = run_key or f"{source}:{uuid.uuid4().hex[:12]}"
    fresh = state.claim(key, source=source, details={"reason": reason, **(details or {})}, status="queued", at=at)
    return key, fresh
