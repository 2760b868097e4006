"""Outgoing notifications against a real local HTTP server: body, bearer token from env, failures recorded."""
from __future__ import annotations

import dataclasses

import pytest

from driftgate.workspace.audit import read_events
from driftgate.promotion import notify
from promotion_world import with_settings
from driftgate.workspace import DeltaTableStore, FakeRegistry, LocalTaskValues, Workspace

NAME = "main.driftgate_demo.churn_model"


@pytest.fixture
def ws(settings, tmp_path):
    return Workspace(settings=settings, tables=DeltaTableStore(tmp_path / "lakehouse"), registry=FakeRegistry(),
                     task_values=LocalTaskValues(tmp_path, "t", "n"), tracking_uri="", registry_uri="", root=tmp_path)


def _hooked(ws, httpserver, **extra):
    return with_settings(ws, promotion={"notifications": ws.settings.promotion.notifications.model_copy(
        update={"webhook_url": httpserver.url_for("/hooks/abc"), **extra})})


def test_promotion_and_refusal_post_slack_compatible_json_with_the_env_token(ws, httpserver, monkeypatch):
    from driftgate.promotion import ShadowResult, promote

    monkeypatch.setenv("DRIFTGATE_NOTIFY_TOKEN", "s3cret")
    httpserver.expect_request("/hooks/abc", method="POST", headers={"Authorization": "Bearer s3cret"}) \
        .respond_with_json({"ok": True})
    ws = _hooked(ws, httpserver)
    reg = ws.registry
    for _ in range(2):
        reg.register("runs:/r/model", NAME)
    reg.set_alias(NAME, "champion", "1")
    reg.set_alias(NAME, "challenger", "2")
    shadow = ShadowResult(status="PASS", model_name=NAME, champion_version="1", challenger_version="2",
                          metrics={}, reasons=("ok",))
    assert promote(ws, shadow).promoted
    assert not promote(ws, dataclasses.replace(shadow, status="FAIL", reasons=("worse",))).promoted
    bodies = [req.get_json() for req, _ in httpserver.log]
    assert [b["driftgate"]["kind"] for b in bodies] == ["promotion", "refusal"]
    assert "v2 promoted to champion over v1" in bodies[0]["text"] and "worse" in bodies[1]["text"]
    sent = read_events(ws, ["notification"])
    assert [e["status"] for e in sent] == ["sent", "sent"]
    assert all("s3cret" not in str(e) and "/hooks/abc" not in str(e) for e in sent)  # neither secret nor URL path


def test_gate_exceeded_notifies_and_other_statuses_do_not(ws, httpserver):
    httpserver.expect_request("/hooks/abc").respond_with_data("ok")
    ws = _hooked(ws, httpserver)

    @dataclasses.dataclass
    class Decision:
        status: str
        reasons: list
        decision_id: str = "d1"

    assert notify.notify_gate_decision(ws, Decision("EXCEEDED", ["psi(usage_gb)=0.31 > 0.2"]))
    assert not notify.notify_gate_decision(ws, Decision("OK", []))
    assert len(httpserver.log) == 1
    body = httpserver.log[0][0].get_json()
    assert "EXCEEDED" in body["text"] and body["driftgate"]["decision_id"] == "d1"
    assert "Authorization" not in httpserver.log[0][0].headers  # no token in the environment, none sent


def test_a_failing_webhook_is_recorded_never_raised(ws, httpserver):
    httpserver.expect_request("/hooks/abc").respond_with_data("nope", status=500)
    ws = _hooked(ws, httpserver)
    assert notify.send(ws, "rollback", "rolled back") is False
    assert read_events(ws, ["notification"])[0]["status"] == "failed"
    closed = with_settings(ws, promotion={"notifications": ws.settings.promotion.notifications.model_copy(
        update={"webhook_url": "http://127.0.0.1:9/hook", "timeout_seconds": 0.5})})
    assert notify.send(closed, "rollback", "rolled back") is False


def test_disabled_or_filtered_kinds_send_nothing(ws, httpserver):
    assert notify.send(ws, "promotion", "x") is False  # no URL configured by default
    filtered = _hooked(ws, httpserver, on=["rollback"])
    assert notify.send(filtered, "promotion", "x") is False
    assert not httpserver.log


def test_the_token_cannot_live_in_conf(tmp_path):
    from driftgate.core.settings import load_settings
    from driftgate.core.errors import ConfigError
    from tests.conftest import REPO

    with pytest.raises(ConfigError, match="secrets must not live"):
        conf = tmp_path / "conf"
        (conf / "base").mkdir(parents=True)
        (conf / "base" / "d.yml").write_text("promotion:\n  notifications:\n    token: abc\n")
        load_settings(conf, "demo")
