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


def test_notebooks_only_call_their_task_function():
    """The glue lives in driftgate.tasks: each notebook opens its workspace and calls one task."""
    import ast

    job, path = _job()
    calls = {"evaluate_drift": "evaluate", "train": "train", "shadow": "shadow", "promote": "promote"}
    for task in job["tasks"]:
        if "notebook_task" not in task:
            continue
        source = (path.parent / task["notebook_task"]["notebook_path"]).resolve().read_text()
        tree = ast.parse(source)
        imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert imports == {"tasks", "open_task_workspace"}, task["task_key"]
        called = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                  and isinstance(n.func.value, ast.Name) and n.func.value.id == "tasks"]
        assert called == [calls[task["task_key"]]], task["task_key"]


def test_task_keys_and_trigger_match_the_local_pipeline():
    from driftgate.core.settings import load_settings
    from driftgate.pipeline import EVALUATE_TASK

    job, _ = _job()
    assert job["tasks"][0]["task_key"] == EVALUATE_TASK
    settings = load_settings(REPO / "conf", "databricks")
    watched = _resolve(job, "prod")["trigger"]["table_update"]["table_names"]
    assert watched == [settings.monitor.drift_metrics_table]


def test_the_job_defines_every_parameter_the_notebooks_read():
    from driftgate.jobtask import JOB_PARAMETERS

    job, _ = _job()
    assert {p["name"] for p in job["parameters"]} == set(JOB_PARAMETERS)  # run_key and as_of included


def test_targets_and_parameters_map_onto_settings(tmp_path):
    from driftgate.jobtask import settings_for_task

    root = _load(REPO / "databricks.yml")
    assert set(root["targets"]) == {"dev", "prod"} and root["targets"]["dev"]["mode"] == "development"
    bundle = resolve_target("dev")
    job = bundle["resources"]["jobs"]["retraining_job"]
    params = {p["name"]: p["default"] for p in job["parameters"]}
    params |= {"overrides": job["tasks"][0]["notebook_task"]["base_parameters"]["overrides"] + f";workspace.root={tmp_path}"}
    s = settings_for_task(params, conf_dir=REPO / "conf", env="local")
    model = bundle["resources"]["registered_models"]["model"]
    assert s.project.model_name == f"{model['catalog_name']}.{model['schema_name']}.{model['name']}"
    assert s.project.model_name == "dev.default.dev_first_last_model"  # dev mode prefixes UC names
    assert s.project.experiment_name == bundle["resources"]["experiments"]["driftgate"]["name"]
    assert s.monitor.drift_metrics_table == "dev.default.inference_log_drift_metrics"
    assert s.project.audit_schema == "dev.default" and s.training.table.startswith("dev.default.")
    assert s.gate.profile == "default"


def test_task_values_read_safely_when_the_upstream_task_set_nothing():
    """A task that exited early set no values: reads give the default, never a dbutils error."""
    from driftgate.core.errors import DriftgateError
    from driftgate.workspace import open_workspace
    from driftgate.core.settings import load_settings
    from driftgate.workspace.task_values import DbutilsTaskValues

    from tests.dbutils_stub import StubDbutils

    run: dict = {}
    train, shadow = (DbutilsTaskValues(StubDbutils({}, task_key=t, values=run)) for t in ("train", "shadow"))
    assert shadow.get("train", "model_version") is None
    assert shadow.get("train", "model_version", default="") == ""
    train.set("model_version", "3")
    assert shadow.get("train", "model_version") == "3"

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
    from tests.dbutils_stub import run_notebook

    values: dict = {}
    widgets = {"conf_dir": str(REPO / "conf"), "env": "local", "trigger": "table_update",
               "overrides": f"workspace.root={root}", "job_run_id": "42", "as_of": when.isoformat()}
    run_notebook(REPO / "notebooks" / "evaluate_drift.py", widgets, "evaluate_drift", values)
    assert values[("evaluate_drift", "drift_exceeded")] is True
    assert str(values[("evaluate_drift", "drift_exceeded")]).lower() == "true"  # EQUAL_TO "true"
    decision = values[("evaluate_drift", "decision")]
    assert decision["status"] == "EXCEEDED" and decision["trigger"] == "table_update"
    # the run key is the drift table's version, as the local watcher names it
    key = f"delta:{ws.settings.monitor.drift_metrics_table}@v0"
    assert gating.read_decisions(ws)[0]["run_key"] == key == values[("evaluate_drift", "run_key")]


def test_shadow_result_survives_the_task_value_round_trip():
    """The promote task rebuilds what the shadow task published (JSON in between)."""
    from driftgate.promotion import ShadowResult
    from driftgate.promotion.policy import Check, Interval
    from driftgate.tasks import as_value

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
    from driftgate.monitoring import contract

    # The stages are faked and write no tables; the contract check has its own tests.
    monkeypatch.setattr(contract, "check_inference_contract", lambda ws, **kw: None)
    monkeypatch.setattr(training, "train", lambda ws, **kw: calls.append(("train", kw["reason"]["decision_id"])) or
                        TrainResult("r1", "runs:/r1/model", {"f1": 0.8}, "7", True, None))
    monkeypatch.setattr(promotion, "set_challenger", lambda ws, v: calls.append(("set_challenger", v)))
    shadow = ShadowResult(status="PASS", model_name="m", champion_version="6", challenger_version="7",
                          metrics={"delta_f1": 0.05}, reasons=("better",), checks=(Check("f1", True, "ok"),))
    monkeypatch.setattr(promotion, "shadow", lambda ws, challenger_version, **kw: calls.append(("shadow", challenger_version))
                        or shadow)

    def promote(ws, result):
        calls.append(("promote", result == shadow))
        return PromotionResult(promoted=True, champion_version="7", reason="passed")

    monkeypatch.setattr(promotion, "promote", promote)
    from tests.dbutils_stub import run_notebook

    values = {("evaluate_drift", "decision"): {"decision_id": "d-1", "status": "EXCEEDED"}}
    widgets = {"conf_dir": str(REPO / "conf"), "env": "local", "overrides": f"workspace.root={tmp_path}"}
    for task in ("train", "shadow", "promote"):
        run_notebook(REPO / "notebooks" / f"{task}.py", widgets, task, values)
    # train makes its version the challenger; shadow sets it again as the (faked) alias never moved
    assert calls == [("train", "d-1"), ("set_challenger", "7"), ("set_challenger", "7"), ("shadow", "7"),
                     ("promote", True)]
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
    model = res["registered_models"]["model"]
    assert f"{model['catalog_name']}.{model['schema_name']}" == home
    assert {"principal": values["readers_group"], "privileges": ["EXECUTE"]} in model["grants"]

    monitor = res["quality_monitors"]["inference_log"]
    assert catalog.MonitorInfo.from_dict(monitor).inference_log.problem_type.value == "PROBLEM_TYPE_CLASSIFICATION"
    conf = settings_for_task({"catalog": values["catalog"], "schema": values["schema"]}, conf_dir=REPO / "conf")
    assert monitor["table_name"] == conf.monitor.table_name and monitor["output_schema_name"] == home
    profile = InferenceLogConfig.model_validate(monitor["inference_log"])
    for field in monitor["inference_log"]:  # what Lakehouse Monitoring is told is what conf/ says
        assert getattr(profile, field) == getattr(conf.monitor.inference_log, field), field
    assert monitor.get("slicing_exprs", []) == list(conf.monitor.slicing_exprs)
    drift_table = f"{home}.{monitor['table_name'].rsplit('.', 1)[1]}_drift_metrics"  # Lakehouse Monitoring's name
    assert drift_table == conf.monitor.drift_metrics_table

    retrain = res["jobs"]["retraining_job"]
    assert retrain["trigger"]["table_update"]["table_names"] == [drift_table]
    params = {p["name"]: p["default"] for p in retrain["parameters"]}
    assert params["model_name"] == f"{home}.{model['name']}"
    notebooks = [t["notebook_task"] for t in retrain["tasks"] if "notebook_task" in t]
    assert notebooks and all(nb["base_parameters"]["overrides"] == f"project.experiment_name={exp}" for nb in notebooks)
    assert {"level": "CAN_MANAGE_RUN", "service_principal_name": CLI_VARS["webhook_principal"]} in retrain["permissions"]

    mon_job = jobs.JobSettings.from_dict(res["jobs"]["monitor_job"])
    assert {p.name: p.default for p in mon_job.parameters}["monitor_engine"] in ("lakehouse", "driftgate")
    for job in (retrain, res["jobs"]["monitor_job"]):
        cluster = job["job_clusters"][0]["new_cluster"]
        assert cluster["spark_version"] == values["spark_version"] and cluster["node_type_id"] == values["node_type_id"]

    alert = res["alerts"]["drift_alert"]
    if hasattr(sql, "AlertV2"):  # databricks-sdk 0.49 (DBR 17.3 LTS ML) predates the v2 alert type
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
    from tests.dbutils_stub import run_notebook

    notebook = REPO / "notebooks" / "refresh_monitor.py"
    widgets = {"conf_dir": str(REPO / "conf"), "env": "demo", "overrides": f"workspace.root={root}"}
    values: dict = {}
    run_notebook(notebook, widgets | {"monitor_engine": "driftgate"}, "monitor", values)
    assert ws.tables.exists(settings.monitor.drift_metrics_table)
    assert values[("monitor", "monitor")]["table"] == settings.monitor.table_name
    with pytest.raises(ValueError, match="monitor_engine"):
        run_notebook(notebook, widgets | {"monitor_engine": "evidently"}, "monitor", values)


@pytest.mark.spark
def test_the_monitor_notebook_runs_driftgates_engine_on_the_session_it_is_given(spark, tmp_path):
    """The monitor job's notebook as a cluster runs it: the notebook's ``spark`` in, ``monitor.engine:
    spark``. Its metric rows equal the embedded engine's on the same world. Under `make
    test-runtimes` this is the runtime's Spark version, classic or (serverless) Spark Connect."""
    from tests.dbutils_stub import run_notebook
    from tests.monitor_world import light_workspace, write_world
    from tests.spark_checks import _close, _key, _rows

    class Given:  # the notebook's session; records that the engine computed through it
        used: list[str] = []

        def __getattr__(self, attr):
            self.used.append(attr)
            return getattr(spark, attr)

    given = Given()
    notebook = REPO / "notebooks" / "refresh_monitor.py"
    stores = {}
    for engine in ("embedded", "spark"):
        root = tmp_path / engine
        ws = light_workspace(root)
        write_world(ws, days=3, rows_per_day=60)
        widgets = {"conf_dir": str(REPO / "conf"), "env": "demo", "monitor_engine": "driftgate",
                   "overrides": f"workspace.root={root};monitor.engine={engine}"}
        values: dict = {}
        run_notebook(notebook, widgets, "monitor", values, spark=given if engine == "spark" else None)
        assert values[("monitor", "monitor")]["mode"] == "full"
        stores[engine] = ws
    assert "read" in given.used  # not some other active session
    cfg = stores["spark"].settings.monitor
    for table in (cfg.profile_metrics_table, cfg.drift_metrics_table):
        embedded, sparked = (_rows(stores[e].tables, table, cfg) for e in ("embedded", "spark"))
        assert len(embedded) == len(sparked) > 20
        for a, b in zip(embedded, sparked):
            _close(a, b, _key(cfg, a))


def test_native_monitor_refresh_waits_for_the_documented_states(httpserver):
    """POST .../monitor/refreshes queues, GET .../refreshes/{id} polls (Databricks REST reference shapes)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from driftgate.core.errors import MonitorError
    from driftgate.workspace.lakehouse_monitor import refresh_native_monitor

    table = "main.default.inference_log"
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


def test_the_vendored_schema_is_the_recorded_cli_file():
    import hashlib

    source = yaml.safe_load((SCHEMA.parent / "databricks-bundle-schema.source").read_text())
    assert source["url"].endswith(f"/{source['commit']}/{source['path']}")
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == source["sha256"]
    props = json.loads(SCHEMA.read_text())["$defs"]["github.com"]["databricks"]["cli"]["bundle"]["config.Resources"]
    resources = (props.get("oneOf") or [props])[0]["properties"]
    assert {"experiments", "registered_models", "quality_monitors", "alerts", "jobs"} <= set(resources)
