"""Fault injection: ``driftgate serve`` killed (SIGKILL) during a local launch, then restarted."""
from __future__ import annotations

import signal
import sqlite3
import time

import httpx

from driftgate.triggers.webhook.service import ALERT_PATH
from tests.webhook_support import start_serve, stop_serve, template_body, webhook_settings

JSON = {"Content-Type": "application/json"}


def _rows(root) -> dict[str, dict]:
    with sqlite3.connect(root / "webhook_queue.db") as conn:
        conn.row_factory = sqlite3.Row
        return {r["run_key"]: dict(r) for r in conn.execute("SELECT * FROM requests WHERE action = 'launch'")}


def _running_runs(ws) -> list:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(ws.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(experiments, "attributes.status = 'RUNNING'") if experiments else []


def test_a_local_launch_killed_mid_run_is_recorded_failed_after_restart(tmp_path):
    from driftgate.workspace import open_workspace
    from driftgate.workspace.audit import read_events

    root = tmp_path / ".driftgate"
    # The job checks the inference-table contract before its gate: give it a served log to check.
    from tests.monitor_data import inference_log

    seed = open_workspace(webhook_settings(tmp_path))
    seed.tables.write(seed.settings.project.inference_table, inference_log(1, rows_per_day=20), mode="overwrite")
    # The job's own gate is the only one (webhook.gate=job), so the kill lands inside the local launch,
    # after the gate's MLflow run was created and before it was ended.
    sets = ("--set", "webhook.gate=job", "--set", "webhook.poll_seconds=0.1")
    proc, base = start_serve(root, *sets, env_extra={"DRIFTGATE_FAULT": "gate.mlflow_run"})
    try:
        keys = []
        for alert in ("first", "second", "third"):
            try:
                answer = httpx.post(base + ALERT_PATH, content=template_body(alert_id=alert), headers=JSON, timeout=10)
            except httpx.TransportError:
                break  # killed while answering: this alert was never acknowledged
            if answer.status_code != 202:
                break  # the process may already be dead: only acknowledged alerts count
            keys.append(answer.json()["run_key"])
        proc.wait(120)
    finally:
        stop_serve(proc)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert keys, "no alert was acknowledged before the kill"
    ws = open_workspace(webhook_settings(tmp_path))
    killed = _rows(root)[keys[0]]
    assert (killed["status"], killed["note"]) == ("taken", "launching")
    assert [r.data.tags["driftgate.run_key"] for r in _running_runs(ws)] == [keys[0]]

    proc, base = start_serve(root, *sets)
    try:
        deadline = time.monotonic() + 120
        while any(r["status"] != "done" for r in _rows(root).values()):
            assert proc.poll() is None and time.monotonic() < deadline, "the restarted service did not finish"
            time.sleep(0.3)
        health = httpx.get(base + "/healthz", timeout=5).json()
    finally:
        stop_serve(proc)

    rows = _rows(root)
    assert set(keys) <= set(rows)
    first = rows[keys[0]]
    assert first["outcome"] == "failed" and "died" in first["note"] and "ended as FAILED" in first["note"]
    # Every acknowledged alert was run, covered by a run whose gate came after it, or recorded failed.
    assert all(rows[k]["outcome"] in ("launched", "skipped", "failed") for k in keys)
    assert _running_runs(ws) == []
    assert health["stuck"] == [] and health["launching"] == []
    orphaned = [e for e in read_events(ws, ["launch"], limit=50) if e["status"] == "orphaned"]
    assert [e["run_key"] for e in orphaned] == [keys[0]]
