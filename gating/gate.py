"""The pure gate: metric rows + rules → :class:`~driftgate.gating.decision.Decision`. No I/O here.

What each edge case means, decided once:

* NULL or NaN metric values are *missing*, never zero; a window with no value left, or
  fewer rows than ``min_rows`` (or an unknown row count while ``min_rows > 0``), is not
  usable. If the latest window is not usable the rule is INSUFFICIENT_DATA.
* A window that ends after ``now`` is still being written: it is left out (and said so).
* If the latest complete window ended longer than ``max_staleness`` before ``now`` the
  rule is STALE: the gate does not retrain, or stay quiet, on old numbers.
* Persistence: EXCEEDED when at least ``violations`` of the last ``windows`` windows
  violate and (by default) the latest does. When the missing windows could still tip
  the verdict, the rule is INSUFFICIENT_DATA instead of OK.
* p-value rules are corrected across the columns of each window (Bonferroni or
  Benjamini-Hochberg via :func:`scipy.stats.false_discovery_control`); the corrected
  values are what is compared and reported.
* Rules combine with ``any`` (one EXCEEDED suffices) or ``all`` (one OK suffices to say
  OK). Otherwise the least certain status wins: ERROR, then STALE, then INSUFFICIENT_DATA.
"""
from __future__ import annotations

import math
import operator
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftgate.gating.config import GateConfig, Rule
from driftgate.gating.decision import MAX_VALUES_PER_WINDOW, Decision, RuleResult, WindowResult

__all__ = ["Unreadable", "Gate", "RuleGate", "AlwaysGate", "NeverGate", "gate_for", "decide", "evaluate_rule", "MetricFrames"]

MetricFrames = Mapping[str, Any]
"""``{"drift": <Arrow table or pandas frame>, "profile": ...}``; a missing key or None means no rows."""

class Unreadable:
    """Stands in for a table that could not be read: its rules get ``status`` and ``reason``."""

    def __init__(self, reason: str, *, status: str = "ERROR"):
        self.reason = reason
        self.status = status

    def __repr__(self) -> str:
        return f"Unreadable({self.reason!r}, status={self.status!r})"


_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@runtime_checkable
class Gate(Protocol):
    """One decision method (Optuna's pruner shape): frames in, :class:`Decision` out."""

    def decide(self, metrics: MetricFrames, *, now: datetime) -> Decision: ...


class RuleGate:
    """The configured rules, combined with ``any`` / ``all``."""

    def __init__(self, config: GateConfig, *, model_id_col: str = "model_id", output_columns: tuple[str, ...] = ()):
        self.config = config
        self.model_id_col = model_id_col
        self.output_columns = tuple(output_columns)

    def decide(self, metrics: MetricFrames, *, now: datetime) -> Decision:
        now = _aware(now)
        frames = {k: _as_arrow(v) for k, v in metrics.items()}
        counts = _RowCounts(frames.get("profile"), self.model_id_col)
        results = [evaluate_rule(rule, frames.get(rule.table), now=now, model_id_col=self.model_id_col,
                                 counts=counts, output_columns=self.output_columns)
                   for rule in self.config.effective_rules()]
        status = combine([r.status for r in results], self.config.combine)
        return Decision(
            status=status,
            drift_exceeded=status == "EXCEEDED",
            reasons=results,
            evaluated_at=now,
            combine=self.config.combine,
            mode="rules",
            profile=self.config.profile,
            summary=_summary(status, results),
        )


class _FixedGate:
    status = "OK"
    mode = "never"

    def decide(self, metrics: MetricFrames, *, now: datetime) -> Decision:
        reason = RuleResult(
            name=f"mode:{self.mode}", status=self.status, table="-", metric="-", op="-", threshold=0.0,
            reason=f"gate mode is {self.mode!r}: every decision is {self.status} without reading metrics",
        )
        return Decision(status=self.status, drift_exceeded=self.status == "EXCEEDED", reasons=[reason],
                        evaluated_at=_aware(now), mode=self.mode, summary=f"{self.status}: {reason.reason}")


class AlwaysGate(_FixedGate):
    """Always EXCEEDED (drills, tests)."""

    status = "EXCEEDED"
    mode = "always"


class NeverGate(_FixedGate):
    """Always OK: retraining disabled (e.g. no labels yet)."""

    status = "OK"
    mode = "never"


def gate_for(config: GateConfig, *, model_id_col: str = "model_id", output_columns: tuple[str, ...] = ()) -> Gate:
    """The gate ``config.mode`` asks for."""
    if config.mode == "always":
        return AlwaysGate()
    if config.mode == "never":
        return NeverGate()
    return RuleGate(config, model_id_col=model_id_col, output_columns=output_columns)


def decide(
    metrics: MetricFrames,
    gate: GateConfig,
    *,
    now: datetime | None = None,
    model_id_col: str = "model_id",
    trigger: str = "manual",
    output_columns: tuple[str, ...] = (),
) -> Decision:
    """Decide from metric rows; pure (same rows, config and ``now`` → same verdict).

    Args:
        metrics: ``{"drift": rows, "profile": rows}`` as Arrow tables or pandas frames with the
            documented metric-table columns (``window`` struct, ``column_name``, ...).
        gate: the gate configuration.
        now: the evaluation time (UTC) for staleness and open windows; default the clock.
        model_id_col: name of the monitor's model-id column.
        trigger: what asked for the decision (recorded, not used to decide).
        output_columns: the inference table's prediction, label and probability columns: drift
            rules over ``columns: all`` leave them out (name them in ``columns`` to watch them).

    Returns:
        The :class:`Decision`; rule failures become status ERROR, never exceptions.
    """
    decision = gate_for(gate, model_id_col=model_id_col, output_columns=tuple(output_columns)).decide(
        metrics, now=now or datetime.now(timezone.utc))
    return decision.model_copy(update={"trigger": trigger})


def cooldown_left(last_retrain: datetime | None, now: datetime, cooldown: timedelta | None) -> timedelta | None:
    """How long retraining stays paused after the retrain at ``last_retrain`` (None: not paused)."""
    if cooldown is None or last_retrain is None:
        return None
    left = _aware(last_retrain) + cooldown - _aware(now)
    return left if left > timedelta(0) else None


def combine(statuses: list[str], how: str) -> str:
    """Combine rule statuses with ``any`` or ``all`` (see module docstring)."""
    if not statuses:
        return "INSUFFICIENT_DATA"
    decisive, other = ("EXCEEDED", "OK") if how == "any" else ("OK", "EXCEEDED")
    if decisive in statuses:
        return decisive
    for status in ("ERROR", "STALE", "INSUFFICIENT_DATA"):
        if status in statuses:
            return status
    return other


# -- one rule ----------------------------------------------------------------------------------


def evaluate_rule(
    rule: Rule,
    table: pa.Table | None,
    *,
    now: datetime,
    model_id_col: str = "model_id",
    counts: "_RowCounts | None" = None,
    output_columns: tuple[str, ...] = (),
) -> RuleResult:
    """Evaluate one rule on the rows of its table; never raises for bad data (status ERROR)."""
    base = dict(
        name=rule.name, table=rule.table, metric=rule.metric, op=rule.op, threshold=rule.threshold,
        abs=rule.abs, correction=rule.effective_correction, aggregate=_agg_text(rule),
        persistence=f"{rule.persistence.violations} of {rule.persistence.windows}",
        filters=_filters_text(rule, model_id_col),
    )
    try:
        return _evaluate(rule, table, _aware(now), model_id_col, counts or _RowCounts(None, model_id_col), base,
                         tuple(output_columns))
    except Exception as exc:  # a bad table must yield ERROR with a reason, not crash the job task
        return RuleResult(status="ERROR", reason=f"{type(exc).__name__}: {exc}", **base)


def _evaluate(rule, table, now, model_id_col, counts, base, output_columns=()) -> RuleResult:
    where = f"{rule.table} metrics"
    if isinstance(table, Unreadable):
        return RuleResult(status=table.status, reason=table.reason, **base)
    if table is None or table.num_rows == 0:
        return RuleResult(status="INSUFFICIENT_DATA", reason=f"no rows in the {where} table", **base)
    col = rule.path.column
    needed = {"window", "column_name", "granularity", "slice_key", "slice_value", col}
    needed |= {"drift_type"} if rule.table == "drift" else {"log_type"}
    absent = sorted(needed - set(table.column_names))
    if absent:
        return RuleResult(status="ERROR", reason=f"the {where} table lacks column(s) {absent}", **base)
    rows = _filtered(rule, table, model_id_col, output_columns)
    if isinstance(rows, str):
        return RuleResult(status="ERROR", reason=rows, **base)
    reference: dict[str, float | None] | None = None
    if rule.relative_to == "baseline":
        reference = _baseline_values(rule, table, model_id_col)
        if not any(v is not None for v in reference.values()):
            return RuleResult(status="INSUFFICIENT_DATA", reason=(
                f"no baseline value of {rule.metric} (BASELINE profile rows, {_describe(base['filters'])}): "
                "the baseline needs labels (and probabilities for roc_auc_score)"), **base)
    if rows.num_rows == 0:
        return RuleResult(status="INSUFFICIENT_DATA", reason=f"no rows match the filters ({_describe(base['filters'])})",
                          **base)

    by_window: dict[tuple[datetime, datetime], dict[str, Any]] = defaultdict(dict)
    extract = _extractor(rule)
    any_written = False  # a NULL is "not computed for this column type"; a NaN was computed
    for window, column, raw in zip(rows.column("window").to_pylist(), rows.column("column_name").to_pylist(),
                                   rows.column(col).to_pylist()):
        any_written = any_written or raw is not None
        key = (_aware(window["start"]), _aware(window["end"]))
        value = extract(raw)
        if reference is not None:
            value = _change(rule, value, reference.get(column))
        by_window[key][column] = value

    if rule.table == "drift" and rule.columns == "all" and not any_written:
        # Every column has NULL for this metric in every window: it belongs to another column
        # type (PSI to numeric columns, JS distance to categorical ones) and this table has none.
        return RuleResult(status="OK", reason=(
            f"no column has a {rule.metric} value in any window (it applies to other column types; "
            f"{len({c for values in by_window.values() for c in values})} column(s) read): nothing to judge"), **base)

    ordered = sorted(by_window, key=lambda k: k[0], reverse=True)
    open_windows = [k for k in ordered if k[1] > now]
    complete = [k for k in ordered if k[1] <= now]
    open_note = (f"; left out {len(open_windows)} window(s) still open at {now:%Y-%m-%d %H:%M} UTC"
                 if open_windows else "")
    if not complete:
        return RuleResult(status="INSUFFICIENT_DATA",
                          reason=f"no complete window yet (only windows ending after now){open_note}", **base)

    wanted = rule.columns

    def judge(start, end) -> WindowResult:
        values = by_window[(start, end)]
        if wanted != "all":
            for c in wanted:
                values.setdefault(c, None)
        return _judge_window(rule, start, end, values, counts.get(rule, start))

    skipped_note = ""
    if rule.latest == "usable":
        # Late labels: the newest windows may have no quality values yet; start from the newest
        # window that has them (staleness then bounds how old that may be).
        skipped = 0
        limit = min(len(complete) - 1, rule.persistence.windows)
        while skipped < limit and not judge(*complete[skipped]).usable:
            skipped += 1
        if skipped:
            skipped_note = f"; skipped {skipped} newer window(s) without usable values (latest: usable)"
            complete = complete[skipped:]

    latest_end = complete[0][1]
    if rule.max_staleness is not None and now - latest_end > rule.max_staleness:
        return RuleResult(
            status="STALE",
            reason=(f"latest {'usable' if rule.latest == 'usable' else 'complete'} window ended "
                    f"{latest_end:%Y-%m-%d %H:%M} UTC, {_ago(now - latest_end)} before "
                    f"now; limit {_ago(rule.max_staleness)}{skipped_note}{open_note}"),
            **base,
        )
    open_note = skipped_note + open_note

    window_results = [judge(start, end) for start, end in complete[: rule.persistence.windows]]

    latest = window_results[0]
    p = rule.persistence
    n_violating = sum(1 for w in window_results if w.violated)
    n_unknown = p.windows - sum(1 for w in window_results if w.usable)
    latest_ok = latest.usable and not latest.violated
    cond = f"{_metric_text(rule, reference)}{' (abs)' if rule.abs else ''} {rule.op} {rule.threshold:g}"
    tail = f"{n_violating} of last {p.windows} window(s) violate (need {p.violations}){open_note}"
    if not latest.usable:
        status, reason = "INSUFFICIENT_DATA", f"latest window {_day(latest.start)}: {latest.note}; {tail}"
    elif p.latest_must_violate and latest_ok:
        status, reason = "OK", f"latest window {_day(latest.start)} does not violate ({_window_text(rule, latest)}); {tail}"
    elif n_violating >= p.violations:
        status = "EXCEEDED"
        reason = f"{cond}: {tail}; latest {_day(latest.start)}: {_window_text(rule, latest)}"
    elif n_violating + n_unknown >= p.violations:
        status = "INSUFFICIENT_DATA"
        reason = f"{cond}: {tail}, {n_unknown} window(s) missing or unusable could decide it"
    else:
        status, reason = "OK", f"{cond}: {tail}"
    return RuleResult(status=status, reason=reason, windows=window_results,
                      fired_columns=list(latest.fired), violating_windows=n_violating, **base)


def _judge_window(rule: Rule, start, end, values: dict[str, float | None], rows: int | None) -> WindowResult:
    present = {c: v for c, v in values.items() if v is not None}
    missing = sorted(c for c, v in values.items() if v is None)
    weights = rule.aggregate.weights
    present = {c: v for c, v in present.items() if weights.get(c, 1.0) > 0}
    common = dict(start=start, end=end, rows=rows, n_columns=len(present), missing=missing[:20])
    if not present:
        what = "no metric values (all NULL or NaN)" if values else "no columns"
        return WindowResult(usable=False, note=what, **common)
    if rule.min_rows > 0:
        if rows is None:
            return WindowResult(usable=False, note=f"row count unknown (min_rows {rule.min_rows})", **common)
        if rows < rule.min_rows:
            return WindowResult(usable=False, note=f"{rows} rows < min_rows {rule.min_rows}", **common)

    cols = sorted(present)
    observed = np.array([present[c] for c in cols], dtype=float)
    correction = rule.effective_correction
    if correction == "bonferroni":
        observed = np.minimum(observed * len(observed), 1.0)
    elif correction == "bh":
        from scipy.stats import false_discovery_control

        observed = false_discovery_control(np.clip(observed, 0.0, 1.0), method="bh")
    compared = np.abs(observed) if rule.abs else observed
    op = _OPS[rule.op]
    fired = [c for c, v in zip(cols, compared) if op(float(v), rule.threshold)]
    w_all = sum(weights.get(c, 1.0) for c in cols)
    w_fired = sum(weights.get(c, 1.0) for c in fired)
    how = rule.aggregate.how
    if how == "any":
        violated, score = bool(fired), float(len(fired))
    elif how == "all":
        violated, score = len(fired) == len(cols), float(len(fired))
    elif how == "share":
        score = w_fired / w_all if w_all else 0.0
        violated = score >= rule.aggregate.at_least
    else:
        score = w_fired
        violated = score >= rule.aggregate.at_least
    # Keep the most telling values: fired first, then those closest to (or past) the threshold.
    sign = -1.0 if rule.op in (">", ">=") else 1.0
    order = sorted(range(len(cols)), key=lambda i: (cols[i] not in fired, sign * float(compared[i])))
    kept = {cols[i]: round(float(observed[i]), 6) for i in order[:MAX_VALUES_PER_WINDOW]}
    return WindowResult(usable=True, violated=violated, fired=sorted(fired), score=round(score, 6), values=kept,
                        **common)


def _change(rule: Rule, value: float | None, reference: float | None) -> float | None:
    """The window's value against the baseline's (``relative_to: baseline``); None when either is missing."""
    if value is None or reference is None:
        return None
    if rule.change == "relative":
        return None if reference == 0 else (value - reference) / abs(reference)
    return value - reference


def _metric_text(rule: Rule, reference: dict[str, float | None] | None) -> str:
    if reference is None:
        return rule.metric
    known = [f"{v:.4g}" for v in reference.values() if v is not None]
    shown = known[0] if len(known) == 1 else "per column"
    if rule.change == "relative":
        return f"({rule.metric} - baseline {shown}) / baseline"
    return f"{rule.metric} - baseline {shown}"


def _baseline_values(rule: Rule, table: pa.Table, model_id_col: str) -> dict[str, float | None]:
    """The metric per column in the newest BASELINE profile window (the monitor writes them under
    the all-models id ``*``, whatever the rule's model filter)."""
    rows = _filtered(rule, table, model_id_col, log_type="BASELINE", model_id="*")
    if isinstance(rows, str) or rows.num_rows == 0:
        return {}
    extract = _extractor(rule)
    latest: dict[str, tuple[datetime, float | None]] = {}
    for window, column, raw in zip(rows.column("window").to_pylist(), rows.column("column_name").to_pylist(),
                                   rows.column(rule.path.column).to_pylist()):
        start = _aware(window["start"])
        if column not in latest or start > latest[column][0]:
            latest[column] = (start, extract(raw))
    return {c: v for c, (_, v) in latest.items()}


def _filtered(rule: Rule, table: pa.Table, model_id_col: str, output_columns: tuple[str, ...] = (), *,
              log_type: str | None = None, model_id: str | None = None) -> pa.Table | str:
    f = rule.filters
    masks = [pc.equal(table["granularity"], f.granularity)]
    if rule.table == "drift":
        masks.append(pc.equal(table["drift_type"], rule.drift_type))
    else:
        masks.append(pc.equal(table["log_type"], log_type or rule.log_type))
    if model_id is not None:
        if model_id_col in table.column_names:
            masks.append(pc.equal(table[model_id_col], model_id))
    elif f.model_id is not None:
        if model_id_col in table.column_names:
            masks.append(pc.equal(table[model_id_col], f.model_id))
        elif f.model_id != "*":
            return f"filters.model_id is {f.model_id!r} but the table has no model-id column {model_id_col!r}"
    if f.slice is None:
        masks.append(pc.is_null(table["slice_key"]))
    else:
        masks.append(pc.and_(pc.equal(table["slice_key"], f.slice.key), pc.equal(table["slice_value"], f.slice.value)))
    names = table["column_name"]
    if rule.columns == "all":
        # ':table', ':importance_weighted': rows about the table or the model, not monitored columns
        masks.append(pc.invert(pc.starts_with(names, ":")))
        if rule.table == "drift" and output_columns:
            # The model's outputs (prediction, label, probability) are not features.
            masks.append(pc.invert(pc.is_in(names, value_set=pa.array(list(output_columns), pa.string()))))
    else:
        masks.append(pc.is_in(names, value_set=pa.array(rule.columns, pa.string())))
    if f.exclude_columns:
        masks.append(pc.invert(pc.is_in(names, value_set=pa.array(f.exclude_columns, pa.string()))))
    mask = masks[0]
    for m in masks[1:]:
        mask = pc.and_kleene(mask, m)
    return table.select(["window", "column_name", rule.path.column]).filter(pc.fill_null(mask, False))


def _extractor(rule: Rule):
    path = rule.path

    def number(v: Any) -> float | None:
        if v is None or isinstance(v, str):
            return None
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(x) or math.isinf(x) else x

    if path.field is not None:
        return lambda raw: number(raw.get(path.field)) if isinstance(raw, dict) else None
    if path.key is not None:
        def entry(raw: Any) -> float | None:
            if raw is None:
                return None
            items = raw.items() if isinstance(raw, dict) else raw  # Arrow maps come back as (key, value) pairs
            for k, v in items:
                if str(k) == path.key:
                    return number(v)
            return None
        return entry
    return number


class _RowCounts:
    """Rows per window from the profile table's ``count`` (on ``:table``, else the largest column count)."""

    def __init__(self, profile: pa.Table | None, model_id_col: str):
        self.profile = profile
        self.model_id_col = model_id_col
        self._cache: dict[tuple, dict[datetime, int]] = {}

    def get(self, rule: Rule, start: datetime) -> int | None:
        f = rule.filters
        key = (f.granularity, f.model_id, f.slice.key if f.slice else None, f.slice.value if f.slice else None)
        if key not in self._cache:
            self._cache[key] = self._load(*key)
        return self._cache[key].get(start)

    def _load(self, granularity, model_id, slice_key, slice_value) -> dict[datetime, int]:
        t = self.profile
        if (t is None or isinstance(t, Unreadable) or t.num_rows == 0
                or not {"window", "count", "column_name"} <= set(t.column_names)):
            return {}
        masks = [pc.equal(t["granularity"], granularity)] if "granularity" in t.column_names else []
        if "log_type" in t.column_names:
            masks.append(pc.equal(t["log_type"], "INPUT"))
        if model_id is not None and self.model_id_col in t.column_names:
            masks.append(pc.equal(t[self.model_id_col], model_id))
        if "slice_key" in t.column_names:
            masks.append(pc.is_null(t["slice_key"]) if slice_key is None else
                         pc.and_(pc.equal(t["slice_key"], slice_key), pc.equal(t["slice_value"], slice_value)))
        sub = t.select(["window", "column_name", "count"])
        if masks:
            mask = masks[0]
            for m in masks[1:]:
                mask = pc.and_kleene(mask, m)
            sub = sub.filter(pc.fill_null(mask, False))
        table_level: dict[datetime, int] = {}
        largest: dict[datetime, int] = {}
        for w, c, n in zip(sub["window"].to_pylist(), sub["column_name"].to_pylist(), sub["count"].to_pylist()):
            if n is None:
                continue
            start = _aware(w["start"])
            if c == ":table":
                table_level[start] = int(n)
            largest[start] = max(largest.get(start, 0), int(n))
        return {**largest, **table_level}


# -- helpers -------------------------------------------------------------------------------------


def _as_arrow(frame: Any) -> pa.Table | Unreadable | None:
    if frame is None or isinstance(frame, pa.Table | Unreadable):
        return frame
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise TypeError(f"metric rows must be an Arrow table or a pandas DataFrame, got {type(frame).__name__}")


def _aware(ts: Any) -> datetime:
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    if not isinstance(ts, datetime):
        raise TypeError(f"expected a timestamp, got {ts!r}")
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _agg_text(rule: Rule) -> str:
    a = rule.aggregate
    text = a.how if a.at_least is None else f"{a.how} >= {a.at_least:g}"
    return text + (" (weighted)" if a.weights else "")


def _filters_text(rule: Rule, model_id_col: str) -> dict[str, Any]:
    f = rule.filters
    out: dict[str, Any] = {"granularity": f.granularity,
                           "slice": f"{f.slice.key}={f.slice.value}" if f.slice else "whole table",
                           "columns": rule.columns if rule.columns == "all" else list(rule.columns)}
    if f.model_id is not None:
        out[model_id_col] = f.model_id
    if rule.drift_type:
        out["drift_type"] = rule.drift_type
    if rule.log_type:
        out["log_type"] = rule.log_type
    if f.exclude_columns:
        out["exclude_columns"] = list(f.exclude_columns)
    return out


def _describe(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items())


def _window_text(rule: Rule, w: WindowResult) -> str:
    a = rule.aggregate
    n = len(w.fired)
    fired = f"fired {', '.join(w.fired[:8])}{' ...' if n > 8 else ''}" if n else "none fired"
    if a.how == "share":
        return f"share {w.score:.2f} (need {a.at_least:g}) of {w.n_columns} column(s), {fired}"
    if a.how == "count":
        return f"count {w.score:g} (need {a.at_least:g}) of {w.n_columns} column(s), {fired}"
    if len(w.values) == 1 and w.n_columns == 1:
        (col, val), = w.values.items()
        return f"{col} = {val:g}"
    return f"{n} of {w.n_columns} column(s) ({a.how}), {fired}"


def _summary(status: str, results: list[RuleResult]) -> str:
    parts = [f"{r.name} {r.status}" for r in results]
    return f"{status}: " + "; ".join(parts)


def _day(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d") if (ts.hour, ts.minute) == (0, 0) else ts.strftime("%Y-%m-%d %H:%M")


def _ago(delta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"
