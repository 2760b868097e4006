"""``driftgate serve`` over real HTTP on loopback: uvicorn in a thread, and the CLI itself."""
from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from driftgate.triggers.webhook.auth import Credentials
from driftgate.triggers.webhook.service import ALERT_PATH, create_app, is_loopback, open_webhook, serving
from driftgate.workspace.jobs import FakeJobLauncher
from tests.webhook_support import FakeGate, PASSWORD, USER, basic, template_body, webhook_settings


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    launcher = FakeJobLauncher()
    wh = open_webhook(webhook_settings(tmp, "webhook.poll_seconds=0.05"), credentials=Credentials(USER, PASSWORD),
                      launcher=launcher, gate=FakeGate("EXCEEDED"), audit=lambda *a, **k: None,
                      state_dir=tmp / "state")
    with serving(create_app(wh)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, launcher


def test_alert_is_acknowledged_then_launched_by_the_worker(service):
    client, launcher = service
    body = template_body(alert_id="svc-1")
    first = client.post(ALERT_PATH, content=body, headers=basic())
    assert first.status_code == 202 and first.json()["run_key"] == "alert:svc-1:20260801T090000Z"
    assert client.post(ALERT_PATH, content=body, headers=basic()).json()["status"] == "duplicate"
    deadline = time.monotonic() + 10
    while not any(r.run_key == "alert:svc-1:20260801T090000Z" for r in launcher.requests):
        assert time.monotonic() < deadline, "the worker did not launch"
        time.sleep(0.05)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["worker"] == "running" and health["queue"]["done"] >= 1
    assert health["launching"] == [] and health["stuck"] == []


def test_http_errors(service):
    client, _ = service
    refused = client.post(ALERT_PATH, content=template_body(), headers=basic(password="nope"))
    assert refused.status_code == 401 and refused.json() == {"error": "unauthorized"}
    assert refused.headers["www-authenticate"].startswith("Basic")
    big = client.post(ALERT_PATH, content=b"x" * 70000, headers=basic())
    assert big.status_code == 413
    assert client.post(ALERT_PATH, content=b"state=TRIGGERED",
                       headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    bad = client.post(ALERT_PATH, content=b'{"state": "TRIGGERED"}', headers=basic())
    assert bad.status_code == 400 and bad.json()["error"].startswith("body: needs alert_id")
    assert client.get(ALERT_PATH).status_code == 405


def test_openapi_document_describes_the_alert_route(service):
    client, _ = service
    doc = client.get("/openapi.json").json()
    route = doc["paths"][ALERT_PATH]["post"]
    schema = route["requestBody"]["content"]["application/json"]["schema"]
    assert {s["title"] for s in schema["oneOf"]} == {
        "driftgate alert template", "current Databricks SQL alert payload", "legacy Databricks SQL alert payload"}
    assert {"202", "400", "401", "413", "415"} <= set(route["responses"])
    assert "/healthz" in doc["paths"]


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300) | st.dictionaries(
           st.sampled_from(["state", "alert_id", "evaluated_at", "alert", "value"]),
           st.none() | st.integers() | st.text(max_size=20) | st.sampled_from(["TRIGGERED", "ok"]),
       ).map(lambda d: json.dumps(d).encode()),
       content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1"]),
       auth=st.booleans())
def test_fuzzed_requests_over_http_never_get_a_5xx(service, body, content_type, auth):
    client, _ = service
    headers = {**(basic() if auth else {}), "Content-Type": content_type}
    answer = client.post(ALERT_PATH, content=body, headers=headers)
    assert answer.status_code < 500, answer.text
    assert isinstance(answer.json(), dict)


def test_schemathesis_finds_no_5xx_from_the_openapi_document(service):
    """Cases generated from the service's own OpenAPI document, valid and invalid, over HTTP."""
    import schemathesis
    from schemathesis import GenerationMode

    client, _ = service
    url = str(client.base_url).rstrip("/")
    operation = schemathesis.openapi.from_url(f"{url}/openapi.json")[ALERT_PATH]["POST"]
    statuses: dict[int, int] = {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            answer = case.call(base_url=url, headers=basic())
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (case.body, answer.text)

        call()
    assert sum(statuses.values()) >= 25 and 400 in statuses


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.com")


def test_serve_refuses_to_start_without_credentials(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from driftgate.cli import app

    for name in ("USER", "PASSWORD", "TOKEN", "HMAC_SECRET"):
        monkeypatch.delenv(f"DRIFTGATE_WEBHOOK_{name}", raising=False)
    cases = [((), "refuses to run without credentials"),
             (("--insecure", "--host", "0.0.0.0"), "--insecure: only allowed with a loopback")]
    for args, expected in cases:
        result = CliRunner().invoke(app, ["serve", "--set", f"workspace.root={tmp_path}", *args])
        assert result.exit_code == 1, result.output
        assert expected in " ".join(result.output.split())


def test_serve_accepts_and_evaluates_the_documented_databricks_payloads(tmp_path):
    """A real ``driftgate serve``: the current and the legacy alert payload are acknowledged, then the
    shared gate evaluates each (no metric tables yet: INSUFFICIENT_DATA, so skipped, with the reason)."""
    import sqlite3

    from tests.webhook_support import fixture_body, start_serve, stop_serve

    root = tmp_path / ".driftgate"
    proc, base = start_serve(root, "--set", "webhook.poll_seconds=0.1")
    try:
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        keys = []
        for name in ("databricks_alert_current", "databricks_alert_legacy"):
            answer = httpx.post(f"{base}{ALERT_PATH}", content=fixture_body(name),
                                headers={"Content-Type": "application/json"}, timeout=10)
            assert answer.status_code == 202, answer.text
            keys.append(answer.json()["run_key"])
        ok = httpx.post(f"{base}{ALERT_PATH}", content=template_body(state="OK"),
                        headers={"Content-Type": "application/json"})
        assert ok.status_code == 200 and ok.json()["launched"] is False
        deadline = time.monotonic() + 90
        while httpx.get(f"{base}/healthz").json()["queue"].get("done", 0) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker did not evaluate the alerts"
            time.sleep(0.2)
    finally:
        stop_serve(proc)
    assert keys == ["alert:9876543210987654:20260101T090000Z", "alert:98:20260101T090003Z"]
    with sqlite3.connect(root / "webhook_queue.db") as conn:
        rows = dict(conn.execute("SELECT run_key, outcome || ': ' || note FROM requests WHERE action = 'launch'"))
    assert all(rows[k].startswith("skipped: gate said INSUFFICIENT_DATA") for k in keys), rows
