"""Optional outgoing notifications: a Slack-compatible webhook, the token from the environment.

A notification never decides anything and never fails the stage that sends it:
the outcome (sent, failed, skipped) is recorded in the audit trail.
"""
from __future__ import annotations

import logging
from typing import Any

from driftgate.workspace.audit import record_event
from driftgate.core.records import GateStatus
from driftgate.core.secrets import secret

__all__ = ["send", "notify_gate_decision"]

_log = logging.getLogger("driftgate.promotion")
_ICONS = {"gate_exceeded": ":warning:", "promotion": ":trophy:", "refusal": ":no_entry:", "rollback": ":rewind:"}


def send(ws, kind: str, text: str, details: dict[str, Any] | None = None) -> bool:
    """POST ``{"text": ..., "driftgate": {...}}`` to ``promotion.notifications.webhook_url``.

    Args:
        ws: the open workspace.
        kind: ``gate_exceeded``, ``promotion``, ``refusal`` or ``rollback``.
        text: one human-readable line.
        details: extra JSON fields for machine consumers.

    Returns:
        True when the webhook answered 2xx; False when disabled, filtered out or failed.
    """
    import httpx

    cfg = ws.settings.promotion.notifications
    url = cfg.webhook_url or secret(cfg.webhook_url_env)
    if not url or kind not in cfg.on:
        return False
    headers = {"Content-Type": "application/json"}
    token = secret(cfg.token_env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"text": f"{_ICONS.get(kind, '')} driftgate {kind}: {text}".strip(),
            "driftgate": {"kind": kind, "model": ws.settings.project.model_name, **(details or {})}}
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=cfg.timeout_seconds)
        ok = 200 <= response.status_code < 300
        outcome = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok, outcome = False, f"{type(exc).__name__}: {exc}"
    if not ok:
        _log.warning("notification %s to the webhook failed: %s", kind, outcome)
    # The URL may embed a credential (Slack puts one in the path): record only the host.
    host = httpx.URL(url).host
    record_event(ws, "notification", subject=kind, status="sent" if ok else "failed",
                 details={"host": host, "outcome": outcome, "text": text})
    return ok


def notify_gate_decision(ws, decision) -> bool:
    """Notify an EXCEEDED gate decision (callers: the gate or the job); other statuses are ignored."""
    if getattr(decision, "status", None) != GateStatus.EXCEEDED:
        return False
    reasons = list(getattr(decision, "reasons", []) or [])
    return send(ws, "gate_exceeded", "drift gate EXCEEDED: " + "; ".join(map(str, reasons[:3])),
                {"decision_id": str(getattr(decision, "decision_id", "")), "reasons": [str(r) for r in reasons]})
