"""The receiver core: (headers, body) → (status, response), framework-free.

Every adapter (the FastAPI service, the AWS Lambda, Azure Functions and Google Cloud
Functions handlers) calls :meth:`Receiver.handle` and nothing else. It checks size,
credentials, media type and body, derives the run key and queues the request under
it in the durable queue (the run key is its primary key, so duplicate deliveries only
count), and answers at once: acknowledging never waits for the gate, the Jobs API or
the shared state store. The worker claims the key in the
:class:`~driftgate.triggers.state.StateStore` before it launches.

Answers: 202 queued; 200 duplicate (already claimed) or acknowledged (a state other
than TRIGGERED, recorded but never launched); 400 naming the bad part of the body;
401 with no detail; 413 too large; 415 not JSON; 503 when the queue cannot be written.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from driftgate.core.errors import ConfigError, WebhookError
from driftgate.triggers.webhook.auth import TIMESTAMP_HEADER, Credentials, authenticate
from driftgate.triggers.webhook.config import WebhookConfig
from driftgate.triggers.webhook.payload import AlertNotification, parse_alert
from driftgate.triggers.webhook.queue import AlertQueue

__all__ = ["Receiver", "run_key_for", "SOURCE"]

SOURCE = "webhook"
"""The ``source`` of this receiver's run keys in the state store."""

log = logging.getLogger("driftgate.webhook")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _stamp(at: datetime, fmt: str) -> str:
    return at.astimezone(timezone.utc).strftime(fmt)


def run_key_for(alert: AlertNotification, *, received_at: float, window_seconds: int) -> str:
    """The deterministic run key of an alert delivery, from the alert id and its evaluation.

    ``alert:<id>:<evaluated_at>`` when the body says when the alert was evaluated, so
    duplicate deliveries and retries of one evaluation share a key. Without it, the
    gate window the delivery arrived in stands in (``alert:<id>:w<window start>``), so
    retries within one window still collapse. Both forms fit the Jobs API's 64-character
    idempotency token for Databricks alert ids (UUIDs).
    """
    alert_id = alert.alert_id if _SAFE_ID.match(alert.alert_id) else (
        "h" + hashlib.sha256(alert.alert_id.encode()).hexdigest()[:16])
    if alert.evaluated_at is not None:
        return f"alert:{alert_id}:{_stamp(alert.evaluated_at, '%Y%m%dT%H%M%SZ')}"
    window_start = datetime.fromtimestamp(received_at - received_at % window_seconds, timezone.utc)
    return f"alert:{alert_id}:w{_stamp(window_start, '%Y%m%dT%H%MZ')}"


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k).lower(): str(v) for k, v in items}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Receiver:
    """Authenticate, parse, deduplicate and queue alert deliveries.

    Args:
        config: the ``webhook`` settings.
        queue: the durable queue the worker consumes.
        credentials: what requests must prove (default: from the environment).
        insecure: accept unauthenticated requests when no credentials are configured
            (the service allows this only on a loopback address).
        clock: unix-seconds clock (tests pass a fixed one).

    Raises:
        ConfigError: no credentials are configured and ``insecure`` is false, or the configured ones
            could never log in or are too short (:meth:`Credentials.check`).
    """

    def __init__(self, config: WebhookConfig, *, queue: AlertQueue,
                 credentials: Credentials | None = None, insecure: bool = False,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.queue = queue
        self.credentials = (credentials if credentials is not None else Credentials.from_env()).check()
        if not self.credentials.configured and not insecure:
            raise ConfigError(
                "environment: set DRIFTGATE_WEBHOOK_USER and DRIFTGATE_WEBHOOK_PASSWORD, DRIFTGATE_WEBHOOK_TOKEN "
                "or DRIFTGATE_WEBHOOK_HMAC_SECRET; the receiver refuses to run without credentials",
                key="DRIFTGATE_WEBHOOK_USER",
            )
        self.insecure = insecure and not self.credentials.configured
        self.clock = clock

    def handle(self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one delivery.

        Args:
            headers: request headers (any case).
            body: the raw request body.

        Returns:
            ``(status, response)``; the response is a JSON-serialisable dict.
        """
        try:
            return self._handle(_lower(headers), bytes(body))
        except WebhookError as exc:
            return exc.status, {"error": str(exc)}
        except Exception:  # noqa: BLE001 - a delivery must get an answer; the sender will retry
            log.exception("webhook: could not queue a delivery")
            return 503, {"error": "could not queue the alert; retry later"}

    def _handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        limit = self.config.max_body_bytes
        declared = headers.get("content-length", "").strip()
        if (declared.isascii() and declared.isdigit() and int(declared) > limit) or len(body) > limit:
            return 413, {"error": f"body: must be at most {limit} bytes"}
        now = self.clock()
        method = None if self.insecure else authenticate(
            headers, body, self.credentials, now=now, replay_window_seconds=self.config.hmac_replay_window_seconds)
        if not self.insecure and method is None:
            log.warning("webhook: refused a delivery with missing or wrong credentials")
            return 401, {"error": "unauthorized"}
        content_type = headers.get("content-type", "")
        if not _is_json(content_type):
            shown = content_type.split(";", 1)[0].strip()[:60] or "none"
            return 415, {"error": f"content-type: must be application/json, got {shown}"}
        alert = parse_alert(body)
        # A signed request is keyed by the moment it signed, not the moment it arrived: a replay
        # (byte for byte, inside the replay window) then maps to the same run key even when it
        # lands in the next gate window, e.g. across midnight UTC.
        sent_at = float(headers[TIMESTAMP_HEADER].strip()) if method == "hmac" else now
        key = run_key_for(alert, received_at=sent_at, window_seconds=self.config.window_seconds)
        record = {**alert.as_dict(), "run_key": key}
        # When the alert's data was written, for coverage: a run covers it only if its gate evaluated later.
        data_at = min(now, alert.evaluated_at.timestamp()) if alert.evaluated_at else now
        if alert.state != "TRIGGERED":
            self.queue.put(f"note:{alert.state}:{key}", "record", record, now=now, data_at=data_at)
            log.info("webhook: alert %s is %s: acknowledged, not launched", alert.alert_id, alert.state)
            return 200, {"status": "acknowledged", "state": alert.state, "launched": False,
                         "reason": f"alert state {alert.state}: only TRIGGERED alerts launch"}
        if not self.queue.put(key, "launch", record, now=now, data_at=data_at):
            row = self.queue.get(key) or {}
            log.info("webhook: duplicate delivery of %s", key)
            return 200, {"status": "duplicate", "run_key": key,
                         "run_status": row.get("outcome") or row.get("status")}
        log.info("webhook: alert %s TRIGGERED: queued as %s", alert.alert_id, key)
        return 202, {"status": "queued", "run_key": key}
