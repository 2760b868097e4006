"""The embedded engine: Arrow tables in, profile and drift metric rows out (NumPy, no JVM).

:func:`compute` is pure: it receives the rows of the windows to recompute (plus the
previous windows they are compared with) and the baseline, and returns the output
rows as Arrow tables in the documented schemas (:func:`profile_schema`,
:func:`drift_schema`, from :mod:`driftgate.core.metric_tables`). Reading, incremental bookkeeping and writing live in
:mod:`driftgate.monitoring.refresh`. The Spark engine reuses :func:`group_rows` and the output
schemas, so both engines share one definition of every row.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftgate.core import metric_tables
from driftgate.core.errors import MonitorError
from driftgate.monitoring import estimate, stats
from driftgate.monitoring.config import MonitorConfig
from driftgate.monitoring.expressions import Expression, ExpressionError, parse

__all__ = [
    "TABLE", "ALL_MODELS", "profile_schema", "drift_schema", "monitor_version", "Plan", "plan_for",
    "window_bounds", "compute", "group_rows",
]

TABLE = metric_tables.TABLE_COLUMN
ALL_MODELS = "*"
SLICE_PREFIX = "__slice_"
"""Columns named ``__slice_<i>`` carry slicing expression i already evaluated (by Spark SQL)."""
_TS = metric_tables.TIMESTAMP
_UNITS = {
    "5 minutes": ("minute", 5), "30 minutes": ("minute", 30), "1 hour": ("hour", 1), "1 day": ("day", 1),
    "1 week": ("week", 1), "2 weeks": ("week", 2), "3 weeks": ("week", 3), "4 weeks": ("week", 4),
    "1 month": ("month", 1), "1 year": ("year", 1),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def profile_schema(cfg: MonitorConfig) -> pa.Schema:
    """Columns of ``<table>_profile_metrics`` for this monitor (defined in :mod:`driftgate.core.metric_tables`)."""
    return metric_tables.profile_schema(
        cfg.model_id_col, cfg.inference_log.problem_type if cfg.inference_log else None,
        [m.name for m in cfg.custom_metrics if m.type in ("aggregate", "derived")])


def drift_schema(cfg: MonitorConfig) -> pa.Schema:
    """Columns of ``<table>_drift_metrics`` for this monitor (defined in :mod:`driftgate.core.metric_tables`)."""
    return metric_tables.drift_schema(cfg.model_id_col, [m.name for m in cfg.custom_metrics if m.type == "drift"])


def monitor_version(cfg: MonitorConfig) -> int:
    """A stable 53-bit number derived from the monitor definition (changes force a full refresh)."""
    canonical = json.dumps(cfg.model_dump(mode="json", exclude={"engine"}), sort_keys=True)
    return int(hashlib.sha256(canonical.encode()).hexdigest()[:13], 16)


# --------------------------------------------------------------------------- windows


def window_starts(ts: pa.Array | pa.ChunkedArray, granularity: str) -> pa.Array:
    """Start of the window each timestamp falls in (UTC; weeks start on Monday)."""
    unit, multiple = _UNITS[granularity]
    return pc.floor_temporal(ts, multiple=multiple, unit=unit, week_starts_monday=True)


def window_bounds(start: datetime, granularity: str) -> tuple[datetime, datetime]:
    """(start, end) of the window beginning at ``start``."""
    unit, multiple = _UNITS[granularity]
    arr = pa.array([start], _TS)
    end = pc.ceil_temporal(arr, multiple=multiple, unit=unit, week_starts_monday=True,
                           ceil_is_strictly_greater=True)[0].as_py()
    return start, end


def previous_window(start: datetime, granularity: str) -> datetime:
    unit, multiple = _UNITS[granularity]
    arr = pa.array([start - timedelta(microseconds=1)], _TS)
    return pc.floor_temporal(arr, multiple=multiple, unit=unit, week_starts_monday=True)[0].as_py()


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """What to compute, resolved once from the config and the source schema."""

    cfg: MonitorConfig
    columns: tuple[str, ...]
    categorical: frozenset[str]
    slices: tuple[tuple[str, Expression], ...]
    aggregates: tuple[tuple[str, str, Expression], ...]  # (metric, input column, expression)
    derived: tuple[tuple[str, str, Expression], ...]
    drifts: tuple[tuple[str, str, Expression], ...]
    version: int
    importance: tuple[tuple[str, float], ...] = ()
    """The champion's feature importance as shares (:func:`driftgate.monitoring.importance.normalized`):
    when set, drift comparisons get a ``:importance_weighted`` row (see :func:`with_importance`)."""


def _check_types(schema: pa.Schema, cfg: MonitorConfig, where: str) -> None:
    ts = cfg.timestamp_col
    if ts is not None:
        if ts not in schema.names:
            raise MonitorError(f"{where}: timestamp column {ts!r} is missing (columns: {', '.join(schema.names)})")
        if not pa.types.is_timestamp(schema.field(ts).type):
            raise MonitorError(f"{where}: column {ts!r} must be a timestamp, got {schema.field(ts).type}")
    log = cfg.inference_log
    if log is None:
        return
    for role, col in (("model_id_col", log.model_id_col), ("prediction_col", log.prediction_col),
                      ("label_col", log.label_col), ("prediction_proba_col", log.prediction_proba_col)):
        if col is not None and col not in schema.names:
            raise MonitorError(f"{where}: inference_log.{role} column {col!r} is missing")
    if log.prediction_proba_col is not None and not stats.is_numeric(schema.field(log.prediction_proba_col).type):
        raise MonitorError(f"{where}: column {log.prediction_proba_col!r} (prediction_proba_col) must be numeric, "
                           f"got {schema.field(log.prediction_proba_col).type}")
    for role, col in (("label_col", log.label_col), ("prediction_col", log.prediction_col)):
        if col is None:
            continue
        t = schema.field(col).type
        ok = (stats.is_numeric(t) or pa.types.is_string(t) or pa.types.is_boolean(t)) if \
            log.problem_type == "classification" else stats.is_numeric(t)
        if not ok:
            want = "numeric, string or boolean" if log.problem_type == "classification" else "numeric"
            raise MonitorError(f"{where}: column {col!r} ({role}) must be {want}, got {t}")


def plan_for(cfg: MonitorConfig, schema: pa.Schema) -> Plan:
    """Resolve the columns, slices and custom metrics; one clear error for anything wrong."""
    where = cfg.table_name
    _check_types(schema, cfg, where)
    skip = cfg.skipped_columns
    columns = tuple(n for n in schema.names if n not in skip
                    and not pa.types.is_nested(schema.field(n).type))
    categorical = {n for n in columns if not stats.is_numeric(schema.field(n).type)}
    log = cfg.inference_log
    if log and log.problem_type == "classification":
        categorical |= {c for c in (log.prediction_col, log.label_col) if c}
    slices = []
    for i, text in enumerate(cfg.slicing_exprs):
        try:
            expr = parse(text)
            expr.check_columns(schema.names, "column names")
        except ExpressionError as exc:
            raise MonitorError(f"{where}: slicing_exprs[{i}]: {exc}") from None
        if expr.is_aggregate:
            raise MonitorError(f"{where}: slicing_exprs[{i}]: {text!r} must not use an aggregate function")
        slices.append((text, expr))
    aggregates, derived, drifts = [], [], []
    agg_names = set()
    for metric in cfg.custom_metrics:
        inputs = metric.input_columns
        for col in inputs:
            if col != TABLE and col not in schema.names:
                raise MonitorError(f"{where}: custom_metrics.{metric.name}: input column {col!r} is missing")
        for col in inputs:
            try:
                if metric.type == "aggregate":
                    expr = parse(metric.definition, input_column=col, **_template(cfg))
                    expr.check_columns(schema.names, f"custom_metrics.{metric.name}")
                    if not expr.is_aggregate:
                        raise ExpressionError(f"{metric.definition!r} must be an aggregate (avg, sum, count, ...)")
                    aggregates.append((metric.name, col, expr))
                    agg_names.add(metric.name)
                elif metric.type == "derived":
                    expr = parse(metric.definition, **_template(cfg))
                    unknown = expr.columns() - agg_names - {m for m, _, _ in derived}
                    if unknown:
                        raise ExpressionError(f"refers to unknown metric(s) {', '.join(sorted(unknown))} "
                                              "(derived metrics read earlier aggregate/derived metrics)")
                    derived.append((metric.name, col, expr))
                else:
                    text = metric.definition.replace("{{current_df}}.", "current_").replace(
                        "{{base_df}}.", "base_")
                    expr = parse(text, **_template(cfg))
                    known = {f"{side}_{m}" for side in ("current", "base") for m in
                             agg_names | {d for d, _, _ in derived}}
                    unknown = expr.columns() - known
                    if unknown:
                        raise ExpressionError(f"refers to unknown {', '.join(sorted(unknown))}; use "
                                              "{{current_df}}.<metric> and {{base_df}}.<metric>")
                    drifts.append((metric.name, col, expr))
            except ExpressionError as exc:
                raise MonitorError(f"{where}: custom_metrics.{metric.name}: {exc}") from None
    return Plan(cfg, columns, frozenset(categorical), tuple(slices), tuple(aggregates), tuple(derived),
                tuple(drifts), monitor_version(cfg))


def with_importance(plan: Plan, importance: dict[str, float]) -> Plan:
    """The plan with the champion's importance shares over its profiled columns (others are not features)."""
    from dataclasses import replace

    from driftgate.monitoring.importance import normalized

    shares = normalized({c: v for c, v in importance.items() if c in plan.columns})
    return replace(plan, importance=tuple(sorted(shares.items())))


def _template(cfg: MonitorConfig) -> dict[str, str]:
    log = cfg.inference_log
    out = {}
    if log:
        out["prediction_col"] = log.prediction_col
        if log.label_col:
            out["label_col"] = log.label_col
        if log.prediction_proba_col:
            out["prediction_proba_col"] = log.prediction_proba_col
    return out


# --------------------------------------------------------------------------- grouping


def slice_masks(plan: Plan, table: pa.Table) -> list[tuple[str | None, str | None, pa.Array | None]]:
    """(slice_key, slice_value, mask) for the whole table and every slice value present."""
    out: list[tuple[str | None, str | None, pa.Array | None]] = [(None, None, None)]
    for i, (text, expr) in enumerate(plan.slices):
        given = f"{SLICE_PREFIX}{i}"
        values = table.column(given) if given in table.column_names else expr.evaluate(table)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_boolean(values.type):
            for flag in (True, False):
                out.append((text, "true" if flag else "false", pc.fill_null(pc.equal(values, flag), False)))
            continue
        counts = stats.category_counts(values)
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: plan.cfg.max_slice_values]
        as_str = pc.cast(values, pa.string())
        for key, _ in top:
            out.append((text, key, pc.fill_null(pc.equal(as_str, key), False)))
    return out


def group_rows(plan: Plan, table: pa.Table, *, with_models: bool = True):
    """Yield ``(model_id, slice_key, slice_value, rows)`` for one window's rows.

    The model id is each distinct value (as a string) and ``'*'`` for all models.
    When one model served every row, its groups are the very same table objects as the
    ``'*'`` groups, so callers can compute each distinct group once (``compute`` does).
    """
    model_col = plan.cfg.model_id_col if with_models else None
    models: list[tuple[str, pa.Table]] = [(ALL_MODELS, table)]
    if model_col:
        ids = pc.cast(table.column(model_col), pa.string())
        distinct = sorted(v for v in pc.unique(ids).to_pylist() if v is not None)
        if len(distinct) == 1 and ids.null_count == 0:
            models.append((distinct[0], table))
        else:
            for value in distinct:
                models.append((value, table.filter(pc.equal(ids, value))))
    groups: dict[int, list] = {}
    for model, rows in models:
        if id(rows) not in groups:
            groups[id(rows)] = [(key, value, rows if mask is None else rows.filter(mask))
                                for key, value, mask in slice_masks(plan, rows)]
        for key, value, grp in groups[id(rows)]:
            yield model, key, value, grp


# --------------------------------------------------------------------------- per-group computation


@dataclass
class GroupSummary:
    """Everything drift needs from one group: per-column profile and distribution."""

    rows: int
    profiles: dict[str, stats.ColumnProfile] = field(default_factory=dict)
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    non_null_columns: tuple[str, ...] = ()
    metrics: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (metric, column) -> value


def summarize(plan: Plan, rows: pa.Table) -> GroupSummary:
    summary = GroupSummary(rows=rows.num_rows)
    nonnull = []
    for col in plan.columns:
        arr = rows.column(col)
        categorical = col in plan.categorical
        if not stats.is_numeric(arr.type):
            prof, summary.categories[col] = stats.categorical_summary(arr)
        elif categorical:
            prof = stats.profile_column(arr, categorical=True)
            summary.categories[col] = stats.category_counts(arr)
        else:
            prof, summary.numeric[col] = stats.numeric_summary(arr)
        summary.profiles[col] = prof
        if prof.count:
            nonnull.append(col)
    summary.non_null_columns = tuple(nonnull)
    for name, col, expr in plan.aggregates:
        summary.metrics[(name, col)] = _as_float(expr.evaluate(rows) if rows.num_rows else None)
    for name, col, expr in plan.derived:
        env = pa.table({m: [v] for (m, c), v in summary.metrics.items() if c == col}) if summary.metrics else None
        value = None
        if env is not None:
            try:
                out = expr.evaluate(env)
                value = _as_float(out[0].as_py() if isinstance(out, (pa.Array, pa.ChunkedArray)) else out)
            except (ExpressionError, pa.ArrowInvalid):
                value = None
        summary.metrics[(name, col)] = value
    return summary


def _as_float(value) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _quality(plan: Plan, rows: pa.Table) -> dict:
    """Model quality over the rows with a label and a prediction (InferenceLog monitors)."""
    log = plan.cfg.inference_log
    if log is None or log.label_col is None:
        return {}
    labeled = rows.filter(pc.and_(pc.is_valid(rows.column(log.label_col)),
                                  pc.is_valid(rows.column(log.prediction_col))))
    out: dict[str, Any] = {"labeled_count": labeled.num_rows}
    if labeled.num_rows == 0:
        return out
    y = labeled.column(log.label_col).to_numpy(zero_copy_only=False)
    yhat = labeled.column(log.prediction_col).to_numpy(zero_copy_only=False)
    if log.problem_type == "regression":
        err = yhat.astype(float) - y.astype(float)
        mse = float(np.mean(err ** 2))
        var = float(np.var(y.astype(float)))
        out.update(mean_squared_error=mse, root_mean_squared_error=float(np.sqrt(mse)),
                   mean_absolute_error=float(np.mean(np.abs(err))),
                   mean_absolute_percentage_error=stats.mean_absolute_percentage_error(y, yhat),
                   r2_score=(1.0 - mse / var) if var > 0 else None)
        return out
    proba = None
    if log.prediction_proba_col:
        p = labeled.column(log.prediction_proba_col)
        if p.null_count == 0:
            proba = p.to_numpy(zero_copy_only=False)
    out.update(stats.classification_quality(y, yhat, proba))
    return out


def _estimated(plan: Plan, rows: pa.Table, seed_key: str) -> dict:
    """CBPE estimates of ROC AUC, accuracy and F1 from the served probabilities of all rows, labelled or
    not (binary classification with ``prediction_proba_col``); the band's seed comes from ``seed_key``
    (granularity, window, slice, log type), so a window always gets the same band, on either engine."""
    log = plan.cfg.inference_log
    if log is None or log.problem_type != "classification" or not log.prediction_proba_col:
        return {}
    p = pc.cast(rows.column(log.prediction_proba_col), pa.float64()).to_numpy(zero_copy_only=False)
    yhat = _binary_prediction(rows.column(log.prediction_col))
    seed = int(hashlib.sha256(seed_key.encode()).hexdigest()[:15], 16)
    out = estimate.estimate_binary(p, yhat, seed=seed).as_columns()
    if yhat is None:  # predictions that are not 0/1 classes: only the ranking metric is defined
        out.update({k: float("nan") for k in out if not k.startswith("estimated_roc_auc")})
    return {k: _as_float(v) for k, v in out.items()}


def _binary_prediction(values: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Served predictions as 0/1 floats (NaN for NULL), or None when they are not the classes 0 and 1."""
    try:
        as_float = pc.cast(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    out = as_float.to_numpy(zero_copy_only=False).astype(np.float64)
    return out if np.isin(out[~np.isnan(out)], (0.0, 1.0)).all() else None


def _fairness(plan: Plan, rows: pa.Table, expr: Expression) -> dict:
    log = plan.cfg.inference_log
    labeled = rows.filter(pc.and_(pc.is_valid(rows.column(log.label_col)),
                                  pc.is_valid(rows.column(log.prediction_col))))
    if labeled.num_rows == 0:
        return {}
    flag = pc.fill_null(expr.evaluate(labeled), False).to_numpy(zero_copy_only=False)
    return stats.fairness(labeled.column(log.label_col).to_numpy(zero_copy_only=False),
                          labeled.column(log.prediction_col).to_numpy(zero_copy_only=False), flag)


# --------------------------------------------------------------------------- compute


@dataclass(frozen=True)
class Window:
    granularity: str
    start: datetime
    end: datetime


GroupKey = tuple[str, datetime, str, "str | None", "str | None"]
"""``(granularity, window start, model id, slice_key, slice_value)``: how ``reuse`` and ``keep`` key groups."""


@dataclass
class Group:
    """One (window, model, slice) group: its rows and, once summarised, its summary.

    ``rows`` is None for a comparison window reused from an earlier refresh (``reuse``):
    its summary is known, its rows were not read, and it emits nothing itself.
    """

    window: Window
    model: str
    slice_key: str | None
    slice_value: str | None
    rows: pa.Table | None
    summary: GroupSummary | None = None

    @property
    def key(self) -> GroupKey:
        return (self.window.granularity, self.window.start, self.model, self.slice_key, self.slice_value)


@dataclass
class BaselineGroup:
    """One slice of the baseline (always all models) and its summary."""

    slice_key: str | None
    slice_value: str | None
    rows: pa.Table
    summary: GroupSummary | None = None


@dataclass(frozen=True)
class DriftJob:
    """One drift comparison: a current group against the previous window's or the baseline's."""

    window: Window
    compared: Window
    drift_type: str
    """``CONSECUTIVE`` or ``BASELINE``."""
    model: str
    slice_key: str | None
    slice_value: str | None
    current: GroupSummary
    reference: GroupSummary

    @property
    def shared(self) -> tuple:
        """Jobs equal in this give identical rows but for the model id ('*' and a sole model)."""
        return (self.window, self.compared, self.drift_type, self.slice_key, self.slice_value, id(self.current),
                id(self.reference))


def compute(
    plan: Plan,
    source: pa.Table,
    baseline: pa.Table | None,
    *,
    profile_windows: dict[str, set[datetime]] | None = None,
    drift_windows: dict[str, set[datetime]] | None = None,
    commit_version: int = 0,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
    emit_baseline: bool = True,
    reuse: dict[GroupKey, GroupSummary] | None = None,
    keep: dict[GroupKey, GroupSummary] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Profile and drift rows for the windows present in ``source``.

    Args:
        plan: from :func:`plan_for`.
        source: rows of the monitored table (the windows to recompute and their predecessors).
        baseline: the baseline table's rows, or None.
        profile_windows: per granularity, the window starts whose profile rows to emit
            (None: every window in ``source``).
        drift_windows: per granularity, the window starts whose drift rows to emit
            (None: every window in ``source``).
        commit_version: the source's Delta version (``logging_table_commit_version``).
        now: the snapshot time (snapshot analysis only).
        progress: called with (done, total) groups.
        workers: threads for per-group work (NumPy releases the GIL while sorting).
        emit_baseline: also emit the BASELINE profile rows.
        reuse: summaries of comparison-only windows computed by an earlier refresh, keyed
            :data:`GroupKey`; their rows need not be in ``source``.
        keep: filled with the summaries of the newest window per granularity (for ``reuse`` next time).

    Returns:
        (profile rows, drift rows) as Arrow tables in the documented schemas.
    """
    windows = _windows(plan, source, profile_windows, drift_windows, now)
    groups = [Group(win, model, key, value, rows) for win, window_rows in windows
              for model, key, value, rows in group_rows(plan, window_rows)]
    base_groups = [] if baseline is None else [
        BaselineGroup(key, value, rows) for _, key, value, rows in group_rows(plan, baseline, with_models=False)]
    _summarize_all(plan, [*groups, *base_groups], workers, progress)

    by_key = {g.key: g for g in groups}
    for key, summary in (reuse or {}).items():
        if key not in by_key:
            gran, start, model, slice_key, slice_value = key
            by_key[key] = Group(Window(gran, *window_bounds(start, gran)), model, slice_key, slice_value, None,
                                summary)
    if keep is not None:
        keep.update(_newest_summaries(by_key))
    base_by_slice = {(b.slice_key, b.slice_value): b for b in base_groups}

    profiles = _ProfileRows(plan, commit_version, by_key, base_by_slice)
    for group in by_key.values():
        if group.rows is not None and _wanted(profile_windows, group.window):
            profiles.emit(group.window, group.model, group.slice_key, group.slice_value, group.rows, group.summary,
                          "INPUT")
    jobs = _drift_jobs(plan, by_key, base_by_slice, drift_windows)
    drift_rows = _run_drift_jobs(plan, jobs, workers)
    if baseline is not None and emit_baseline:
        for gran in (plan.cfg.granularities or ["snapshot"]):
            for b in base_by_slice.values():
                span = _baseline_window(b.rows, plan.cfg.timestamp_col)
                profiles.emit(Window(gran, span.start, span.end), ALL_MODELS, b.slice_key, b.slice_value, b.rows,
                              b.summary, "BASELINE")
    return _to_table(profiles.rows, profile_schema(plan.cfg)), _to_table(drift_rows, drift_schema(plan.cfg))


def _wanted(windows: dict[str, set[datetime]] | None, window: Window) -> bool:
    return windows is None or window.start in windows.get(window.granularity, set())


def _windows(plan: Plan, source: pa.Table, profile_windows, drift_windows,
             now: datetime | None) -> list[tuple[Window, pa.Table]]:
    """The windows to compute and their rows: the wanted ones and the predecessors they compare with."""
    cfg = plan.cfg
    if cfg.timestamp_col is None:
        when = now or datetime.now(timezone.utc)
        return [(Window("snapshot", when, when), source)]
    out = []
    for gran in cfg.granularities:
        starts = window_starts(source.column(cfg.timestamp_col), gran)
        wanted = None
        if profile_windows is not None and drift_windows is not None:
            wanted = set(profile_windows.get(gran, set())) | set(drift_windows.get(gran, set()))
            wanted |= {previous_window(s, gran) for s in drift_windows.get(gran, set())}
        for start in sorted(s for s in pc.unique(starts).to_pylist() if s is not None):
            if wanted is None or start in wanted:
                rows = source.filter(pc.equal(starts, pa.scalar(start, _TS)))
                out.append((Window(gran, *window_bounds(start, gran)), rows))
    return out


def _summarize_all(plan: Plan, groups: list, workers: int, progress: Callable[[int, int], None] | None) -> None:
    """Fill every group's summary, computing each distinct table once.

    A window served by one model has the same groups under '*' and under that model
    (:func:`group_rows` hands out the same tables): half the work. The windows' groups and
    the baseline's share one queue, so the baseline is summarised alongside the windows
    (one current window + the baseline is the common case: two tasks for two cores).
    """
    distinct: dict[int, pa.Table] = {}
    for group in groups:
        distinct.setdefault(id(group.rows), group.rows)
    summaries: dict[int, GroupSummary] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (ident, summary) in enumerate(
                zip(distinct, pool.map(lambda rows: summarize(plan, rows), distinct.values())), 1):
            summaries[ident] = summary
            if progress:
                progress(done, len(distinct))
    for group in groups:
        group.summary = summaries[id(group.rows)]


def _newest_summaries(by_key: dict[GroupKey, Group]) -> dict[GroupKey, GroupSummary]:
    """The summaries of the newest window of each granularity (the next refresh's comparison)."""
    newest: dict[str, datetime] = {}
    for gran, start, *_ in by_key:
        newest[gran] = max(newest.get(gran, start), start)
    return {key: g.summary for key, g in by_key.items() if newest.get(key[0]) == key[1]}


class _ProfileRows:
    """Builds the profile rows of groups; per-group quality and fairness are computed once per
    distinct table (identical groups share them, see :func:`_summarize_all`)."""

    def __init__(self, plan: Plan, commit_version: int, by_key: dict[GroupKey, Group],
                 base_by_slice: dict[tuple, BaselineGroup]):
        self.plan, self.commit_version = plan, commit_version
        self.by_key, self.base_by_slice = by_key, base_by_slice
        self.slice_exprs = dict(plan.slices)
        self.rows: list[dict] = []
        self._quality: dict[int, dict] = {}
        self._estimates: dict[tuple[int, str], dict] = {}
        self._fairness: dict[tuple[int, str], dict] = {}

    def emit(self, window: Window, model: str, slice_key, slice_value, rows: pa.Table, summary: GroupSummary,
             log_type: str) -> None:
        """The group's ``:table`` row and one row per profiled column."""
        base = {"window": {"start": window.start, "end": window.end}, "log_type": log_type,
                "logging_table_commit_version": self.commit_version, "monitor_version": self.plan.version,
                "granularity": window.granularity, "slice_key": slice_key, "slice_value": slice_value}
        if self.plan.cfg.model_id_col:
            base[self.plan.cfg.model_id_col] = model
        table_row = dict(base, column_name=TABLE, count=rows.num_rows, num_nulls=0,
                         non_null_columns=list(summary.non_null_columns))
        table_row.update(self._quality_of(rows))
        table_row.update(self._estimated_of(window, slice_key, slice_value, rows, log_type))
        table_row.update(self._fairness_of(window, model, slice_key, slice_value, rows, log_type))
        table_row.update(_metrics_for(summary, TABLE))
        self.rows.append(table_row)
        for col in self.plan.columns:
            self.rows.append({**base, "column_name": col, **summary.profiles[col].as_row(), **_metrics_for(summary, col)})

    def _quality_of(self, rows: pa.Table) -> dict:
        if id(rows) not in self._quality:
            self._quality[id(rows)] = _quality(self.plan, rows)
        return self._quality[id(rows)]

    def _estimated_of(self, window: Window, slice_key, slice_value, rows: pa.Table, log_type: str) -> dict:
        key = (id(rows), log_type)
        if key not in self._estimates:
            seed_key = f"{window.granularity}|{window.start.isoformat()}|{slice_key}|{slice_value}|{log_type}"
            self._estimates[key] = _estimated(self.plan, rows, seed_key)
        return self._estimates[key]

    def _fairness_of(self, window: Window, model: str, slice_key, slice_value, rows: pa.Table, log_type: str) -> dict:
        """Fairness on the protected group's row (slice value ``true``): that group against the
        rest of the same model's rows (the baseline's for BASELINE rows)."""
        log = self.plan.cfg.inference_log
        if (log is None or log.problem_type != "classification" or slice_value != "true"
                or slice_key not in self.slice_exprs or not self._quality_of(rows).get("labeled_count")):
            return {}
        if log_type == "INPUT":
            parent = self.by_key.get((window.granularity, window.start, model, None, None))
        else:
            parent = self.base_by_slice.get((None, None))
        if parent is None or parent.rows is None:
            return {}
        key = (id(parent.rows), slice_key)
        if key not in self._fairness:
            self._fairness[key] = _fairness(self.plan, parent.rows, self.slice_exprs[slice_key])
        return self._fairness[key]


def _metrics_for(summary: GroupSummary, column: str) -> dict[str, float | None]:
    """The aggregate and derived custom metrics of one column (or ``:table``)."""
    return {name: value for (name, col), value in summary.metrics.items() if col == column}


def _drift_jobs(plan: Plan, by_key: dict[GroupKey, Group], base_by_slice: dict[tuple, BaselineGroup],
                drift_windows: dict[str, set[datetime]] | None) -> list[DriftJob]:
    """CONSECUTIVE jobs against the previous window of the same model and slice (when it has rows),
    BASELINE jobs against the baseline's same slice (when there is a baseline)."""
    ts_col = plan.cfg.timestamp_col
    jobs = []
    for group in by_key.values():
        if group.rows is None or (drift_windows is not None and not _wanted(drift_windows, group.window)):
            continue
        win = group.window
        same = dict(model=group.model, slice_key=group.slice_key, slice_value=group.slice_value,
                    current=group.summary)
        if ts_col is not None:
            prev = by_key.get((win.granularity, previous_window(win.start, win.granularity), group.model,
                               group.slice_key, group.slice_value))
            if prev is not None:
                jobs.append(DriftJob(win, prev.window, "CONSECUTIVE", reference=prev.summary, **same))
        base = base_by_slice.get((group.slice_key, group.slice_value))
        if base is not None:
            jobs.append(DriftJob(win, _baseline_window(base.rows, ts_col), "BASELINE", reference=base.summary, **same))
    return jobs


def _run_drift_jobs(plan: Plan, jobs: list[DriftJob], workers: int) -> list[dict]:
    """The drift rows of every job; jobs that differ only in the model id are computed once."""
    if not jobs:
        return []
    unique: dict[tuple, DriftJob] = {}
    for job in jobs:
        unique.setdefault(job.shared, job)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = dict(zip(unique, pool.map(lambda job: list(_drift_rows(plan, job)), unique.values())))
    model_col = plan.cfg.model_id_col
    out: list[dict] = []
    for job in jobs:
        rows = done[job.shared]
        if model_col and rows and rows[0][model_col] != job.model:
            rows = [dict(r, **{model_col: job.model}) for r in rows]
        out.extend(rows)
    return out


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def restrict_granularity(plan: Plan, granularity: str) -> Plan:
    """The same plan (same monitor_version) computing one granularity only."""
    from dataclasses import replace

    cfg = plan.cfg
    key = "inference_log" if cfg.inference_log is not None else "time_series"
    analysis = getattr(cfg, key).model_copy(update={"granularities": [granularity]})
    return replace(plan, cfg=cfg.model_copy(update={key: analysis}))


def _baseline_window(rows: pa.Table, ts_col: str | None) -> Window:
    """The baseline's window spans its own timestamps (epoch when it has none or no rows)."""
    if ts_col and ts_col in rows.column_names and rows.num_rows and rows.column(ts_col).null_count < rows.num_rows:
        lo = pc.min(rows.column(ts_col)).as_py()
        hi = pc.max(rows.column(ts_col)).as_py()
        return Window("baseline", lo, hi)
    return Window("baseline", _EPOCH, _EPOCH)


def _delta(a, b):
    return None if a is None or b is None else float(a) - float(b)


def _drift_rows(plan: Plan, job: DriftJob) -> Iterable[dict]:
    """The ``:table`` drift row and one per profiled column."""
    cfg = plan.cfg
    win, cmp, cur, ref = job.window, job.compared, job.current, job.reference
    base = {"window": {"start": win.start, "end": win.end}, "granularity": win.granularity,
            "monitor_version": plan.version, "slice_key": job.slice_key, "slice_value": job.slice_value,
            "window_cmp": {"start": cmp.start, "end": cmp.end}, "drift_type": job.drift_type}
    if cfg.model_id_col:
        base[cfg.model_id_col] = job.model
    added = len(set(cur.non_null_columns) - set(ref.non_null_columns))
    missing = len(set(ref.non_null_columns) - set(cur.non_null_columns))
    table_row = dict(base, column_name=TABLE, data_type=None, count=cur.rows, count_cmp=ref.rows,
                     count_delta=float(cur.rows - ref.rows),
                     non_null_columns_delta={"added": added, "missing": missing})
    table_row.update(_custom_drift(plan, TABLE, cur, ref))
    yield table_row
    shares = dict(plan.importance)
    weighted: list[tuple[float, float | None]] = []
    for col in plan.columns:
        pc_, pr = cur.profiles[col], ref.profiles[col]
        c, r = pc_.as_row(), pr.as_row()
        row = dict(base, column_name=col, data_type=pc_.data_type, count=pc_.count, count_cmp=pr.count,
                   count_delta=float(pc_.count - pr.count), avg_delta=_delta(c["avg"], r["avg"]),
                   percent_null_delta=_delta(c["percent_null"], r["percent_null"]),
                   percent_zeros_delta=_delta(c["percent_zeros"], r["percent_zeros"]),
                   percent_distinct_delta=_delta(c["percent_distinct"], r["percent_distinct"]))
        if col in cur.numeric:
            nd = stats.numeric_drift(ref.numeric[col], cur.numeric[col], psi_bins=cfg.psi_bins, presorted=True)
            if nd is not None:
                row.update(ks_test={"statistic": nd.ks_statistic, "pvalue": nd.ks_pvalue},
                           wasserstein_distance=nd.wasserstein, population_stability_index=nd.psi)
        elif col in cur.categories:
            cd = stats.categorical_drift(ref.categories[col], cur.categories[col])
            if cd is not None:
                row.update(chi_squared_test={"statistic": cd.chi2_statistic, "pvalue": cd.chi2_pvalue},
                           js_distance=cd.js_distance, tv_distance=cd.tv_distance,
                           l_infinity_distance=cd.l_infinity_distance)
        row.update(_custom_drift(plan, col, cur, ref))
        if shares:
            row["feature_importance"] = shares.get(col, 0.0)
            if shares.get(col):
                weighted.append((shares[col], row.get("population_stability_index", row.get("js_distance"))))
        yield row
    if shares:
        known = [(w, d) for w, d in weighted if d is not None and np.isfinite(d)]
        total = sum(w for w, _ in known)
        yield dict(base, column_name=metric_tables.IMPORTANCE_COLUMN, data_type=None, count=cur.rows,
                   count_cmp=ref.rows, count_delta=float(cur.rows - ref.rows),
                   importance_weighted_drift=sum(w * d for w, d in known) / total if total > 0 else None,
                   feature_importance=total)


def _custom_drift(plan: Plan, col: str, cur: GroupSummary, ref: GroupSummary) -> dict:
    out = {}
    for name, mcol, expr in plan.drifts:
        if mcol != col:
            continue
        env = {f"current_{m}": [v] for (m, c), v in cur.metrics.items() if c == col}
        env.update({f"base_{m}": [v] for (m, c), v in ref.metrics.items() if c == col})
        try:
            result = expr.evaluate(pa.table(env)) if env else None
            if isinstance(result, (pa.Array, pa.ChunkedArray)):
                result = result[0].as_py()
            out[name] = _as_float(result)
        except (ExpressionError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out[name] = None
    return out


def _to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    for name in metric_tables.MAP_COLUMNS:
        if name in columns:
            columns[name] = [_map_items(v) for v in columns[name]]
    return pa.Table.from_pydict(columns, schema=schema)


def _map_items(value):
    if value is None:
        return None
    if isinstance(value, dict) and "one_vs_all" in value:
        return dict(value, one_vs_all=list(value["one_vs_all"].items()))
    if isinstance(value, dict):
        return list(value.items())
    return value
