"""``monitoring.refresh``: read the monitored table, compute, write both metric tables.

The two output tables follow Databricks Data Profiling's documented columns (see
``docs/tables.md``). All rows are computed before anything is written; each table is
written in one Delta transaction, and if the drift table's write fails the profile
table is restored to its previous version, so a failed refresh leaves both as they were.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from driftgate.errors import MonitorError, TableError
from monitoring import engine
from monitoring.config import MonitorConfig

__all__ = ["RefreshResult", "refresh", "profile_schema", "drift_schema"]

_ENGINE_REVISION = 1
"""Bumped when a statistic's definition changes, so stored rows are recomputed."""
_TS = pa.timestamp("us", tz="UTC")
_WINDOW = pa.struct([("start", _TS), ("end", _TS)])
_TEST = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
_AVG = pa.struct([("macro", pa.float64()), ("weighted", pa.float64()),
                  ("one_vs_all", pa.map_(pa.string(), pa.float64()))])
_FAIR = pa.map_(pa.string(), pa.float64())


def _model_field(cfg: MonitorConfig) -> list[tuple[str, pa.DataType]]:
    return [(cfg.inference_log.model_id_col, pa.string())] if cfg.inference_log is not None else []


def profile_schema(cfg: MonitorConfig) -> pa.Schema:
    """Columns and types of ``<table>_profile_metrics``."""
    fields = [
        ("window", _WINDOW), ("log_type", pa.string()), ("logging_table_commit_version", pa.int64()),
        ("monitor_version", pa.int64()), ("granularity", pa.string()), *_model_field(cfg),
        ("slice_key", pa.string()), ("slice_value", pa.string()), ("column_name", pa.string()),
        ("count", pa.int64()), ("data_type", pa.string()), ("num_nulls", pa.int64()), ("avg", pa.float64()),
        ("quantiles", pa.list_(pa.float64())), ("min", pa.float64()), ("max", pa.float64()),
        ("stddev", pa.float64()), ("num_zeros", pa.int64()), ("num_nan", pa.int64()),
        ("min_length", pa.float64()), ("max_length", pa.float64()), ("avg_length", pa.float64()),
        ("non_null_columns", pa.list_(pa.string())),
        ("frequent_items", pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
        ("median", pa.float64()), ("distinct_count", pa.int64()), ("percent_nan", pa.float64()),
        ("percent_null", pa.float64()), ("percent_zeros", pa.float64()), ("percent_distinct", pa.float64()),
    ]
    il = cfg.inference_log
    if il is not None and il.problem_type == "classification":
        fields += [
            ("accuracy_score", pa.float64()), ("precision", _AVG), ("recall", _AVG), ("f1_score", _AVG),
            ("confusion_matrix", pa.list_(pa.struct([("prediction", pa.string()), ("label", pa.string()),
                                                     ("count", pa.int64())]))),
            ("roc_auc", pa.float64()), ("log_loss", pa.float64()),
            ("predictive_parity", _FAIR), ("predictive_equality", _FAIR), ("equal_opportunity", _FAIR),
            ("statistical_parity", _FAIR),
        ]
    return pa.schema(fields)


def drift_schema(cfg: MonitorConfig) -> pa.Schema:
    """Columns and types of ``<table>_drift_metrics``."""
    return pa.schema([
        ("window", _WINDOW), ("granularity", pa.string()), ("monitor_version", pa.int64()), *_model_field(cfg),
        ("slice_key", pa.string()), ("slice_value", pa.string()), ("column_name", pa.string()),
        ("data_type", pa.string()), ("window_cmp", _WINDOW), ("drift_type", pa.string()),
        ("count_delta", pa.float64()), ("avg_delta", pa.float64()), ("percent_null_delta", pa.float64()),
        ("percent_zeros_delta", pa.float64()), ("percent_distinct_delta", pa.float64()),
        ("non_null_columns_delta", pa.struct([("added", pa.int32()), ("missing", pa.int32())])),
        ("js_distance", pa.float64()), ("ks_test", _TEST), ("wasserstein_distance", pa.float64()),
        ("population_stability_index", pa.float64()), ("chi_squared_test", _TEST),
        ("tv_distance", pa.float64()), ("l_infinity_distance", pa.float64()),
    ])


@dataclass
class RefreshResult:
    """What a refresh did."""

    profile_table: str
    drift_table: str
    source_version: int | None
    profile_rows: int = 0
    drift_rows: int = 0
    windows: dict[str, int] = field(default_factory=dict)
    """Windows (re)computed per granularity."""
    noop: bool = False
    incremental: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        if self.noop:
            return f"nothing new in the source (version {self.source_version}); tables unchanged"
        wins = ", ".join(f"{n} x {g}" for g, n in self.windows.items())
        how = "incremental: " if self.incremental else ""
        return (f"{how}{self.profile_rows} profile rows and {self.drift_rows} drift rows over {wins or 'no windows'} "
                f"from source version {self.source_version} in {self.seconds:.2f}s")


def _read(ws, name: str, role: str, filters=None) -> pa.Table:
    if not ws.tables.exists(name):
        raise MonitorError(f"monitor {role} {name} does not exist")
    try:
        return ws.tables.read(name, filters=filters)
    except TableError as exc:
        raise MonitorError(f"monitor {role} {name}: {exc}") from exc


def refresh(ws, monitor: MonitorConfig, *, progress: bool = False, full: bool = False) -> RefreshResult:
    """Bring the profile and drift metric tables of ``monitor.table_name`` up to date.

    Incremental: the tables record the source's Delta version they cover
    (``logging_table_commit_version``) and a fingerprint of the monitor definition and the
    baseline's version (``monitor_version``). With nothing new this is a no-op; otherwise
    only the windows that rows added (or rewritten, e.g. late labels) since that version fall
    in are recomputed, plus the window after each (whose CONSECUTIVE drift compares with
    it), and replaced in one ``replace_where`` write per table. A changed definition or
    baseline, or ``full=True``, recomputes everything.

    Args:
        ws: the open workspace (tables are read and written through ``ws.tables``).
        monitor: the monitor definition (usually ``ws.settings.monitor``).
        progress: show a progress bar on the console.
        full: recompute every window.

    Returns:
        A :class:`RefreshResult` with the row counts and the source version processed.

    Raises:
        MonitorError: a table or column is missing or of the wrong type, or a slicing
            expression does not parse; the output tables are then left as they were.
    """
    t0 = time.perf_counter()
    _check_exists(ws, monitor.table_name, "table_name")
    version = ws.tables.version(monitor.table_name)
    base_version = None
    if monitor.baseline_table_name:
        _check_exists(ws, monitor.baseline_table_name, "baseline_table_name")
        base_version = ws.tables.version(monitor.baseline_table_name)
    fingerprint = _fingerprint(monitor, base_version)
    state = None if full else _state(ws, monitor)
    only: dict[str, set[int]] | None = None
    source_filter = None
    if state is not None and state == (version, fingerprint):
        return _done(ws, monitor, RefreshResult(monitor.profile_metrics_table, monitor.drift_metrics_table, version,
                                                noop=True, seconds=time.perf_counter() - t0))
    if state is not None and state[1] == fingerprint and state[0] < version:
        touched = _touched_seconds(ws, monitor, state[0])
        if touched is not None:
            only, source_filter = _plan(monitor, touched)
            if not any(only.values()):
                # Commits without rows (e.g. metadata only): nothing to recompute.
                return _done(ws, monitor, RefreshResult(monitor.profile_metrics_table, monitor.drift_metrics_table,
                                                        version, noop=True, seconds=time.perf_counter() - t0))
    source = _read(ws, monitor.table_name, "table_name", filters=source_filter)
    baseline = _read(ws, monitor.baseline_table_name, "baseline_table_name") if monitor.baseline_table_name else None
    prep = engine.prepare(monitor, source, baseline)
    rows = _compute(monitor, prep, version, fingerprint, only, progress)
    profile = pa.Table.from_pylist(rows.profile, schema=profile_schema(monitor))
    drift = pa.Table.from_pylist(rows.drift, schema=drift_schema(monitor))
    computed = _windows(profile)
    if only is None:
        _write_both(ws, monitor, profile, drift)
    else:
        # The planned windows, not only those computed: a window whose rows were all deleted is emptied.
        planned = {g: {datetime.fromtimestamp(x, timezone.utc) for x in w} for g, w in only.items()}
        _write_both(ws, monitor, profile, drift, replace=planned)
    result = RefreshResult(monitor.profile_metrics_table, monitor.drift_metrics_table, version,
                           profile.num_rows, drift.num_rows, {g: len(w) for g, w in computed.items()},
                           incremental=only is not None, seconds=time.perf_counter() - t0)
    return _done(ws, monitor, result)


def _done(ws, monitor: MonitorConfig, result: RefreshResult) -> RefreshResult:
    _audit(ws, monitor, result)
    return result


def _check_exists(ws, name: str, role: str) -> None:
    if not ws.tables.exists(name):
        raise MonitorError(f"monitor {role} {name} does not exist")


def _fingerprint(monitor: MonitorConfig, baseline_version: int | None) -> int:
    """A stable 63-bit number for the definition + baseline version the rows were computed with."""
    text = json.dumps([monitor.model_dump(mode="json", exclude={"engine"}), baseline_version, _ENGINE_REVISION],
                      sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _state(ws, monitor: MonitorConfig) -> tuple[int, int] | None:
    """(source version covered, fingerprint) recorded in the profile table, or None."""
    name = monitor.profile_metrics_table
    if not ws.tables.exists(name) or not ws.tables.exists(monitor.drift_metrics_table):
        return None
    try:
        t = ws.tables.read(name, columns=["logging_table_commit_version", "monitor_version"])
    except TableError:
        return None
    if t.num_rows == 0:
        return None
    fingerprints = set(t["monitor_version"].unique().to_pylist())
    if len(fingerprints) != 1:
        return None
    return int(pc.max(t["logging_table_commit_version"]).as_py()), fingerprints.pop()


def _touched_seconds(ws, monitor: MonitorConfig, since: int):
    """Epoch seconds of the rows added or rewritten since version ``since``; None = recompute all."""
    analysis = monitor.inference_log or monitor.time_series
    if analysis is None:
        return None  # snapshot: every refresh is a new snapshot
    ts = analysis.timestamp_col
    try:
        new = ws.tables.read_since(monitor.table_name, since)
    except (TableError, Exception):  # a reader that cannot diff versions (e.g. no change feed)
        return None
    parts = []
    if new.num_rows:
        if ts not in new.column_names:
            return None
        parts.append(new[ts])
    removed = _removed_timestamps(ws, monitor.table_name, since, ts)
    if removed is None:
        return None
    parts.extend(removed)
    seconds = [pc.cast(pc.drop_null(c).cast(pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy() // 1_000_000
               for c in parts]
    import numpy as np

    return np.concatenate(seconds) if seconds else np.zeros(0, np.int64)


def _removed_timestamps(ws, name: str, since: int, ts: str):
    """Timestamps of rows in files removed since ``since`` (deletes, rewrites); None if unknown."""
    from workspace.tables import DeltaTableStore

    if not isinstance(ws.tables, DeltaTableStore):
        return []  # the Spark store's change feed already lists inserted and updated rows
    import pyarrow.parquet as pq

    try:
        before = set(ws.tables._table(name, since).file_uris())
        now = set(ws.tables._table(name).file_uris())
        return [pq.read_table(uri, columns=[ts])[ts] for uri in sorted(before - now)]
    except Exception:  # a removed file already vacuumed: the old rows' windows are unknown
        return None


def _plan(monitor: MonitorConfig, seconds) -> tuple[dict[str, set[int]], list | None]:
    """Windows to recompute per granularity (touched + the next one), and the source rows they need."""
    analysis = monitor.inference_log or monitor.time_series
    only: dict[str, set[int]] = {}
    lo = hi = None
    for granularity in analysis.granularities:
        touched = {int(s) for s in set(engine.window_starts(seconds, granularity).tolist())}
        redo = touched | {engine.window_end(s, granularity) for s in touched}
        only[granularity] = redo
        if redo:
            first = engine.previous_window(min(redo), granularity)
            last = engine.window_end(max(redo), granularity)
            lo = first if lo is None else min(lo, first)
            hi = last if hi is None else max(hi, last)
    if lo is None:
        return only, None
    ts = analysis.timestamp_col
    return only, [(ts, ">=", datetime.fromtimestamp(lo, timezone.utc)),
                  (ts, "<", datetime.fromtimestamp(hi, timezone.utc))]


def _compute(monitor, prep, version, fingerprint, only, progress: bool):
    kwargs = dict(commit_version=version, monitor_version=fingerprint, only_windows=only)
    if not progress:
        return engine.compute(monitor, prep, **kwargs)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"monitor {monitor.table_name}", total=None)
        return engine.compute(monitor, prep, **kwargs,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))


def _windows(profile: pa.Table) -> dict[str, set]:
    out: dict[str, set] = {}
    for g, w, lt in zip(profile["granularity"].to_pylist(), profile["window"].to_pylist(),
                        profile["log_type"].to_pylist()):
        if lt == "INPUT":
            out.setdefault(g, set()).add(w["start"])
    return out


def _predicate(windows: dict[str, set], *, with_baseline: bool) -> str:
    """``replace_where`` of the recomputed windows (``window['start']`` reads on Spark and delta-rs)."""
    terms = []
    for granularity, starts in sorted(windows.items()):
        if not starts:
            continue
        each = " OR ".join(f"window['start'] = '{s.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}'"
                           for s in sorted(starts))
        terms.append(f"(granularity = '{granularity}' AND ({each}))")
    if with_baseline:
        terms.append("log_type = 'BASELINE'")
    return " OR ".join(terms) or "false"


def _write_both(ws, monitor: MonitorConfig, profile: pa.Table, drift: pa.Table,
                replace: dict[str, set] | None = None) -> None:
    names = (monitor.profile_metrics_table, monitor.drift_metrics_table)
    before = {n: (ws.tables.version(n) if ws.tables.exists(n) else None) for n in names}
    try:
        if replace is None:
            ws.tables.write(names[0], profile, mode="overwrite")
            ws.tables.write(names[1], drift, mode="overwrite")
        else:
            has_baseline = "BASELINE" in set(profile["log_type"].to_pylist())
            ws.tables.write(names[0], profile, replace_where=_predicate(replace, with_baseline=has_baseline))
            ws.tables.write(names[1], drift, replace_where=_predicate(replace, with_baseline=False))
    except TableError as exc:
        _restore(ws, names[0], before[names[0]])
        raise MonitorError(f"monitor refresh of {monitor.table_name}: {exc}; metric tables left as they were") from exc


def _restore(ws, name: str, version: int | None) -> None:
    if not ws.tables.exists(name) or version is None or ws.tables.version(name) == version:
        return
    old = ws.tables.read(name, version=version)
    ws.tables.write(name, old, mode="overwrite")


def _audit(ws, monitor: MonitorConfig, result: RefreshResult) -> None:
    try:
        from driftgate import audit
    except ImportError:  # pragma: no cover
        return
    if "monitor_refresh" not in getattr(audit, "EVENT_KINDS", ()):
        return  # the audit trail does not know refreshes yet
    details: dict[str, Any] = {"profile_rows": result.profile_rows, "drift_rows": result.drift_rows,
                               "source_version": result.source_version, "seconds": round(result.seconds, 3),
                               "noop": result.noop}
    try:
        audit.record_event(ws, "monitor_refresh", subject=monitor.table_name, status="noop" if result.noop else "ok",
                           details=details)
    except Exception:  # the audit trail must not fail a refresh that has written its tables
        pass
