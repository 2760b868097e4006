"""The local task graph and the Databricks notebook tasks do the same thing on the same world.

One demo world (champion serving drifted traffic, monitor refreshed) is copied twice. On one
copy :func:`driftgate.pipeline.run_retraining_job` runs; on the other the job's notebooks run
as plain Python in the bundle's task order, with a stub ``dbutils`` and the condition task
evaluated from ``resources/retraining_job.yml``. Task values, audit events, run keys and
aliases must agree.
"""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from driftgate.core.settings import load_settings
from driftgate.pipeline import run_retraining_job, start_demo
from driftgate.workspace import open_workspace
from driftgate.workspace.audit import read_events
from tests.conftest import REPO
from tests.dbutils_stub import run_notebook
from tests.test_end_to_end import SMALL

pytestmark = pytest.mark.slow

JOB_RUN_ID, COOLED_RUN_ID = "1001", "1002"
COOLDOWN = ("gate.retrain_cooldown=3 days",)
"""The second job run, an hour after the first, inside this cooldown: its branch is skipped."""
VOLATILE = {"decision_id", "run_id", "train.train_run_id", "train_run_id", "shadow_run_id", "shadow_id", "evaluated_at",
            "recorded_at", "mlflow_run_id", "event_id", "at"}


def _workspace(root, *extra):
    return open_workspace(load_settings(REPO / "conf", "demo", (*SMALL, f"workspace.root={root}", *extra)))


def _stable(value):
    """A task value or event without ids and clock times (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _condition(task: dict, values: dict) -> bool:
    """A Databricks condition task on task values: ``{{tasks.<t>.values.<k>}}`` OP right, as strings."""
    cond = task["condition_task"]
    ref = re.fullmatch(r"\{\{tasks\.(\w+)\.values\.(\w+)\}\}", cond["left"])
    left = values.get((ref[1], ref[2]))
    text = str(left).lower() if isinstance(left, bool) else str(left)
    assert cond["op"] == "EQUAL_TO"
    return text == cond["right"]


def _run_job_notebooks(root, as_of: datetime, job_run_id: str = JOB_RUN_ID, extra: tuple = ()) -> dict:
    """The bundle's tasks in order: notebooks with the stub, the condition task, outcome dependencies."""
    job = yaml.safe_load((REPO / "resources" / "retraining_job.yml").read_text())["resources"]["jobs"]["retraining_job"]
    params = {p["name"]: p["default"] for p in job["parameters"] if "${" not in str(p["default"])}
    widgets = {**params, "trigger": "table_update", "as_of": as_of.isoformat(), "conf_dir": str(REPO / "conf"),
               "env": "demo", "job_run_id": job_run_id, "overrides": "\n".join((*SMALL, f"workspace.root={root}", *extra))}
    values: dict = {}
    outcomes: dict[str, bool] = {}
    for task in job["tasks"]:
        deps = task.get("depends_on", [])
        if not all(d["task_key"] in outcomes and outcomes[d["task_key"]] == (d.get("outcome", "true") == "true")
                   for d in deps):
            outcomes[task["task_key"]] = False  # excluded: its dependency did not run or had the other outcome
            continue
        if "condition_task" in task:
            outcomes[task["task_key"]] = _condition(task, values)
            continue
        notebook = (REPO / "resources" / task["notebook_task"]["notebook_path"]).resolve()
        run_notebook(notebook, widgets, task["task_key"], values)
        outcomes[task["task_key"]] = True
    return values


def _local_values(root, job_run_id: str = JOB_RUN_ID) -> dict:
    import json

    folder = root / "task_values" / job_run_id
    return {(path.stem, key): value for path in sorted(folder.glob("*.json"))
            for key, value in json.loads(path.read_text()).items()}


def _events(ws, after: datetime):
    rows = [e for e in read_events(ws, limit=1000) if e["at"] > after]
    return [(e["kind"], e["status"], e["subject"], e["run_key"], _stable(e["details"]))
            for e in sorted(rows, key=lambda e: e["at"])]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    base = tmp_path_factory.mktemp("same-world")
    local_root, notebook_root = base / "local" / ".driftgate", base / "notebooks" / ".driftgate"
    ws = _workspace(local_root)
    start = start_demo(ws, say=lambda _: None, today=datetime(2026, 9, 1, tzinfo=timezone.utc))
    shutil.copytree(local_root, notebook_root)
    built = datetime.now(timezone.utc)
    local = _workspace(local_root)
    result = run_retraining_job(local, trigger="table_update", now=start.as_of, job_run_id=JOB_RUN_ID)
    values = _run_job_notebooks(notebook_root, start.as_of)
    return result, (local, _local_values(local_root)), (_workspace(notebook_root), values), built


@pytest.fixture(scope="module")
def cooled(both):
    """A second job run on both copies, inside gate.retrain_cooldown of the first one's retrain."""
    _, (local, _), (notebook_ws, _), _ = both
    later = datetime.fromisoformat(_job_run(local)["details"]["as_of"]) + timedelta(hours=1)
    result = run_retraining_job(_workspace(local.root, *COOLDOWN), trigger="table_update", now=later,
                                job_run_id=COOLED_RUN_ID)
    values = _run_job_notebooks(notebook_ws.root, later, COOLED_RUN_ID, COOLDOWN)
    return result, _local_values(local.root, COOLED_RUN_ID), values


def _job_run(ws) -> dict:
    return read_events(ws, ["job_run"], limit=1)[0]


def test_the_job_ran_its_whole_branch(both):
    result, *_ = both
    assert result.branch == "retrain" and result.train.registered and result.shadow is not None


def test_same_task_values(both):
    _, (_, local), (_, notebooks), _ = both
    assert set(local) == set(notebooks)
    assert _stable({f"{t}.{k}": v for (t, k), v in local.items()}) == \
        _stable({f"{t}.{k}": v for (t, k), v in notebooks.items()})
    assert {"registered", "model_version", "shadow_status", "promoted"} <= {key for _, key in local}


def test_same_audit_events_and_run_keys(both):
    result, (local_ws, _), (notebook_ws, _), built = both
    local, notebooks = _events(local_ws, built), _events(notebook_ws, built)
    assert [e[:4] for e in local] == [e[:4] for e in notebooks]
    assert local == notebooks
    kinds = [e[0] for e in local]
    assert kinds[0] == "gate_decision" and kinds[-1] == "job_run" and "train" in kinds
    assert {e[3] for e in local if e[0] in ("gate_decision", "train", "job_run")} == {result.run_key}
    drift_table = local_ws.settings.monitor.drift_metrics_table
    assert result.run_key == f"delta:{drift_table}@v{local_ws.tables.version(drift_table)}"  # the watcher's key


def test_same_aliases(both):
    from driftgate import promotion

    _, (local_ws, _), (notebook_ws, _), _ = both
    assert promotion.aliases(local_ws) == promotion.aliases(notebook_ws)


def test_a_run_inside_the_cooldown_skips_the_branch_on_both(both, cooled):
    """gate.retrain_cooldown is the evaluate task's: the notebooks' condition task skips the branch too."""
    _, (local_ws, _), (notebook_ws, _), _ = both
    result, local, notebooks = cooled
    assert result.branch == "skip" and result.decision_status == "EXCEEDED" and "h left" in result.notes[0]
    assert _stable({f"{t}.{k}": v for (t, k), v in local.items()}) == \
        _stable({f"{t}.{k}": v for (t, k), v in notebooks.items()})
    assert {t for t, _ in notebooks} == {"evaluate_drift"} and notebooks[("evaluate_drift", "drift_exceeded")] is False
    for ws in (local_ws, notebook_ws):
        assert _job_run(ws)["details"]["branch"] == "skip"
        assert read_events(ws, ["job_cooldown"], limit=1)[0]["run_key"] == _job_run(ws)["run_key"]
