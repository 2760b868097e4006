"""What a Databricks SQL alert sends, parsed into one frozen record.

No official schema exists for the body a SQL alert posts to a generic webhook, so
two shapes are accepted and unknown fields are ignored:

* the **driftgate template**: a flat JSON object the user puts in the alert's custom
  body (``state``, ``alert_id`` or ``alert_url``, ``alert_name``, ``evaluated_at``,
  ``value``, ``threshold``; see :data:`CUSTOM_TEMPLATE`);
* the **alert-shaped default** inherited from Redash:
  ``{"event": ..., "alert": {"id", "name", "state", "options": {"column", "op", "value"}, ...}}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from driftgate.core.errors import WebhookError

__all__ = ["AlertNotification", "parse_alert", "STATES", "CUSTOM_TEMPLATE"]

STATES = ("TRIGGERED", "OK", "UNKNOWN", "ERROR")

CUSTOM_TEMPLATE = """{
  "driftgate": 1,
  "alert_id": "<the alert's id>",
  "alert_name": "{{ALERT_NAME}}",
  "alert_url": "{{ALERT_URL}}",
  "state": "{{ALERT_STATUS}}",
  "column": "{{ALERT_COLUMN}}",
  "condition": "{{ALERT_CONDITION}}",
  "value": "{{QUERY_RESULT_VALUE}}",
  "threshold": "{{ALERT_THRESHOLD}}"
}"""
"""The custom body to paste into a SQL alert (documented in the README)."""

_MAX_TEXT = 512
_ALERT_ID_IN_URL = re.compile(r"/alerts/([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class AlertNotification:
    """One alert delivery, whatever shape it came in."""

    alert_id: str
    state: str
    """``TRIGGERED``, ``OK``, ``UNKNOWN`` or ``ERROR``."""
    shape: str
    """``template`` (the driftgate custom body) or ``alert`` (the default alert-shaped body)."""
    alert_name: str | None = None
    evaluated_at: datetime | None = None
    """When the alert was evaluated, if the body says; None means the receiver's clock decides."""
    value: float | str | None = None
    threshold: float | str | None = None
    column: str | None = None
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evaluated_at"] = self.evaluated_at.isoformat() if self.evaluated_at else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AlertNotification":
        data = dict(data)
        if data.get("evaluated_at"):
            data["evaluated_at"] = datetime.fromisoformat(data["evaluated_at"])
        return cls(**data)


def parse_alert(body: bytes) -> AlertNotification:
    """Parse a webhook body.

    Raises:
        WebhookError: status 400, with a message naming the part of the body that is wrong.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookError("body: must be UTF-8 JSON, got undecodable bytes") from None
    except json.JSONDecodeError as exc:
        raise WebhookError(f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise WebhookError("body: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise WebhookError(f"body: must be a JSON object, got {_kind(data)}")
    alert = data.get("alert")
    if alert is not None:
        if not isinstance(alert, dict):
            raise WebhookError(f"body.alert: must be an object, got {_kind(alert)}")
        return _from_alert_shape(alert)
    return _from_template(data)


def _from_template(data: dict[str, Any]) -> AlertNotification:
    state = _state(data.get("state", data.get("alert_status")), "body.state")
    url = _text(data.get("alert_url"), "body.alert_url")
    name = _text(data.get("alert_name"), "body.alert_name")
    alert_id = _text(data.get("alert_id"), "body.alert_id")
    if alert_id and alert_id.startswith("<"):
        alert_id = None  # the template's placeholder left as is
    if not alert_id and url and (m := _ALERT_ID_IN_URL.search(url)):
        alert_id = m.group(1)
    alert_id = alert_id or name
    if not alert_id:
        raise WebhookError("body: needs alert_id, an alert_url ending in /alerts/<id>, or alert_name; got none")
    return AlertNotification(
        alert_id=alert_id, state=state, shape="template", alert_name=name,
        evaluated_at=_time(data.get("evaluated_at"), "body.evaluated_at"),
        value=_number(data.get("value"), "body.value"), threshold=_number(data.get("threshold"), "body.threshold"),
        column=_text(data.get("column"), "body.column"), url=url,
    )


def _from_alert_shape(alert: dict[str, Any]) -> AlertNotification:
    state = _state(alert.get("state"), "body.alert.state")
    raw_id = alert.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or str(raw_id).strip() == "":
        raise WebhookError(f"body.alert.id: must be a non-empty string or integer, got {_kind(raw_id)}")
    alert_id = _text(str(raw_id), "body.alert.id")
    options = alert.get("options") or {}
    if not isinstance(options, dict):
        raise WebhookError(f"body.alert.options: must be an object, got {_kind(options)}")
    when = alert.get("evaluated_at") or alert.get("last_triggered_at") or alert.get("updated_at")
    field = "evaluated_at" if alert.get("evaluated_at") else "last_triggered_at" if alert.get(
        "last_triggered_at") else "updated_at"
    return AlertNotification(
        alert_id=alert_id, state=state, shape="alert", alert_name=_text(alert.get("name"), "body.alert.name"),
        evaluated_at=_time(when, f"body.alert.{field}"),
        value=_number(alert.get("value"), "body.alert.value"),
        threshold=_number(options.get("value"), "body.alert.options.value"),
        column=_text(options.get("column"), "body.alert.options.column"),
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _state(value: Any, where: str) -> str:
    if value is None:
        raise WebhookError(f"{where}: required, one of {', '.join(STATES)}")
    if not isinstance(value, str):
        raise WebhookError(f"{where}: must be one of {', '.join(STATES)}, got {_kind(value)}")
    state = value.strip().upper()
    if state not in STATES:
        raise WebhookError(f"{where}: must be one of {', '.join(STATES)}, got {value[:40]!r}")
    return state


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise WebhookError(f"{where}: must be a string, got {_kind(value)}")
    text = str(value).strip()
    if len(text) > _MAX_TEXT:
        raise WebhookError(f"{where}: must be at most {_MAX_TEXT} characters, got {len(text)}")
    if any(ord(c) < 32 for c in text):
        raise WebhookError(f"{where}: must not contain control characters")
    return text or None


def _number(value: Any, where: str) -> float | str | None:
    """A number when it reads as one; the alert's own text otherwise (templates render numbers as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise WebhookError(f"{where}: must be a number or text, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
        return number if number == number and abs(number) != float("inf") else str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _text(value, where)
        return number if number == number and abs(number) != float("inf") else _text(value, where)
    raise WebhookError(f"{where}: must be a number or text, got {_kind(value)}")


def _time(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise WebhookError(f"{where}: must be an ISO 8601 time or epoch seconds, got a boolean")
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds, as Databricks APIs send
            at = datetime.fromtimestamp(seconds, timezone.utc)
        elif isinstance(value, str):
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            raise TypeError
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)  # Databricks API times are UTC
        at = at.astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        shown = value[:40] if isinstance(value, str) else _kind(value)
        raise WebhookError(f"{where}: must be an ISO 8601 time or epoch seconds, got {shown!r}") from None
    return at
