"""Incremental refresh: no-op, appended days, late rows and labels, atomic failure."""
from __future__ import annotations

from datetime import timedelta

import pytest

import monitor_world as mw
import monitoring
from driftgate.audit import read_events
from driftgate.errors import DriftgateError, TableError


def _content(ws, name):
    rows = ws.tables.read(name).drop_columns(["logging_table_commit_version"] if "profile" in name else []).to_pylist()
    for r in rows:
        r.pop("monitor_version", None)
    return sorted(repr(sorted(r.items())) for r in rows)


def _same_as_full_recompute(ws, cfg):
    incremental = _content(ws, cfg.profile_metrics_table), _content(ws, cfg.drift_metrics_table)
    _, profile_table, drift_table = ws.tables, cfg.profile_metrics_table, cfg.drift_metrics_table
    fresh = cfg.model_copy(update={"output_schema_name": "main.driftgate_full"})
    monitoring.refresh(ws, fresh)
    full = (_content(ws, fresh.profile_metrics_table), _content(ws, fresh.drift_metrics_table))
    return incremental == full


@pytest.fixture
def world(tmp_path):
    """Four days, one Delta commit (one file) per day."""
    ws = mw.light_workspace(tmp_path / ".driftgate")
    for day in range(4):
        ws.tables.write(mw.LOG, mw.frame(1, first_day=day, rows_per_day=60))
    ws.tables.write(mw.BASELINE, mw.frame(2, rows_per_day=60, seed=9, start=mw.START - timedelta(days=5)))
    cfg = ws.settings.monitor
    first = monitoring.refresh(ws, cfg)
    assert first.mode == "full" and len(first.windows) == 4
    return ws, cfg


def test_nothing_new_is_a_no_op(world):
    ws, cfg = world
    before = ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)
    events = len(read_events(ws, ["monitor_refresh"]))
    result = monitoring.refresh(ws, cfg)
    assert result.noop and result.seconds < 0.5
    assert (ws.tables.version(cfg.profile_metrics_table), ws.tables.version(cfg.drift_metrics_table)) == before
    assert len(read_events(ws, ["monitor_refresh"])) == events == 1  # the fixture's full refresh only


def test_an_appended_day_recomputes_only_its_window(world):
    ws, cfg = world
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    result = monitoring.refresh(ws, cfg)
    assert result.mode == "incremental" and len(result.windows) == 1 and result.source_version == 4
    rows = ws.tables.read(cfg.profile_metrics_table).to_pylist()
    versions = {r["logging_table_commit_version"] for r in rows if r["log_type"] == "INPUT"}
    assert versions == {3, 4}  # older windows keep the version they were computed from
    event = read_events(ws, ["monitor_refresh"], limit=1)[0]
    assert (event["subject"], event["status"]) == (mw.LOG, "incremental")
    assert event["details"]["source_version"] == 4 and event["details"]["windows"] == 1
    assert _same_as_full_recompute(ws, cfg)


def test_late_rows_recompute_their_window_and_the_next(world):
    ws, cfg = world
    late = mw.frame(1, first_day=1, rows_per_day=5, seed=42)
    ws.tables.write(mw.LOG, late)
    result = monitoring.refresh(ws, cfg)
    assert result.mode == "incremental" and {s for _, s in result.windows} >= {mw.START + timedelta(days=1)}
    assert _same_as_full_recompute(ws, cfg)


def test_labels_that_arrive_later_are_picked_up(tmp_path):
    from deltalake import DeltaTable

    ws = mw.light_workspace(tmp_path / ".driftgate")
    cfg = ws.settings.monitor.model_copy(update={"baseline_table_name": None})
    for day in range(3):
        ws.tables.write(mw.LOG, mw.frame(1, first_day=day, rows_per_day=60, labelled=day < 2))
    monitoring.refresh(ws, cfg)

    def f1(day):
        rows = ws.tables.read(cfg.profile_metrics_table).to_pylist()
        return [r["f1_score"] for r in rows if r["column_name"] == ":table" and r["slice_key"] is None
                and r["model_id"] == "*" and r["window"]["start"] == mw.START + timedelta(days=day)][0]

    assert f1(2) is None
    # The labels land: the unlabelled day's rows are replaced (a delete + append, as a MERGE would do).
    DeltaTable(str(ws.tables.path(mw.LOG))).delete(f"timestamp >= '{mw.START + timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}'")
    ws.tables.write(mw.LOG, mw.frame(1, first_day=2, rows_per_day=60))
    result = monitoring.refresh(ws, cfg)
    assert result.mode == "incremental" and {s for _, s in result.windows} == {mw.START + timedelta(days=2)}
    assert f1(2)["macro"] > 0.5
    assert _same_as_full_recompute(ws, cfg)


def test_a_changed_definition_recomputes_everything(world):
    ws, cfg = world
    changed = cfg.model_copy(update={"slicing_exprs": ["age < 30"]})
    result = monitoring.refresh(ws, changed)
    assert result.mode == "full" and len(result.windows) == 4
    keys = set(ws.tables.read(cfg.profile_metrics_table)["slice_key"].to_pylist())
    assert keys == {None, "age < 30"}


def test_a_failed_write_leaves_both_tables_as_they_were(world, monkeypatch):
    ws, cfg = world
    before = _content(ws, cfg.profile_metrics_table), _content(ws, cfg.drift_metrics_table)
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    real = ws.tables.write

    def failing(name, data, *args, **kwargs):
        if name == cfg.drift_metrics_table:
            raise TableError(f"{name}: disk full", table=name)
        return real(name, data, *args, **kwargs)

    monkeypatch.setattr(ws.tables, "write", failing)
    with pytest.raises(DriftgateError, match="disk full"):
        monitoring.refresh(ws, cfg)
    assert (_content(ws, cfg.profile_metrics_table), _content(ws, cfg.drift_metrics_table)) == before
    monkeypatch.setattr(ws.tables, "write", real)
    assert len(monitoring.refresh(ws, cfg).windows) == 1  # and the next refresh catches up
