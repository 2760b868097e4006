"""The Databricks bundle, validated offline: JSON schema, SDK JobSettings, and that every task resolves."""
from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from databricks.sdk.service import jobs

from tests.bundle_support import BUNDLE_FILES, CLI_VARS, REPO, configured, resolve_target

SCHEMA = Path(__file__).parent / "fixtures" / "databricks-bundle-schema.json"


def _py_patterns(o):
    # The schema's \p{L}/\p{N} classes are not Python `re` syntax (see the reference doc).
    if isinstance(o, dict):
        return {k: (v.replace("[\\p{L}\\p{N}]", "[a-zA-Z0-9]").replace("\\p{L}", "[a-zA-Z]").replace("\\p{N}", "[0-9]")
                    if k == "pattern" and isinstance(v, str) else _py_patterns(v)) for k, v in o.items()}
    return [_py_patterns(x) for x in o] if isinstance(o, list) else o


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft7Validator(_py_patterns(json.loads(SCHEMA.read_text())))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _errors(validator, doc) -> list[str]:
    """Leaf errors (oneOf branches unfolded), as 'path: message'."""
    def leaves(e):
        if e.context:
            for sub in e.context:
                yield from leaves(sub)
        else:
            yield f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"

    return [leaf for e in validator.iter_errors(doc) for leaf in leaves(e)]


def _job(name="retraining_job") -> tuple[dict, Path]:
    for path in BUNDLE_FILES:
        doc = _load(path)
        job = (doc.get("resources") or {}).get("jobs", {}).get(name)
        if job:
            return job, path
    raise AssertionError(f"job {name} not found in {BUNDLE_FILES}")


def _resolve(obj=None, target="prod"):
    """The retraining job as deployed to ``target`` (see tests/bundle_support.py)."""
    return resolve_target(target)["resources"]["jobs"]["retraining_job"]


def test_every_bundle_file_validates_against_the_official_schema(validator):
    assert len(BUNDLE_FILES) >= 2
    for path in BUNDLE_FILES:
        assert _errors(validator, _load(path)) == [], path.name


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda j: j["trigger"]["table_update"].__setitem__("condition", "SOME_UPDATED"), "SOME_UPDATED"),
    (lambda j: j["tasks"][1]["condition_task"].__setitem__("op", "EQUALS"), "EQUALS' is not one of"),
    (lambda j: j["tasks"][0].__setitem__("notebook_tsk", {}), "notebook_tsk"),
])
def test_the_schema_check_catches_mistakes(validator, mutate, expected):
    job, path = _job()
    doc = copy.deepcopy(_load(path))
    mutate(doc["resources"]["jobs"]["retraining_job"])
    errors = _errors(validator, doc)
    assert errors and any(expected in e for e in errors), errors


def test_job_loads_into_sdk_job_settings_and_tasks_resolve():
    job, path = _job()
    settings = jobs.JobSettings.from_dict(_resolve(job))
    tasks = {t.task_key: t for t in settings.tasks}
    assert list(tasks) == ["evaluate_drift", "is_drift_exceeded", "train", "shadow", "promote"]
    for t in settings.tasks:
        for dep in t.depends_on or []:
            assert dep.task_key in tasks, (t.task_key, dep.task_key)
        if t.job_cluster_key:
            assert t.job_cluster_key in {c.job_cluster_key for c in settings.job_clusters}

    cond = tasks["is_drift_exceeded"].condition_task
    assert cond.op == jobs.ConditionTaskOp.EQUAL_TO and cond.right == "true"
    m = re.fullmatch(r"\{\{tasks\.(\w+)\.values\.drift_exceeded\}\}", cond.left)
    assert m and tasks[m[1]].notebook_task is not None  # only notebooks can set task values
    assert [(d.task_key, d.outcome) for d in tasks["train"].depends_on] == [("is_drift_exceeded", "true")]
    assert [d.task_key for d in tasks["shadow"].depends_on] == ["train"]
    assert [d.task_key for d in tasks["promote"].depends_on] == ["shadow"]

    assert settings.max_concurrent_runs == 1 and settings.queue.enabled is True
    tu = settings.trigger.table_update
    assert tu.condition == jobs.Condition.ANY_UPDATED
    assert tu.min_time_between_triggers_seconds >= 60 and tu.wait_after_last_change_seconds >= 60
    assert {p.name for p in settings.parameters} >= {"model_name", "thresholds_profile", "catalog", "schema"}
    assert settings.email_notifications.on_failure


def test_every_referenced_notebook_and_wheel_exists():
    job, path = _job()
    root = _load(REPO / "databricks.yml")
    artifacts = root["artifacts"]
    for task in job["tasks"]:
        nb = task.get("notebook_task")
        if nb:
            file = (path.parent / nb["notebook_path"]).resolve()
            assert file.is_file(), file
            source = file.read_text()
            assert source.startswith("# Databricks notebook source")
            compile(source, str(file), "exec")
        for lib in task.get("libraries", []):
            whl = lib["whl"]
            assert whl.startswith("../dist/") and whl.endswith(".whl")
            wheel_artifacts = [a for a in artifacts.values() if a.get("type") == "whl"]
            assert wheel_artifacts and all((REPO / a["path"] / "pyproject.toml").is_file() for a in wheel_artifacts)
            assert "--wheel-dir dist" in wheel_artifacts[0]["build"]


def test_notebooks_call_the_same_stage_functions():
    calls = {"evaluate_drift.py": "gating.evaluate(", "train.py": "training.train(",
             "shadow.py": "promotion.shadow(", "promote.py": "promotion.promote("}
    for name, call in calls.items():
        assert call in (REPO / "notebooks" / name).read_text(), name


def test_task_keys_and_trigger_match_the_local_pipeline():
    from driftgate.core.settings import load_settings
    from driftgate.pipeline import EVALUATE_TASK

    job, _ = _job()
    assert job["tasks"][0]["task_key"] == EVALUATE_TASK
    settings = load_settings(REPO / "conf", "databricks")
    watched = _resolve(job, "prod")["trigger"]["table_update"]["table_names"]
    assert watched == [settings.monitor.drift_metrics_table]


def test_targets_and_parameters_map_onto_settings(tmp_path):
    from driftgate.jobtask import settings_for_task

    root = _load(REPO / "databricks.yml")
    assert set(root["targets"]) == {"dev", "prod"} and root["targets"]["dev"]["mode"] == "development"
    bundle = resolve_target("dev")
    job = bundle["resources"]["jobs"]["retraining_job"]
    params = {p["name"]: p["default"] for p in job["parameters"]}
    params["overrides"] += f";workspace.root={tmp_path}"
    s = settings_for_task(params, conf_dir=REPO / "conf", env="local")
    model = bundle["resources"]["registered_models"]["churn_model"]
    assert s.project.model_name == f"{model['catalog_name']}.{model['schema_name']}.{model['name']}"
    assert s.project.model_name == "dev.driftgate_demo.dev_first_last_churn_model"  # dev mode prefixes UC names
    assert s.project.experiment_name == bundle["resources"]["experiments"]["driftgate"]["name"]
    assert s.monitor.drift_metrics_table == "dev.driftgate_demo.inference_log_drift_metrics"
    assert s.project.audit_schema == "dev.driftgate_demo" and s.training.table.startswith("dev.driftgate_demo.")
    assert s.gate.profile == "default"


class _Exit(Exception):
    pass


class FakeDbutils:
    """Widgets and task values as a notebook task sees them (one job run, shared ``values``)."""

    def __init__(self, widgets: dict[str, str], task_key: str = "evaluate_drift", values: dict | None = None):
        self.values: dict[tuple[str, str], object] = {} if values is None else values
        outer = self

        class Widgets:
            def get(self, name):
                if name not in widgets:
                    raise ValueError(f"InputWidgetNotDefined: {name}")
                return widgets[name]

        class TaskValues:
            def set(self, key, value):
                json.dumps(value)
                outer.values[(task_key, key)] = value

            def get(self, taskKey, key, default=None, debugValue=None):
                # As documented for dbutils.jobs.taskValues.get: default and debugValue
                # cannot be None; a missing key without a default raises.
                if default is None or debugValue is None:
                    raise TypeError("default/debugValue cannot be None")
                return outer.values.get((taskKey, key), default)

        class Jobs:
            taskValues = TaskValues()

        class Notebook:
            def exit(self, message):
                raise _Exit(message)

        self.widgets, self.jobs, self.notebook = Widgets(), Jobs(), Notebook()


def test_task_values_read_safely_when_the_upstream_task_set_nothing():
    """A task that exited early set no values: reads give the default, never a dbutils error."""
    from driftgate.core.errors import DriftgateError
    from driftgate.workspace import open_workspace
    from driftgate.core.settings import load_settings
    from driftgate.workspace.task_values import DbutilsTaskValues

    fake = FakeDbutils({}, task_key="train")
    values = DbutilsTaskValues(fake)
    assert values.get("train", "model_version") is None
    assert values.get("train", "model_version", default="") == ""
    values.set("model_version", "3")
    assert values.get("train", "model_version") == "3"

    settings = load_settings(REPO / "conf", "databricks")
    ws = open_workspace(settings, spark=object())  # no dbutils: no /tmp fallback
    with pytest.raises(DriftgateError, match="need the notebook's dbutils"):
        ws.task_values.set("drift_exceeded", True)


def test_evaluate_notebook_publishes_task_values_through_dbutils(tmp_path):
    """Run the notebook's code with a fake dbutils on local tables: the condition task would see "true"."""
    from driftgate.core.settings import load_settings
    from driftgate.gating.testing import day, drift_rows, profile_rows
    from driftgate.workspace import open_workspace

    root = tmp_path / ".driftgate"
    ws = open_workspace(load_settings(REPO / "conf", "local", (f"workspace.root={root}",)))
    feats = ["tenure_months", "usage_gb", "age"]
    now_days = 12
    ws.tables.write(ws.settings.monitor.drift_metrics_table,
                    drift_rows(now_days, feats, lambda d, c: 0.7 if d >= 8 else 0.02), mode="overwrite")
    ws.tables.write(ws.settings.monitor.profile_metrics_table, profile_rows(now_days), mode="overwrite")
    when = day(now_days) + timedelta(hours=2)

    from driftgate import gating

    real = gating.evaluate
    fake = FakeDbutils({"conf_dir": str(REPO / "conf"), "env": "local", "trigger": "table_update",
                        "overrides": f"workspace.root={root}", "job_run_id": "42"})
    source = (REPO / "notebooks" / "evaluate_drift.py").read_text()
    try:
        gating.evaluate = lambda *a, **k: real(*a, **{**k, "now": when})  # pin the clock only
        exec(compile(source, "evaluate_drift.py", "exec"), {"dbutils": fake, "spark": None})
    finally:
        gating.evaluate = real
    assert fake.values[("evaluate_drift", "drift_exceeded")] is True
    assert str(fake.values[("evaluate_drift", "drift_exceeded")]).lower() == "true"  # EQUAL_TO "true"
    decision = fake.values[("evaluate_drift", "decision")]
    assert decision["status"] == "EXCEEDED" and decision["trigger"] == "table_update"
    assert gating.read_decisions(ws)[0]["run_key"] == "job-run:42"


def test_shadow_result_survives_the_task_value_round_trip():
    """The promote task rebuilds what the shadow task published (JSON in between)."""
    from driftgate.promotion import ShadowResult
    from driftgate.promotion.policy import Check, Interval
    from driftgate.jobtask import as_value

    shadow = ShadowResult(status="PASS", model_name="main.s.m", champion_version="1", challenger_version="2",
                          metrics={"delta_f1": 0.04}, reasons=("better",), checks=(Check("f1", True, "ok"),),
                          interval=Interval("f1", 0.04, 0.01, 0.07, 0.95, 200), n_rows=900)
    value = json.loads(json.dumps(as_value(shadow)))
    assert ShadowResult.from_dict(value) == shadow


def test_retraining_branch_notebooks_hand_results_along(tmp_path, monkeypatch):
    """train → shadow → promote notebooks, with the stage functions faked: the glue passes the
    registered version and the shadow result through task values, as on Databricks."""
    from driftgate import promotion
    from driftgate import training
    from driftgate.promotion import PromotionResult, ShadowResult
    from driftgate.promotion.policy import Check
    from driftgate.training.trainer import TrainResult

    calls = []
    monkeypatch.setattr(training, "train", lambda ws, **kw: calls.append(("train", kw["reason"]["decision_id"])) or
                        TrainResult("r1", "runs:/r1/model", {"f1": 0.8}, "7", True, None))
    monkeypatch.setattr(promotion, "set_challenger", lambda ws, v: calls.append(("set_challenger", v)))
    shadow = ShadowResult(status="PASS", model_name="m", champion_version="6", challenger_version="7",
                          metrics={"delta_f1": 0.05}, reasons=("better",), checks=(Check("f1", True, "ok"),))
    monkeypatch.setattr(promotion, "shadow", lambda ws, challenger_version: calls.append(("shadow", challenger_version))
                        or shadow)

    def promote(ws, result):
        calls.append(("promote", result == shadow))
        return PromotionResult(promoted=True, champion_version="7", reason="passed")

    monkeypatch.setattr(promotion, "promote", promote)
    values = {("evaluate_drift", "decision"): {"decision_id": "d-1", "status": "EXCEEDED"}}
    widgets = {"conf_dir": str(REPO / "conf"), "env": "local", "overrides": f"workspace.root={tmp_path}"}
    for task in ("train", "shadow", "promote"):
        source = (REPO / "notebooks" / f"{task}.py").read_text()
        exec(compile(source, f"{task}.py", "exec"), {"dbutils": FakeDbutils(widgets, task, values), "spark": None})
    assert calls == [("train", "d-1"), ("set_challenger", "7"), ("shadow", "7"), ("promote", True)]
    assert values[("train", "model_version")] == "7" and values[("shadow", "shadow_status")] == "PASS"
    assert values[("promote", "promoted")] is True


# ---- the whole pattern, per target --------------------------------------------------------------

TRIGGER_KEYS = ("schedule", "trigger", "continuous")


def _triggers(resources: dict) -> dict[str, dict]:
    """Every trigger or schedule the bundle deploys, by resource."""
    found = {f"jobs.{k}.{key}": job[key] for k, job in resources.get("jobs", {}).items()
             for key in TRIGGER_KEYS if key in job}
    found |= {f"alerts.{k}.schedule": a["schedule"] for k, a in resources.get("alerts", {}).items() if "schedule" in a}
    found |= {f"quality_monitors.{k}.schedule": m["schedule"]
              for k, m in resources.get("quality_monitors", {}).items() if "schedule" in m}
    return found


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_the_resolved_bundle_validates_for_each_target(validator, target):
    bundle = resolve_target(target)
    doc = {"bundle": {"name": bundle["bundle"]["name"]}, "resources": bundle["resources"]}
    assert _errors(validator, doc) == []


def test_development_mode_pauses_every_trigger():
    """Nothing in the files sets a pause status for dev, so the CLI's presets pause everything."""
    files = configured("dev")["resources"]
    assert _triggers(files), "the bundle deploys no trigger at all"
    assert not [k for k, t in _triggers(files).items() if t.get("pause_status")], "explicit pause_status overrides dev mode"
    dev = _triggers(resolve_target("dev")["resources"])
    assert dev and all(t["pause_status"] == "PAUSED" for t in dev.values()), dev
    prod = _triggers(resolve_target("prod")["resources"])
    assert {k.split(".")[1] for k in prod} >= {"retraining_job", "monitor_job", "drift_alert"}
    assert not [k for k, t in prod.items() if t.get("pause_status") == "PAUSED"]


def test_an_explicit_unpaused_trigger_is_caught(monkeypatch):
    """The check above fails on the bundle as it was (trigger.pause_status: UNPAUSED)."""
    import tests.bundle_support as support

    real = support.merged_resources

    def with_unpaused():
        resources = real()
        resources["jobs"]["retraining_job"]["trigger"]["pause_status"] = "UNPAUSED"
        return resources

    monkeypatch.setattr(support, "merged_resources", with_unpaused)
    dev = _triggers(support.resolve_target("dev")["resources"])
    assert dev["jobs.retraining_job.trigger"]["pause_status"] == "UNPAUSED"


def test_prod_refuses_to_deploy_without_its_principals():
    with pytest.raises(KeyError, match="service_principal"):
        configured("prod", cli_vars={k: v for k, v in CLI_VARS.items() if k != "service_principal"})


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_the_bundle_deploys_the_whole_pattern(target):
    """Experiment, model + grants, monitor, retraining trigger on the monitor's drift table,
    the Pattern 2 alert over the same table, the webhook's run permission, prod's run_as."""
    from databricks.sdk.service import catalog, sql

    from driftgate.core.settings import load_settings
    from driftgate.jobtask import settings_for_task
    from driftgate.monitoring.config import InferenceLogConfig

    bundle = resolve_target(target)
    res = bundle["resources"]
    values = bundle["values"]
    home = f"{values['catalog']}.{values['schema']}"

    exp = res["experiments"]["driftgate"]["name"]
    assert exp.rpartition("/")[0] == bundle["workspace"]["root_path"]  # its parent: the bundle's root folder
    model = res["registered_models"]["churn_model"]
    assert f"{model['catalog_name']}.{model['schema_name']}" == home
    assert {"principal": values["readers_group"], "privileges": ["EXECUTE"]} in model["grants"]

    monitor = res["quality_monitors"]["inference_log"]
    assert catalog.MonitorInfo.from_dict(monitor).inference_log.problem_type.value == "PROBLEM_TYPE_CLASSIFICATION"
    conf = settings_for_task({"catalog": values["catalog"], "schema": values["schema"]}, conf_dir=REPO / "conf")
    assert monitor["table_name"] == conf.monitor.table_name and monitor["output_schema_name"] == home
    assert InferenceLogConfig.model_validate(monitor["inference_log"]) == conf.monitor.inference_log
    assert monitor["slicing_exprs"] == list(conf.monitor.slicing_exprs)
    drift_table = f"{home}.{monitor['table_name'].rsplit('.', 1)[1]}_drift_metrics"  # Lakehouse Monitoring's name
    assert drift_table == conf.monitor.drift_metrics_table

    retrain = res["jobs"]["retraining_job"]
    assert retrain["trigger"]["table_update"]["table_names"] == [drift_table]
    params = {p["name"]: p["default"] for p in retrain["parameters"]}
    assert params["model_name"] == f"{home}.{model['name']}"
    assert params["overrides"] == f"project.experiment_name={exp}"
    assert {"level": "CAN_MANAGE_RUN", "service_principal_name": CLI_VARS["webhook_principal"]} in retrain["permissions"]

    mon_job = jobs.JobSettings.from_dict(res["jobs"]["monitor_job"])
    assert {p.name: p.default for p in mon_job.parameters}["monitor_engine"] in ("lakehouse", "driftgate")
    for job in (retrain, res["jobs"]["monitor_job"]):
        cluster = job["job_clusters"][0]["new_cluster"]
        assert cluster["spark_version"] == values["spark_version"] and cluster["node_type_id"] == values["node_type_id"]

    alert = res["alerts"]["drift_alert"]
    sql.AlertV2.from_dict(alert)
    assert drift_table in alert["query_text"] and alert["evaluation"]["source"]["name"] in alert["query_text"]
    assert alert["evaluation"]["notification"]["subscriptions"] == [{"destination_id": CLI_VARS["alert_destination_id"]}]

    if target == "prod":
        assert bundle["run_as"] == {"service_principal_name": CLI_VARS["service_principal"]}
        assert alert["run_as"] == {"service_principal_name": CLI_VARS["service_principal"]}
    assert load_settings(REPO / "conf", "databricks").workspace.backend == "databricks"


def test_node_type_is_a_variable_not_a_cloud():
    """No AWS (or other) instance type hard-wired in a resource: clusters take var.node_type_id."""
    text = "\n".join(p.read_text() for p in BUNDLE_FILES[1:])
    assert "node_type_id" not in text and "${var.job_cluster}" in text
    prod = resolve_target("prod", cli_vars={**CLI_VARS, "node_type_id": "Standard_D4ds_v5"})
    assert {j["job_clusters"][0]["new_cluster"]["node_type_id"] for j in prod["resources"]["jobs"].values()} == {
        "Standard_D4ds_v5"}


def test_refresh_notebook_runs_the_engine_the_variable_names(tmp_path):
    """monitor_engine=driftgate runs driftgate's engine; anything else but lakehouse is refused."""
    from tests.monitor_world import light_workspace, write_world

    root = tmp_path / ".driftgate"
    ws = light_workspace(root)
    settings = ws.settings
    write_world(ws, days=3, rows_per_day=50)
    source = (REPO / "notebooks" / "refresh_monitor.py").read_text()
    widgets = {"conf_dir": str(REPO / "conf"), "env": "local", "overrides": f"workspace.root={root}"}
    exec(compile(source, "refresh_monitor.py", "exec"),
         {"dbutils": FakeDbutils(widgets | {"monitor_engine": "driftgate"}, task_key="refresh_monitor"), "spark": None})
    assert ws.tables.exists(settings.monitor.drift_metrics_table)
    with pytest.raises(ValueError, match="monitor_engine"):
        exec(compile(source, "refresh_monitor.py", "exec"),
             {"dbutils": FakeDbutils(widgets | {"monitor_engine": "evidently"}, task_key="refresh_monitor"), "spark": None})


def test_native_monitor_refresh_waits_for_the_documented_states(httpserver):
    """POST .../monitor/refreshes queues, GET .../refreshes/{id} polls (Databricks REST reference shapes)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from driftgate.core.errors import MonitorError
    from driftgate.workspace.lakehouse_monitor import refresh_native_monitor

    table = "main.driftgate_demo.inference_log"
    base = f"/api/2.1/unity-catalog/tables/{table}/monitor/refreshes"
    httpserver.expect_request("/.well-known/databricks-config").respond_with_data("", status=404)
    client = WorkspaceClient(config=Config(host=httpserver.url_for("/").rstrip("/"), token="dapi-test"))

    def info(state, **extra):
        return {"refresh_id": 7, "state": state, "start_time_ms": 1764460800000, "trigger": "MANUAL", **extra}

    httpserver.expect_oneshot_request(base, method="POST").respond_with_json(info("PENDING"))
    httpserver.expect_oneshot_request(f"{base}/7", method="GET").respond_with_json(info("RUNNING"))
    httpserver.expect_oneshot_request(f"{base}/7", method="GET").respond_with_json(info("SUCCESS", end_time_ms=1764461000000))
    assert refresh_native_monitor(table, client, sleep=lambda s: None) == 7

    httpserver.expect_oneshot_request(base, method="POST").respond_with_json(info("PENDING"))
    httpserver.expect_oneshot_request(f"{base}/7", method="GET").respond_with_json(info("FAILED", message="no data"))
    with pytest.raises(MonitorError, match="FAILED: no data"):
        refresh_native_monitor(table, client, sleep=lambda s: None)

    httpserver.expect_request(base, method="POST").respond_with_json(info("PENDING"))
    httpserver.expect_request(f"{base}/7", method="GET").respond_with_json(info("RUNNING"))
    with pytest.raises(MonitorError, match="still RUNNING"):
        refresh_native_monitor(table, client, sleep=lambda s: None, poll_seconds=10, timeout_seconds=30)


class _JobRunDone(Exception):
    pass


def test_the_notebook_tasks_run_end_to_end_as_the_job_runs_them(tmp_path, monkeypatch):
    """The demo world up to its first job run, then the job's notebooks with dbutils task values:
    evaluate_drift → is_drift_exceeded ("true") → train → shadow → promote moves the champion,
    and the registered version keeps its run and logged-model lineage."""
    from datetime import datetime, timezone

    from driftgate import gating, pipeline
    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace

    small = ("demo.customers=1500", "demo.history_days=30", "demo.served_days=14", "demo.rows_per_day=400",
             "demo.drift_onset_day=4", "training.params={max_iter: 60}", "training.calibration_folds=2")
    root = tmp_path / ".driftgate"
    overrides = (*small, f"workspace.root={root}")
    ws = open_workspace(load_settings(REPO / "conf", "local", overrides))
    widgets = {"conf_dir": str(REPO / "conf"), "env": "local", "overrides": ";".join(overrides),
               "trigger": "table_update", "job_run_id": "777"}
    values: dict = {}
    ran: list[str] = []

    def run_task(task_key: str) -> None:
        source = (REPO / "notebooks" / f"{task_key}.py").read_text()
        try:
            exec(compile(source, f"{task_key}.py", "exec"),
                 {"dbutils": FakeDbutils(widgets, task_key=task_key, values=values), "spark": None})
        except _Exit:
            pass
        ran.append(task_key)

    def job_run(ws_, *, trigger, run_key=None, now=None, **_):
        real = gating.evaluate
        monkeypatch.setattr(gating, "evaluate", lambda *a, **k: real(*a, **{**k, "now": now}))
        run_task("evaluate_drift")
        monkeypatch.setattr(gating, "evaluate", real)
        if str(values[("evaluate_drift", "drift_exceeded")]).lower() == "true":  # the condition task
            for task in ("train", "shadow", "promote"):
                run_task(task)
        raise _JobRunDone

    monkeypatch.setattr(pipeline, "run_retraining_job", job_run)
    with pytest.raises(_JobRunDone):
        pipeline.run_demo(ws, say=lambda _: None, today=datetime(2026, 9, 1, tzinfo=timezone.utc))

    assert ran == ["evaluate_drift", "train", "shadow", "promote"]
    assert values[("evaluate_drift", "decision")]["status"] == "EXCEEDED"
    version = values[("train", "model_version")]
    assert values[("train", "registered")] is True and version
    assert values[("shadow", "shadow_status")] == "PASS"
    assert values[("promote", "promoted")] is True
    name = ws.settings.project.model_name
    assert ws.registry.alias_version(name, "champion") == version
    info = ws.registry.get_version(name, version)
    assert info.run_id == values[("train", "train_run_id")] and info.model_id and info.model_id.startswith("m-")


def test_the_vendored_schema_is_the_recorded_cli_file():
    import hashlib

    source = yaml.safe_load((SCHEMA.parent / "databricks-bundle-schema.source").read_text())
    assert source["url"].endswith(f"/{source['commit']}/{source['path']}")
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == source["sha256"]
    props = json.loads(SCHEMA.read_text())["$defs"]["github.com"]["databricks"]["cli"]["bundle"]["config.Resources"]
    resources = (props.get("oneOf") or [props])[0]["properties"]
    assert {"experiments", "registered_models", "quality_monitors", "alerts", "jobs"} <= set(resources)
