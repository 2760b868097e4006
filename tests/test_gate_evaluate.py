"""gating.evaluate against real local Delta tables and MLflow; config-load validation; the CLI."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from mlflow import MlflowClient

from driftgate.core.settings import load_settings
from driftgate.core.errors import ConfigError
from driftgate.gating import evaluate, read_decisions
from driftgate.gating.testing import day, drift_rows, profile_rows

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FEATURES = ["tenure_months", "monthly_charges", "usage_gb", "age", "plan", "region"]
NOW = day(12) + timedelta(hours=3)


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory):
    """One local workspace (one MLflow store) for the module: creating the store is the slow part."""
    from driftgate.workspace import open_workspace

    root = tmp_path_factory.mktemp("gate") / ".driftgate"
    return open_workspace(load_settings(REPO_ROOT / "conf", "demo", (f"workspace.root={root}",)))


@pytest.fixture
def ws(base_ws, request):
    """A workspace of its own per test: own schema for every table, own task values, shared MLflow."""
    import dataclasses
    import re

    from driftgate.workspace.task_values import LocalTaskValues

    schema = "main.t_" + re.sub(r"\W", "_", request.node.name)[:40]
    settings = load_settings(REPO_ROOT / "conf", "demo", (
        f"workspace.root={base_ws.root}", f"project.audit_schema={schema}", f"monitor.output_schema_name={schema}"))
    return dataclasses.replace(base_ws, settings=settings,
                               task_values=LocalTaskValues(base_ws.root, request.node.name[:40], "driftgate"))


def write_metrics(ws, drifted_from: int | None, days: int = 12):
    mon = ws.settings.monitor

    def psi(d, c):
        return 0.6 if drifted_from is not None and d >= drifted_from and c in FEATURES[:3] else 0.03

    ws.tables.write(mon.drift_metrics_table, drift_rows(days, FEATURES + ["prediction"], psi), mode="overwrite")
    ws.tables.write(mon.profile_metrics_table, quality_rows(days), mode="overwrite")


def quality_rows(days: int, auc: float = 0.8):
    """Profile rows with ROC AUC per day and the baseline's (what the default quality rule reads)."""
    import pyarrow as pa

    return pa.concat_tables([profile_rows(days, f1=0.8, extra=lambda d: {"roc_auc_score": auc}),
                             profile_rows([0], log_type="BASELINE", extra=lambda d: {"roc_auc_score": 0.82})])


def test_evaluate_records_and_publishes(ws):
    write_metrics(ws, drifted_from=8)
    d = evaluate(ws, ws.settings.gate, now=NOW, trigger="table_update", run_key="delta:x@v3")
    assert d.status == "EXCEEDED" and d.drift_exceeded
    psi = next(r for r in d.reasons if r.name == "numeric_drift_psi")
    assert psi.status == "EXCEEDED" and psi.fired_columns == ["monthly_charges", "tenure_months", "usage_gb"]
    # task values: what the condition task and the local runner read
    assert ws.task_values.get(ws.task_values.task_key, "drift_exceeded") is True
    published = ws.task_values.get(ws.task_values.task_key, "decision")
    assert published["decision_id"] == d.decision_id and published["status"] == "EXCEEDED"
    # decisions table
    rows = read_decisions(ws)
    assert len(rows) == 1 and rows[0]["status"] == "EXCEEDED" and rows[0]["run_key"] == "delta:x@v3"
    assert rows[0]["rules_exceeded"] == "numeric_drift_psi"
    assert rows[0]["decision"]["decision_id"] == d.decision_id
    # MLflow run with tags and the decision artifact
    client = MlflowClient(ws.tracking_uri)
    run = client.get_run(rows[0]["mlflow_run_id"])
    assert run.data.tags["driftgate.gate.status"] == "EXCEEDED"
    assert run.data.tags["driftgate.gate.drift_exceeded"] == "true"
    assert run.data.tags["driftgate.trigger"] == "table_update"
    path = client.download_artifacts(run.info.run_id, "gate/decision.json")
    assert json.loads(open(path).read())["decision_id"] == d.decision_id
    # the drift-over-time chart of the table the gate read
    chart = client.download_artifacts(run.info.run_id, "monitoring/drift_over_time.png")
    assert open(chart, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # audit event
    from driftgate.workspace.audit import read_events

    ev = read_events(ws, ["gate_decision"])
    assert ev and ev[0]["status"] == "EXCEEDED" and ev[0]["details"]["decision_id"] == d.decision_id


def test_evaluate_ok_and_no_publish(ws):
    write_metrics(ws, drifted_from=None)
    d = evaluate(ws, ws.settings.gate, now=NOW, publish=False)
    assert d.status == "OK" and not d.drift_exceeded
    assert ws.task_values.get(ws.task_values.task_key, "drift_exceeded") is None
    assert read_decisions(ws)[0]["status"] == "OK"


def test_chart_is_optional_and_never_fails_the_decision(ws, monkeypatch):
    from driftgate.monitoring import report as monitoring_report
    write_metrics(ws, drifted_from=8)
    off = ws.settings.gate.model_copy(update={"log_chart": False})
    d_off = evaluate(ws, off, now=NOW, publish=False)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer gone")

    monkeypatch.setattr(monitoring_report, "rules_chart", broken)
    d_broken = evaluate(ws, ws.settings.gate, now=NOW, publish=False)
    assert d_off.status == d_broken.status == "EXCEEDED"
    client = MlflowClient(ws.tracking_uri)
    runs = {r["decision"]["decision_id"]: r["mlflow_run_id"] for r in read_decisions(ws)}
    for decision in (d_off, d_broken):
        files = {f.path for f in client.list_artifacts(runs[decision.decision_id])}
        assert files == {"gate"}, files  # decision.json only, no monitoring/ folder


def test_the_gate_chart_draws_each_rule_metric_with_its_threshold(tmp_path):
    """The chart logged with a decision plots what the rules read (PSI, JS, ROC AUC vs the baseline),
    not a fixed JS / KS pair against 0.1."""
    from driftgate.gating.config import GateConfig
    from driftgate.monitoring.report import _panel_series, rule_panels, rules_chart
    from driftgate.core.settings import Settings

    panels = rule_panels(GateConfig().effective_rules(), exclude=("predicted",))
    assert [(p.rule, p.metric, p.threshold, p.relative_to_baseline) for p in panels] == [
        ("numeric_drift_psi", "population_stability_index", 0.2, False),
        ("categorical_drift_js", "js_distance", 0.2, False),
        ("roc_auc_drop", "roc_auc_score", -0.05, True)]
    assert panels[0].exclude == ("predicted",) and panels[2].title.startswith("roc_auc_drop: roc_auc_score change")
    drift = drift_rows(4, ["x1", "predicted"], lambda d, c: 0.1 * d)
    series, _ = _panel_series(panels[0], drift.to_pylist())
    assert sorted(series) == ["x1"] and [v for _, v in sorted(series["x1"])] == [0.0, 0.1, 0.2, 0.30000000000000004]
    import pyarrow as pa
    from driftgate.gating.testing import PROFILE_SCHEMA

    profile = pa.concat_tables([profile_rows(4, extra=lambda d: {"roc_auc_score": 0.8 - 0.01 * d}),
                                profile_rows([0], log_type="BASELINE", extra=lambda d: {"roc_auc_score": 0.82})])
    series, baseline = _panel_series(panels[2], profile.cast(PROFILE_SCHEMA).to_pylist())
    assert baseline == 0.82 and len(series[":table"]) == 4
    out = rules_chart(drift, profile, Settings().monitor, panels, tmp_path / "chart.png")
    assert out.stat().st_size > 10_000


def test_chart_thresholds_come_from_the_rules():
    from driftgate.gating.config import GateConfig
    from driftgate.monitoring.report import chart_thresholds

    gate = GateConfig.model_validate({"rules": [
        {"name": "psi", "metric": "population_stability_index", "threshold": 0.25},
        {"name": "ks", "metric": "ks_test.statistic", "threshold": 0.15},
        {"name": "ks_p", "metric": "ks_test.pvalue", "op": "<", "threshold": 0.01},
        {"name": "f1", "table": "profile", "metric": "f1_score.macro", "op": "<", "threshold": 0.6},
    ]})
    assert chart_thresholds(gate.effective_rules()) == {"population_stability_index": 0.25, "ks_statistic": 0.15}


def test_missing_tables_are_insufficient_not_ok(ws):
    d = evaluate(ws, ws.settings.gate, now=NOW)
    assert d.status == "INSUFFICIENT_DATA"
    assert all("does not exist yet" in r.reason for r in d.reasons)
    assert ws.task_values.get(ws.task_values.task_key, "drift_exceeded") is False


def test_stale_metrics(ws):
    write_metrics(ws, drifted_from=8)
    d = evaluate(ws, ws.settings.gate, now=day(30))
    assert d.status == "STALE" and not d.drift_exceeded


def test_pushdown_reads_only_needed_rows(ws):
    """Rows of other models, drift types and old windows are not read; the verdict is the same."""
    from driftgate.gating.evaluate import read_metrics

    import pyarrow as pa

    mon = ws.settings.monitor
    noise = pa.concat_tables([
        drift_rows(12, FEATURES, lambda d, c: 0.9, model_id="7"),
        drift_rows(12, FEATURES, lambda d, c: 0.9, drift_type="CONSECUTIVE"),
        drift_rows(12, FEATURES, lambda d, c: 0.9, slice_key="senior", slice_value="true"),
        drift_rows(12, FEATURES, lambda d, c: 0.03),
    ])
    ws.tables.write(mon.drift_metrics_table, noise, mode="overwrite")
    ws.tables.write(mon.profile_metrics_table, quality_rows(12), mode="overwrite")
    frames = read_metrics(ws, ws.settings.gate, now=NOW)
    drift = frames["drift"]
    assert drift.num_rows > 0
    assert set(drift["drift_type"].to_pylist()) == {"BASELINE"}
    assert set(drift["model_id"].to_pylist()) == {"*"}
    assert all(w["start"] >= day(12) - timedelta(days=6) for w in drift["window"].to_pylist())
    assert "chi_squared_test" not in drift.column_names and "wasserstein_distance" not in drift.column_names
    # The profile read keeps the BASELINE row the quality rule compares with, however old it is.
    assert "BASELINE" in frames["profile"]["log_type"].to_pylist()
    assert evaluate(ws, ws.settings.gate, now=NOW).status == "OK"


def test_rule_naming_an_unknown_metric_fails_at_load(tmp_path):
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "driftgate.yml").write_text(
        "gate:\n  rules:\n    - name: ok\n      metric: js_distance\n"
        "    - name: typo\n      metric: population_stabilty_index\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(conf, "demo")
    msg = str(exc.value)
    assert "driftgate.yml: gate.rules[1].metric:" in msg and "population_stabilty_index" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(("yaml_rule", "expected"), [
    ("metric: f1_score\n      table: profile", "f1_score.macro"),
    ("metric: ks_test.pvalue\n      op: '>'", "p-value rule must use"),
    ("aggregate: {how: share}", "at_least must be set"),
    ("persistence: {windows: 2, violations: 3}", "violations must be <= windows"),
    ("max_staleness: soon", "must be a duration"),
    ("filters: {log_type: INPUT}", "log_type applies to the profile table only"),
])
def test_bad_rules_fail_at_load_with_the_rule_path(tmp_path, yaml_rule, expected):
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "driftgate.yml").write_text(f"gate:\n  rules:\n    - name: r\n      {yaml_rule}\n")
    with pytest.raises(ConfigError, match="gate.rules\\[0\\]") as exc:
        load_settings(conf, "demo")
    assert expected in str(exc.value)


def test_cli_gate_prints_decision(ws):
    from typer.testing import CliRunner

    from driftgate.cli import app

    write_metrics(ws, drifted_from=8)
    root = ws.settings.workspace.root
    schema = ws.settings.project.audit_schema
    sets = ["--set", f"workspace.root={root}", "--set", f"project.audit_schema={schema}",
            "--set", f"monitor.output_schema_name={schema}"]
    res = CliRunner().invoke(app, ["gate", *sets, "--now", NOW.isoformat()])
    assert res.exit_code == 0, res.output
    assert "EXCEEDED" in res.output and "drift_exceeded=true" in res.output
    res = CliRunner().invoke(app, ["gate", *sets, "--now", NOW.isoformat(), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["status"] == "EXCEEDED" and out["reasons"][0]["name"] == "numeric_drift_psi"
    res = CliRunner().invoke(app, ["gate", *sets, "--now", "yesterday"])
    assert res.exit_code == 1 and "--now: must be an ISO 8601 time" in res.output


def test_readme_rule_examples_load_and_decide(tmp_path):
    """The rule language documented in the README is valid configuration."""
    import re

    from driftgate.gating import decide

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("<!-- section: gate -->")[1].split("<!-- section:")[0]
    blocks = re.findall(r"```yaml\n(gate:.*?)```", section, re.S)
    defaults = tmp_path / "defaults"
    (defaults / "base").mkdir(parents=True)
    (defaults / "base" / "driftgate.yml").write_text(blocks[0])
    from driftgate.gating.config import GateConfig

    assert load_settings(defaults, "local").gate.rules == GateConfig().rules  # the README shows the defaults
    block = next(b for b in blocks if "ks_any" in b)
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "driftgate.yml").write_text(block)
    settings = load_settings(conf, "demo")
    names = [r.name for r in settings.gate.rules]
    # Rules merge onto the defaults by name: the example's five join the three built-in ones.
    examples = ["feature_drift_psi", "plan_region_js", "ks_any", "f1_drop", "senior_parity"]
    assert sorted(names) == sorted(examples + [r.name for r in GateConfig().rules])
    d = decide({"drift": drift_rows(12, FEATURES, lambda d, c: 0.03), "profile": profile_rows(12)},
               settings.gate, now=NOW)
    assert d.status in ("OK", "INSUFFICIENT_DATA") and len(d.reasons) == len(names)


def test_a_decision_taken_without_a_default_rule_says_so_in_its_run(ws):
    import dataclasses

    settings = load_settings(REPO_ROOT / "conf", "local", (
        f"workspace.root={ws.root}", f"project.audit_schema={ws.settings.project.audit_schema}",
        f"monitor.output_schema_name={ws.settings.monitor.output_schema_name}", "gate.rules.roc_auc_drop=null"))
    loose = dataclasses.replace(ws, settings=settings)
    write_metrics(loose, drifted_from=None)
    evaluate(loose, settings.gate, now=NOW, publish=False)
    run = MlflowClient(ws.tracking_uri).get_run(read_decisions(loose)[0]["mlflow_run_id"])
    assert run.data.tags["driftgate.config.removed_defaults"] == \
        "gate.rules.roc_auc_drop (--set gate.rules.roc_auc_drop)"


def test_the_gate_reads_through_the_table_store_only(ws):
    """The pushed-down scan (window starts included, as a nested-field filter) is a store read:
    nothing opens the Delta table behind the store, so a Spark store serves the gate the same way."""
    import dataclasses

    from driftgate.gating.evaluate import read_metrics
    from driftgate.workspace.tables import DeltaTableStore

    class Recording(DeltaTableStore):
        def __init__(self, root):
            super().__init__(root)
            self.reads = []

        def read(self, name, columns=None, filters=None, version=None):
            self.reads.append((name, list(filters or [])))
            return super().read(name, columns=columns, filters=filters, version=version)

    write_metrics(ws, drifted_from=8)
    store = Recording(ws.tables.root)
    frames = read_metrics(dataclasses.replace(ws, tables=store), ws.settings.gate, now=NOW)
    mon = ws.settings.monitor
    assert frames["drift"].num_rows > 0 and frames["profile"].num_rows > 0
    assert {name for name, _ in store.reads} == {mon.drift_metrics_table, mon.profile_metrics_table}
    horizons = [f for _, filters in store.reads for f in filters if f[0] == "window.start"]
    assert horizons and all(op == ">=" and value < NOW for _, op, value in horizons)
