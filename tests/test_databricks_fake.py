"""driftgate's Databricks calls against an offline workspace (tests/databricks_fake.py): a real
local HTTP server, driven through the real databricks-sdk WorkspaceClient and MLflow's
``databricks`` tracking and ``databricks-uc`` registry stores."""
from __future__ import annotations

import pytest

from driftgate.core.errors import RegistryError
from driftgate.workspace.registry import MlflowRegistry
from tests.databricks_fake import UC, dbx, on_databricks  # noqa: F401  (fixture)

MODEL = "main.driftgate.churn_model"


@pytest.fixture
def dws(ws, dbx):
    """The test workspace with Databricks' MLflow: tracking ``databricks``, registry ``databricks-uc``."""
    return on_databricks(ws, model_name=MODEL)


def _paths(fake, method=None):
    return [p for m, p, _ in fake.requests if method in (None, m)]


def test_the_experiment_folder_is_made_before_the_experiment(dws, dbx):
    exp_id = dws.experiment_id()
    paths = _paths(dbx)
    assert paths.index("/api/2.0/workspace/mkdirs") < paths.index("/api/2.0/mlflow/experiments/create")
    assert ("POST", "/api/2.0/workspace/mkdirs", {"path": "/Shared/driftgate/prod"}) in dbx.requests
    assert dbx.experiments["/Shared/driftgate/prod/retraining"]["experiment_id"] == exp_id
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in \
        dbx.experiments["/Shared/driftgate/prod/retraining"]["tags"]
    assert dws.experiment_id() == exp_id  # found by name the second time: nothing created again
    assert _paths(dbx).count("/api/2.0/mlflow/experiments/create") == 1


def test_without_the_folder_the_workspace_refuses_the_experiment(dbx):
    """The fake is not lenient: the call that mkdirs prevents fails here."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="does not exist"):
        MlflowClient("databricks").create_experiment("/Shared/nowhere/exp")


def test_aliases_versions_and_tags_through_the_uc_registry(dbx):
    dbx.add_version(MODEL, "1", run_id="r1")
    dbx.add_version(MODEL, "2", run_id="r2")
    reg = MlflowRegistry("databricks", "databricks-uc")
    assert reg.alias_version(MODEL, "champion") is None  # RESOURCE_DOES_NOT_EXIST: unset
    reg.set_alias(MODEL, "champion", "1")
    reg.set_alias(MODEL, "challenger", "2")
    assert (reg.alias_version(MODEL, "champion"), reg.alias_version(MODEL, "challenger")) == ("1", "2")
    info = reg.get_version(MODEL, "2")
    assert (info.run_id, info.aliases) == ("r2", ("challenger",))
    reg.set_tag(MODEL, "2", "driftgate_shadow_status", "PASS")
    assert reg.get_version(MODEL, "2").tags == {"driftgate_shadow_status": "PASS"}
    reg.delete_alias(MODEL, "challenger")
    assert reg.alias_version(MODEL, "challenger") is None
    with pytest.raises(RegistryError, match="version 9"):
        reg.set_alias(MODEL, "champion", "9")
    assert ("POST", f"{UC}/registered-models/alias", {"name": MODEL, "alias": "champion", "version": "1"}) \
        in dbx.requests


def test_a_promotion_moves_uc_aliases_check_then_set(dws, dbx):
    """The promote stage on Databricks' registry: previous_champion, champion, challenger removed."""
    from driftgate import promotion
    from driftgate.promotion import ShadowResult
    from driftgate.promotion.policy import Check

    for v in ("1", "2"):
        dbx.add_version(MODEL, v)
    dbx.aliases[(MODEL, "champion")] = "1"
    promotion.set_challenger(dws, "2")
    passed = ShadowResult(status="PASS", model_name=MODEL, champion_version="1", challenger_version="2",
                          metrics={"delta_roc_auc": 0.05}, reasons=("better",), checks=(Check("roc_auc", True, "ok"),))
    outcome = promotion.promote(dws, passed)
    assert outcome.promoted, outcome.reason
    assert {k[1]: v for k, v in dbx.aliases.items()} == {"champion": "2", "previous_champion": "1"}
    assert dbx.versions[(MODEL, "2")]["tags"]  # the decision is tagged on the version


def test_the_job_launcher_on_the_jobs_api(dbx):
    """The webhook engineer's launcher, checked on the documented run-now / runs/submit shapes:
    the run key is the idempotency token, a second launch of the same key is the same run."""
    from databricks.sdk import WorkspaceClient

    from driftgate.workspace.jobs import DatabricksJobLauncher, LaunchRequest

    client = WorkspaceClient()
    launcher = DatabricksJobLauncher(client, job_id=42, job_parameters={"catalog": "main"})
    request = LaunchRequest("alert:a1:2026-06-01", "webhook", {"run_key": "alert:a1:2026-06-01"})
    first, again = launcher.launch(request), launcher.launch(request)
    assert first.run_id == again.run_id and len(dbx.job_runs) == 1
    body = dbx.job_runs[first.run_id]["request"]
    assert body == {"job_id": 42, "idempotency_token": "alert:a1:2026-06-01", "queue": {"enabled": True},
                    "job_parameters": {"catalog": "main", "run_key": "alert:a1:2026-06-01"}}
    submit = DatabricksJobLauncher(client, submit_run={"tasks": [{"task_key": "evaluate_drift", "notebook_task": {
        "notebook_path": "/Workspace/driftgate/notebooks/evaluate_drift"}}], "timeout_seconds": 600})
    run = submit.launch(LaunchRequest("delta:t@v3", "table_update"))
    sent = dbx.job_runs[run.run_id]["request"]
    assert sent["tasks"][0]["notebook_task"]["notebook_path"].endswith("evaluate_drift")
    assert (sent["timeout_seconds"], sent["idempotency_token"]) == (600, "delta:t@v3")


def test_the_launchers_retries_end_at_the_budget(dbx, monkeypatch):
    """A Jobs API answering 503 forever: the SDK's retries stop at retry_timeout_seconds (the launcher
    builds its client from the environment with the budget; a client passed in keeps its own, 300 s)."""
    import time

    from werkzeug import Response

    from driftgate.workspace.jobs import DatabricksJobLauncher, LaunchRequest, TransientLaunchError

    monkeypatch.setattr(dbx, "run_now", lambda a: Response(
        '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}', 503, content_type="application/json"))
    launcher = DatabricksJobLauncher(job_id=42, retry_timeout_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(TransientLaunchError):
        launcher.launch(LaunchRequest("alert:busy", "webhook"))
    assert time.monotonic() - started < 10 and _paths(dbx).count("/api/2.2/jobs/run-now") >= 2


def test_the_promote_task_on_databricks_mlflow(dws, dbx):
    """tasks.promote as the Databricks promote task runs it (task values from the shadow task):
    the aliases move on UC, and its outcome run with the result artifact lands in the workspace."""
    import json

    from driftgate import tasks
    from driftgate.promotion import ShadowResult
    from driftgate.promotion.policy import Check

    for v in ("1", "2"):
        dbx.add_version(MODEL, v)
    dbx.aliases[(MODEL, "champion")] = "1"
    dbx.aliases[(MODEL, "challenger")] = "2"
    passed = ShadowResult(status="PASS", model_name=MODEL, champion_version="1", challenger_version="2",
                          metrics={"delta_roc_auc": 0.05}, reasons=("better",), checks=(Check("roc_auc", True, "ok"),))
    dws.task_values.for_task(tasks.SHADOW).set("shadow", tasks.as_value(passed))
    result = tasks.promote(dws, job=tasks.JobContext(trigger="table_update", run_key="delta:t@v3"))
    assert result.promoted and {k[1]: v for k, v in dbx.aliases.items()} == {"champion": "2", "previous_champion": "1"}
    [run] = dbx.runs.values()
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == "promote v2: promoted"
    assert {"key": "driftgate.run_key", "value": "delta:t@v3"} in run["data"]["tags"]
    [(path, body)] = [(p, b) for p, b in dbx.files.items() if p.endswith("promotion/result.json")]
    assert path.startswith(f"/WorkspaceInternal/Mlflow/Artifacts/{run['info']['experiment_id']}/Runs/")
    assert json.loads(body)["status"] == "promoted"


def test_the_evaluate_task_on_databricks_mlflow(dws, dbx):
    """tasks.evaluate (the job's first task) against Databricks MLflow and UC: recovery reads the
    UC aliases, the gate's decision run and its artifacts land in the workspace experiment (made
    with its folder), and the task values are published for the condition task."""
    import json

    from driftgate import tasks

    dbx.add_version(MODEL, "1")
    dbx.aliases[(MODEL, "champion")] = "1"
    decision = tasks.evaluate(dws, job=tasks.JobContext(trigger="table_update", run_key="delta:t@v1"))
    values = dws.task_values.for_task(tasks.EVALUATE)
    assert values.get(tasks.EVALUATE, "champion") == "1" and values.get(tasks.EVALUATE, "run_key") == "delta:t@v1"
    assert values.get(tasks.EVALUATE, "drift_exceeded") is decision.drift_exceeded
    paths = _paths(dbx)
    assert paths.index("/api/2.0/workspace/mkdirs") < paths.index("/api/2.0/mlflow/experiments/create")
    assert f"{UC}/registered-models/alias" in paths  # recovery and the champion read UC aliases
    runs = [r for r in dbx.runs.values() if {"key": "driftgate.run_key", "value": "delta:t@v1"} in r["data"]["tags"]]
    assert runs and all(r["info"]["status"] == "FINISHED" for r in runs)
    [(path, body)] = [(p, b) for p, b in dbx.files.items() if p.endswith("gate/decision.json")]
    assert f"/Runs/{runs[0]['info']['run_id']}/" in path and json.loads(body)["status"] == decision.status
