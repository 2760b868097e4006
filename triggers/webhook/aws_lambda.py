"""AWS Lambda handler (API Gateway HTTP API / REST API proxy, or a function URL).

Deploy: package driftgate with its ``conf/`` folder, set the handler to
``driftgate.triggers.webhook.aws_lambda.handler`` and the environment described in
:mod:`driftgate.triggers.webhook.serverless`.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from driftgate.triggers.webhook.serverless import handle_invocation

__all__ = ["handler"]


def _answer(status: int, answer: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(answer)}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point: payload format 2.0 (HTTP API, function URL) or 1.0 (REST API)."""
    method = (event.get("requestContext", {}).get("http", {}).get("method") or event.get("httpMethod") or "").upper()
    if method != "POST":
        return _answer(405, {"error": f"method: must be POST, got {method or 'none'}"})
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _answer(400, {"error": "body: invalid base64 encoding"})
    else:
        raw = body.encode("utf-8", "surrogateescape")
    status, answer = handle_invocation(event.get("headers") or {}, raw)
    return _answer(status, answer)
