"""MLflow runs a data scientist can read: under ``mlflow run`` each entry point logs into the
project's own run, a refused promotion is a FINISHED outcome, the experiment is a training one."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from driftgate.workspace.context import (EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, MLPROJECT_RUN_TAG, nest_stage_runs,
                                         open_stage_run)
from tests.conftest import REPO


_PROCESS_ENV = ("DRIFTGATE_MLPROJECT_RUN_ID", "DRIFTGATE_MLPROJECT_ADOPTED_RUN_ID")


@pytest.fixture
def project_run(ws, monkeypatch):
    """What ``mlflow run`` hands its command: a RUNNING run in the project experiment, as MLFLOW_RUN_ID."""
    for key in _PROCESS_ENV:  # recorded, so whatever a test sets is undone after it
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    client = MlflowClient(ws.tracking_uri)
    run = client.create_run(ws.experiment_id(), tags={"mlflow.project.entryPoint": "promote"})
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    return client, run.info.run_id


def _runs(client, ws):
    return client.search_runs([ws.experiment_id()])


def test_the_experiment_is_a_model_training_experiment(ws):
    client = MlflowClient(ws.tracking_uri)
    assert client.get_experiment(ws.experiment_id()).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    other = client.create_experiment("made-by-mlflow-run")  # e.g. `mlflow run --experiment-name` created it
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(other).tags
    ws.experiment_id("made-by-mlflow-run")
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_the_first_stage_run_adopts_the_project_run_and_only_the_first(ws, project_run):
    client, rid = project_run
    assert open_stage_run(ws, "gate-ok", {"driftgate.stage": "gate"}) == rid
    run = client.get_run(rid)
    assert run.info.run_name == "gate-ok" and run.data.tags["driftgate.stage"] == "gate"
    second = open_stage_run(ws, "shadow v2 vs v1", {"driftgate.stage": "shadow"})
    assert second != rid and client.get_run(second).data.tags[MLPROJECT_RUN_TAG] == rid


def test_several_stage_runs_nest_under_the_project_run(ws, project_run):
    client, rid = project_run
    assert nest_stage_runs() == rid
    first = open_stage_run(ws, "gate-ok", {"driftgate.stage": "gate"})
    tags = client.get_run(first).data.tags
    assert first != rid and tags["mlflow.parentRunId"] == rid and tags[MLPROJECT_RUN_TAG] == rid


def test_promote_logs_into_the_project_run_and_a_refusal_ends_finished_with_exit_code_3(ws, project_run):
    from driftgate.cli import app

    client, rid = project_run
    result = CliRunner().invoke(app, ["promote", "--conf", str(REPO / "conf"), "--set", f"workspace.root={ws.root}"])
    assert result.exit_code == 3, result.output  # not promoted: an outcome (errors are 1)
    assert "nothing to promote" in result.output
    run = client.get_run(rid)
    assert run.info.status == "FINISHED" and run.data.tags["driftgate.promotion.status"] == "skipped"
    assert "nothing to promote" in run.data.tags["driftgate.promotion.reason"]
    assert [r.info.run_id for r in _runs(client, ws)] == [rid]  # no wrapper run beside a stage run


def test_the_promote_entry_point_maps_a_refusal_to_success_and_keeps_errors(tmp_path):
    import yaml

    spec = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["promote"]
    command = spec["command"].format(env="local", conf="conf", overrides="''")
    for code, expected in ((0, 0), (3, 0), (1, 1), (2, 2)):
        stub = tmp_path / "driftgate"
        stub.write_text(f"#!/bin/sh\nexit {code}\n")
        stub.chmod(0o755)
        env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
        assert subprocess.run(["bash", "-c", command], env=env).returncode == expected, code


def test_a_resumed_study_leaves_its_summary_in_the_project_run(ws, project_run, monkeypatch):
    from driftgate import tasks, training
    from driftgate.training.tuner import TuneResult

    client, rid = project_run
    study_parent = client.create_run(ws.experiment_id()).info.run_id

    def resumed(ws, *, n_trials=None, timeout=None, progress=None):
        nest_stage_runs()  # what the tuner does when the study already has its parent run
        return TuneResult("driftgate-tuning.hgb", "sqlite:///optuna.db", "roc_auc", "maximize", 0.91,
                          {"learning_rate": 0.05}, 7, 12, 11, 1, 0, 4, study_parent)

    monkeypatch.setattr(training, "tune", resumed)
    tasks.tune(ws, n_trials=12)
    run = client.get_run(rid)
    assert run.info.status == "FINISHED" and run.data.tags["driftgate.study_parent_run_id"] == study_parent
    assert run.data.metrics["n_new"] == 4 and run.data.metrics["best_roc_auc"] == 0.91
    assert run.data.tags["best.learning_rate"] == "0.05"


def test_the_monitor_task_logs_the_refresh(ws):
    from driftgate import tasks
    from tests.monitor_world import write_world

    write_world(ws, days=6)
    result = tasks.monitor(ws)
    client = MlflowClient(ws.tracking_uri)
    [run] = client.search_runs([ws.experiment_id()], "tags.`driftgate.stage` = 'monitor'")
    assert run.info.status == "FINISHED" and run.data.tags["driftgate.monitor.mode"] == result.mode
    assert run.data.metrics["profile_rows"] == result.profile_rows > 0
    assert tasks.upstream(ws, tasks.MONITOR, "monitor", {})["source_version"] == result.source_version


def _mlflow_run(ws, entry: str, **params: str) -> None:
    """``mlflow run <repo> -e <entry> --env-manager local`` against the workspace's tracking store."""
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    if not mlflow_bin.exists() or shutil.which("bash") is None:
        pytest.skip("mlflow CLI not installed in this interpreter's environment")
    env = {**os.environ, "MLFLOW_TRACKING_URI": ws.tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", *_PROCESS_ENV):
        env.pop(key, None)
    ws.experiment_id()
    args = [arg for k, v in {"env": ws.settings.env, "overrides": f"workspace.root={ws.root}", **params}.items() for arg in ("-P", f"{k}={v}")]
    out = subprocess.run([str(mlflow_bin), "run", str(REPO), "-e", entry, "--env-manager", "local",
                          "--experiment-name", ws.settings.project.experiment_name, *args],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.slow
def test_mlflow_run_of_an_entry_point_leaves_one_readable_run(ws):
    """A real ``mlflow run . -e evaluate_drift``: the gate logs into the project run itself."""
    from driftgate.gating.testing import day, drift_rows, profile_rows

    feats = ["tenure_months", "usage_gb", "age"]
    drifting = drift_rows(12, feats, lambda d, c: 0.7 if d >= 8 else 0.02)
    ws.tables.write(ws.settings.monitor.drift_metrics_table, drifting, mode="overwrite")
    ws.tables.write(ws.settings.monitor.profile_metrics_table, profile_rows(12), mode="overwrite")
    _mlflow_run(ws, "evaluate_drift", now=(day(12) + timedelta(hours=2)).isoformat())
    client = MlflowClient(ws.tracking_uri)
    [run] = _runs(client, ws)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "evaluate_drift"
    assert run.data.tags["driftgate.gate.status"] == "EXCEEDED" and run.info.run_name == "gate-exceeded"
    assert run.data.metrics["gate.drift_exceeded"] == 1.0


@pytest.mark.slow
def test_mlflow_run_train_logs_the_model_in_its_run_and_sets_the_challenger(ws):
    """``mlflow run . -e train``: one run holding the model (no parameter clash with the
    trainer's), and the version it registered is the challenger a following ``-e shadow`` uses."""
    from tests.training_world import world

    world(ws, days=30, rows_per_day=40)
    _mlflow_run(ws, "train")
    client = MlflowClient(ws.tracking_uri)
    [run] = _runs(client, ws)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "train"
    assert run.data.params["estimator"] == ws.settings.training.estimator and "test_roc_auc" in run.data.metrics
    version = run.data.tags["driftgate.model_version"]
    assert ws.registry.alias_version(ws.settings.project.model_name, "challenger") == version
