"""monitoring.refresh on a small synthetic inference log: table shape, gate verdicts, bad input."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import monitor_world as mw
import monitoring
from driftgate.errors import MonitorError

REPO = Path(__file__).resolve().parent.parent


def _workspace(root: Path):
    from driftgate.config import load_settings
    from workspace import open_workspace

    return open_workspace(load_settings(REPO / "conf", "local", (f"workspace.root={root}",)))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """6 days, drift from day 3 on; refreshed once."""
    ws = _workspace(tmp_path_factory.mktemp("drifted") / ".driftgate")
    mw.write_world(ws, days=6, drift_from=3, rows_per_day=200)
    result = monitoring.refresh(ws, ws.settings.monitor)
    return ws, result


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    ws = _workspace(tmp_path_factory.mktemp("steady") / ".driftgate")
    mw.write_world(ws, days=6, drift_from=None, rows_per_day=200)
    return ws, monitoring.refresh(ws, ws.settings.monitor)


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
    assert result.source_version == 0 and result.windows == {"1 day": 6}


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
    assert table["roc_auc"] == pytest.approx(roc_auc_score(label, day0["probability"].to_numpy()))
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


def test_gate_exceeded_after_drift_and_ok_without(drifted, steady):
    import gating

    for (ws, _), expected in ((drifted, "EXCEEDED"), (steady, "OK")):
        now = mw.START + timedelta(days=6, hours=1)
        decision = gating.evaluate(ws, ws.settings.gate, now=now, publish=False)
        assert decision.status == expected, decision.summary
        assert {r.name: r.status for r in decision.reasons} == {"feature_drift_psi": expected, "f1_drop": expected}


def test_missing_table_and_column_give_one_clear_error(tmp_path):
    ws = _workspace(tmp_path / ".driftgate")
    cfg = ws.settings.monitor.model_copy(update={"baseline_table_name": None})
    with pytest.raises(MonitorError, match="inference_log does not exist"):
        monitoring.refresh(ws, cfg)
    ws.tables.write(cfg.table_name, mw.frame(1, rows_per_day=20).drop_columns(["probability"]))
    with pytest.raises(MonitorError, match="prediction_proba_col 'probability' is missing"):
        monitoring.refresh(ws, cfg)


def test_bad_slicing_expression_leaves_tables_as_they_were(tmp_path):
    ws = _workspace(tmp_path / ".driftgate")
    mw.write_world(ws, days=2, rows_per_day=30)
    cfg = ws.settings.monitor
    monitoring.refresh(ws, cfg)
    before = ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)
    for expr, message in (("age <", "cannot parse"), ("height > 3", r"names column\(s\) \['height'\]")):
        bad = cfg.model_copy(update={"slicing_exprs": ["senior", expr]})
        with pytest.raises(MonitorError, match=rf"slicing_exprs\[1\]: .*{message}"):
            monitoring.refresh(ws, bad)
    assert (ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)) == before


def test_monitor_command_prints_most_drifted_columns(drifted, monkeypatch):
    from typer.testing import CliRunner

    from driftgate.cli import app

    from driftgate.runtime import console

    ws, _ = drifted
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(console, "width", 200)
    res = CliRunner().invoke(app, ["monitor", "--set", f"workspace.root={ws.root}", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "most drifted columns" in res.output and "monthly_charges" in res.output
