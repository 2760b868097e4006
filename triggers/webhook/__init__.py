"""The SQL-alert webhook path: a receiver core, a durable queue, a gate-checking worker.

``Receiver.handle(headers, body) -> (status, response)`` is the one entry every
adapter calls: ``driftgate serve`` (FastAPI, :mod:`driftgate.triggers.webhook.service`,
imported on its own so that FastAPI loads only where it serves) and the AWS Lambda, Azure
Functions and Google Cloud Functions handlers.
"""
from driftgate.triggers.webhook.auth import Credentials, sign
from driftgate.triggers.webhook.payload import CUSTOM_TEMPLATE, AlertNotification, parse_alert
from driftgate.triggers.webhook.queue import AlertQueue
from driftgate.triggers.webhook.receiver import Receiver, run_key_for
from driftgate.triggers.webhook.worker import Worker

__all__ = [
    "Receiver", "run_key_for", "Worker", "AlertQueue", "AlertNotification", "parse_alert",
    "CUSTOM_TEMPLATE", "Credentials", "sign",
]
