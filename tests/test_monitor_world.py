"""monitoring.refresh on a synthetic world read by the real gate and the CLI: table shape, verdicts, odd input."""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import monitor_world as mw
from driftgate import monitoring
from driftgate.core.errors import MonitorError

REPO = Path(__file__).resolve().parent.parent


def _workspace(root: Path):
    return mw.light_workspace(root)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """6 days, drift from day 3 on; refreshed once."""
    ws = _workspace(tmp_path_factory.mktemp("drifted") / ".driftgate")
    mw.write_world(ws, days=6, drift_from=3, rows_per_day=200)
    result = monitoring.refresh(ws, ws.settings.monitor)
    return ws, result


def _rows(ws, name, **eq):
    t = ws.tables.read(name)
    for col, value in eq.items():
        t = t.filter(pc.is_null(t[col]) if value is None else pc.equal(t[col], value))
    return t.to_pylist()


def test_tables_have_the_documented_shape(drifted):
    ws, result = drifted
    cfg = ws.settings.monitor
    assert result.profile_table == "main.driftgate_demo.inference_log_profile_metrics"
    profile = ws.tables.read(cfg.profile_metrics_table)
    drift = ws.tables.read(cfg.drift_metrics_table)
    assert profile.schema.field("window").type == pa.struct([("start", pa.timestamp("us", tz="UTC")),
                                                             ("end", pa.timestamp("us", tz="UTC"))])
    assert set(profile["log_type"].to_pylist()) == {"INPUT", "BASELINE"}
    assert set(drift["drift_type"].to_pylist()) == {"CONSECUTIVE", "BASELINE"}
    assert set(profile["model_id"].to_pylist()) == {"*", "1"}
    assert set(zip(profile["slice_key"].to_pylist(), profile["slice_value"].to_pylist())) == {
        (None, None), ("senior", "true"), ("senior", "false")}
    cols = set(profile["column_name"].to_pylist())
    assert ":table" in cols and "tenure_months" in cols and "timestamp" not in cols and "request_id" not in cols
    # 6 input windows of one day, each with the row counts the gate uses for min_rows.
    table_rows = _rows(ws, cfg.profile_metrics_table, column_name=":table", slice_key=None, model_id="*",
                       log_type="INPUT")
    assert sorted(r["count"] for r in table_rows) == [200] * 6
    assert all((r["window"]["end"] - r["window"]["start"]) == timedelta(days=1) for r in table_rows)
    assert result.source_version == 0 and len(result.windows) == 6


def test_profile_statistics_of_one_window(drifted):
    ws, _ = drifted
    cfg = ws.settings.monitor
    src = ws.tables.read(cfg.table_name)
    day0 = src.filter(pc.less(src["timestamp"], pa.scalar(mw.START + timedelta(days=1),
                                                         pa.timestamp("us", tz="UTC"))))
    rows = {r["column_name"]: r for r in _rows(ws, cfg.profile_metrics_table, slice_key=None, model_id="*",
                                                log_type="INPUT") if r["window"]["start"] == mw.START}
    charges = day0["monthly_charges"].to_numpy()
    r = rows["monthly_charges"]
    assert r["count"] == 200 and r["num_nulls"] == 0 and r["data_type"] == "double"
    assert r["avg"] == pytest.approx(charges.mean()) and r["stddev"] == pytest.approx(charges.std(ddof=1))
    assert r["min"] == charges.min() and r["max"] == charges.max() and r["median"] == pytest.approx(
        float(pa.compute.approximate_median(day0["monthly_charges"]).as_py()), rel=0.05)
    plan = rows["plan"]
    counts = {d["values"]: d["counts"] for d in pc.value_counts(day0["plan"]).to_pylist()}
    assert {f["item"]: f["count"] for f in plan["frequent_items"]} == counts
    assert plan["distinct_count"] == 3 and plan["data_type"] == "string"
    table = rows[":table"]
    label, pred = day0["label"].to_numpy(), day0["prediction"].to_numpy()
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    assert table["accuracy_score"] == pytest.approx(accuracy_score(label, pred))
    assert table["f1_score"]["macro"] == pytest.approx(f1_score(label, pred, average="macro"))
    assert table["f1_score"]["weighted"] == pytest.approx(f1_score(label, pred, average="weighted"))
    assert table["roc_auc_score"] == pytest.approx(roc_auc_score(label, day0["probability"].to_numpy()))
    assert table["log_loss"] == pytest.approx(log_loss(label, day0["probability"].to_numpy()))


def test_drift_rows_compare_with_previous_window_and_baseline(drifted):
    ws, _ = drifted
    cfg = ws.settings.monitor
    drift = _rows(ws, cfg.drift_metrics_table, slice_key=None, model_id="*", column_name="monthly_charges")
    consecutive = [r for r in drift if r["drift_type"] == "CONSECUTIVE"]
    # The first window has no previous window; every later one compares with the one before.
    assert len(consecutive) == 5
    assert all(r["window_cmp"]["end"] == r["window"]["start"] for r in consecutive)
    psi = {r["window"]["start"]: r["population_stability_index"] for r in drift if r["drift_type"] == "BASELINE"}
    assert max(psi[mw.START + timedelta(days=d)] for d in range(3)) < 0.2
    assert min(psi[mw.START + timedelta(days=d)] for d in range(3, 6)) > 0.5
    plan = _rows(ws, cfg.drift_metrics_table, slice_key=None, model_id="*", column_name="plan",
                 drift_type="BASELINE")
    assert all(r["population_stability_index"] is None and r["js_distance"] is not None for r in plan)


def test_gate_exceeded_after_drift_and_ok_without(ws):
    """The default gate rules (PSI / JS shares on BASELINE drift, ROC AUC relative to the baseline's)
    read these tables as they are."""
    from driftgate import gating

    now = mw.START + timedelta(days=6, hours=1)
    for drift_from, expected in ((3, "EXCEEDED"), (None, "OK")):
        mw.write_world(ws, days=6, drift_from=drift_from, rows_per_day=200)
        monitoring.refresh(ws, ws.settings.monitor)
        decision = gating.evaluate(ws, ws.settings.gate, now=now, publish=False)
        assert decision.status == expected, decision.summary
        # Numeric PSI, categorical JS and ROC AUC against the baseline's all read these tables.
        assert {r.name: r.status for r in decision.reasons} == {
            "numeric_drift_psi": expected, "categorical_drift_js": expected, "roc_auc_drop": expected}


def test_missing_table_and_column_give_one_clear_error(tmp_path):
    ws = _workspace(tmp_path / ".driftgate")
    cfg = ws.settings.monitor.model_copy(update={"baseline_table_name": None})
    with pytest.raises(MonitorError, match="inference_log: monitored table does not exist"):
        monitoring.refresh(ws, cfg)
    ws.tables.write(cfg.table_name, mw.frame(1, rows_per_day=20).drop_columns(["probability"]))
    with pytest.raises(MonitorError, match="prediction_proba_col column 'probability' is missing"):
        monitoring.refresh(ws, cfg)


def test_bad_slicing_expression_leaves_tables_as_they_were(tmp_path):
    ws = _workspace(tmp_path / ".driftgate")
    mw.write_world(ws, days=2, rows_per_day=30)
    cfg = ws.settings.monitor
    monitoring.refresh(ws, cfg)
    before = ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)
    for expr, message in (("age <", "cannot parse"), ("height > 3", r"unknown column\(s\) height")):
        bad = cfg.model_copy(update={"slicing_exprs": ["senior", expr]})
        with pytest.raises(MonitorError, match=rf"slicing_exprs\[1\]: .*{message}"):
            monitoring.refresh(ws, bad)
    assert (ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)) == before


def test_monitor_command_prints_most_drifted_columns(drifted, monkeypatch):
    from typer.testing import CliRunner

    from driftgate.cli import app
    from driftgate.commands import monitoring as commands

    from driftgate.runtime import console

    ws, _ = drifted
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(console, "width", 200)
    # The test's tables, with an MLflow store: the command logs the refresh as a run.
    store = f"sqlite:///{ws.root / 'mlflow.db'}"
    monkeypatch.setattr(commands, "workspace_from", lambda *a, **k: dataclasses.replace(
        ws, tracking_uri=store, registry_uri=store))
    res = CliRunner().invoke(app, ["monitor", "--set", f"workspace.root={ws.root}", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "most drifted columns" in res.output and "monthly_charges" in res.output


def test_fairness_maps_on_the_protected_slice_row(drifted):
    ws, _ = drifted
    cfg = ws.settings.monitor
    rows = _rows(ws, cfg.profile_metrics_table, column_name=":table", model_id="*", log_type="INPUT",
                 slice_key="senior")
    protected = [r for r in rows if r["slice_value"] == "true"]
    assert protected and all("1" in dict(r["statistical_parity"]) for r in protected)
    assert all(r["predictive_parity"] is None for r in rows if r["slice_value"] == "false")
    src = ws.tables.read(cfg.table_name).to_pandas()
    day = src[src.timestamp < mw.START + timedelta(days=1)]
    senior = day.senior.to_numpy()
    rate = (day.prediction == 1).to_numpy()
    expected = rate[senior].mean() - rate[~senior].mean()
    first = [r for r in protected if r["window"]["start"] == mw.START][0]
    assert dict(first["statistical_parity"])["1"] == pytest.approx(expected)


def test_unparsable_and_odd_inputs(tmp_path):
    """Unseen categories, all-NULL and NaN/inf columns, an empty slice: rows with counts, NULL statistics."""
    import numpy as np

    ws = _workspace(tmp_path / ".driftgate")
    cfg = ws.settings.monitor.model_copy(update={"slicing_exprs": ["senior", "age > 200"]})
    cur = mw.frame(2, rows_per_day=40)
    n = cur.num_rows
    cur = cur.set_column(cur.schema.get_field_index("region"), "region", pa.array(["mars"] * n))
    cur = cur.set_column(cur.schema.get_field_index("usage_gb"), "usage_gb", pa.array([None] * n, pa.float64()))
    tenure = np.where(np.arange(n) % 2 == 0, np.nan, np.inf)
    cur = cur.set_column(cur.schema.get_field_index("tenure_months"), "tenure_months", pa.array(tenure))
    ws.tables.write(mw.LOG, cur)
    ws.tables.write(mw.BASELINE, mw.frame(2, rows_per_day=40, seed=5))
    monitoring.refresh(ws, cfg)
    drift = {r["column_name"]: r for r in _rows(ws, cfg.drift_metrics_table, slice_key=None, model_id="*",
                                                drift_type="BASELINE") if r["window"]["start"] == mw.START}
    assert drift["region"]["tv_distance"] == pytest.approx(1.0) and drift["region"]["js_distance"] == pytest.approx(1.0)
    assert drift["usage_gb"]["ks_test"] is None and drift["usage_gb"]["percent_null_delta"] == pytest.approx(100.0)
    assert drift["tenure_months"]["population_stability_index"] is None
    prof = {r["column_name"]: r for r in _rows(ws, cfg.profile_metrics_table, slice_key=None, model_id="*",
                                               log_type="INPUT") if r["window"]["start"] == mw.START}
    assert prof["usage_gb"]["num_nulls"] == 40 and prof["usage_gb"]["avg"] is None
    assert prof["tenure_months"]["num_nan"] == 20 and prof["tenure_months"]["avg"] is None
    # "age > 200" holds for no row: its true slice exists with zero rows.
    empty = _rows(ws, cfg.profile_metrics_table, slice_key="age > 200", slice_value="true", column_name=":table",
                  model_id="*", log_type="INPUT")
    assert empty and all(r["count"] == 0 and r["accuracy_score"] is None for r in empty)


def test_wrong_types_are_named(tmp_path):
    ws = _workspace(tmp_path / ".driftgate")
    cfg = ws.settings.monitor.model_copy(update={"baseline_table_name": None})
    t = mw.frame(1, rows_per_day=10)
    bad_ts = t.set_column(t.schema.get_field_index("timestamp"), "timestamp", pa.array(["2026-01-01"] * 10))
    ws.tables.write(mw.LOG, bad_ts, mode="overwrite")
    with pytest.raises(MonitorError, match="column 'timestamp' must be a timestamp, got string"):
        monitoring.refresh(ws, cfg)
    bad_p = t.set_column(t.schema.get_field_index("probability"), "probability", pa.array(["x"] * 10))
    ws.tables.write(mw.LOG, bad_p, mode="overwrite")
    with pytest.raises(MonitorError, match=r"column 'probability' \(prediction_proba_col\) must be numeric, got string"):
        monitoring.refresh(ws, cfg)
