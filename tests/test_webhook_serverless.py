"""The serverless handlers: realistic events through each platform's own request types."""
from __future__ import annotations

import base64
import json
from contextlib import contextmanager

import pytest

from driftgate.triggers.webhook import serverless
from driftgate.triggers.webhook.auth import Credentials
from driftgate.triggers.webhook.service import open_webhook
from driftgate.workspace.jobs import FakeJobLauncher
from tests.webhook_support import PASSWORD, USER, basic, template_body, webhook_settings

AUTH = basic()["Authorization"]


@pytest.fixture
def launcher(tmp_path, monkeypatch):
    """The handlers' cached instance, built as in production but with a fake Jobs API."""
    launcher = FakeJobLauncher()
    wh = open_webhook(webhook_settings(tmp_path, "webhook.gate=job"), credentials=Credentials(USER, PASSWORD),
                      launcher=launcher, state_dir=tmp_path / "state")
    monkeypatch.setattr(serverless, "_instance", wh)
    yield launcher
    serverless.reset()


def lambda_event_v2(body: bytes, *, b64: bool = False, method: str = "POST") -> dict:
    """An API Gateway HTTP API / function URL event (payload format 2.0)."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/v1/alerts/databricks-sql", "rawQueryString": "",
        "headers": {"authorization": AUTH, "content-type": "application/json", "content-length": str(len(body)),
                    "host": "abc123.lambda-url.eu-west-1.on.aws", "user-agent": "Databricks-Webhook/1.0",
                    "x-amzn-trace-id": "Root=1-6500-abc", "x-forwarded-proto": "https"},
        "requestContext": {"accountId": "anonymous", "apiId": "abc123", "domainName": "abc123.lambda-url.eu-west-1.on.aws",
                           "http": {"method": method, "path": "/v1/alerts/databricks-sql", "protocol": "HTTP/1.1",
                                    "sourceIp": "52.1.2.3", "userAgent": "Databricks-Webhook/1.0"},
                           "requestId": "c0ffee", "routeKey": "$default", "stage": "$default",
                           "time": "01/Aug/2026:09:00:04 +0000", "timeEpoch": 1785574804000},
        "body": base64.b64encode(body).decode() if b64 else body.decode(),
        "isBase64Encoded": b64,
    }


def test_lambda_function_url_event_launches_once(launcher):
    from driftgate.triggers.webhook.aws_lambda import handler

    answer = handler(lambda_event_v2(template_body(alert_id="lam")), None)
    assert answer["statusCode"] == 202 and answer["headers"]["content-type"] == "application/json"
    body = json.loads(answer["body"])
    assert body["run_key"] == "alert:lam:20260801T090000Z" and body["worked"] == ["launched"]
    again = handler(lambda_event_v2(template_body(alert_id="lam"), b64=True), None)
    assert json.loads(again["body"])["status"] == "duplicate"
    assert launcher.launches == 1 and launcher.requests[0].run_key == "alert:lam:20260801T090000Z"


def test_lambda_rest_api_event_and_refusals(launcher):
    from driftgate.triggers.webhook.aws_lambda import handler

    rest = {"resource": "/v1/alerts/databricks-sql", "path": "/v1/alerts/databricks-sql", "httpMethod": "POST",
            "headers": {"Authorization": "Basic " + base64.b64encode(b"x:y").decode(),
                        "Content-Type": "application/json"},
            "multiValueHeaders": {}, "queryStringParameters": None, "requestContext": {"stage": "prod"},
            "body": template_body().decode(), "isBase64Encoded": False}
    assert handler(rest, None)["statusCode"] == 401
    assert handler(lambda_event_v2(b"{}", method="GET"), None)["statusCode"] == 405
    assert handler({**lambda_event_v2(b"x"), "body": "%%%", "isBase64Encoded": True}, None)["statusCode"] == 400
    assert launcher.launches == 0


def test_azure_http_trigger(launcher):
    import azure.functions as func

    from driftgate.triggers.webhook.azure_function import app, handle_request

    body = template_body(alert_id="az")
    req = func.HttpRequest(method="POST", url="https://driftgate.azurewebsites.net/api/v1/alerts/databricks-sql",
                           headers={"Authorization": AUTH, "Content-Type": "application/json"}, body=body)
    (function,) = app.get_functions()
    assert function.get_function_name() == "databricks_sql_alert"
    response = function.get_user_function()(req)
    assert response.status_code == 202 and response.mimetype == "application/json"
    assert json.loads(response.get_body())["worked"] == ["launched"]
    bad = handle_request(func.HttpRequest(method="POST", url="https://x/api/v1/alerts/databricks-sql",
                                          headers={"Authorization": AUTH, "Content-Type": "text/plain"}, body=body))
    assert bad.status_code == 415
    assert launcher.launches == 1


def test_google_cloud_function(launcher):
    from functions_framework import create_app

    from tests.webhook_support import REPO

    app = create_app(target="databricks_sql_alert", source=str(REPO / "triggers" / "webhook" / "gcp_function.py"))
    client = app.test_client()
    answer = client.post("/", data=template_body(alert_id="gcf"), headers=basic())
    assert answer.status_code == 202 and answer.get_json()["run_key"] == "alert:gcf:20260801T090000Z"
    assert client.post("/", data=b"{", headers=basic()).status_code == 400
    assert client.get("/").status_code == 405
    assert launcher.launches == 1


@contextmanager
def from_env(monkeypatch, env: str, sets: list[str], state_dir=None):
    """The handlers' environment (and a fresh cached instance while it lasts)."""
    monkeypatch.setenv("DRIFTGATE_ENV", env)
    if state_dir is None:
        monkeypatch.delenv("DRIFTGATE_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("DRIFTGATE_STATE_DIR", str(state_dir))
    monkeypatch.setenv("DRIFTGATE_SET", ";".join(sets))
    monkeypatch.setenv("DRIFTGATE_WEBHOOK_TOKEN", "t" * 16)
    serverless.reset()
    try:
        yield
    finally:
        serverless.reset()


def test_instance_is_built_from_the_environment(tmp_path, monkeypatch):
    with from_env(monkeypatch, "local", [f"workspace.root={tmp_path}", "webhook.launch.mode=run_now",
                                         "webhook.launch.job_id=42"], state_dir=tmp_path / "fn"):
        wh = serverless.webhook_from_env()
        assert wh.worker.gate is None and wh.worker.launcher.job_id == 42
        assert wh.state_dir == tmp_path / "fn" and wh.receiver.credentials.methods == ("bearer",)
        assert serverless.webhook_from_env() is wh


# ------------------------------------------------------------------ run keys in Unity Catalog

from tests.warehouse_fake import WAREHOUSE_SETS, warehouse  # noqa: E402,F401  (fixture)


def test_instances_share_run_keys_in_the_warehouse_and_launch_once(tmp_path, warehouse):
    """Two function instances (each its own queue folder) get the same delivery: both acknowledge, the
    run key is claimed and taken in the warehouse's table, and only one of them launches."""
    from driftgate.triggers.warehouse_state import WarehouseStateStore

    launcher = FakeJobLauncher()
    settings = webhook_settings(tmp_path, "webhook.gate=job", *WAREHOUSE_SETS)
    instances = [open_webhook(settings, credentials=Credentials(USER, PASSWORD), launcher=launcher,
                              state_dir=tmp_path / f"instance{i}") for i in range(2)]
    assert isinstance(instances[0].worker.store, WarehouseStateStore)
    assert not (tmp_path / "instance0" / "state.db").exists()  # the queue stays local; run keys do not
    answers = [serverless.handle_invocation(basic(), template_body(alert_id="uc"), webhook=wh) for wh in instances]
    assert [status for status, _ in answers] == [202, 202]
    assert answers[0][1]["worked"] == ["launched"] and answers[1][1]["worked"] == ["duplicate"]
    assert launcher.launches == 1
    (row,) = warehouse.rows("main.driftgate.driftgate_run_keys")
    assert (row["run_key"], row["source"], row["status"], row["run_id"]) == \
        ("alert:uc:20260801T090000Z", "webhook", "running", "fake-1")
    assert row["take_id"] is not None


def test_the_handlers_read_the_warehouse_backend_from_the_environment(tmp_path, monkeypatch, warehouse):
    with from_env(monkeypatch, "local", [f"workspace.root={tmp_path}", "webhook.launch.mode=run_now",
                                         "webhook.launch.job_id=42", *WAREHOUSE_SETS]):
        wh = serverless.webhook_from_env()
        assert wh.worker.store.run_keys_name == "main.driftgate.driftgate_run_keys"
        assert wh.worker.audit.table == "main.default.driftgate_events"
        assert "CREATE TABLE IF NOT EXISTS `main`.`driftgate`.`driftgate_run_keys`" in "\n".join(warehouse.statements())


def test_sqlite_state_without_a_state_dir_is_refused_not_put_in_tmp(monkeypatch):
    from driftgate.core.errors import ConfigError

    with from_env(monkeypatch, "databricks", ["webhook.launch.job_id=42"]):
        with pytest.raises(ConfigError, match=r"triggers.state.backend: 'sqlite' needs a local folder.*"
                                              r"DRIFTGATE_STATE_DIR"):
            serverless.webhook_from_env()


def test_the_readme_handler_paths_import():
    """What the README tells each platform to load (handler string, ``from ... import ...``) exists."""
    import importlib
    import re

    from tests.webhook_support import REPO

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Serverless handlers"):]
    section = section[:section.index("\n### ", 5)]
    targets = re.findall(r"--handler (\S+)", section) + re.findall(r"handler\s+`([\w.]+)`", section)
    targets += [f"{m}.{n}" for m, n in re.findall(r"from ([\w.]+) import (\w+)", section)]
    assert len(targets) == 4, targets
    for target in targets:
        module, _, name = target.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)) or name == "app", target


def test_a_warehouse_failure_leaves_the_delivery_queued_until_its_lease_ends(tmp_path, warehouse):
    from tests.webhook_support import Clock

    launcher, clock = FakeJobLauncher(), Clock()
    wh = open_webhook(webhook_settings(tmp_path, "webhook.gate=job", *WAREHOUSE_SETS),
                      credentials=Credentials(USER, PASSWORD), launcher=launcher, state_dir=tmp_path / "fn",
                      clock=clock)
    warehouse.fail_next("TEMPORARILY_UNAVAILABLE", "The warehouse is stopping.", matching="^SELECT")
    status, answer = serverless.handle_invocation(basic(), template_body(alert_id="hiccup"), webhook=wh)
    assert status == 202 and "worked" not in answer and launcher.launches == 0  # acknowledged, not launched
    clock.advance(wh.worker.config.lease_seconds + 1)
    assert wh.worker.drain() == ["launched"] and launcher.launches == 1


# ------------------------------------------------------------------ audit events in Unity Catalog

EVENTS = "main.driftgate.driftgate_events"
AUDIT_SETS = (*WAREHOUSE_SETS, "project.audit_schema=main.driftgate")


def _warehouse_webhook(tmp_path, launcher, **kw):
    return open_webhook(webhook_settings(tmp_path, "webhook.gate=job", *AUDIT_SETS),
                        credentials=Credentials(USER, PASSWORD), launcher=launcher, state_dir=tmp_path / "fn", **kw)


def _with_events_table(warehouse) -> None:
    """The events table exists already (a job wrote to it), so the statements counted are the inserts alone."""
    from driftgate.workspace.warehouse_audit import WarehouseAudit, events_ddl

    WarehouseAudit(warehouse_id=warehouse.warehouse_id, audit_schema="main.driftgate").sql.write(events_ddl(EVENTS), {})


def _event_inserts(warehouse) -> list[dict]:
    return [b for m, p, b in warehouse.requests
            if m == "POST" and b and b["statement"].startswith("INSERT INTO `main`.`driftgate`.`driftgate_events`")]


def test_a_serverless_delivery_appends_its_audit_events_to_the_uc_events_table(tmp_path, warehouse):
    """With the warehouse backend and no workspace, the events land in ``<audit_schema>.driftgate_events``
    with the audit schema's columns and types, readable as ``read_events`` reads them."""
    from datetime import datetime, timedelta, timezone

    from driftgate.workspace.audit import _SCHEMA
    from driftgate.workspace.warehouse_audit import WarehouseAudit

    launcher = FakeJobLauncher()
    wh = _warehouse_webhook(tmp_path, launcher)
    assert isinstance(wh.worker.audit, WarehouseAudit)
    status, answer = serverless.handle_invocation(basic(), template_body(alert_id="ev"), webhook=wh)
    assert status == 202 and answer["worked"] == ["launched"] and launcher.launches == 1
    assert ("CREATE TABLE IF NOT EXISTS `main`.`driftgate`.`driftgate_events` (`event_id` STRING, `at` TIMESTAMP, "
            "`kind` STRING, `run_key` STRING, `subject` STRING, `status` STRING, `details` STRING) USING DELTA"
            ) in warehouse.statements()
    rows = sorted(warehouse.rows(EVENTS), key=lambda r: r["at"])
    assert [list(r) for r in rows] == [_SCHEMA.names] * 3
    assert [(r["kind"], r["status"]) for r in rows] == \
        [("alert_received", "TRIGGERED"), ("trigger_fired", "DEFERRED_TO_JOB"), ("launch", "launched")]
    assert {r["run_key"] for r in rows} == {"alert:ev:20260801T090000Z"} and {r["subject"] for r in rows} == {"ev"}
    assert len({r["event_id"] for r in rows}) == 3
    now = datetime.now(timezone.utc)
    for r in rows:
        assert now - timedelta(minutes=1) < datetime.fromisoformat(r["at"]) <= now
    details = [json.loads(r["details"]) for r in rows]
    assert details[0]["alert_id"] == "ev" and details[2]["run_id"] == "fake-1"
    sent = _event_inserts(warehouse)[0]["parameters"]
    assert {p["name"]: p["type"] for p in sent}["at_0"] == "TIMESTAMP"


def test_a_batch_of_recorded_alerts_is_one_statement(tmp_path, warehouse):
    _with_events_table(warehouse)
    launcher = FakeJobLauncher()
    wh = _warehouse_webhook(tmp_path, launcher)
    for i in range(5):
        assert wh.receiver.handle(basic(), template_body(state="OK", alert_id=f"ok{i}"))[0] == 200
    assert wh.worker.drain() == ["recorded"]
    (insert,) = _event_inserts(warehouse)
    assert insert["statement"].count("), (") == 4  # one VALUES row per event
    assert [st.startswith("CREATE TABLE IF NOT EXISTS `main`.`driftgate`.`driftgate_events`")
            for st in warehouse.statements()].count(True) == 1  # ours: the table existed, nothing created it again
    rows = warehouse.rows(EVENTS)
    assert sorted(r["subject"] for r in rows) == [f"ok{i}" for i in range(5)]
    assert {(r["kind"], r["status"]) for r in rows} == {("alert_received", "OK")}
    assert all(json.loads(r["details"])["launched"] is False for r in rows)


def test_a_batch_sent_twice_adds_no_rows(warehouse):
    """The warehouse ran the insert but its answer was lost (a 503): the SDK sends the same statement again,
    and the event ids already in the table are skipped."""
    from driftgate.workspace.warehouse_audit import WarehouseAudit

    sink = WarehouseAudit(warehouse_id=warehouse.warehouse_id, audit_schema="main.driftgate")
    sink("init", subject="first")
    warehouse.lost_answers = 1
    sink.many([{"kind": "alert_received", "run_key": f"k{i}", "status": "OK"} for i in range(3)])
    assert len(_event_inserts(warehouse)) == 4  # the first event (before and after creating the table), the batch twice
    assert sum(st.startswith("CREATE TABLE IF NOT EXISTS `main`.`driftgate`.`driftgate_events`")
               for st in warehouse.statements()) == 1  # only when an insert found no table
    assert sorted(r["run_key"] or "" for r in warehouse.rows(EVENTS)) == ["", "k0", "k1", "k2"]
    assert sink.pending == 0


def test_a_failed_audit_write_is_logged_and_sent_with_the_next_invocation(tmp_path, warehouse, caplog):
    """The delivery launches although its audit writes fail; the events are kept and the next invocation
    (a duplicate delivery that audits nothing itself) sends them, once."""
    launcher = FakeJobLauncher()
    wh = _warehouse_webhook(tmp_path, launcher)
    warehouse.fail_next("BAD_REQUEST", "[INSUFFICIENT_PERMISSIONS] User does not have MODIFY on Table "
                        "'main.driftgate.driftgate_events'.", sql_state="42501",
                        matching="^INSERT INTO `main`.`driftgate`.`driftgate_events`", times=3)
    status, answer = serverless.handle_invocation(basic(), template_body(alert_id="denied"), webhook=wh)
    assert status == 202 and answer["worked"] == ["launched"] and launcher.launches == 1
    assert wh.worker.store.get("alert:denied:20260801T090000Z").status == "running"
    logged = [r for r in caplog.records if r.name == "driftgate.webhook" and r.levelname == "ERROR"]
    assert len(logged) == 3 and "INSUFFICIENT_PERMISSIONS" in logged[0].exc_text
    assert "could not append 1 audit event(s), kept to send again with the next write: the SQL warehouse failed" \
        in logged[0].exc_text
    assert "CREATE" not in "".join(warehouse.statements()[-3:]) and wh.worker.audit.pending == 3
    status, answer = serverless.handle_invocation(basic(), template_body(alert_id="denied"), webhook=wh)
    assert answer["status"] == "duplicate" and launcher.launches == 1
    assert sorted(r["kind"] for r in warehouse.rows(EVENTS)) == ["alert_received", "launch", "trigger_fired"]
    assert wh.worker.audit.pending == 0


def test_failed_writes_keep_at_most_max_pending_events_and_log_the_rest(warehouse, caplog):
    from driftgate.core.errors import TableError
    from driftgate.workspace.warehouse_audit import WarehouseAudit

    sink = WarehouseAudit(warehouse_id=warehouse.warehouse_id, audit_schema="main.driftgate", max_pending=2)
    warehouse.fail_next("BAD_REQUEST", "[TABLE_OR_VIEW_NOT_FOUND] gone", matching="^CREATE", times=3)
    for subject in ("a", "b", "c"):
        with pytest.raises(TableError, match=r"main.driftgate.driftgate_events \(SQL warehouse abcdef0123456789\): "
                                             r"could not append \d audit event\(s\), kept"):
            sink("init", subject=subject)
    assert sink.pending == 2
    assert any("dropped" in r.getMessage() and "'subject': 'a'" in r.getMessage() for r in caplog.records)
    sink.flush()
    assert sorted(r["subject"] for r in warehouse.rows(EVENTS)) == ["b", "c"]


def test_events_beyond_one_statement_go_in_several(warehouse):
    from driftgate.triggers.webhook.worker import RECORD_BATCH
    from driftgate.workspace.warehouse_audit import ROWS_PER_STATEMENT, WarehouseAudit

    assert RECORD_BATCH <= ROWS_PER_STATEMENT  # a worker batch is always one statement
    _with_events_table(warehouse)
    sink = WarehouseAudit(warehouse_id=warehouse.warehouse_id, audit_schema="main.driftgate")
    sink.many([{"kind": "alert_received", "run_key": f"k{i}"} for i in range(ROWS_PER_STATEMENT + 3)])
    assert len(_event_inserts(warehouse)) == 2 and len(warehouse.rows(EVENTS)) == ROWS_PER_STATEMENT + 3


def test_the_warehouse_types_are_those_spark_gives_the_arrow_schema():
    """The table the warehouse creates has the columns Spark would create from the audit schema."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    from driftgate.workspace.audit import _SCHEMA
    from driftgate.workspace.warehouse import sql_type

    schema = pa.schema([*_SCHEMA, ("n", pa.int64()), ("i", pa.int32()), ("x", pa.float64()), ("f", pa.float32()),
                        ("b", pa.bool_()), ("d", pa.date32()), ("ntz", pa.timestamp("us"))])
    spark = from_arrow_schema(schema)
    assert [sql_type(f.type) for f in schema] == [f.dataType.simpleString().upper() for f in spark.fields]
