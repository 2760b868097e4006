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
    return codes, [str(x) for x in enc.dictionary.to_pylist()]


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


def _groups(prep: Prepared, rows: np.ndarray, per_model: bool) -> Iterable[Group]:
    models = prep.models[rows]
    model_sets: list[tuple[str, np.ndarray]] = [(ALL_MODELS, rows)]
    if per_model:
        for code in np.unique(models[models >= 0]):
            model_sets.append((prep.model_names[code], rows[models == code]))
    for model, mrows in model_sets:
        yield Group(mrows, model, None, None)
        for s in prep.slices:
            yield Group(mrows[s.mask[mrows]], model, s.key, s.value)


def _profile(col: Column, rows: np.ndarray) -> dict[str, Any]:
    if col.kind == "numeric":
        return stats.numeric_profile(col.values[rows], col.nulls[rows])
    if col.kind == "categorical":
        return stats.categorical_profile(col.codes[rows], col.categories)
    n = int(rows.shape[0])
    nulls = int(col.nulls[rows].sum())
    return {"count": n, "num_nulls": nulls, "percent_null": 100.0 * nulls / n if n else None}


def _drift(col: Column, cur: np.ndarray, cmp_: np.ndarray) -> dict[str, Any]:
    if col.kind == "numeric":
        a, b = col.values[cur][~col.nulls[cur]], col.values[cmp_][~col.nulls[cmp_]]
        return stats.numeric_drift(a, b)
    if col.kind == "categorical":
        return stats.categorical_drift(col.codes[cur], col.codes[cmp_], len(col.categories))
    return {}


def _table_row(prep: Prepared, rows: np.ndarray, cfg: MonitorConfig, fair: Slice | None) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(rows.shape[0])}
    out["non_null_columns"] = [c.name for c in prep.columns
                               if rows.shape[0] and _has_values(c, rows)]
    if prep.label is not None:
        lab = prep.label.codes[rows]
        pred = prep.prediction.codes[rows]
        ok = (lab >= 0) & (pred >= 0)
        proba = prep.proba[rows][ok] if prep.proba is not None else None
        out.update(stats.classification_quality(lab[ok], pred[ok], prep.label.categories, proba, prep.positive))
        if fair is not None:
            out.update(stats.fairness(lab, pred, fair.mask[rows], prep.label.categories))
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
    """Profile and drift rows for every window (or only ``only_windows[granularity]``)."""
    il = cfg.inference_log
    analysis = il or cfg.time_series
    model_col = il.model_id_col if il is not None else None
    grains = list(analysis.granularities) if analysis is not None else [None]
    out = Rows()
    n_in = prep.n_input
    input_rows = np.arange(n_in)
    base_rows = np.arange(n_in, prep.seconds.shape[0]) if cfg.baseline_table_name else None
    valid = prep.seconds[:n_in] != np.iinfo(np.int64).min
    fair_slices = {s.key: s for s in prep.slices if s.value == "true"}

    def key_cols(model: str, granularity: str | None, g: Group) -> dict[str, Any]:
        d = {"granularity": granularity or "", "slice_key": g.slice_key, "slice_value": g.slice_value,
             "monitor_version": monitor_version}
        if model_col is not None:
            d[model_col] = model
        return d

    def profile_rows(g: Group, window: dict, granularity, log_type: str) -> dict[str, dict[str, Any]]:
        fair = fair_slices.get(g.slice_key) if g.slice_value == "true" else None
        by_col: dict[str, dict[str, Any]] = {}
        table = _table_row(prep, g.rows, cfg, fair)
        by_col[":table"] = table
        for col in prep.columns:
            by_col[col.name] = {**_profile(col, g.rows), "data_type": col.data_type}
        for name, metrics in by_col.items():
            out.profile.append({"window": window, "log_type": log_type,
                                "logging_table_commit_version": commit_version,
                                **key_cols(g.model, granularity, g), "column_name": name, **metrics})
        return by_col

    def drift_rows(g: Group, cmp_rows: np.ndarray, window, window_cmp, granularity, drift_type,
                   cur_profile, cmp_profile) -> None:
        for col in [None, *prep.columns]:
            name = ":table" if col is None else col.name
            cur, ref = cur_profile[name], cmp_profile[name]
            row = {"window": window, "window_cmp": window_cmp, "drift_type": drift_type,
                   **key_cols(g.model, granularity, g), "column_name": name,
                   "data_type": None if col is None else col.data_type,
                   "count_delta": _delta(cur.get("count"), ref.get("count"))}
            if col is None:
                a, b = set(cur.get("non_null_columns") or []), set(ref.get("non_null_columns") or [])
                row["non_null_columns_delta"] = {"added": len(a - b), "missing": len(b - a)}
            else:
                for metric in ("avg", "percent_null", "percent_zeros", "percent_distinct"):
                    row[f"{metric}_delta"] = _delta(cur.get(metric), ref.get(metric))
                row.update(_drift(col, g.rows, cmp_rows))
            out.drift.append(row)

    total = 0
    plan = []
    for granularity in grains:
        if granularity is None:
            starts = np.zeros(n_in, np.int64)
        else:
            starts = np.full(n_in, np.iinfo(np.int64).min)
            starts[valid] = window_starts(prep.seconds[:n_in][valid], granularity)
        order = np.argsort(starts, kind="stable")
        uniq, first = np.unique(starts[order], return_index=True)
        bounds = list(zip(uniq, first, [*first[1:], n_in]))
        bounds = [b for b in bounds if b[0] != np.iinfo(np.int64).min]
        plan.append((granularity, order, bounds))
        total += len(bounds)

    done = 0
    for granularity, order, bounds in plan:
        windows = {int(s): input_rows[order[a:b]] for s, a, b in bounds}
        wanted = only_windows.get(granularity) if only_windows is not None else None
        # Baseline: one profile per group over the whole baseline table, window = its time span.
        base_profiles: dict[tuple, tuple[np.ndarray, dict]] = {}
        if base_rows is not None and base_rows.shape[0]:
            bsec = prep.seconds[base_rows]
            bsec = bsec[bsec != np.iinfo(np.int64).min]
            if granularity is not None and bsec.shape[0]:
                lo = int(window_starts(bsec.min(keepdims=True), granularity)[0])
                hi = window_end(int(window_starts(bsec.max(keepdims=True), granularity)[0]), granularity)
            else:
                lo = hi = 0
            bwindow = {"start": _ts(lo), "end": _ts(hi)}
            for g in _groups(prep, base_rows, per_model=False):
                base_profiles[(g.slice_key, g.slice_value)] = (
                    g.rows, profile_rows(g, bwindow, granularity, "BASELINE"), bwindow)
        cache: dict[int, dict[tuple, tuple[np.ndarray, dict]]] = {}

        def window_profiles(start: int, rows: np.ndarray, record: bool) -> dict[tuple, tuple[np.ndarray, dict]]:
            if start in cache:
                return cache[start]
            end = window_end(start, granularity) if granularity is not None else 0
            window = {"start": _ts(start), "end": _ts(end)}
            res = {}
            for g in _groups(prep, rows, per_model=model_col is not None):
                if record:
                    res[(g.model, g.slice_key, g.slice_value)] = (g.rows, profile_rows(g, window, granularity, "INPUT"))
                else:  # the comparison window of a refreshed one: statistics only, no rows written
                    saved = out.profile
                    out.profile = []
                    res[(g.model, g.slice_key, g.slice_value)] = (g.rows, profile_rows(g, window, granularity, "INPUT"))
                    out.profile = saved
            cache[start] = res
            return res

        for start, rows in windows.items():
            done += 1
            if wanted is not None and start not in wanted:
                continue
            end = window_end(start, granularity) if granularity is not None else 0
            window = {"start": _ts(start), "end": _ts(end)}
            current = window_profiles(start, rows, True)
            prev = previous_window(start, granularity) if granularity is not None else None
            previous = None
            if prev is not None and prev in windows:
                previous = window_profiles(prev, windows[prev], False)
                window_cmp = {"start": _ts(prev), "end": _ts(start)}
            for (model, skey, sval), (grows, prof) in current.items():
                g = Group(grows, model, skey, sval)
                if previous is not None and (model, skey, sval) in previous:
                    crows, cprof = previous[(model, skey, sval)]
                    drift_rows(g, crows, window, window_cmp, granularity, "CONSECUTIVE", prof, cprof)
                if (skey, sval) in base_profiles:
                    brows, bprof, bwindow = base_profiles[(skey, sval)]
                    drift_rows(g, brows, window, bwindow, granularity, "BASELINE", prof, bprof)
            if progress is not None:
                progress(done, total)
    return out
