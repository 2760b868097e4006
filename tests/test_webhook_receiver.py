"""The receiver core: auth, bad input, payload shapes, run keys and deduplication."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from driftgate.core.errors import ConfigError
from driftgate.triggers.webhook.auth import Credentials, sign
from driftgate.triggers.webhook.payload import parse_alert
from driftgate.triggers.webhook.queue import AlertQueue
from driftgate.triggers.webhook.receiver import Receiver, run_key_for
from tests.webhook_support import (
    EVALUATED, HMAC_SECRET, PASSWORD, TOKEN, USER, Clock, basic, redash_body, template_body, webhook_settings,
)

CREDS = Credentials(USER, PASSWORD, TOKEN, HMAC_SECRET)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def receiver(tmp_path, clock):
    cfg = webhook_settings(tmp_path).webhook
    return Receiver(cfg, queue=AlertQueue(tmp_path / "q.db"), credentials=CREDS, clock=clock)


def test_triggered_alert_is_queued_once_and_duplicates_are_acknowledged(receiver):
    status, answer = receiver.handle(basic(), template_body())
    assert status == 202 and answer["status"] == "queued"
    key = answer["run_key"]
    assert key == "alert:7d3b9c1e-aaaa-bbbb-cccc-0123456789ab:20260801T090000Z"
    assert len(key) <= 64  # used as the Jobs idempotency token as it is
    for _ in range(3):
        assert receiver.handle(basic(), template_body()) == (
            200, {"status": "duplicate", "run_key": key, "run_status": "queued"})
    row = receiver.queue.get(key)
    assert row["deliveries"] == 4 and row["action"] == "launch" and json.loads(row["alert"])["state"] == "TRIGGERED"


@pytest.mark.parametrize("state", ["OK", "ok", "UNKNOWN", "ERROR"])
def test_other_states_are_acknowledged_recorded_and_never_queued_for_launch(receiver, state):
    status, answer = receiver.handle(basic(), template_body(state=state))
    assert status == 200 and answer["launched"] is False and answer["state"] == state.upper()
    assert receiver.queue.waiting(action="launch") == []
    assert len(receiver.queue.waiting(action="record")) == 1


def test_redash_shaped_default_body_with_unknown_fields(receiver):
    status, answer = receiver.handle(basic(), redash_body())
    assert status == 202
    assert answer["run_key"] == "alert:42:20260801T090003Z"
    alert = parse_alert(redash_body())
    assert (alert.shape, alert.state, alert.threshold, alert.column) == ("alert", "TRIGGERED", 0.2, "max_js")


def test_template_without_id_takes_it_from_the_alert_url():
    body = json.dumps({"state": "TRIGGERED", "alert_id": "<the alert's id>", "extra": [1, 2],
                       "alert_url": "https://adb-1.azuredatabricks.net/sql/alerts/abc-123?o=1"}).encode()
    alert = parse_alert(body)
    assert alert.alert_id == "abc-123" and alert.evaluated_at is None


def test_run_key_without_evaluation_time_uses_the_window_of_arrival():
    alert = parse_alert(template_body(evaluated_at=None))
    morning = run_key_for(alert, received_at=1_785_574_800.0, window_seconds=86400)
    evening = run_key_for(alert, received_at=1_785_574_800.0 + 10 * 3600, window_seconds=86400)
    next_day = run_key_for(alert, received_at=1_785_574_800.0 + 16 * 3600, window_seconds=86400)
    assert morning == evening == "alert:7d3b9c1e-aaaa-bbbb-cccc-0123456789ab:w20260801T0000Z"
    assert next_day.endswith(":w20260802T0000Z")


def test_unsafe_alert_names_are_hashed_into_the_key():
    alert = parse_alert(json.dumps({"state": "TRIGGERED", "alert_name": "drift: a/b c"}).encode())
    key = run_key_for(alert, received_at=0.0, window_seconds=3600)
    assert key.startswith("alert:h") and " " not in key and key.count(":") == 2


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},
    basic(password="wrong"),
    basic(user="other"),
    {"Authorization": "Basic !!notbase64", "Content-Type": "application/json"},
    {"Authorization": "Bearer nope", "Content-Type": "application/json"},
    {"Authorization": "Token " + TOKEN, "Content-Type": "application/json"},
])
def test_wrong_or_missing_credentials_get_401_without_detail(receiver, headers, caplog):
    assert receiver.handle(headers, template_body()) == (401, {"error": "unauthorized"})
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_bearer_token_and_case_insensitive_headers(receiver):
    status, _ = receiver.handle({"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
                                template_body())
    assert status == 202


def test_hmac_signature_with_replay_window(receiver, clock):
    body = template_body()
    stamp = int(clock())
    good = {"X-Driftgate-Timestamp": str(stamp), "X-Driftgate-Signature": sign(HMAC_SECRET, stamp, body),
            "Content-Type": "application/json"}
    assert receiver.handle(good, body)[0] == 202
    assert receiver.handle({**good, "X-Driftgate-Signature": sign("other", stamp, body)}, body)[0] == 401
    assert receiver.handle(good, body + b" ")[0] == 401  # signature covers the exact bytes
    clock.advance(301)
    assert receiver.handle(good, body)[0] == 401  # replayed outside the window


def test_bad_input_answers(receiver):
    big = b'{"state": "TRIGGERED", "pad": "' + b"x" * 70000 + b'"}'
    assert receiver.handle(basic(), big)[0] == 413
    assert receiver.handle({**basic(), "Content-Length": "999999"}, b"{}")[0] == 413
    status, answer = receiver.handle({**basic(), "Content-Type": "text/plain"}, template_body())
    assert (status, answer["error"]) == (415, "content-type: must be application/json, got text/plain")
    assert receiver.handle({"Authorization": basic()["Authorization"]}, template_body())[0] == 415
    assert receiver.handle({**basic(), "Content-Type": "application/json; charset=utf-8"}, template_body())[0] == 202
    cases = {
        b"{not json": "body: not valid JSON",
        b"[1, 2]": "body: must be a JSON object, got an array",
        b'{"alert_id": "a"}': "body.state: required",
        b'{"state": "FIRING", "alert_id": "a"}': "body.state: must be one of TRIGGERED, OK, UNKNOWN, ERROR, got 'FIRING'",
        b'{"state": "TRIGGERED"}': "body: needs alert_id",
        b'{"state": "TRIGGERED", "alert_id": "a", "evaluated_at": "yesterday"}': "body.evaluated_at: must be an ISO",
        b'{"alert": {"id": 1}}': "body.alert.state: required",
        b'{"alert": {"state": "triggered", "id": {"x": 1}}}': "body.alert.id: must be a non-empty string or integer",
        b"\xff\xfe": "body: must be UTF-8 JSON",
    }
    for body, message in cases.items():
        status, answer = receiver.handle(basic(), body)
        assert status == 400, body
        assert answer["error"].startswith(message), (body, answer)


def test_receiver_refuses_to_exist_without_credentials(tmp_path):
    cfg = webhook_settings(tmp_path).webhook
    with pytest.raises(ConfigError, match="DRIFTGATE_WEBHOOK_USER"):
        Receiver(cfg, queue=AlertQueue(tmp_path), credentials=Credentials())
    open_one = Receiver(cfg, queue=AlertQueue(tmp_path), credentials=Credentials(), insecure=True)
    assert open_one.handle({"Content-Type": "application/json"}, template_body())[0] == 202


def test_credentials_come_from_the_environment_and_never_show(monkeypatch):
    monkeypatch.setenv("DRIFTGATE_WEBHOOK_USER", USER)
    monkeypatch.setenv("DRIFTGATE_WEBHOOK_PASSWORD", PASSWORD)
    monkeypatch.delenv("DRIFTGATE_WEBHOOK_TOKEN", raising=False)
    monkeypatch.delenv("DRIFTGATE_WEBHOOK_HMAC_SECRET", raising=False)
    creds = Credentials.from_env()
    assert creds.methods == ("basic",)
    assert PASSWORD not in repr(creds) and USER not in repr(creds)


def test_epoch_millisecond_evaluation_times():
    ms = int(datetime(2026, 8, 1, 9, tzinfo=timezone.utc).timestamp() * 1000)
    alert = parse_alert(json.dumps({"state": "TRIGGERED", "alert_id": "a", "evaluated_at": ms}).encode())
    assert alert.evaluated_at.isoformat() == EVALUATED.replace("Z", "+00:00")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=20,
)
_field = st.sampled_from(["state", "alert_id", "alert_name", "alert_url", "evaluated_at", "value", "threshold",
                          "column", "alert", "id", "options", "last_triggered_at", "name"])
_alertish = st.dictionaries(_field, _json | st.sampled_from(["TRIGGERED", "ok", "2026-08-01T09:00:00Z", "x"]),
                            max_size=8)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), _alertish.map(lambda d: json.dumps(d).encode()),
                      st.fixed_dictionaries({"alert": _alertish}).map(lambda d: json.dumps(d).encode())),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/cloudevents+json"]))
def test_fuzzed_bodies_never_get_a_5xx(receiver, body, content_type):
    status, answer = receiver.handle({**basic(), "Content-Type": content_type}, body)
    assert status in (200, 202, 400, 415), (status, answer)
    assert isinstance(answer, dict) and json.dumps(answer)
    if status == 400:
        assert answer["error"].startswith("body")


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(st.sampled_from(["authorization", "x-driftgate-signature", "x-driftgate-timestamp",
                                                "content-length", "content-type"]),
                               st.text(max_size=40) | st.just("Basic " + base64.b64encode(b"a:b").decode()),
                               max_size=5))
def test_fuzzed_headers_never_authenticate_or_crash(receiver, headers):
    status, _ = receiver.handle(headers, template_body())
    assert status in (401, 413), status
