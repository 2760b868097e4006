"""driftgate.monitoring.refresh: documented tables, incremental refresh, no-op, bad input, atomic failure."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from driftgate import monitoring
from driftgate.core.errors import MonitorError, TableError
from driftgate.monitoring import engine
from driftgate.workspace.tables import DeltaTableStore
from tests.monitor_data import START, inference_log


@pytest.fixture
def ws(settings, tmp_path):
    """Only the table store: refresh needs nothing else, and MLflow setup is slow."""
    return SimpleNamespace(settings=settings, tables=DeltaTableStore(tmp_path / "tables"))


@pytest.fixture
def mon(ws):
    cfg = ws.settings.monitor.model_copy(update={"slicing_exprs": ["senior", "age < 40"]})
    ws.tables.write(cfg.baseline_table_name, inference_log(3, seed=1))
    ws.tables.write(cfg.table_name, inference_log(6, seed=2, drift_from=4))
    return cfg


def _sorted(table: pa.Table, cfg) -> list[dict]:
    rows = table.to_pylist()
    key = lambda r: (r["granularity"], str(r["window"]["start"]), r.get("log_type") or "", r.get("drift_type") or "",
                     r[cfg.model_id_col], r["slice_key"] or "", r["slice_value"] or "", r["column_name"])
    return sorted(rows, key=key)


def test_first_refresh_writes_documented_tables(ws, mon):
    result = monitoring.refresh(ws, mon)
    assert result.mode == "full" and result.profile_rows > 0 and result.drift_rows > 0
    profile = ws.tables.read(mon.profile_metrics_table)
    drift = ws.tables.read(mon.drift_metrics_table)
    assert profile.schema.equals(engine.profile_schema(mon)) or set(engine.profile_schema(mon).names) <= set(
        profile.column_names)
    assert set(engine.drift_schema(mon).names) <= set(drift.column_names)
    assert profile.schema.field("window").type == pa.struct([("start", pa.timestamp("us", tz="UTC")),
                                                             ("end", pa.timestamp("us", tz="UTC"))])
    rows = profile.to_pylist()
    # whole table, all models, one day: a ':table' row with the row count and quality metrics
    day0 = [r for r in rows if r["log_type"] == "INPUT" and r["slice_key"] is None and r["model_id"] == "*"
            and r["column_name"] == ":table" and r["window"]["start"] == START]
    assert len(day0) == 1 and day0[0]["count"] == 200
    assert 0 <= day0[0]["accuracy_score"] <= 1 and set(day0[0]["f1_score"]) >= {"macro", "weighted", "one_vs_all"}
    assert day0[0]["window"]["end"] - day0[0]["window"]["start"] == timedelta(days=1)
    assert {r["model_id"] for r in rows} == {"*", "1"}
    assert {r["log_type"] for r in rows} == {"INPUT", "BASELINE"}
    assert {(r["slice_key"], r["slice_value"]) for r in rows} >= {
        (None, None), ("senior", "true"), ("senior", "false"), ("age < 40", "true"), ("age < 40", "false")}
    assert all(r["logging_table_commit_version"] == result.source_version for r in rows if r["log_type"] == "INPUT")
    # fairness maps on the protected group's row only
    prot = [r for r in rows if r["slice_key"] == "senior" and r["column_name"] == ":table"]
    assert all((r["statistical_parity"] is not None) == (r["slice_value"] == "true") for r in prot)
    drows = drift.to_pylist()
    assert {r["drift_type"] for r in drows} == {"CONSECUTIVE", "BASELINE"}
    first_consecutive = min(r["window"]["start"] for r in drows if r["drift_type"] == "CONSECUTIVE")
    assert first_consecutive == START + timedelta(days=1)  # day 0 has no previous window
    num = [r for r in drows if r["column_name"] == "monthly_charges"]
    assert all(r["ks_test"] is not None and r["js_distance"] is None for r in num)
    cat = [r for r in drows if r["column_name"] == "plan"]
    assert all(r["chi_squared_test"] is not None and r["ks_test"] is None for r in cat)
    # drift shows up after day 4 against the baseline, on the whole table, all models
    def ks(day):
        return next(r["ks_test"]["statistic"] for r in num if r["drift_type"] == "BASELINE" and r["slice_key"] is None
                    and r["model_id"] == "*" and r["window"]["start"] == START + timedelta(days=day))
    assert ks(5) > 3 * ks(1)


def test_noop_refresh_changes_nothing(ws, mon):
    monitoring.refresh(ws, mon)
    versions = (ws.tables.version(mon.profile_metrics_table), ws.tables.version(mon.drift_metrics_table))
    result = monitoring.refresh(ws, mon)
    assert result.mode == "noop" and result.seconds < 0.5
    assert versions == (ws.tables.version(mon.profile_metrics_table), ws.tables.version(mon.drift_metrics_table))


def test_incremental_refresh_equals_full_recompute(ws, mon, tmp_path):
    monitoring.refresh(ws, mon)
    ws.tables.write(mon.table_name, inference_log(1, seed=5, start=START + timedelta(days=6), drift_from=0))
    late = inference_log(1, rows_per_day=20, seed=6, start=START + timedelta(days=2))  # late rows for day 2
    ws.tables.write(mon.table_name, late)
    result = monitoring.refresh(ws, mon)
    assert result.mode == "incremental"
    assert {s for _, s in result.windows} == {START + timedelta(days=d) for d in (2, 3, 6)}
    incremental = (ws.tables.read(mon.profile_metrics_table), ws.tables.read(mon.drift_metrics_table))

    fresh = SimpleNamespace(tables=DeltaTableStore(tmp_path / "fresh"))
    fresh.tables.write(mon.baseline_table_name, ws.tables.read(mon.baseline_table_name))
    fresh.tables.write(mon.table_name, ws.tables.read(mon.table_name))
    monitoring.refresh(fresh, mon)
    full = (fresh.tables.read(mon.profile_metrics_table), fresh.tables.read(mon.drift_metrics_table))
    drop = lambda t: t.drop_columns(["logging_table_commit_version"]) if "logging_table_commit_version" in \
        t.column_names else t
    assert _sorted(drop(incremental[1]), mon) == _sorted(drop(full[1]), mon)
    assert _sorted(drop(incremental[0]), mon) == _sorted(drop(full[0]), mon)


def test_late_labels_recompute_their_window(ws, mon):
    cfg = mon
    log = inference_log(3, seed=3, label_fraction=0.0)
    ws.tables.write(cfg.table_name, log, mode="overwrite")
    monitoring.refresh(ws, cfg)
    day1 = lambda: next(r for r in ws.tables.read(cfg.profile_metrics_table).to_pylist()
                        if r["column_name"] == ":table" and r["slice_key"] is None and r["model_id"] == "*"
                        and r["log_type"] == "INPUT" and r["window"]["start"] == START + timedelta(days=1))
    assert day1()["labeled_count"] == 0 and day1()["accuracy_score"] is None
    labelled = inference_log(3, seed=3, label_fraction=1.0)
    day = pc.equal(pc.floor_temporal(labelled.column("timestamp"), unit="day"), pa.scalar(START + timedelta(days=1)))
    ws.tables.write(cfg.table_name, labelled.filter(day), replace_where="timestamp >= '2026-06-02T00:00:00Z' AND "
                    "timestamp < '2026-06-03T00:00:00Z'")
    result = monitoring.refresh(ws, cfg)
    assert result.mode == "incremental"
    assert day1()["labeled_count"] == 200 and day1()["accuracy_score"] is not None


@pytest.mark.parametrize("change, message", [
    ({"table_name": "main.driftgate_demo.nope"}, "monitored table does not exist"),
    ({"slicing_exprs": ["age <"]}, "slicing_exprs"),
    ({"slicing_exprs": ["nosuch > 3"]}, "unknown column"),
])
def test_bad_config_is_one_clear_error(ws, mon, change, message):
    with pytest.raises(MonitorError, match=message):
        monitoring.refresh(ws, mon.model_copy(update=change))
    assert not ws.tables.exists(mon.profile_metrics_table)


def test_wrong_timestamp_type_names_the_column(ws, mon):
    bad = inference_log(2, seed=1)
    bad = bad.set_column(bad.schema.get_field_index("timestamp"), "timestamp",
                         pc.cast(pc.cast(bad.column("timestamp"), pa.int64()), pa.int64()))
    ws.tables.write("main.driftgate_demo.badlog", bad)
    with pytest.raises(MonitorError, match="'timestamp' must be a timestamp"):
        monitoring.refresh(ws, mon.model_copy(update={"table_name": "main.driftgate_demo.badlog"}))


def test_failed_write_leaves_tables_as_they_were(ws, mon, monkeypatch):
    monitoring.refresh(ws, mon)
    before = (ws.tables.read(mon.profile_metrics_table), ws.tables.read(mon.drift_metrics_table))
    ws.tables.write(mon.table_name, inference_log(1, seed=9, start=START + timedelta(days=6)))
    real = ws.tables.write

    def failing(name, data, **kw):
        if name == mon.profile_metrics_table:
            raise TableError(f"{name}: disk full", table=name)
        return real(name, data, **kw)

    monkeypatch.setattr(ws.tables, "write", failing)
    with pytest.raises(TableError):
        monitoring.refresh(ws, mon)
    monkeypatch.undo()
    after = (ws.tables.read(mon.profile_metrics_table), ws.tables.read(mon.drift_metrics_table))
    assert _sorted(after[0], mon) == _sorted(before[0], mon)
    assert _sorted(after[1], mon) == _sorted(before[1], mon)
    assert monitoring.refresh(ws, mon).mode == "incremental"  # the missed day is still pending


def test_custom_metrics_aggregate_derived_and_drift(ws, mon):
    from driftgate.monitoring.config import CustomMetric

    cfg = mon.model_copy(update={"custom_metrics": [
        CustomMetric(name="high_charge_share", definition="avg(CASE WHEN monthly_charges > 100 THEN 1 ELSE 0 END)"),
        CustomMetric(name="p90ish", definition="max({{input_column}}) - min({{input_column}})",
                     input_columns=["tenure_months", "age"]),
        CustomMetric(name="high_charge_pct", type="derived", definition="100 * high_charge_share"),
        CustomMetric(name="high_charge_change", type="drift",
                     definition="{{current_df}}.high_charge_share - {{base_df}}.high_charge_share"),
    ]})
    monitoring.refresh(ws, cfg)
    src = ws.tables.read(cfg.table_name)
    day0 = src.filter(pc.less(src["timestamp"], pa.scalar(START + timedelta(days=1), pa.timestamp("us", tz="UTC"))))
    rows = [r for r in ws.tables.read(cfg.profile_metrics_table).to_pylist()
            if r["log_type"] == "INPUT" and r["slice_key"] is None and r["model_id"] == "*"
            and r["window"]["start"] == START]
    table = next(r for r in rows if r["column_name"] == ":table")
    share = float(pc.mean(pc.cast(pc.greater(day0["monthly_charges"], 100), pa.float64())).as_py())
    assert table["high_charge_share"] == pytest.approx(share) and table["high_charge_pct"] == pytest.approx(100 * share)
    age = next(r for r in rows if r["column_name"] == "age")
    assert age["p90ish"] == age["max"] - age["min"] and table["p90ish"] is None
    drift = [r for r in ws.tables.read(cfg.drift_metrics_table).to_pylist() if r["column_name"] == ":table"
             and r["slice_key"] is None and r["model_id"] == "*" and r["drift_type"] == "CONSECUTIVE"]
    assert drift and all(r["high_charge_change"] is not None for r in drift)


def test_custom_metric_that_does_not_parse_names_the_metric(ws, mon):
    from driftgate.monitoring.config import CustomMetric

    cfg = mon.model_copy(update={"custom_metrics": [CustomMetric(name="broken", definition="avg(monthly_charges")]})
    with pytest.raises(MonitorError, match="custom_metrics.broken"):
        monitoring.refresh(ws, cfg)


def test_nan_inf_all_null_and_unseen_categories_get_rows(ws, mon):
    log = inference_log(2, seed=8)
    n = log.num_rows
    charges = log["monthly_charges"].to_numpy().copy()
    charges[:5], charges[5:8] = float("nan"), float("inf")
    log = log.set_column(log.schema.get_field_index("monthly_charges"), "monthly_charges", pa.array(charges))
    log = log.set_column(log.schema.get_field_index("usage_gb"), "usage_gb", pa.nulls(n, pa.float64()))
    log = log.set_column(log.schema.get_field_index("region"), "region", pa.array(["mars"] * n))
    ws.tables.write(mon.table_name, log, mode="overwrite")
    monitoring.refresh(ws, mon)
    prof = {r["column_name"]: r for r in ws.tables.read(mon.profile_metrics_table).to_pylist()
            if r["log_type"] == "INPUT" and r["slice_key"] is None and r["model_id"] == "*"
            and r["window"]["start"] == START}
    assert prof["monthly_charges"]["num_nan"] == 5 and prof["monthly_charges"]["count"] == 200
    assert prof["usage_gb"]["count"] == 0 and prof["usage_gb"]["percent_null"] == 100 and prof["usage_gb"]["avg"] is None
    drift = {r["column_name"]: r for r in ws.tables.read(mon.drift_metrics_table).to_pylist()
             if r["drift_type"] == "BASELINE" and r["slice_key"] is None and r["model_id"] == "*"
             and r["window"]["start"] == START}
    assert drift["usage_gb"]["ks_test"] is None and drift["usage_gb"]["count"] == 0
    assert drift["region"]["tv_distance"] == pytest.approx(1.0) and drift["region"]["chi_squared_test"]["pvalue"] < 1e-6
    assert drift["monthly_charges"]["ks_test"]["statistic"] >= 0


def test_most_drifted_columns_and_chart(ws, mon, tmp_path):
    monitoring.refresh(ws, mon)
    from driftgate.monitoring.report import drift_chart, most_drifted

    drift = ws.tables.read(mon.drift_metrics_table)
    top = most_drifted(drift, mon, limit=3)
    assert len(top) == 3 and top[0].value >= top[-1].value
    png = drift_chart(drift, mon, tmp_path / "drift.png")
    html = drift_chart(drift, mon, tmp_path / "drift.html")
    assert png.read_bytes()[:4] == b"\x89PNG" and "data:image/png;base64" in html.read_text()


def test_next_day_reuses_previous_window_and_equals_full_recompute(ws, mon, tmp_path):
    monitoring.refresh(ws, mon)
    ws.tables.write(mon.table_name, inference_log(1, seed=7, start=START + timedelta(days=6), drift_from=0))
    result = monitoring.refresh(ws, mon)
    assert result.mode == "incremental" and any("reused" in n for n in result.notes)
    fresh = SimpleNamespace(tables=DeltaTableStore(tmp_path / "fresh2"))
    fresh.tables.write(mon.baseline_table_name, ws.tables.read(mon.baseline_table_name))
    fresh.tables.write(mon.table_name, ws.tables.read(mon.table_name))
    monitoring.refresh(fresh, mon)
    drop = lambda t: t.drop_columns(["logging_table_commit_version"]) if "logging_table_commit_version" in \
        t.column_names else t
    for table in (mon.drift_metrics_table, mon.profile_metrics_table):
        assert _sorted(drop(ws.tables.read(table)), mon) == _sorted(drop(fresh.tables.read(table)), mon)


def test_time_series_and_snapshot_analyses(ws, mon):
    from driftgate.monitoring.config import MonitorConfig

    ts = MonitorConfig(table_name=mon.table_name, output_schema_name="main.ts", baseline_table_name=None,
                       time_series={"timestamp_col": "timestamp", "granularities": ["1 week", "1 day"]})
    assert ts.inference_log is None
    result = monitoring.refresh(ws, ts)
    profile = ws.tables.read(ts.profile_metrics_table)
    assert "model_id" not in profile.column_names and "accuracy_score" not in profile.column_names
    assert set(profile["granularity"].to_pylist()) == {"1 week", "1 day"}
    weeks = {r["window"]["start"].weekday() for r in profile.to_pylist() if r["granularity"] == "1 week"}
    assert weeks == {0}  # Monday
    assert result.drift_rows > 0 and monitoring.refresh(ws, ts).mode == "noop"
    snap = MonitorConfig(table_name=mon.table_name, output_schema_name="main.snap", snapshot={},
                         baseline_table_name=mon.baseline_table_name)
    first = monitoring.refresh(ws, snap)
    rows = ws.tables.read(snap.profile_metrics_table).to_pylist()
    table_rows = [r for r in rows if r["column_name"] == ":table" and r["log_type"] == "INPUT"]
    assert first.mode == "full" and [r["count"] for r in table_rows] == [ws.tables.read(mon.table_name).num_rows]
    assert {r["drift_type"] for r in ws.tables.read(snap.drift_metrics_table).to_pylist()} == {"BASELINE"}


def _without_model(rows: list[dict], cfg) -> list[str]:
    out = []
    for r in rows:
        r = dict(r)
        r.pop(cfg.model_id_col)
        out.append(repr(sorted(r.items())))
    return sorted(out)


def test_a_window_served_by_one_model_is_profiled_once_and_reported_twice(ws, mon, monkeypatch):
    calls = []
    real = engine.summarize
    monkeypatch.setattr(engine, "summarize", lambda plan, rows: calls.append(rows.num_rows) or real(plan, rows))
    monitoring.refresh(ws, mon)
    windows = 6
    groups = 1 + 2 + 2  # whole table, senior true/false, age < 40 true/false
    assert len(calls) == windows * groups + groups  # the windows' groups once each, plus the baseline's
    for table in (mon.profile_metrics_table, mon.drift_metrics_table):
        rows = ws.tables.read(table).to_pylist()
        if "log_type" in rows[0]:
            rows = [r for r in rows if r["log_type"] == "INPUT"]
        every = [r for r in rows if r[mon.model_id_col] == "*"]
        one = [r for r in rows if r[mon.model_id_col] == "1"]
        assert len(every) == len(one) > 0 and _without_model(every, mon) == _without_model(one, mon)


def test_two_models_in_a_window_are_profiled_apart(ws, mon):
    day = inference_log(1, seed=5, start=START + timedelta(days=6))
    other = inference_log(1, rows_per_day=50, seed=6, start=START + timedelta(days=6), model_id="2", drift_from=0)
    ws.tables.write(mon.table_name, pa.concat_tables([day, other]))
    monitoring.refresh(ws, mon)
    rows = [r for r in ws.tables.read(mon.profile_metrics_table).to_pylist()
            if r["window"]["start"] == START + timedelta(days=6) and r["column_name"] == ":table"
            and r["slice_key"] is None and r["log_type"] == "INPUT"]
    counts = {r[mon.model_id_col]: r["count"] for r in rows}
    assert counts == {"*": 250, "1": 200, "2": 50}
    drift = [r for r in ws.tables.read(mon.drift_metrics_table).to_pylist()
             if r["window"]["start"] == START + timedelta(days=6) and r["column_name"] == "monthly_charges"
             and r["slice_key"] is None and r["drift_type"] == "BASELINE"]
    psi = {r[mon.model_id_col]: r["population_stability_index"] for r in drift}
    assert psi["2"] > psi["1"] and len(set(psi.values())) == 3
