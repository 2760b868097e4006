"""The Databricks job launcher: the real databricks-sdk client against a local Jobs API."""
from __future__ import annotations

import json

import pytest
from werkzeug import Response

from driftgate.core.errors import LaunchError
from driftgate.workspace.jobs import (
    DatabricksJobLauncher, FakeJobLauncher, JobLauncher, LaunchRequest, LocalJobLauncher, TransientLaunchError,
    idempotency_token, launcher_for,
)
from tests.webhook_support import webhook_settings

RUN_NOW = "/api/2.2/jobs/run-now"
KEY = "alert:7d3b9c1e-aaaa-bbbb-cccc-0123456789ab:20260801T090000Z"


class NoSleep:
    """A databricks.sdk clock that advances instead of sleeping."""

    def __init__(self):
        self.t = 0.0
        self.sleeps: list[float] = []

    def time(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def client(httpserver):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    # The SDK asks the host for its metadata first; a workspace without it answers 404.
    httpserver.expect_request("/.well-known/databricks-config").respond_with_data("", status=404)
    # Short SDK retry budget so a 429 that never ends gives up within the test.
    client = WorkspaceClient(config=Config(host=httpserver.url_for("/").rstrip("/"), token="dapi-test",
                                           retry_timeout_seconds=3))
    httpserver.clear_log()
    return client


def _launcher(client, **kw):
    return DatabricksJobLauncher(client, job_id=11223344, job_parameters={"env": "prod"}, clock=NoSleep(), **kw)


def _request():
    return LaunchRequest(KEY, "webhook", {"trigger": "webhook"})


def test_run_now_sends_the_documented_body(httpserver, client):
    httpserver.expect_oneshot_request(RUN_NOW, method="POST").respond_with_json({"run_id": 455, "number_in_job": 455})
    result = _launcher(client).launch(_request())
    assert (result.run_id, result.state) == ("455", "running")
    (request, _), = httpserver.log
    assert request.headers["Authorization"] == "Bearer dapi-test"
    assert json.loads(request.data) == {
        "job_id": 11223344,
        "job_parameters": {"env": "prod", "trigger": "webhook"},
        "idempotency_token": KEY,
        "queue": {"enabled": True},
    }


def test_throttling_is_retried_by_the_sdk_with_the_same_token(httpserver, client):
    httpserver.expect_ordered_request(RUN_NOW).respond_with_response(
        Response(json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}), status=429,
                 headers={"Retry-After": "0", "Content-Type": "application/json"}))
    httpserver.expect_ordered_request(RUN_NOW).respond_with_json({"run_id": 9})
    assert _launcher(client).launch(_request()).run_id == "9"
    tokens = [json.loads(r.data)["idempotency_token"] for r, _ in httpserver.log]
    assert tokens == [KEY, KEY]


def test_server_errors_are_retried_then_reported_as_transient(httpserver, client):
    httpserver.expect_request(RUN_NOW).respond_with_json(
        {"error_code": "INTERNAL_ERROR", "message": "boom"}, status=500)
    launcher = DatabricksJobLauncher(client, job_id=1, clock=NoSleep(), retry_timeout_seconds=10)
    with pytest.raises(TransientLaunchError, match=r"still failing after retries \(InternalError: boom\)") as info:
        launcher.launch(_request())
    assert info.value.run_key == KEY
    assert len(httpserver.log) >= 3  # retried with the SDK's backoff, within the budget
    assert {json.loads(r.data)["idempotency_token"] for r, _ in httpserver.log} == {KEY}


def test_server_error_then_success_launches_once(httpserver, client):
    httpserver.expect_ordered_request(RUN_NOW).respond_with_json({"error_code": "INTERNAL_ERROR", "message": "x"},
                                                                 status=500)
    httpserver.expect_ordered_request(RUN_NOW).respond_with_json({"run_id": 77})
    assert _launcher(client).launch(_request()).run_id == "77"


def test_client_errors_are_final(httpserver, client):
    httpserver.expect_request(RUN_NOW).respond_with_json(
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 11223344 does not exist."}, status=400)
    with pytest.raises(LaunchError, match="refused the launch.*does not exist") as info:
        _launcher(client).launch(_request())
    assert not isinstance(info.value, TransientLaunchError)
    assert len(httpserver.log) == 1


def test_submit_sends_a_one_off_run_with_the_token(httpserver, client):
    httpserver.expect_request("/api/2.2/jobs/runs/submit", method="POST").respond_with_json({"run_id": 31})
    submit = {"run_name": "driftgate retrain", "tasks": [
        {"task_key": "retrain", "notebook_task": {"notebook_path": "/Repos/driftgate/notebooks/retrain"}}]}
    result = DatabricksJobLauncher(client, submit_run=submit, clock=NoSleep()).launch(_request())
    assert result.run_id == "31" and result.details["mode"] == "submit"
    body = json.loads(httpserver.log[0][0].data)
    assert body["idempotency_token"] == KEY and body["run_name"] == "driftgate retrain"
    assert body["tasks"][0]["notebook_task"]["notebook_path"].endswith("/retrain")


def test_idempotency_tokens_fit_64_characters_without_collisions():
    assert idempotency_token("alert:a:na:w1") == "alert:a:na:w1"
    long_a, long_b = "alert:" + "x" * 70 + ":1", "alert:" + "x" * 70 + ":2"
    assert len(idempotency_token(long_a)) == 64
    assert idempotency_token(long_a) != idempotency_token(long_b)
    assert idempotency_token(long_a) == idempotency_token(long_a)


def test_launchers_share_the_protocol_and_config_picks_them(tmp_path, client):
    settings = webhook_settings(tmp_path)
    assert isinstance(launcher_for(settings, ws=object(), run_job=print), LocalJobLauncher)
    with pytest.raises(LaunchError, match="run_job"):
        launcher_for(settings, ws=object())
    remote = launcher_for(webhook_settings(tmp_path, "webhook.launch.mode=run_now", "webhook.launch.job_id=5"),
                          client=client)
    assert isinstance(remote, DatabricksJobLauncher) and remote.job_id == 5
    for launcher in (remote, LocalJobLauncher(None, print), FakeJobLauncher()):
        assert isinstance(launcher, JobLauncher)
    with pytest.raises(LaunchError, match="webhook.launch.job_id"):
        launcher_for(webhook_settings(tmp_path, "webhook.launch.mode=run_now"), client=client)


def test_local_launcher_runs_the_injected_task_graph():
    calls = []

    class Result:
        job_run_id = "job-1"

        def as_dict(self):
            return {"branch": "retrain"}

    def fake_job(ws, *, trigger, run_key=None, now=None, job_run_id=None):
        calls.append((ws, trigger, run_key))
        return Result()

    result = LocalJobLauncher("ws", fake_job).launch(_request())
    assert calls == [("ws", "webhook", KEY)]
    assert (result.run_id, result.state, result.details) == ("job-1", "succeeded", {"branch": "retrain"})


def test_submit_passes_every_configured_field_in_the_documented_shape(httpserver, client):
    httpserver.expect_request("/api/2.2/jobs/runs/submit", method="POST").respond_with_json({"run_id": 32})
    submit = {
        "run_name": "driftgate retrain",
        "tasks": [{"task_key": "retrain", "environment_key": "default",
                   "python_wheel_task": {"package_name": "driftgate", "entry_point": "retrain"}}],
        "environments": [{"environment_key": "default", "spec": {"client": "1", "dependencies": ["driftgate"]}}],
        "git_source": {"git_url": "https://github.com/acme/driftgate", "git_provider": "gitHub",
                       "git_branch": "main"},
        "run_as": {"service_principal_name": "6f1c2b3a-0000-4000-8000-000000000001"},
        "timeout_seconds": 3600,
        "email_notifications": {"on_failure": ["ml-oncall@example.com"]},
        "idempotency_token": "ignored: the run key is the token",
    }
    DatabricksJobLauncher(client, submit_run=submit, clock=NoSleep()).launch(_request())
    body = json.loads(httpserver.log[0][0].data)
    expected = {k: v for k, v in submit.items() if k != "idempotency_token"}
    assert body == {**expected, "idempotency_token": KEY, "queue": {"enabled": True}}


def test_submit_refuses_a_field_runs_submit_does_not_take(client):
    with pytest.raises(LaunchError, match=r"webhook.launch.submit_run.enviroments: not a runs/submit field"):
        DatabricksJobLauncher(client, submit_run={"tasks": [], "enviroments": []})


def test_throttling_never_outlasts_the_configured_budget(httpserver, monkeypatch):
    """A launcher building its own client bounds the SDK's 429 retries (300 s by default, sleeping as long
    as Retry-After says) by its budget."""
    import time

    httpserver.expect_request("/.well-known/databricks-config").respond_with_data("", status=404)
    httpserver.expect_request(RUN_NOW).respond_with_response(
        Response(json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}), status=429,
                 headers={"Retry-After": "30", "Content-Type": "application/json"}))
    for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-test")
    launcher = DatabricksJobLauncher(job_id=1, retry_timeout_seconds=3)
    start = time.monotonic()
    with pytest.raises(TransientLaunchError, match=r"still failing after retries \(RequestLimitExceeded"):
        launcher.launch(_request())
    assert time.monotonic() - start < 5
    assert len([r for r, _ in httpserver.log if r.path == RUN_NOW]) == 2  # at once, and at the deadline
