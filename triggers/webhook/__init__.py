"""The SQL-alert webhook path: a receiver core, a durable queue, a gate-checking worker.

``Receiver.handle(headers, body) -> (status, response)`` is the one entry every
adapter calls: ``driftgate serve`` (FastAPI, :mod:`triggers.webhook.service`) and the
AWS Lambda, Azure Functions and Google Cloud Functions handlers.

Names are imported lazily: :mod:`driftgate.config` imports this package's config
model while it is itself being imported.
"""
from __future__ import annotations

import importlib

__all__ = [
    "Receiver", "run_key_for", "Worker", "AlertQueue", "AlertNotification", "parse_alert",
    "CUSTOM_TEMPLATE", "Credentials", "sign", "Webhook", "open_webhook", "create_app",
]

_HOME = {
    "Receiver": "receiver", "run_key_for": "receiver", "Worker": "worker", "AlertQueue": "queue",
    "AlertNotification": "payload", "parse_alert": "payload", "CUSTOM_TEMPLATE": "payload",
    "Credentials": "auth", "sign": "auth", "Webhook": "service", "open_webhook": "service", "create_app": "service",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"triggers.webhook.{_HOME[name]}"), name)
    raise AttributeError(f"module 'triggers.webhook' has no attribute {name!r}")
