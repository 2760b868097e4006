"""``monitoring.refresh``: read the monitored table, compute, write both metric tables.

The two output tables follow Databricks Data Profiling's documented columns (see
``docs/tables.md``). All rows are computed before anything is written; each table is
written in one Delta transaction, and if the drift table's write fails the profile
table is restored to its previous version, so a failed refresh leaves both as they were.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from driftgate.errors import MonitorError, TableError
from monitoring import engine
from monitoring.config import MonitorConfig

__all__ = ["RefreshResult", "refresh", "profile_schema", "drift_schema"]

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
    seconds: float = 0.0

    def summary(self) -> str:
        if self.noop:
            return f"nothing new in the source (version {self.source_version}); tables unchanged"
        wins = ", ".join(f"{n} x {g}" for g, n in self.windows.items())
        return (f"{self.profile_rows} profile rows and {self.drift_rows} drift rows over {wins or 'no windows'} "
                f"from source version {self.source_version} in {self.seconds:.2f}s")


def _read(ws, name: str, role: str) -> pa.Table:
    if not ws.tables.exists(name):
        raise MonitorError(f"monitor {role} {name} does not exist")
    try:
        return ws.tables.read(name)
    except TableError as exc:
        raise MonitorError(f"monitor {role} {name}: {exc}") from exc


def refresh(ws, monitor: MonitorConfig, *, progress: bool = False) -> RefreshResult:
    """Recompute the profile and drift metric tables of ``monitor.table_name``.

    Args:
        ws: the open workspace (tables are read and written through ``ws.tables``).
        monitor: the monitor definition (usually ``ws.settings.monitor``).
        progress: show a progress bar on the console.

    Returns:
        A :class:`RefreshResult` with the row counts and the source version processed.

    Raises:
        MonitorError: a table or column is missing or of the wrong type, or a slicing
            expression does not parse; the output tables are then left as they were.
    """
    t0 = time.perf_counter()
    source = _read(ws, monitor.table_name, "table_name")
    version = ws.tables.version(monitor.table_name)
    baseline = _read(ws, monitor.baseline_table_name, "baseline_table_name") if monitor.baseline_table_name else None
    prep = engine.prepare(monitor, source, baseline)
    rows = _compute(monitor, prep, version, progress)
    profile = pa.Table.from_pylist(rows.profile, schema=profile_schema(monitor))
    drift = pa.Table.from_pylist(rows.drift, schema=drift_schema(monitor))
    _write_both(ws, monitor, profile, drift)
    windows: dict[str, int] = {}
    for granularity, starts in _windows(profile).items():
        windows[granularity] = len(starts)
    result = RefreshResult(monitor.profile_metrics_table, monitor.drift_metrics_table, version,
                           profile.num_rows, drift.num_rows, windows, seconds=time.perf_counter() - t0)
    _audit(ws, monitor, result)
    return result


def _compute(monitor, prep, version, progress: bool):
    if not progress:
        return engine.compute(monitor, prep, commit_version=version)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"monitor {monitor.table_name}", total=None)
        return engine.compute(monitor, prep, commit_version=version,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))


def _windows(profile: pa.Table) -> dict[str, set]:
    out: dict[str, set] = {}
    for g, w, lt in zip(profile["granularity"].to_pylist(), profile["window"].to_pylist(),
                        profile["log_type"].to_pylist()):
        if lt == "INPUT":
            out.setdefault(g, set()).add(w["start"])
    return out


def _write_both(ws, monitor: MonitorConfig, profile: pa.Table, drift: pa.Table,
                replace_where: str | None = None) -> None:
    names = (monitor.profile_metrics_table, monitor.drift_metrics_table)
    before = {n: (ws.tables.version(n) if ws.tables.exists(n) else None) for n in names}
    try:
        ws.tables.write(names[0], profile, mode="overwrite", replace_where=replace_where)
        ws.tables.write(names[1], drift, mode="overwrite", replace_where=replace_where)
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
