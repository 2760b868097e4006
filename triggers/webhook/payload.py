"""What a Databricks SQL alert sends, parsed into one frozen record.

Three shapes are accepted and unknown fields are ignored (as the Databricks documentation
asks of receivers):

* the **current SQL alert payload** (https://docs.databricks.com/sql/user/alerts/webhook-payload):
  ``{"event", "url_base", "alert": {"title", "description", "alert": {"id", "name", ...,
  "custom_summary", "custom_description", "evaluations": [{"source", "threshold", "state",
  "last_evaluated_at", ...}]}}}``. A ``custom_description`` holding the driftgate template
  (a JSON object) is read as the template, with the envelope's id as the default id;
* the **legacy alert payload**, inherited from Redash:
  ``{"event": ..., "alert": {"id", "name", "state", "options": {"column", "op", "value"}, ...}}``;
* the **driftgate template** posted as the whole body by other senders: a flat JSON object
  (``state``, ``alert_id`` or ``alert_url``, ``alert_name``, ``evaluated_at``, ``value``,
  ``threshold``; see :data:`CUSTOM_TEMPLATE`).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
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
    """``template`` (the driftgate template as the body), ``current`` (the current alert payload; with
    ``+template`` when its ``custom_description`` held the template) or ``alert`` (the legacy payload)."""
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
        data = _json(body.decode("utf-8"), "body")
    except UnicodeDecodeError:
        raise WebhookError("body: must be UTF-8 JSON, got undecodable bytes") from None
    if not isinstance(data, dict):
        raise WebhookError(f"body: must be a JSON object, got {_kind(data)}")
    alert = data.get("alert")
    if alert is not None:
        if not isinstance(alert, dict):
            raise WebhookError(f"body.alert: must be an object, got {_kind(alert)}")
        if "alert" in alert:
            return _from_current(alert)
        return _from_alert_shape(alert)
    return _from_template(data, "body")


def _json(text: str, where: str) -> Any:
    # Every way the decoder can refuse is the sender's mistake, hence a 400 naming it: a
    # number over Python's integer-digit limit raises a plain ValueError, deep nesting a RecursionError.
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise WebhookError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise WebhookError(f"{where}: not usable JSON ({str(exc).split(';')[0][:120]})") from None


_TITLE_STATE = re.compile(r"changed status to ([A-Za-z]+)\s*$")


def _from_current(envelope: dict[str, Any]) -> AlertNotification:
    """The current SQL alert payload: ``body.alert`` is the notification, ``body.alert.alert`` the alert."""
    alert = envelope["alert"]
    if not isinstance(alert, dict):
        raise WebhookError(f"body.alert.alert: must be an object, got {_kind(alert)}")
    alert_id = _id(alert.get("id"), "body.alert.alert.id")
    evaluation, where = _evaluation(alert)
    custom = alert.get("custom_description")
    if isinstance(custom, str) and custom.lstrip().startswith("{"):
        template = _json(custom, "body.alert.alert.custom_description")
        if isinstance(template, dict):
            fallback = {"alert_id": alert_id, "alert_name": alert.get("name"),
                        "evaluated_at": evaluation.get("last_evaluated_at")}
            merged = {**{k: v for k, v in fallback.items() if v is not None},
                      **{k: v for k, v in template.items() if v not in (None, "") and not _placeholder(v)}}
            parsed = _from_template(merged, "body.alert.alert.custom_description")
            return replace(parsed, shape="current+template")
    state = evaluation.get("state")
    state_where = f"{where}.state"
    if state is None and isinstance(envelope.get("title"), str) and (m := _TITLE_STATE.search(envelope["title"])):
        state, state_where = m.group(1), "body.alert.title"
    threshold = evaluation.get("threshold") or {}
    value = threshold.get("value") if isinstance(threshold, dict) else None
    source = evaluation.get("source") or {}
    return AlertNotification(
        alert_id=alert_id, state=_state(state, state_where), shape="current",
        alert_name=_text(alert.get("name"), "body.alert.alert.name"),
        evaluated_at=_time(evaluation.get("last_evaluated_at"), f"{where}.last_evaluated_at"),
        threshold=_operand(value, f"{where}.threshold.value"),
        column=_text(source.get("name") if isinstance(source, dict) else None, f"{where}.source.name"),
    )


def _evaluation(alert: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The alert's (first) evaluation: ``evaluations[0]`` in the webhook payload, ``evaluation`` in the API."""
    evaluations = alert.get("evaluations")
    if evaluations is not None:
        if not isinstance(evaluations, list):
            raise WebhookError(f"body.alert.alert.evaluations: must be an array, got {_kind(evaluations)}")
        if evaluations:
            if not isinstance(evaluations[0], dict):
                raise WebhookError(f"body.alert.alert.evaluations[0]: must be an object, got {_kind(evaluations[0])}")
            return evaluations[0], "body.alert.alert.evaluations[0]"
    single = alert.get("evaluation")
    if isinstance(single, dict):
        return single, "body.alert.alert.evaluation"
    return {}, "body.alert.alert.evaluations[0]"


def _operand(value: Any, where: str) -> float | str | None:
    """An Alerts V2 operand value: ``{"double_value": ...}``, ``{"string_value": ...}`` or ``{"bool_value": ...}``."""
    if not isinstance(value, dict):
        return _number(value, where) if not isinstance(value, bool) else str(value).lower()
    for name in ("double_value", "string_value"):
        if name in value:
            return _number(value[name], f"{where}.{name}")
    if "bool_value" in value:
        return str(bool(value["bool_value"])).lower()
    return None


def _placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("<") and value.endswith(">")


def _from_template(data: dict[str, Any], where: str) -> AlertNotification:
    state = _state(data.get("state", data.get("alert_status")), f"{where}.state")
    url = _text(data.get("alert_url"), f"{where}.alert_url")
    name = _text(data.get("alert_name"), f"{where}.alert_name")
    alert_id = _text(data.get("alert_id"), f"{where}.alert_id")
    if alert_id and _placeholder(alert_id):
        alert_id = None  # the template's placeholder left as is
    if not alert_id and url and (m := _ALERT_ID_IN_URL.search(url)):
        alert_id = m.group(1)
    alert_id = alert_id or name
    if not alert_id:
        raise WebhookError(f"{where}: needs alert_id, an alert_url ending in /alerts/<id>, or alert_name; got none")
    return AlertNotification(
        alert_id=alert_id, state=state, shape="template", alert_name=name,
        evaluated_at=_time(data.get("evaluated_at"), f"{where}.evaluated_at"),
        value=_number(data.get("value"), f"{where}.value"),
        threshold=_number(data.get("threshold"), f"{where}.threshold"),
        column=_text(data.get("column"), f"{where}.column"), url=url,
    )


def _from_alert_shape(alert: dict[str, Any]) -> AlertNotification:
    state = _state(alert.get("state"), "body.alert.state")
    alert_id = _id(alert.get("id"), "body.alert.id")
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


def _id(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int | str) or str(raw).strip() == "":
        raise WebhookError(f"{where}: must be a non-empty string or integer, got {_kind(raw)}")
    if isinstance(raw, int) and abs(raw) >= 10 ** 40:
        raise WebhookError(f"{where}: must be at most 40 digits")
    return _text(str(raw), where)


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
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise WebhookError(f"{where}: number out of range") from None
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
