"""The embedded engine: Arrow tables in, profile and drift metric rows out (NumPy/SciPy, no JVM).

Layout of the work: every profiled column is turned once into NumPy arrays (floats +
null mask, or category codes shared by the monitored and the baseline table); rows are
grouped per window of each granularity, per model id (plus ``"*"``) and per slice (plus
the whole table); each group's statistics come from :mod:`monitoring.stats`.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftgate.errors import MonitorError
from monitoring import stats
from monitoring.config import MonitorConfig
from monitoring.slices import Slice, slices_of

__all__ = ["Prepared", "prepare", "compute", "window_starts", "window_end", "previous_window", "spark_type"]

ALL_MODELS = "*"
_GRAIN = re.compile(r"^(\d+) (minute|hour|day|week|month|year)s?$")
_FIXED = {"minute": 60, "hour": 3600, "day": 86400}
_MONDAY = 4 * 86400  # 1970-01-01 was a Thursday: weeks start on Monday


def _grain(granularity: str) -> tuple[int, str]:
    m = _GRAIN.match(granularity.strip())
    if not m:
        raise MonitorError(f"monitor granularity {granularity!r}: expected like '1 day', '1 hour', '2 weeks'")
    return int(m[1]), m[2]


def window_starts(seconds: np.ndarray, granularity: str) -> np.ndarray:
    """Start (epoch seconds, UTC) of the window of each timestamp (epoch seconds)."""
    n, unit = _grain(granularity)
    if unit in _FIXED:
        size = n * _FIXED[unit]
        return seconds // size * size
    if unit == "week":
        size = n * 7 * 86400
        return (seconds - _MONDAY) // size * size + _MONDAY
    days = seconds.astype("datetime64[s]")
    if unit == "month":
        months = days.astype("datetime64[M]").astype(np.int64)
        return (months // n * n).astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)
    years = days.astype("datetime64[Y]").astype(np.int64)
    return (years // n * n).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)


def window_end(start: int, granularity: str) -> int:
    n, unit = _grain(granularity)
    if unit in _FIXED:
        return start + n * _FIXED[unit]
    if unit == "week":
        return start + n * 7 * 86400
    d = datetime.fromtimestamp(start, timezone.utc)
    months = n if unit == "month" else 12 * n
    total = d.year * 12 + d.month - 1 + months
    return int(datetime(total // 12, total % 12 + 1, 1, tzinfo=timezone.utc).timestamp())


def previous_window(start: int, granularity: str) -> int:
    n, unit = _grain(granularity)
    if unit in _FIXED:
        return start - n * _FIXED[unit]
    if unit == "week":
        return start - n * 7 * 86400
    d = datetime.fromtimestamp(start, timezone.utc)
    months = n if unit == "month" else 12 * n
    total = d.year * 12 + d.month - 1 - months
    return int(datetime(total // 12, total % 12 + 1, 1, tzinfo=timezone.utc).timestamp())


def spark_type(t: pa.DataType) -> str:
    """The Spark SQL name of an Arrow type (the ``data_type`` column)."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "bigint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int"
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "timestamp_ntz"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    return str(t)


@dataclass
class Column:
    """One profiled column as arrays over the concatenated input + baseline rows."""

    name: str
    data_type: str
    kind: str  # numeric | categorical | other
    values: np.ndarray | None = None  # floats (numeric)
    nulls: np.ndarray | None = None
    codes: np.ndarray | None = None  # int32 codes (categorical), -1 = NULL
    categories: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """The monitored rows (first ``n_input``) followed by the baseline rows, as arrays."""

    n_input: int
    seconds: np.ndarray  # epoch seconds of the timestamp column (int64)
    models: np.ndarray  # model id codes (-1 = NULL)
    model_names: list[str]
    columns: list[Column]
    slices: list[Slice]
    label: Column | None = None
    prediction: Column | None = None
    proba: np.ndarray | None = None
    positive: int | None = None


def _categorical(name: str, chunks: list[pa.Array]) -> tuple[np.ndarray, list[str]]:
    arr = pa.chunked_array(chunks).combine_chunks() if len(chunks) > 1 else chunks[0]
    if pa.types.is_boolean(arr.type):
        text = pc.if_else(arr, "true", "false")
    elif pa.types.is_dictionary(arr.type):
        text = arr.cast(arr.type.value_type).cast(pa.string())
    else:
        text = arr.cast(pa.string())
    enc = pc.dictionary_encode(text).combine_chunks() if isinstance(text, pa.ChunkedArray) else pc.dictionary_encode(text)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    codes = np.where(enc.is_null().to_numpy(zero_copy_only=False), -1, codes).astype(np.int32)
    # Canonical codes (categories in name order): the same rows give the same sums in the same
    # order, whichever subset of the table was read (incremental refresh, the Spark engine).
    names = [str(x) for x in enc.dictionary.to_pylist()]
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names) + 1, np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    rank[-1] = -1
    return rank[codes], [names[i] for i in order]


def _column(name: str, arrays: list[pa.Array], categorical: bool) -> Column:
    t = arrays[0].type
    dtype = spark_type(t)
    if categorical or pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t) \
            or pa.types.is_dictionary(t):
        codes, cats = _categorical(name, arrays)
        return Column(name, dtype, "categorical", codes=codes, categories=cats)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        arr = pa.concat_arrays([a.cast(pa.float64()) for a in arrays])
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        values = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return Column(name, dtype, "numeric", values=values, nulls=nulls)
    nulls = pa.concat_arrays([a.is_null() for a in arrays]).to_numpy(zero_copy_only=False)
    return Column(name, dtype, "other", nulls=nulls)


def _arrays(table: pa.Table, name: str) -> pa.Array:
    col = table[name]
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def prepare(cfg: MonitorConfig, current: pa.Table, baseline: pa.Table | None) -> Prepared:
    """Check the tables against the monitor definition and turn them into arrays.

    Raises:
        MonitorError: a configured column is missing or has the wrong type, or a
            slicing expression does not parse.
    """
    analysis = cfg.inference_log or cfg.time_series
    ts_col = analysis.timestamp_col if analysis is not None else None
    il = cfg.inference_log
    src = cfg.table_name
    if ts_col is not None:
        if ts_col not in current.column_names:
            raise MonitorError(f"{src}: timestamp column {ts_col!r} (monitor timestamp_col) is missing; "
                               f"columns: {', '.join(current.column_names)}")
        t = current.schema.field(ts_col).type
        if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise MonitorError(f"{src}: timestamp column {ts_col!r} must be a timestamp or date, got {t}")
    if il is not None:
        for role, col in (("model_id_col", il.model_id_col), ("prediction_col", il.prediction_col),
                          ("label_col", il.label_col), ("prediction_proba_col", il.prediction_proba_col)):
            if col is not None and col not in current.column_names:
                raise MonitorError(f"{src}: {role} {col!r} is missing; columns: {', '.join(current.column_names)}")
        if il.prediction_proba_col is not None:
            t = current.schema.field(il.prediction_proba_col).type
            if not (pa.types.is_floating(t) or pa.types.is_decimal(t)):
                raise MonitorError(f"{src}: prediction_proba_col {il.prediction_proba_col!r} must be a float "
                                   f"(P(positive class)), got {t}")
    if baseline is not None:
        missing = [c for c in current.column_names if c not in baseline.column_names]
        if missing:
            raise MonitorError(f"{cfg.baseline_table_name}: the baseline table lacks column(s) {missing} "
                               f"of {src} (it must have the same schema)")
        baseline = baseline.select(current.column_names)
        try:
            baseline = baseline.cast(current.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise MonitorError(f"{cfg.baseline_table_name}: types differ from {src}: {exc}") from None
    parts = [current] if baseline is None else [current, baseline]

    if ts_col is not None:
        seconds = np.concatenate([
            pc.cast(_arrays(p, ts_col).cast(pa.timestamp("us", tz="UTC")) if not pa.types.is_date(
                p.schema.field(ts_col).type) else _arrays(p, ts_col).cast(pa.timestamp("us", tz="UTC")),
                pa.int64()).to_numpy(zero_copy_only=False) // 1_000_000
            if p.num_rows else np.zeros(0, np.int64) for p in parts])
        ts_nulls = np.concatenate([_arrays(p, ts_col).is_null().to_numpy(zero_copy_only=False) for p in parts])
        seconds = np.where(ts_nulls, np.iinfo(np.int64).min, seconds)
    else:
        seconds = np.zeros(sum(p.num_rows for p in parts), np.int64)

    model_col = il.model_id_col if il is not None else None
    if model_col is not None:
        models, model_names = _categorical(model_col, [_arrays(p, model_col) for p in parts])
    else:
        models, model_names = np.zeros(sum(p.num_rows for p in parts), np.int32), []

    skip = set(cfg.exclude_columns) | {ts_col, model_col} - {None}
    cat_roles = set()
    if il is not None and il.problem_type == "classification":
        cat_roles = {il.prediction_col, il.label_col} - {None}
    columns = [_column(name, [_arrays(p, name) for p in parts], name in cat_roles)
               for name in current.column_names if name not in skip]
    whole = pa.concat_tables(parts) if len(parts) > 1 else current
    slices = slices_of(cfg.slicing_exprs, whole)
    prep = Prepared(n_input=current.num_rows, seconds=seconds, models=models, model_names=model_names,
                    columns=columns, slices=slices)
    if il is not None and il.problem_type == "classification" and il.label_col:
        by_name = {c.name: c for c in columns}
        label = by_name.get(il.label_col) or _column(il.label_col, [_arrays(p, il.label_col) for p in parts], True)
        pred = by_name.get(il.prediction_col) or _column(il.prediction_col,
                                                          [_arrays(p, il.prediction_col) for p in parts], True)
        _share_categories(label, pred)
        prep.label, prep.prediction = label, pred
        if il.prediction_proba_col:
            prob = _column(il.prediction_proba_col, [_arrays(p, il.prediction_proba_col) for p in parts], False)
            prep.proba = np.where(prob.nulls, np.nan, prob.values)
            names = label.categories
            for candidate in ("1", "true", "1.0"):
                if candidate in names:
                    prep.positive = names.index(candidate)
                    break
    return prep


def _share_categories(a: Column, b: Column) -> None:
    """Recode two categorical columns onto one category list (labels vs predictions)."""
    union = sorted(set(a.categories) | set(b.categories))
    index = {c: i for i, c in enumerate(union)}
    for col in (a, b):
        lookup = np.array([index[c] for c in col.categories] + [-1], dtype=np.int32)
        col.codes = lookup[col.codes]  # -1 indexes the trailing -1
        col.categories = union


# -- computing rows --------------------------------------------------------------------------------


@dataclass
class Group:
    rows: np.ndarray
    model: str
    slice_key: str | None
    slice_value: str | None
    parent: np.ndarray | None = None
    """For a slice: the rows of the whole table (same model) it is a slice of."""


def _groups(prep: Prepared, rows: np.ndarray, per_model: bool) -> Iterable[Group]:
    models = prep.models[rows]
    model_sets: list[tuple[str, np.ndarray]] = [(ALL_MODELS, rows)]
    if per_model:
        for code in np.unique(models[models >= 0]):
            model_sets.append((prep.model_names[code], rows[models == code]))
    for model, mrows in model_sets:
        yield Group(mrows, model, None, None)
        for s in prep.slices:
            yield Group(mrows[s.mask[mrows]], model, s.key, s.value, mrows)


def _profile(col: Column, rows: np.ndarray) -> tuple[dict[str, Any], Any]:
    if col.kind == "numeric":
        return stats.numeric_profile(col.values[rows], col.nulls[rows])
    if col.kind == "categorical":
        return stats.categorical_profile(col.codes[rows], col.categories)
    n = int(rows.shape[0])
    nulls = int(col.nulls[rows].sum())
    return {"count": n, "num_nulls": nulls, "percent_null": 100.0 * nulls / n if n else None}, None


def _drift(col: Column, cur: Any, ref: Any) -> dict[str, Any]:
    if cur is None or ref is None:
        return {}
    if col.kind == "numeric":
        return stats.numeric_drift(cur, ref)
    return stats.categorical_drift(cur, ref)


def _table_row(prep: Prepared, rows: np.ndarray, fair: Slice | None, parent: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(rows.shape[0])}
    out["non_null_columns"] = [c.name for c in prep.columns if rows.shape[0] and _has_values(c, rows)]
    if prep.label is not None:
        lab = prep.label.codes[rows]
        pred = prep.prediction.codes[rows]
        ok = (lab >= 0) & (pred >= 0)
        proba = prep.proba[rows][ok] if prep.proba is not None else None
        out.update(stats.classification_quality(lab[ok], pred[ok], prep.label.categories, proba, prep.positive))
        if fair is not None and parent is not None:
            # Protected group (this slice) against the rest of the table it is a slice of.
            out.update(stats.fairness(prep.label.codes[parent], prep.prediction.codes[parent], fair.mask[parent],
                                      prep.label.categories))
    return out


def _has_values(col: Column, rows: np.ndarray) -> bool:
    if col.kind == "categorical":
        return bool((col.codes[rows] >= 0).any())
    return not bool(col.nulls[rows].all())


def _delta(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


@dataclass
class Rows:
    profile: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Summary:
    """One group's statistics: profile metrics per column (``:table`` too) and drift samples."""

    group: Group
    metrics: dict[str, dict[str, Any]]
    samples: dict[str, Any]


def _summarize(prep: Prepared, g: Group, fair_slices: dict[str, Slice]) -> Summary:
    fair = fair_slices.get(g.slice_key) if g.slice_value == "true" else None
    metrics: dict[str, dict[str, Any]] = {":table": _table_row(prep, g.rows, fair, g.parent)}
    samples: dict[str, Any] = {}
    for col in prep.columns:
        m, samples[col.name] = _profile(col, g.rows)
        m["data_type"] = col.data_type
        metrics[col.name] = m
    return Summary(g, metrics, samples)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), timezone.utc)


def compute(
    cfg: MonitorConfig,
    prep: Prepared,
    *,
    commit_version: int | None,
    monitor_version: int = 1,
    only_windows: dict[str, set[int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Rows:
    """Profile and drift rows for every window (or only ``only_windows[granularity]``, epoch seconds).

    CONSECUTIVE drift compares a window with the window right before it (when that has
    rows); BASELINE drift compares it with the baseline table's rows of the same slice,
    over all model ids (the baseline holds the rows the model was validated on, whatever
    version is serving now). Baseline profile rows (``log_type`` BASELINE, model id ``*``)
    span the baseline's time range.
    """
    il = cfg.inference_log
    analysis = il or cfg.time_series
    model_col = il.model_id_col if il is not None else None
    grains = list(analysis.granularities) if analysis is not None else [None]
    out = Rows()
    n_in = prep.n_input
    nat = np.iinfo(np.int64).min
    input_rows = np.arange(n_in)
    valid = prep.seconds[:n_in] != nat
    fair_slices = {s.key: s for s in prep.slices if s.value == "true"}
    per_model = model_col is not None

    baseline: dict[tuple, Summary] = {}
    if cfg.baseline_table_name and prep.seconds.shape[0] > n_in:
        base_rows = np.arange(n_in, prep.seconds.shape[0])
        for g in _groups(prep, base_rows, per_model=False):
            baseline[(g.slice_key, g.slice_value)] = _summarize(prep, g, fair_slices)

    def keys(g: Group, granularity: str | None) -> dict[str, Any]:
        d = {"granularity": granularity or "", "slice_key": g.slice_key, "slice_value": g.slice_value,
             "monitor_version": monitor_version}
        if model_col is not None:
            d[model_col] = g.model
        return d

    def emit_profile(summary: Summary, window: dict, granularity, log_type: str) -> None:
        k = keys(summary.group, granularity)
        for name, metrics in summary.metrics.items():
            out.profile.append({"window": window, "log_type": log_type, "logging_table_commit_version": commit_version,
                                **k, "column_name": name, **metrics})

    def emit_drift(cur: Summary, ref: Summary, window, window_cmp, granularity, drift_type: str) -> None:
        k = keys(cur.group, granularity)
        for col in (None, *prep.columns):
            name = ":table" if col is None else col.name
            a, b = cur.metrics[name], ref.metrics[name]
            row = {"window": window, "window_cmp": window_cmp, "drift_type": drift_type, **k, "column_name": name,
                   "data_type": None if col is None else col.data_type,
                   "count_delta": _delta(a.get("count"), b.get("count"))}
            if col is None:
                x, y = set(a.get("non_null_columns") or []), set(b.get("non_null_columns") or [])
                row["non_null_columns_delta"] = {"added": len(x - y), "missing": len(y - x)}
            else:
                for metric in ("avg", "percent_null", "percent_zeros", "percent_distinct"):
                    row[f"{metric}_delta"] = _delta(a.get(metric), b.get(metric))
                row.update(_drift(col, cur.samples[name], ref.samples[name]))
            out.drift.append(row)

    plan = []
    for granularity in grains:
        starts = np.full(n_in, nat)
        if granularity is None:
            starts[valid] = 0
        else:
            starts[valid] = window_starts(prep.seconds[:n_in][valid], granularity)
        order = np.argsort(starts, kind="stable")
        uniq, first = np.unique(starts[order], return_index=True)
        windows = {int(u): input_rows[order[lo:hi]] for u, lo, hi in zip(uniq, first, [*first[1:], n_in])
                   if u != nat}
        wanted = only_windows.get(granularity) if only_windows is not None else None
        plan.append((granularity, windows, sorted(w for w in windows if wanted is None or w in wanted)))
    total, done = sum(len(p[2]) for p in plan), 0

    for granularity, windows, todo in plan:
        cache: dict[int, dict[tuple, Summary]] = {}

        def summaries(start: int) -> dict[tuple, Summary]:
            if start not in cache:
                cache[start] = {(g.model, g.slice_key, g.slice_value): _summarize(prep, g, fair_slices)
                                for g in _groups(prep, windows[start], per_model)}
            return cache[start]

        for start in todo:
            end = window_end(start, granularity) if granularity is not None else 0
            window = {"start": _ts(start), "end": _ts(end)}
            current = summaries(start)
            for summary in current.values():
                emit_profile(summary, window, granularity, "INPUT")
            prev = previous_window(start, granularity) if granularity is not None else None
            previous = summaries(prev) if prev in windows else {}
            for key in [k for k in cache if k != start and k != prev]:
                del cache[key]
            for key, summary in current.items():
                if key in previous:
                    emit_drift(summary, previous[key], window, {"start": _ts(prev), "end": _ts(start)},
                               granularity, "CONSECUTIVE")
                base = baseline.get(key[1:])
                if base is not None:
                    emit_drift(summary, base, window, _base_window(prep, n_in, granularity), granularity, "BASELINE")
            done += 1
            if progress is not None:
                progress(done, total)
        if baseline:
            for summary in baseline.values():
                emit_profile(summary, _base_window(prep, n_in, granularity), granularity, "BASELINE")
    return out


def _base_window(prep: Prepared, n_in: int, granularity: str | None) -> dict[str, datetime]:
    """The baseline's time span, widened to whole windows."""
    sec = prep.seconds[n_in:]
    sec = sec[sec != np.iinfo(np.int64).min]
    if granularity is None or not sec.shape[0]:
        return {"start": _ts(0), "end": _ts(0)}
    lo = int(window_starts(sec.min(keepdims=True), granularity)[0])
    hi = window_end(int(window_starts(sec.max(keepdims=True), granularity)[0]), granularity)
    return {"start": _ts(lo), "end": _ts(hi)}
