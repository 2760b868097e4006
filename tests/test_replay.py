"""Replaying history from the CLI: --as-of, and a gate that records nothing."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from driftgate.cli import app
from driftgate.gating.testing import day, drift_rows, profile_rows

REPO = Path(__file__).resolve().parents[1]


def _tables(ws):
    feats = ["tenure_months", "usage_gb", "age"]
    ws.tables.write(ws.settings.monitor.drift_metrics_table,
                    drift_rows(12, feats, lambda d, c: 0.7 if d >= 8 else 0.02), mode="overwrite")
    ws.tables.write(ws.settings.monitor.profile_metrics_table, profile_rows(12), mode="overwrite")


def test_gate_as_of_no_record_replays_history_and_writes_nothing(ws):
    from driftgate.gating.evaluate import decisions_table
    from driftgate.workspace.audit import events_table

    _tables(ws)
    sets = ["--conf", str(REPO / "conf"), "--env", "demo", "--set", f"workspace.root={ws.root}"]
    runs_before = len(list((ws.root / "mlruns").glob("*"))) if (ws.root / "mlruns").exists() else 0
    late = CliRunner().invoke(app, ["gate", *sets, "--json", "--no-record"])
    assert late.exit_code == 0, late.output
    assert json.loads(late.output)["status"] == "STALE"  # today the 2026 history is old
    when = (day(12) + timedelta(hours=2)).isoformat()
    out = CliRunner().invoke(app, ["gate", *sets, "--as-of", when, "--json", "--no-record"])
    assert out.exit_code == 0, out.output
    decision = json.loads(out.output)
    assert decision["status"] == "EXCEEDED" and decision["evaluated_at"].startswith("2026-06-13")
    assert not ws.tables.exists(decisions_table(ws)) and not ws.tables.exists(events_table(ws))
    from mlflow import MlflowClient

    client = MlflowClient(ws.tracking_uri)
    exp = client.get_experiment_by_name(ws.settings.project.experiment_name)
    assert exp is None or not client.search_runs([exp.experiment_id])
    assert not (ws.root / "task_values").exists() or not any((ws.root / "task_values").rglob("*.json"))
    # Recording (the default) writes all three.
    rec = CliRunner().invoke(app, ["gate", *sets, "--as-of", when, "--json"])
    assert rec.exit_code == 0 and ws.tables.exists(decisions_table(ws)) and ws.tables.exists(events_table(ws))
    assert runs_before == 0


def test_status_as_of_shows_the_gate_at_that_time_without_recording(ws):
    from driftgate.gating.evaluate import decisions_table

    _tables(ws)
    sets = ["--conf", str(REPO / "conf"), "--env", "demo", "--set", f"workspace.root={ws.root}"]
    out = CliRunner().invoke(app, ["status", *sets, "--json", "--as-of", (day(12) + timedelta(hours=2)).isoformat()])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["gate_as_of"]["status"] == "EXCEEDED"
    assert not ws.tables.exists(decisions_table(ws))


def test_a_bad_as_of_is_one_line():
    out = CliRunner().invoke(app, ["gate", "--env", "demo", "--as-of", "yesterday"])
    assert out.exit_code == 1 and "--as-of: must be an ISO 8601 time" in out.output
