"""``monitoring.refresh``: read what changed, recompute the touched windows, write atomically.

Incremental bookkeeping lives in the output tables themselves, so a refresh needs no
side state and works the same on Databricks: the profile table's INPUT rows carry the
source's Delta version in ``logging_table_commit_version`` and BASELINE rows carry the
baseline table's version; every row carries ``monitor_version`` (a hash of the monitor
definition). Each refresh also puts that state in its profile-table commit's info, so the
next one reads it without reading rows (:func:`processed_state`). A refresh then

1. is a no-op when the source and baseline versions equal the recorded ones;
2. reads only the rows appended since the recorded version (``ws.tables.read_since``),
   maps them to windows (late rows and rewritten label files included), and plans what to
   recompute (:func:`_plan_increment`);
3. recomputes the profile rows of the touched windows and the drift rows of the touched
   windows and of the windows right after them (their CONSECUTIVE comparison changed),
   comparing with the previous window's summaries kept by the last refresh when it can;
4. writes each table in one Delta transaction: a plain append when every touched window is
   newer than any recorded (the daily case), else ``replace_where`` on the recomputed
   windows. If the second write fails, the first table is restored to its previous version,
   so a failed refresh leaves both tables as they were.

Anything else (first run, new monitor definition, new baseline version) is a full
refresh that overwrites both tables.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from driftgate.core.errors import MonitorError, TableConflict, TableError
from driftgate.core.faults import fault_point
from driftgate.monitoring import engine
from driftgate.monitoring.config import MonitorConfig

logger = logging.getLogger(__name__)

__all__ = ["RefreshResult", "refresh", "processed_versions", "processed_state", "Processed"]

# Summaries of the newest window per granularity from this process's last refresh of a monitor,
# keyed (where the table lives, monitor_version) -> (source version, baseline version, summaries,
# profile table stamp) (two stores can hold tables of the same name: a demo world and a test's).
# The next refresh reuses them as the CONSECUTIVE comparison instead of re-reading and
# re-profiling that window, but only if the tables still record exactly that source and baseline
# version, the profile table's latest commit is still the one that refresh made (no other
# process or writer came in between) and the window was not touched since.
_SUMMARIES: dict[tuple[str, int], tuple[int, int | None, dict, list]] = {}
# Local stores also keep them in a file, so the next day's job (a new process) reuses them too.
SUMMARY_DIR = ".monitor_cache"


def _summary_key(tables, name: str, mv: int) -> tuple[str, int]:
    return (tables.location(name) or f"{id(tables)}:{name}", mv)


def _summary_file(tables, name: str, mv: int):
    root = tables.scratch_dir()
    if root is None:
        return None  # Spark / Unity Catalog: no local folder of ours; the in-process cache only
    return root / SUMMARY_DIR / f"{name}.{mv}.npz"


def _profile_stamp(tables, monitor: MonitorConfig) -> list:
    """The profile table's version and commit time: any commit after ours (another refresh, a
    table deleted and created again) makes saved summaries unusable."""
    name = monitor.profile_metrics_table
    return [tables.version(name), tables.last_modified(name)]


def _save_summaries(tables, name: str, mv: int, cached: tuple) -> None:
    """Write the newest windows' summaries (sorted samples as arrays, the rest as JSON) atomically.

    A cache only: a failure is logged and the next refresh recomputes the window.
    """
    import os

    import numpy as np

    path = _summary_file(tables, name, mv)
    if path is None:
        return
    version, base_version, keep, stamp = cached
    try:
        arrays: dict[str, np.ndarray] = {}
        groups: list[dict] = []
        index: dict[int, int] = {}  # one entry per distinct summary ('*' and a sole model share theirs)
        keys = []
        for key, summary in keep.items():
            if id(summary) not in index:
                i = index[id(summary)] = len(groups)
                for col, values in summary.numeric.items():
                    arrays[f"{i}/{col}"] = values
                groups.append({
                    "rows": summary.rows, "profiles": {c: dataclasses.asdict(p) for c, p in summary.profiles.items()},
                    "numeric": list(summary.numeric), "categories": summary.categories,
                    "non_null_columns": list(summary.non_null_columns),
                    "metrics": [[m, c, v] for (m, c), v in summary.metrics.items()],
                })
            gran, start, model, slice_key, slice_value = key
            keys.append([gran, start.isoformat(), model, slice_key, slice_value, index[id(summary)]])
        meta = {"table": name, "monitor_version": mv, "source_version": version, "baseline_version": base_version,
                "profile_table": stamp, "groups": groups, "keys": keys}
        arrays["meta"] = np.array(json.dumps(meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("%s: comparison summaries not saved: %s", name, exc)


def _load_summaries(tables, name: str, mv: int) -> tuple[int, int | None, dict, list] | None:
    """What :func:`_save_summaries` wrote, or None (no file, or unreadable: recompute)."""
    import numpy as np

    from driftgate.monitoring.stats import ColumnProfile

    path = _summary_file(tables, name, mv)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta["table"] != name or meta["monitor_version"] != mv:
                return None
            summaries = [
                engine.GroupSummary(
                    rows=g["rows"], profiles={c: ColumnProfile(**p) for c, p in g["profiles"].items()},
                    numeric={c: data[f"{i}/{c}"] for c in g["numeric"]}, categories=g["categories"],
                    non_null_columns=tuple(g["non_null_columns"]),
                    metrics={(m, c): v for m, c, v in g["metrics"]})
                for i, g in enumerate(meta["groups"])]
            keep = {(gran, datetime.fromisoformat(start), model, slice_key, slice_value): summaries[i]
                    for gran, start, model, slice_key, slice_value, i in meta["keys"]}
        return meta["source_version"], meta["baseline_version"], keep, meta["profile_table"]
    except Exception as exc:  # noqa: BLE001 - a cache: anything odd means recompute
        logger.info("%s: comparison summaries not reused (%s)", name, exc)
        return None


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did."""

    table_name: str
    profile_metrics_table: str
    drift_metrics_table: str
    mode: str
    """``full``, ``incremental`` or ``noop``."""
    engine: str
    source_version: int
    previous_version: int | None
    windows: tuple[tuple[str, datetime], ...] = ()
    """(granularity, window start) of every window whose rows were rewritten."""
    profile_rows: int = 0
    drift_rows: int = 0
    seconds: float = 0.0
    monitor_version: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def noop(self) -> bool:
        return self.mode == "noop"

    @property
    def profile_table(self) -> str:
        return self.profile_metrics_table

    @property
    def drift_table(self) -> str:
        return self.drift_metrics_table

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.noop:
            return f"nothing new in {self.table_name} (version {self.source_version}); tables unchanged"
        return (f"{self.mode} refresh of {self.table_name}@v{self.source_version}: {len(self.windows)} window(s), "
                f"{self.profile_rows} profile rows, {self.drift_rows} drift rows in {self.seconds:.2f}s")

    def to_dict(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name, "mode": self.mode, "engine": self.engine,
            "source_version": self.source_version, "previous_version": self.previous_version,
            "windows": [(g, s.isoformat()) for g, s in self.windows], "profile_rows": self.profile_rows,
            "drift_rows": self.drift_rows, "seconds": round(self.seconds, 4), "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Processed:
    """What the output tables record of earlier refreshes (all None / empty before the first)."""

    source_version: int | None = None
    baseline_version: int | None = None
    newest: dict[str, datetime] = field(default_factory=dict)
    """Per granularity, the start of the newest window with INPUT profile rows."""


_META_KEYS = ("driftgate.monitor_version", "driftgate.source_version", "driftgate.baseline_version",
              "driftgate.newest_windows")


def processed_state(ws, monitor: MonitorConfig, version: int) -> Processed:
    """The source and baseline versions and newest windows recorded for monitor version ``version``.

    Every refresh also writes them into the profile table's commit info, so while the latest
    commit is a refresh's, no rows are read (reading the profile table's columns took 150 ms
    after 30 daily refreshes). Otherwise (another writer, a restore) the rows decide.
    """
    name = monitor.profile_metrics_table
    tables = ws.tables
    if not tables.exists(name):
        return Processed()
    meta = tables.commit_metadata(name)
    if all(k in meta for k in _META_KEYS):
        if meta["driftgate.monitor_version"] != str(version):
            return Processed()
        newest = {g: datetime.fromisoformat(s) for g, s in json.loads(meta["driftgate.newest_windows"]).items()}
        base = meta["driftgate.baseline_version"]
        return Processed(int(meta["driftgate.source_version"]), int(base) if base else None, newest)
    try:
        rows = tables.read(name, columns=["log_type", "logging_table_commit_version", "monitor_version",
                                          "granularity", "window"])
    except TableError:
        return Processed()
    if rows.num_rows == 0:
        return Processed()
    if not pc.all(pc.equal(rows.column("monitor_version"), version)).as_py():
        return Processed()
    out = []
    for log_type in ("INPUT", "BASELINE"):
        sel = rows.filter(pc.equal(rows.column("log_type"), log_type)).column("logging_table_commit_version")
        out.append(pc.max(sel).as_py() if len(sel) else None)
    return Processed(out[0], out[1], _newest(rows))


def processed_versions(ws, monitor: MonitorConfig, version: int) -> tuple[int | None, int | None]:
    """(source version, baseline version) recorded in the profile table for this monitor version."""
    state = processed_state(ws, monitor, version)
    return state.source_version, state.baseline_version


def _newest(profile: pa.Table, newest: dict[str, datetime] | None = None) -> dict[str, datetime]:
    """``newest`` updated with the INPUT windows of ``profile`` rows."""
    out = dict(newest or {})
    if profile.num_rows == 0:
        return out
    if "log_type" in profile.column_names:
        profile = profile.filter(pc.equal(profile.column("log_type"), "INPUT"))
    starts = pc.struct_field(profile.column("window"), "start").to_pylist()
    for gran, start in zip(profile.column("granularity").to_pylist(), starts):
        if start is not None and (gran not in out or start > out[gran]):
            out[gran] = start
    return out


def _commit_info(mv: int, version: int, base_version: int | None, newest: dict[str, datetime]) -> dict[str, str]:
    return {"driftgate.monitor_version": str(mv), "driftgate.source_version": str(version),
            "driftgate.baseline_version": "" if base_version is None else str(base_version),
            "driftgate.newest_windows": json.dumps({g: s.isoformat() for g, s in sorted(newest.items())})}


@dataclass
class _Increment:
    """What an incremental refresh recomputes, and from which rows."""

    appended: pa.Table
    profile_windows: dict[str, set[datetime]]
    """Per granularity, the windows the appended rows fall in (their profile rows are redone)."""
    drift_windows: dict[str, set[datetime]]
    """Those and the windows right after them (their CONSECUTIVE comparison changed)."""
    needed: list[datetime]
    """Window starts whose rows must be read (touched windows and their predecessors)."""
    time_range: tuple[datetime, datetime]
    reuse: dict | None
    """Summaries of the predecessor windows from the previous refresh, when all are there."""
    append_only: bool
    notes: list[str]


def _plan_increment(ws, monitor: MonitorConfig, state: Processed, mv: int, version: int,
                    base_version: int | None) -> _Increment:
    tables, name, ts = ws.tables, monitor.table_name, monitor.timestamp_col
    done_version = state.source_version
    notes = []
    appended = tables.read_since(name, done_version)
    if appended.num_rows == 0:
        notes.append(f"versions {done_version + 1}..{version} added no rows")
    touched: dict[str, set[datetime]] = {}
    for gran in monitor.granularities:
        starts = engine.window_starts(appended.column(ts), gran) if appended.num_rows else pa.array([])
        touched[gran] = {s for s in pc.unique(starts).to_pylist() if s is not None}
    after = {g: {engine.window_bounds(s, g)[1] for s in starts} for g, starts in touched.items()}
    drift_windows = {g: touched[g] | after[g] for g in touched}
    needed = [s for starts in touched.values() for s in starts]
    needed += [engine.previous_window(s, g) for g, starts in touched.items() for s in starts]
    ends = [engine.window_bounds(s, g)[1] for g, starts in drift_windows.items() for s in starts]
    reuse = None
    cached = None
    if monitor.engine != "spark":
        cached = _SUMMARIES.get(_summary_key(tables, name, mv)) or _load_summaries(tables, name, mv)
    if cached is not None and cached[:2] == (done_version, base_version) \
            and cached[3] == _profile_stamp(tables, monitor):
        prevs = {(g, engine.previous_window(s, g)) for g, starts in touched.items() for s in starts}
        prevs -= {(g, s) for g, starts in touched.items() for s in starts}
        reuse = {k: v for k, v in cached[2].items() if (k[0], k[1]) in prevs}
        if prevs and prevs <= {(k[0], k[1]) for k in reuse}:
            needed = [s for starts in touched.values() for s in starts]  # no need to re-read them
        else:
            reuse = None
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    # The common daily case: every touched window is newer than any window the tables record.
    # Then no output row can match the new windows (plain appends, no predicate scan) and all
    # their rows are in ``appended`` (no second read of them).
    append_only = any(touched.values()) and all(
        g not in state.newest or min(starts) > state.newest[g] for g, starts in touched.items() if starts)
    return _Increment(appended=appended, profile_windows=touched, drift_windows=drift_windows, needed=needed,
                      time_range=(min(needed), max(ends)) if needed else (epoch, epoch), reuse=reuse,
                      append_only=append_only, notes=notes)


def refresh(ws, monitor: MonitorConfig, *, progress: Callable[[int, int], None] | None = None,
            now: datetime | None = None) -> RefreshResult:
    """Bring ``monitor``'s profile and drift metric tables up to date with its source table.

    Args:
        ws: the open workspace (tables are read and written through ``ws.tables``).
        monitor: the monitor definition (``settings.monitor``).
        progress: called with (windows done, windows in all) as the engine goes (the CLI draws a bar).
        now: snapshot time for snapshot analysis (default: now).

    Returns:
        A :class:`RefreshResult` (``mode`` full / incremental / noop).

    Raises:
        MonitorError: a missing table or column, a wrong column type, a slicing expression
            or custom metric that does not parse. Nothing has been written.
        TableError: a write failed; both output tables are as they were before.
    """
    started = time.perf_counter()
    tables = ws.tables
    name = monitor.table_name
    if not tables.exists(name):
        raise MonitorError(f"{name}: monitored table does not exist (monitor.table_name)")
    version = tables.version(name)
    base_name = monitor.baseline_table_name
    base_version = None
    if base_name is not None:
        if not tables.exists(base_name):
            raise MonitorError(f"{base_name}: baseline table does not exist (monitor.baseline_table_name)")
        base_version = tables.version(base_name)
    mv = engine.monitor_version(monitor)
    # the guards before the state: a refresh that commits after this point fails our write, and
    # one that committed before it is in the state we plan from
    steps = _steps(tables, monitor)
    state = processed_state(ws, monitor, mv)
    done_version, done_base = state.source_version, state.baseline_version
    common = dict(table_name=name, profile_metrics_table=monitor.profile_metrics_table,
                  drift_metrics_table=monitor.drift_metrics_table, engine=monitor.engine,
                  source_version=version, previous_version=done_version, monitor_version=mv)
    snapshot = monitor.snapshot is not None
    if done_version == version and done_base == base_version and not snapshot:
        _audit_late(ws, monitor, steps)
        return RefreshResult(mode="noop", seconds=time.perf_counter() - started, **common)

    schema = tables.schema(name)
    plan = engine.plan_for(monitor, schema)
    baseline = None
    if base_name is not None:
        baseline = tables.read(base_name)
        missing = [c for c in (*plan.columns, *(c for c in [monitor.model_id_col] if c)) if c not in
                   baseline.column_names]
        if missing:
            raise MonitorError(f"{base_name}: baseline lacks column(s) {', '.join(missing)} of {name} "
                               "(baseline_table_name must have the same schema)")
        baseline = _align(baseline, schema, base_name)
        plan = _with_champion_importance(ws, plan, baseline)

    full = snapshot or done_version is None or done_base != base_version or done_version > version
    notes: list[str] = []
    ts = monitor.timestamp_col
    inc = None if full else _plan_increment(ws, monitor, state, mv, version, base_version)
    if inc is not None:
        notes += inc.notes
    profile_windows = inc.profile_windows if inc else None
    drift_windows = inc.drift_windows if inc else None
    time_range = inc.time_range if inc else None
    reuse = inc.reuse if inc else None
    append_only = inc.append_only if inc else False
    keep: dict = {}
    source = None
    if monitor.engine != "spark":
        if append_only:
            try:
                source = _append_source(tables, name, schema, ts, inc)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
                # appended files whose columns differ from the table's (schema evolution): read the range
                logger.info("%s: reading the touched windows back (%s)", name, exc)
        if source is None:
            filters = None if time_range is None else [(ts, ">=", time_range[0]), (ts, "<", time_range[1])]
            source = tables.read(name, filters=filters)

    if monitor.engine == "spark":
        from driftgate.monitoring import spark_engine

        profile, drift = spark_engine.compute(
            ws, plan, source_name=name, time_range=time_range, baseline=baseline,
            profile_windows=profile_windows, drift_windows=drift_windows, commit_version=version, now=now)
    else:
        profile, drift = engine.compute(
            plan, source, baseline, profile_windows=profile_windows, drift_windows=drift_windows,
            commit_version=version, now=now, progress=progress, reuse=reuse, keep=keep, emit_baseline=full)
    if base_version is not None and profile.num_rows:
        is_base = pc.equal(profile.column("log_type"), "BASELINE")
        col = profile.column("logging_table_commit_version")
        profile = profile.set_column(profile.schema.get_field_index("logging_table_commit_version"),
                                     "logging_table_commit_version",
                                     pc.if_else(is_base, pa.scalar(base_version, pa.int32()), col))
    if not full and profile.num_rows:
        # An incremental refresh runs only with the baseline version already processed, so the
        # BASELINE profile rows in the table are current: they are neither recomputed nor rewritten
        # (rewriting them rewrote the table's oldest, largest files on every refresh).
        profile = profile.filter(pc.not_equal(profile.column("log_type"), "BASELINE"))
    if not full and profile.num_rows == 0:
        # keep the processed-version marker moving even when the new commits hold no rows
        profile = _marker_rows(ws, monitor, version)

    windows = _written_windows(profile, drift)
    newest = _newest(profile, None if full else state.newest)
    _SUMMARIES.pop(_summary_key(tables, name, mv), None)
    if steps.interrupted and not full:
        notes.append("the last refresh died between its two writes: its drift rows are replaced, not appended to")
    planned = RefreshResult(mode="full" if full else "incremental", windows=windows, profile_rows=profile.num_rows,
                            drift_rows=drift.num_rows, seconds=time.perf_counter() - started, notes=tuple(notes),
                            **common)
    metadata = {**_commit_info(mv, version, base_version, newest), EVENT_KEY: json.dumps(_event_details(planned))}
    if not _write_both(ws, monitor, profile, drift, full=full, append=append_only and not steps.interrupted,
                       profile_windows=profile_windows, drift_windows=drift_windows, metadata=metadata,
                       steps=steps):
        notes.append("another refresh wrote the metric tables while this one computed; nothing written")
        return RefreshResult(mode="noop", seconds=time.perf_counter() - started, notes=tuple(notes), **common)
    _compact(ws, monitor)
    fault_point("monitor.compacted")
    if keep and ts is not None and monitor.engine != "spark":
        stamp = _profile_stamp(tables, monitor)
        _SUMMARIES[_summary_key(tables, name, mv)] = (version, base_version, keep, stamp)
        _save_summaries(tables, name, mv, (version, base_version, keep, stamp))
    if reuse:
        notes.append(f"reused {len(reuse)} comparison summaries from the previous refresh")
    if append_only and not steps.interrupted:
        notes.append("only new windows: rows appended, nothing rewritten")
    result = dataclasses.replace(planned, seconds=time.perf_counter() - started, notes=tuple(notes))
    fault_point("monitor.summaries_saved")
    _audit(ws, result.table_name, result.mode, _event_details(result), steps.event_id(monitor))
    return result


EVENT_KEY = "driftgate.refresh_event"
"""Profile-commit key holding the refresh's audit event details, for :func:`_audit_late`."""


def _event_details(result: RefreshResult) -> dict[str, Any]:
    return {k: v for k, v in result.to_dict().items() if k != "windows"} | {"windows": len(result.windows)}


def _audit(ws, table: str, mode: str, details: dict[str, Any], event_id: str | None) -> None:
    """One ``monitor_refresh`` event per refresh that wrote rows (no-ops stay free).

    The metric tables are already committed here, so a failed audit append is a warning,
    not a failed refresh. The event's id is the refresh's step (:meth:`_Steps.event_id`).
    """
    from driftgate.workspace import audit

    if getattr(ws, "settings", None) is None:
        return  # a bare table store (benchmarks, engine tests): no project, no audit table
    try:
        audit.record_event(ws, "monitor_refresh", subject=table, status=mode, details=details, event_id=event_id)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("%s: refresh done, audit event not recorded: %s", table, exc)


def _audit_late(ws, monitor: MonitorConfig, steps: _Steps) -> None:
    """Record the event of the refresh that wrote both tables and died before its audit append.

    Its profile commit carries the event's details (:data:`EVENT_KEY`), and the event's id is
    its step, so a no-op that follows records it once (marked ``recorded_late``).
    """
    from driftgate.workspace.audit import has_event

    if getattr(ws, "settings", None) is None or not steps.tracked or steps.interrupted:
        return
    meta = ws.tables.commit_metadata(monitor.profile_metrics_table)
    last = dataclasses.replace(steps, step=steps.step - 1)
    event_id = last.event_id(monitor)
    if EVENT_KEY not in meta or meta.get(STEP_KEY) != str(last.step) or has_event(ws, event_id):
        return
    details = json.loads(meta[EVENT_KEY]) | {"recorded_late": True}
    _audit(ws, monitor.table_name, details.get("mode", "incremental"), details, event_id)


def _with_champion_importance(ws, plan: engine.Plan, baseline: pa.Table) -> engine.Plan:
    """The plan weighted by the importance of the version that scored the baseline (its rows' model id),
    as written with the baseline (:mod:`driftgate.monitoring.importance`); unchanged when none is stored.
    It changes only with the baseline, whose new version forces a full refresh."""
    from driftgate.monitoring.importance import read_importance

    col = plan.cfg.model_id_col
    if not col or col not in baseline.column_names or baseline.num_rows == 0:
        return plan
    versions = [v for v in pc.unique(pc.cast(baseline.column(col), pa.string())).to_pylist() if v is not None]
    if len(versions) != 1:
        return plan
    try:
        importance = read_importance(ws, versions[0])
    except Exception as exc:  # noqa: BLE001 - a missing weighting leaves the rule INSUFFICIENT_DATA, not the refresh
        logger.warning("feature importance of v%s unreadable: %s", versions[0], exc)
        return plan
    return engine.with_importance(plan, importance) if importance else plan


def _align(baseline: pa.Table, schema: pa.Schema, base_name: str) -> pa.Table:
    """Cast baseline columns to the source's types (e.g. int32 vs int64); refuse what cannot be cast."""
    cols = {}
    for f in schema:
        if f.name not in baseline.column_names:
            continue
        col = baseline.column(f.name)
        if col.type != f.type:
            try:
                col = pc.cast(col, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise MonitorError(f"{base_name}: column {f.name!r} is {col.type}, expected {f.type} "
                                   f"like the monitored table ({exc})") from None
        cols[f.name] = col
    return pa.table(cols)


def _marker_rows(ws, monitor: MonitorConfig, version: int) -> pa.Table:
    """Re-emit the newest INPUT window's rows with the new version (nothing else changed)."""
    current = ws.tables.read(monitor.profile_metrics_table)
    inputs = current.filter(pc.equal(current.column("log_type"), "INPUT"))
    if inputs.num_rows == 0:
        return current.schema.empty_table()
    newest = _newest(inputs)
    starts = pc.struct_field(inputs.column("window"), "start")
    keep = None
    for gran, start in newest.items():
        match = pc.and_(pc.equal(inputs.column("granularity"), gran), pc.equal(starts, pa.scalar(start, starts.type)))
        keep = match if keep is None else pc.or_(keep, match)
    inputs = inputs.filter(keep)
    idx = inputs.schema.get_field_index("logging_table_commit_version")
    return inputs.set_column(idx, "logging_table_commit_version",
                             pa.array([version] * inputs.num_rows, pa.int32()))


def _written_windows(profile: pa.Table, drift: pa.Table) -> tuple[tuple[str, datetime], ...]:
    seen = set()
    for table, kind_col in ((profile, "log_type"), (drift, None)):
        if table.num_rows == 0:
            continue
        if kind_col:
            table = table.filter(pc.equal(table.column(kind_col), "INPUT"))
        starts = pc.struct_field(table.column("window"), "start").to_pylist()
        for g, s in zip(table.column("granularity").to_pylist(), starts):
            seen.add((g, s))
    return tuple(sorted(seen))


def _in_windows(windows: dict[str, set[datetime]]) -> str:
    parts = []
    for gran, starts in sorted(windows.items()):
        if not starts:
            continue
        values = ", ".join(f"'{s.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'" for s in sorted(starts))
        parts.append(f"(granularity = '{gran}' AND window['start'] IN ({values}))")
    return " OR ".join(parts) if parts else "1 = 0"


REFRESH_APP_ID = "driftgate.monitor_refresh"
"""Delta application-transaction id of refresh writes: each refresh records the next step."""

STEP_KEY = "driftgate.refresh_step"
"""Commit-info key of both metric-table writes: the refresh's step (for stores without ``txn``)."""


@dataclass(frozen=True)
class _Steps:
    """Where the two metric tables' writes stand, read when a refresh plans.

    Both writes of one refresh record the same step (Delta ``txn`` where the store has it, and
    :data:`STEP_KEY` in the commit info). A drift table ahead of the profile table is the drift
    write of a refresh that died before its profile write: the profile table, which records what
    was processed, never saw it, so this refresh recomputes the same windows and must replace
    those rows rather than append them a second time.
    """

    step: int
    guards: dict[str, tuple[str, int]]
    interrupted: bool
    tracked: bool
    """Whether the store records steps at all (else every refresh plans step 1)."""

    def event_id(self, monitor: MonitorConfig) -> str | None:
        """The id of this refresh's ``monitor_refresh`` event: one per step, so it is recorded once."""
        return f"monitor_refresh:{monitor.profile_metrics_table}:{self.step}" if self.tracked else None


def _steps(tables, monitor: MonitorConfig) -> _Steps:
    """The step this refresh's writes record, its guards, and whether the last refresh died halfway.

    Read before the processed state, so a refresh that lands while this one computes makes this
    one's write fail cleanly instead of appending the same windows twice.
    """
    done = {}
    for name in (monitor.drift_metrics_table, monitor.profile_metrics_table):
        if not tables.exists(name):
            done[name] = 0
        elif tables.supports_transactions:
            done[name] = tables.transaction_version(name, REFRESH_APP_ID) or 0
        else:  # the latest commit's (compaction carries it); 0 for a store that keeps no commit info
            done[name] = int(tables.commit_metadata(name).get(STEP_KEY) or 0)
    step = max(done.values()) + 1
    guards = {name: (REFRESH_APP_ID, step) for name in done} if tables.supports_transactions else {}
    return _Steps(step, guards, done[monitor.drift_metrics_table] > done[monitor.profile_metrics_table],
                  tables.supports_transactions or tables.keeps_commit_metadata)


def _write_both(ws, monitor: MonitorConfig, profile: pa.Table, drift: pa.Table, *, full: bool, append: bool,
                profile_windows, drift_windows, metadata: dict[str, str], steps: _Steps) -> bool:
    """Drift table first, then the profile table, whose commit records what was processed.

    Both commits record the refresh's step (:class:`_Steps`). A process killed between the two
    writes leaves the drift table a step ahead; the next refresh sees it and replaces instead of
    appending (``append`` is False then), so the day is not written twice.

    Returns False, having written nothing, when another refresh wrote the drift table after
    this one planned (its guard step is taken).
    """
    tables = ws.tables
    pname, dname = monitor.profile_metrics_table, monitor.drift_metrics_table
    guards = steps.guards
    before = tables.version(dname) if tables.exists(dname) else None
    guard: dict = {"metadata": {STEP_KEY: str(steps.step)}}  # kept where the store keeps commit info
    if dname in guards:
        guard["txn"] = guards[dname]
    try:
        if full:
            tables.write(dname, drift, mode="overwrite", **guard)
        elif append:
            tables.write(dname, drift, mode="append", **guard)
        else:
            tables.write(dname, drift, replace_where=_in_windows(drift_windows), **guard)
    except TableConflict:
        return False
    fault_point("monitor.drift_written")
    # stores that keep no commit info ignore it; the state is in the rows too
    extra: dict = {"metadata": {**metadata, STEP_KEY: str(steps.step)}}
    if pname in guards:
        extra["txn"] = guards[pname]
    try:
        if full:
            tables.write(pname, profile, mode="overwrite", **extra)
        elif append:
            tables.write(pname, profile, mode="append", **extra)
        else:
            if any(profile_windows.values()):
                pred = f"log_type = 'INPUT' AND ({_in_windows(profile_windows)})"
            else:
                pred = _marker_predicate(profile)
            tables.write(pname, profile, replace_where=pred, **extra)
    except Exception:
        _restore(ws, dname, before)
        raise
    fault_point("monitor.profile_written")
    return True


def _compact(ws, monitor: MonitorConfig) -> None:
    """Merge the metric tables' per-refresh files once there are many (stores that can)."""
    for name in (monitor.drift_metrics_table, monitor.profile_metrics_table):
        ws.tables.compact(name)


def _append_source(tables, name: str, schema: pa.Schema, ts: str, inc: "_Increment") -> pa.Table:
    """Rows for an append-only refresh: the appended rows, plus the comparison windows before them.

    Every touched window is newer than anything recorded, so older rows all lie before the
    earliest touched window and the appended rows are all the touched windows hold.
    """
    first = min(s for starts in inc.profile_windows.values() for s in starts)
    earlier = [s for s in inc.needed if s < first]
    appended = inc.appended
    new = appended.filter(pc.is_valid(appended.column(ts))).select(schema.names).cast(schema)
    if not earlier:
        return new
    old = tables.read(name, filters=[(ts, ">=", min(earlier)), (ts, "<", first)])
    return pa.concat_tables([old.select(schema.names).cast(schema), new])


def _marker_predicate(profile: pa.Table) -> str:
    starts = {}
    for g, s in zip(profile.column("granularity").to_pylist(),
                    pc.struct_field(profile.column("window"), "start").to_pylist()):
        starts.setdefault(g, set()).add(s)
    return f"log_type = 'INPUT' AND ({_in_windows(starts)})"


def _restore(ws, name: str, version: int | None) -> None:
    """Put ``name`` back to ``version`` (a new commit with the old content; None drops it)."""
    ws.tables.restore(name, version)
