"""What Databricks sends, as its documentation shows it; what a sender can get wrong; who may send."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from driftgate.core.errors import ConfigError, WebhookError
from driftgate.triggers.webhook.auth import MIN_SECRET_CHARS, Credentials, sign
from driftgate.triggers.webhook.payload import CUSTOM_TEMPLATE, parse_alert
from driftgate.triggers.webhook.queue import AlertQueue
from driftgate.triggers.webhook.receiver import Receiver
from tests.webhook_support import (
    HMAC_SECRET, PASSWORD, USER, Clock, basic, fixture_body, template_body, webhook_settings,
)


def _receiver(tmp_path, clock=None, credentials=None):
    cfg = webhook_settings(tmp_path).webhook
    return Receiver(cfg, queue=AlertQueue(tmp_path / "q.db"), clock=clock or Clock(),
                    credentials=credentials or Credentials(USER, PASSWORD, hmac_secret=HMAC_SECRET))


def test_the_documented_current_payload_is_parsed():
    alert = parse_alert(fixture_body("databricks_alert_current"))
    assert (alert.shape, alert.alert_id, alert.state, alert.alert_name) == (
        "current", "9876543210987654", "TRIGGERED", "Daily revenue")
    assert alert.evaluated_at == datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    assert (alert.threshold, alert.column) == (100000.0, "total_revenue")


def test_the_current_payload_without_an_evaluation_state_takes_it_from_the_title():
    body = json.loads(fixture_body("databricks_alert_current"))
    del body["alert"]["alert"]["evaluations"][0]["state"]
    body["alert"]["title"] = 'Alert "Daily revenue" changed status to OK'
    assert parse_alert(json.dumps(body).encode()).state == "OK"
    del body["alert"]["title"]
    with pytest.raises(WebhookError, match=r"body.alert.alert.evaluations\[0\].state: required"):
        parse_alert(json.dumps(body).encode())


def test_the_legacy_payload_is_parsed():
    alert = parse_alert(fixture_body("databricks_alert_legacy"))
    assert (alert.shape, alert.alert_id, alert.state, alert.threshold, alert.column) == (
        "alert", "98", "TRIGGERED", 0.2, "max_js")


def test_the_custom_template_arrives_through_custom_description():
    rendered = (CUSTOM_TEMPLATE.replace("{{ALERT_STATUS}}", "TRIGGERED").replace("{{QUERY_RESULT_VALUE}}", "0.31")
                .replace("{{ALERT_NAME}}", "predictions drift").replace("{{ALERT_THRESHOLD}}", "0.2")
                .replace("{{ALERT_COLUMN}}", "max_js"))
    alert = parse_alert(fixture_body("databricks_alert_current", **{"alert.alert.custom_description": rendered}))
    # The template's id placeholder falls back to the envelope's id; its time to the evaluation's.
    assert (alert.shape, alert.alert_id, alert.state, alert.value, alert.threshold, alert.column) == (
        "current+template", "9876543210987654", "TRIGGERED", 0.31, 0.2, "max_js")
    assert alert.evaluated_at == datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    broken = fixture_body("databricks_alert_current", **{"alert.alert.custom_description": '{"state": '})
    with pytest.raises(WebhookError, match="body.alert.alert.custom_description: not valid JSON"):
        parse_alert(broken)


@pytest.mark.parametrize("body, where", [
    (b'{"state": "TRIGGERED", "alert_id": "a", "value": ' + b"1" * 5000 + b"}", "body: not usable JSON (Exceeds"),
    (b'{"alert": {"id": ' + b"1" * 400 + b', "state": "ok"}}', "body.alert.id: must be at most 40 digits"),
    (b'{"state": "TRIGGERED", "alert_id": "a", "value": 1' + b"0" * 400 + b"}", "body.value: number out of range"),
    (b'{"state": "TRIGGERED", "alert_id": "a", "evaluated_at": 1' + b"0" * 30 + b"}", "body.evaluated_at"),
])
def test_every_parse_failure_is_a_400_naming_the_problem(tmp_path, body, where):
    status, answer = _receiver(tmp_path).handle(basic(), body)
    assert status == 400, answer
    assert answer["error"].startswith(where)


@pytest.mark.parametrize("creds, message", [
    (Credentials(token="tökén-0123456789abcdef"), "DRIFTGATE_WEBHOOK_TOKEN must be ASCII"),
    (Credentials(token="tok 0123456789abcdef"), "DRIFTGATE_WEBHOOK_TOKEN must be ASCII"),
    (Credentials(token=" tok-0123456789abcdef"), "DRIFTGATE_WEBHOOK_TOKEN must not start or end with whitespace"),
    (Credentials(token="t"), f"DRIFTGATE_WEBHOOK_TOKEN must be at least {MIN_SECRET_CHARS} characters, got 1"),
    (Credentials("data:bricks", PASSWORD), "DRIFTGATE_WEBHOOK_USER must not contain ':'"),
    (Credentials(USER, "short"), "DRIFTGATE_WEBHOOK_PASSWORD must be at least"),
    (Credentials(USER, None), "DRIFTGATE_WEBHOOK_USER is set but DRIFTGATE_WEBHOOK_PASSWORD is not"),
    (Credentials(hmac_secret="k\n" * 10), "DRIFTGATE_WEBHOOK_HMAC_SECRET must not start or end"),
])
def test_credentials_that_can_never_log_in_refuse_to_start(tmp_path, creds, message):
    with pytest.raises(ConfigError, match=message):
        _receiver(tmp_path, credentials=creds)


def test_serve_names_unusable_credentials(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from driftgate.cli import app

    monkeypatch.setenv("DRIFTGATE_WEBHOOK_TOKEN", "tok-ü-0123456789abcdef")
    result = CliRunner().invoke(app, ["serve", "--set", f"workspace.root={tmp_path}"])
    assert result.exit_code == 1 and "DRIFTGATE_WEBHOOK_TOKEN must be ASCII" in " ".join(result.output.split())


def test_a_signed_replay_across_midnight_keeps_its_run_key(tmp_path):
    clock = Clock(1_785_628_770.0)  # 2026-08-01T23:59:30Z
    receiver = _receiver(tmp_path, clock=clock)
    body = template_body(evaluated_at=None)
    stamp = int(clock())
    signed = {"X-Driftgate-Timestamp": str(stamp), "X-Driftgate-Signature": sign(HMAC_SECRET, stamp, body),
              "Content-Type": "application/json"}
    status, first = receiver.handle(signed, body)
    assert status == 202 and first["run_key"].endswith(":w20260801T0000Z")
    clock.advance(90)  # 00:01:00Z the next day, inside the 300 s replay window
    status, replay = receiver.handle(signed, body)
    assert (status, replay["status"], replay["run_key"]) == (200, "duplicate", first["run_key"])
    # An unsigned delivery is keyed by its arrival, as before: the next day's window.
    assert receiver.handle(basic(), body)[1]["run_key"].endswith(":w20260802T0000Z")


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=8)
_PATHS = ["alert", "alert.alert", "alert.title", "alert.alert.id", "alert.alert.name", "alert.alert.custom_description",
          "alert.alert.evaluations", "alert.alert.evaluations.0", "alert.alert.evaluations.0.state",
          "alert.alert.evaluations.0.source", "alert.alert.evaluations.0.threshold",
          "alert.alert.evaluations.0.threshold.value", "alert.alert.evaluations.0.last_evaluated_at"]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_PATHS), value=_JSON | st.sampled_from(['{"state": "TRIGGERED"}', '{"state": 1}', "{"]))
def test_mutated_current_payloads_never_get_a_5xx(tmp_path, path, value):
    data = json.loads(fixture_body("databricks_alert_current"))
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    status, answer = _receiver(tmp_path).handle(basic(), json.dumps(data).encode())
    assert status in (200, 202, 400), answer
