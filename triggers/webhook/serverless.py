"""What the serverless handlers share: one receiver + worker per warm instance.

A function instance is frozen once it has answered, so a background worker would
not run. Each invocation therefore answers through the receiver core and then
drains the due part of the queue before returning. The gate is left to the job's
own ``evaluate_drift`` task (``webhook.gate: job``), since a function cannot read
the metric tables; the Jobs API idempotency token (the run key) keeps duplicate
deliveries to different instances to one run.

Configuration comes from the environment: ``DRIFTGATE_ENV`` (default ``databricks``),
``DRIFTGATE_CONF_DIR``, ``DRIFTGATE_SET`` (``;``-separated ``key=value`` overrides,
e.g. ``webhook.launch.job_id=123``), the webhook credentials, and ``DATABRICKS_HOST`` /
``DATABRICKS_TOKEN`` (or another SDK auth) for the Jobs API and the SQL warehouse.

Run keys: set ``triggers.state.backend=warehouse`` with ``warehouse_id``, ``catalog_name`` and
``schema_name`` (through ``DRIFTGATE_SET`` or a conf layer) so every instance claims and takes
keys in the same Unity Catalog tables; the queue then stays in this instance's
``DRIFTGATE_STATE_DIR`` (default ``/tmp/driftgate``), a buffer between acknowledging a delivery and
launching it within the same invocation. With the ``sqlite`` backend, ``DRIFTGATE_STATE_DIR`` is
required (a mounted file share, so instances share ``state.db``); there is no ``/tmp`` default.

Audit events: with the ``warehouse`` backend they go to ``<project.audit_schema>.driftgate_events`` through
the same warehouse (:class:`~driftgate.workspace.warehouse_audit.WarehouseAudit`); events of a failed
write are kept in the instance and sent with the next write, or by the next invocation's drain. With
``sqlite``, to the function's logs.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterable, Mapping

from driftgate.triggers.webhook.service import Webhook, open_webhook

__all__ = ["handle_invocation", "webhook_from_env", "reset"]

log = logging.getLogger("driftgate.webhook")
_lock = threading.Lock()
_instance: Webhook | None = None


def webhook_from_env(**overrides: Any) -> Webhook:
    """Build (once per instance) the receiver and worker from the environment."""
    global _instance
    with _lock:
        if _instance is None:
            from driftgate.core.settings import load_settings

            sets = ["webhook.gate=job"]
            sets += [s.strip() for s in os.environ.get("DRIFTGATE_SET", "").split(";") if s.strip()]
            settings = load_settings(env=os.environ.get("DRIFTGATE_ENV", "databricks"), overrides=sets)
            _instance = open_webhook(settings, state_dir=os.environ.get("DRIFTGATE_STATE_DIR"), **overrides)
        return _instance


def reset() -> None:
    """Forget the cached instance (tests, or after changing the environment)."""
    global _instance
    with _lock:
        _instance = None


def handle_invocation(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes,
                      webhook: Webhook | None = None) -> tuple[int, dict[str, Any]]:
    """Answer one delivery with the receiver core, then work off what is due."""
    webhook = webhook or webhook_from_env()
    status, answer = webhook.receiver.handle(headers, body)
    if status in (200, 202):
        try:
            outcomes = webhook.worker.drain()
        except Exception:  # noqa: BLE001 - the delivery is queued; the next invocation retries
            log.exception("webhook: draining the queue failed; requests stay queued")
        else:
            if outcomes:
                answer = {**answer, "worked": outcomes}
    return status, answer
