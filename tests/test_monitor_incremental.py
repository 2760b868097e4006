"""Incremental refresh: no-op, appended days, late rows and labels, atomic failure."""
from __future__ import annotations

from datetime import timedelta

import pytest

import monitor_world as mw
from driftgate import monitoring
from driftgate.workspace.audit import read_events
from driftgate.core.errors import DriftgateError, TableError
from driftgate.workspace.tables import DeltaTableStore, TableStore


def _content(ws, name):
    rows = ws.tables.read(name).drop_columns(["logging_table_commit_version"] if "profile" in name else []).to_pylist()
    for r in rows:
        r.pop("monitor_version", None)
    return sorted(repr(sorted(r.items())) for r in rows)


def _same_as_full_recompute(ws, cfg):
    incremental = _content(ws, cfg.profile_metrics_table), _content(ws, cfg.drift_metrics_table)
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


def _last_operation(ws, name):
    from deltalake import DeltaTable

    return DeltaTable(str(ws.tables.path(name))).history(1)[0]["operationParameters"]["mode"]


def test_a_day_newer_than_every_window_is_appended_without_rewriting(world):
    ws, cfg = world
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    result = monitoring.refresh(ws, cfg)
    assert "only new windows: rows appended, nothing rewritten" in result.notes
    assert _last_operation(ws, cfg.profile_metrics_table) == _last_operation(ws, cfg.drift_metrics_table) == "Append"
    late = mw.frame(1, first_day=2, rows_per_day=3, seed=7)  # a late row: its window is rewritten
    ws.tables.write(mw.LOG, late)
    result = monitoring.refresh(ws, cfg)
    assert not any("appended" in n for n in result.notes)
    assert _last_operation(ws, cfg.profile_metrics_table) == "Overwrite"
    assert _same_as_full_recompute(ws, cfg)


class _RowsOnly(DeltaTableStore):
    """The same tables through a store with the :class:`TableStore` defaults for commit info,
    compaction and transactions: it keeps no commit metadata (as another engine might)."""

    supports_transactions = False
    commit_metadata = TableStore.commit_metadata
    compact = TableStore.compact
    transaction_version = TableStore.transaction_version

    def __init__(self, tables):
        super().__init__(tables.root)

    def write(self, name, data, mode="append", replace_where=None, partition_by=None, metadata=None, txn=None):
        self._refuse_txn(name, txn)
        return super().write(name, data, mode=mode, replace_where=replace_where, partition_by=partition_by)


def test_commit_metadata_and_rows_record_the_same_state(world):
    from types import SimpleNamespace

    from driftgate.monitoring.engine import monitor_version
    from driftgate.monitoring.refresh import processed_state

    ws, cfg = world
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    monitoring.refresh(ws, cfg)
    mv = monitor_version(cfg)
    from_commit = processed_state(ws, cfg, mv)
    from_rows = processed_state(SimpleNamespace(tables=_RowsOnly(ws.tables)), cfg, mv)
    assert from_commit == from_rows
    assert from_commit.source_version == ws.tables.version(mw.LOG)
    assert from_commit.newest == {"1 day": mw.START + timedelta(days=4)}
    assert processed_state(ws, cfg, mv + 1).source_version is None  # another definition: nothing processed


def test_refreshes_through_a_store_without_commit_metadata_stay_correct(world):
    from types import SimpleNamespace

    ws, cfg = world
    plain = SimpleNamespace(tables=_RowsOnly(ws.tables))
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    assert monitoring.refresh(plain, cfg).mode == "incremental"
    assert monitoring.refresh(plain, cfg).noop
    ws.tables.write(mw.LOG, mw.frame(1, first_day=5, rows_per_day=60))
    assert monitoring.refresh(ws, cfg).mode == "incremental"  # rows written without metadata are read back
    assert _same_as_full_recompute(ws, cfg)


def test_a_foreign_commit_on_the_profile_table_falls_back_to_its_rows(world):
    from deltalake import write_deltalake

    ws, cfg = world
    empty = ws.tables.read(cfg.profile_metrics_table).schema.empty_table()
    write_deltalake(str(ws.tables.path(cfg.profile_metrics_table)), empty, mode="append")  # no driftgate keys
    assert ws.tables.commit_metadata(cfg.profile_metrics_table) == {}
    assert monitoring.refresh(ws, cfg).noop
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    assert monitoring.refresh(ws, cfg).mode == "incremental"
    assert _same_as_full_recompute(ws, cfg)


def test_metric_tables_are_compacted_once_they_hold_many_files(world, monkeypatch):
    from driftgate.workspace import tables as tables_module

    ws, cfg = world
    monkeypatch.setattr(tables_module, "COMPACT_MIN_FILES", 3)
    monkeypatch.setattr(type(ws.tables).compact, "__defaults__", (3,))
    for day in range(4, 7):
        ws.tables.write(mw.LOG, mw.frame(1, first_day=day, rows_per_day=60))
        monitoring.refresh(ws, cfg)
    assert len(ws.tables.files(cfg.profile_metrics_table)) < 3 and len(ws.tables.files(cfg.drift_metrics_table)) < 3
    assert monitoring.refresh(ws, cfg).noop  # the compaction commit carried the processed state
    assert _same_as_full_recompute(ws, cfg)


def test_comparison_summaries_are_not_shared_between_stores_with_the_same_names(tmp_path):
    import importlib

    refresh_module = importlib.import_module("driftgate.monitoring.refresh")
    worlds = []
    for k in range(2):
        ws = mw.light_workspace(tmp_path / f"w{k}")
        cfg = ws.settings.monitor.model_copy(update={"baseline_table_name": None})
        ws.tables.write(mw.LOG, mw.frame(2, rows_per_day=40, seed=k))
        monitoring.refresh(ws, cfg)
        worlds.append((ws, cfg))
    keys = [refresh_module._summary_key(ws.tables, mw.LOG, 0) for ws, _ in worlds]
    assert keys[0] != keys[1]
    for k, (ws, cfg) in enumerate(worlds):
        ws.tables.write(mw.LOG, mw.frame(1, first_day=2, rows_per_day=40, seed=k))
        assert any("reused" in n for n in monitoring.refresh(ws, cfg).notes)
        assert _same_as_full_recompute(ws, cfg)


def test_a_new_process_reuses_the_saved_comparison_summaries(world):
    import importlib

    refresh_module = importlib.import_module("driftgate.monitoring.refresh")
    ws, cfg = world
    saved = refresh_module._summary_file(ws.tables, cfg.table_name, monitoring.engine.monitor_version(cfg))
    assert saved.is_file() and saved.parent.name == refresh_module.SUMMARY_DIR
    refresh_module._SUMMARIES.clear()  # what a new process starts with
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    result = monitoring.refresh(ws, cfg)
    assert any("reused" in n for n in result.notes)
    assert _same_as_full_recompute(ws, cfg)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_without_usable_saved_summaries_the_comparison_window_is_read_back(world, damage):
    import importlib

    refresh_module = importlib.import_module("driftgate.monitoring.refresh")
    ws, cfg = world
    saved = refresh_module._summary_file(ws.tables, cfg.table_name, monitoring.engine.monitor_version(cfg))
    refresh_module._SUMMARIES.clear()
    if damage == "missing":
        saved.unlink()
    else:
        saved.write_bytes(b"not an npz file")
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    result = monitoring.refresh(ws, cfg)
    assert not any("reused" in n for n in result.notes)
    assert "only new windows: rows appended, nothing rewritten" in result.notes
    assert _same_as_full_recompute(ws, cfg)
    assert saved.is_file() and refresh_module._load_summaries(ws.tables, cfg.table_name,
                                                              monitoring.engine.monitor_version(cfg)) is not None


def test_saved_summaries_are_not_reused_after_another_commit_on_the_profile_table(world):
    import importlib

    from deltalake import write_deltalake

    refresh_module = importlib.import_module("driftgate.monitoring.refresh")
    ws, cfg = world
    empty = ws.tables.read(cfg.profile_metrics_table).schema.empty_table()
    write_deltalake(str(ws.tables.path(cfg.profile_metrics_table)), empty, mode="append")
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    assert not any("reused" in n for n in monitoring.refresh(ws, cfg).notes)  # in-process cache refused
    refresh_module._SUMMARIES.clear()
    write_deltalake(str(ws.tables.path(cfg.profile_metrics_table)), empty, mode="append")
    ws.tables.write(mw.LOG, mw.frame(1, first_day=5, rows_per_day=60))
    assert not any("reused" in n for n in monitoring.refresh(ws, cfg).notes)  # saved file refused
    assert _same_as_full_recompute(ws, cfg)


def test_a_refresh_that_lands_while_another_computes_makes_that_one_a_no_op(world, monkeypatch):
    """Two refreshes of the same new day (a table-update trigger and an operator, say): the
    second to write finds its step taken and writes nothing, so no window is appended twice."""
    import importlib
    from types import SimpleNamespace

    from driftgate.monitoring import engine

    refresh_module = importlib.import_module("driftgate.monitoring.refresh")
    ws, cfg = world
    ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    real = engine.compute
    other_results = []

    def compute_while_another_refreshes(*args, **kwargs):
        out = real(*args, **kwargs)
        if not other_results:
            monkeypatch.setattr(engine, "compute", real)
            saved = dict(refresh_module._SUMMARIES)
            other = SimpleNamespace(settings=ws.settings, tables=DeltaTableStore(ws.tables.root))
            other_results.append(monitoring.refresh(other, cfg))
            refresh_module._SUMMARIES.update(saved)
        return out

    monkeypatch.setattr(engine, "compute", compute_while_another_refreshes)
    result = monitoring.refresh(ws, cfg)
    assert other_results[0].mode == "incremental"
    assert result.noop and "another refresh wrote the metric tables" in result.notes[-1]
    assert _same_as_full_recompute(ws, cfg)  # one copy of the new day's rows
