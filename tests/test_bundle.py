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

REPO = Path(__file__).resolve().parent.parent
SCHEMA = Path(__file__).parent / "fixtures" / "databricks-bundle-schema.json"
BUNDLE_FILES = [REPO / "databricks.yml", *sorted((REPO / "resources").glob("*.yml"))]


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


def _resolve(obj, target="prod"):
    """Substitute ${var.*} (target overrides, then defaults) and the bundle's own references."""
    root = _load(REPO / "databricks.yml")
    values = {k: v.get("default") for k, v in root["variables"].items()}
    values.update(root["targets"][target].get("variables", {}))
    known = {"bundle.target": target, "bundle.name": root["bundle"]["name"],
             "workspace.file_path": f"/Workspace/Shared/.bundle/driftgate/{target}/files"}

    def sub(m):
        ref = m[1]
        if ref.startswith("var."):
            return str(values[ref[4:]])
        return known[ref]

    text = json.dumps(obj)
    resolved = re.sub(r"\$\{([a-z_.]+)\}", sub, text)
    assert "${" not in resolved, resolved
    return json.loads(resolved)


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
    job = _resolve(_job()[0], "dev")
    params = {p["name"]: p["default"] for p in job["parameters"]}
    s = settings_for_task(params | {"overrides": f"workspace.root={tmp_path}"}, conf_dir=REPO / "conf", env="local")
    assert s.project.model_name == "dev.default.model"
    assert s.monitor.drift_metrics_table == "dev.default.inference_log_drift_metrics"
    assert s.project.audit_schema == "dev.default" and s.training.table.startswith("dev.default.")
    assert s.gate.profile == "default"


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
