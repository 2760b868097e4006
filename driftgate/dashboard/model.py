"""What the dashboard shows, as data: a pure function from the tables and events read to a small record.

:func:`gather` takes what :func:`driftgate.dashboard.read_inputs` read (metric tables, decisions,
audit events, aliases, version tags) and returns a :class:`Dashboard`; it does no I/O, so it is
tested on hand-made rows. :mod:`driftgate.dashboard.render` turns the record into HTML.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from driftgate.monitoring.config import MonitorConfig
from driftgate.monitoring.report import ChartPanel, panel_data

__all__ = ["Line", "Chart", "Mark", "JobRun", "Version", "Dashboard", "DashboardInputs", "QUALITY_METRICS",
           "ESTIMATED_SUFFIXES", "effective_times", "gather"]

Point = tuple[datetime, float]

QUALITY_METRICS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "classification": (("roc_auc_score", "estimated_roc_auc"), ("accuracy_score", "estimated_accuracy"),
                       ("f1_score.macro", "estimated_f1")),
    "regression": (("r2_score", None), ("root_mean_squared_error", None), ("mean_absolute_error", None)),
}
"""Per problem type: the realised quality metric of the profile table's ``:table`` rows and the
estimated column drawn beside it (with ``<estimated>_lower`` / ``_upper`` as its band) when present."""
ESTIMATED_SUFFIXES = ("_lower", "_upper")

MARK_KINDS = ("gate_decision", "train", "shadow", "promotion", "refusal", "rollback", "job_run", "init")
"""Audit events drawn on the shared time axis."""


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Chart:
    """One metric over windows: a line per column, the rule's threshold, an optional estimate band."""

    title: str
    metric: str
    lines: tuple[Line, ...]
    threshold: float | None = None
    baseline: float | None = None
    band: tuple[tuple[datetime, float, float], ...] = ()
    """(window start, lower, upper) of an estimated metric's interval."""

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)


@dataclass(frozen=True)
class Mark:
    """One audit event on the time axis."""

    at: datetime
    kind: str
    status: str
    subject: str
    text: str
    run_key: str | None = None
    recorded_at: datetime | None = None
    """When it was written (wall clock); ``at`` is the job run's as-of time for a replayed run."""


@dataclass(frozen=True)
class JobRun:
    """One job run: the gate's decision and what the retraining branch did."""

    run_key: str
    at: datetime
    gate_status: str
    summary: str
    outcome: str
    """``skipped`` (gate did not fire), ``promoted``, ``refused``, or the last event's status."""
    detail: str = ""


@dataclass(frozen=True)
class Version:
    """One model version in the champion's lineage."""

    version: str
    aliases: tuple[str, ...]
    registered_at: datetime | None
    outcome: str
    """``champion`` (bootstrap), ``promoted``, ``refused``, ``rolled_back``, ``challenger`` or ``registered``."""
    outcome_at: datetime | None
    replaced: str | None
    """The champion this version replaced (promotions), or None."""
    reason: str = ""
    shadow_status: str | None = None
    shadow_metrics: tuple[tuple[str, float], ...] = ()
    """``champion_*`` / ``challenger_*`` figures of its shadow evaluation (event, else version tags)."""


@dataclass(frozen=True)
class Dashboard:
    title: str
    model_name: str
    generated_at: datetime
    as_of: datetime | None
    start: datetime | None
    end: datetime | None
    drift: tuple[Chart, ...]
    quality: tuple[Chart, ...]
    marks: tuple[Mark, ...]
    job_runs: tuple[JobRun, ...]
    lineage: tuple[Version, ...]
    aliases: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class DashboardInputs:
    """What :func:`driftgate.dashboard.read_inputs` read: plain values, no handles."""

    model_name: str
    monitor: MonitorConfig
    panels: tuple[ChartPanel, ...]
    """The gate's rules as chart panels (:func:`driftgate.monitoring.report.rule_panels`)."""
    drift: pa.Table | None
    profile: pa.Table | None
    decisions: tuple[dict[str, Any], ...]
    """Rows of ``driftgate_decisions`` (:func:`driftgate.gating.read_decisions`)."""
    events: tuple[dict[str, Any], ...]
    """Audit events (:func:`driftgate.workspace.audit.read_events`, details decoded)."""
    aliases: dict[str, str | None] = field(default_factory=dict)
    version_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    granularity: str | None = None


def _before(table: pa.Table | None, as_of: datetime | None) -> pa.Table | None:
    if table is None or as_of is None or table.num_rows == 0:
        return table
    import pyarrow.compute as pc

    starts = pc.struct_field(table.column("window"), "start")
    return table.filter(pc.fill_null(pc.less_equal(starts, pa.scalar(as_of, starts.type)), True))


def _lines(series: dict[str, list[tuple]]) -> tuple[Line, ...]:
    return tuple(Line(col, tuple((t, float(v)) for t, v in pts)) for col, pts in sorted(series.items()))


def _drift_charts(inputs: DashboardInputs, drift, profile) -> tuple[Chart, ...]:
    out = []
    for panel in inputs.panels:
        series, baseline, line = panel_data(panel, drift, profile, inputs.monitor, granularity=inputs.granularity)
        out.append(Chart(panel.title, panel.metric, _lines(series), threshold=line, baseline=baseline))
    return tuple(out)


def _quality_panel(metric: str) -> ChartPanel:
    return ChartPanel(rule="quality", table="profile", metric=metric, op="", threshold=math.nan,
                      columns=(":table",))


def _quality_charts(inputs: DashboardInputs, profile) -> tuple[Chart, ...]:
    if profile is None or profile.num_rows == 0:
        return ()
    log = inputs.monitor.inference_log
    problem = getattr(log, "problem_type", None) or "classification"
    thresholds = {p.metric: p for p in inputs.panels if p.table == "profile"}
    present = set(profile.column_names)
    out = []
    for metric, estimated in QUALITY_METRICS.get(problem, ()):
        if metric.split(".")[0] not in present:
            continue
        series, _, _ = panel_data(_quality_panel(metric), None, profile, inputs.monitor,
                                  granularity=inputs.granularity)
        lines = [Line("realised", tuple(series.get(":table", ())))]
        band: tuple = ()
        # the columns are in every profile table now; a monitor that wrote no estimate leaves them null
        if estimated and estimated in present and profile.column(estimated).null_count < profile.num_rows:
            est, _, _ = panel_data(_quality_panel(estimated), None, profile, inputs.monitor,
                                   granularity=inputs.granularity)
            lines.append(Line("estimated", tuple(est.get(":table", ()))))
            if all(estimated + s in present for s in ESTIMATED_SUFFIXES):
                lo, hi = (dict(panel_data(_quality_panel(estimated + s), None, profile, inputs.monitor,
                                          granularity=inputs.granularity)[0].get(":table", ()))
                          for s in ESTIMATED_SUFFIXES)
                band = tuple((t, lo[t], hi[t]) for t in sorted(lo) if t in hi)
        rule = thresholds.get(metric)
        threshold = None
        if rule is not None:
            _, _, threshold = panel_data(rule, None, profile, inputs.monitor, granularity=inputs.granularity)
        title = f"{metric}" + (" with its estimate" if len(lines) > 1 else "")
        out.append(Chart(title, metric, tuple(lines), threshold=threshold, band=band))
    return tuple(out)


def _text(details: dict[str, Any]) -> str:
    for key in ("reason", "summary", "reasons", "refused_reason", "branch"):
        value = details.get(key)
        if value:
            return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return ""


def _version_of(subject: str | None) -> str | None:
    if subject and "@" in subject:
        tail = subject.rsplit("@", 1)[1]
        return tail if tail and tail != "None" else None
    return None


def _as_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def effective_times(events, decisions) -> dict[str, datetime]:
    """Each event's place on the time axis, by ``event_id``: a job run replayed ``--as-of`` a time
    (the demo, a backtest) records its events at the wall clock, so every event written between its
    first event and its ``job_run`` event is placed at the run's as-of time (the ``job_run`` event's
    ``as_of``, else its decision's ``evaluated_at``); other events stay where the clock put them."""
    evaluated = {d["run_key"]: d["evaluated_at"] for d in decisions if d.get("run_key")}
    first: dict[str, datetime] = {}
    for e in events:
        if e.get("run_key"):
            first[e["run_key"]] = min(first.get(e["run_key"], e["at"]), e["at"])
    spans = []
    for e in events:
        key = e.get("run_key")
        if e["kind"] == "job_run" and key:
            when = _as_time((e.get("details") or {}).get("as_of")) or evaluated.get(key)
            if when is not None:
                spans.append((first.get(key, e["at"]), e["at"], when))
    out = {}
    for e in events:
        inside = next((when for lo, hi, when in spans if lo <= e["at"] <= hi), None)
        # Written before a replayed run (a bootstrap, say): no later than that run's time, so order holds.
        later = [when for lo, _, when in spans if lo > e["at"]]
        out[e["event_id"]] = inside if inside is not None else min([e["at"], *later])
    return out


def _job_runs(decisions, events) -> tuple[JobRun, ...]:
    """One row per run key a job run or a decision carries, in time order."""
    by_key: dict[str, dict[str, Any]] = {}
    for d in decisions:
        if d.get("run_key"):
            by_key.setdefault(d["run_key"], {})["decision"] = d
    for e in events:
        if e["kind"] == "job_run" and e.get("run_key"):
            by_key.setdefault(e["run_key"], {})["job"] = e
    out = []
    for key, parts in by_key.items():
        d, job = parts.get("decision"), parts.get("job")
        details = (job or {}).get("details") or {}
        at = (d or {}).get("evaluated_at") or _as_time(details.get("as_of")) or job["at"]
        notes = details.get("notes") or []
        detail = "; ".join(map(str, notes)) if isinstance(notes, list) else str(notes)
        version = details.get("challenger_version")
        if version and details.get("shadow_status"):
            detail = f"challenger v{version}: shadow {details['shadow_status']}" + (f"; {detail}" if detail else "")
        out.append(JobRun(key, at, (d or {}).get("status") or details.get("decision_status") or "-",
                          (d or {}).get("summary") or "", _outcome(job), detail))
    return tuple(sorted(out, key=lambda r: r.at))


def _outcome(job: dict[str, Any] | None) -> str:
    if job is None:
        return "running or not recorded"
    details = job.get("details") or {}
    if details.get("branch") == "skip" or job.get("status") == "skip":
        return "skipped"
    if details.get("promoted") is True:
        return "promoted"
    return str(details.get("promotion_status") or job.get("status") or "-")


SHADOW_KEYS = ("roc_auc", "accuracy_score", "f1_score", "agreement_rate")
"""Shadow figures the lineage shows (as ``champion_<m>`` / ``challenger_<m>``, and the agreement rate)."""


def _shadow_metrics(details: dict[str, Any], tags: dict[str, str]) -> tuple[tuple[str, float], ...]:
    """The shadow event's figures, else the version's ``driftgate_challenger_*`` tags."""
    source = details or {k.removeprefix("driftgate_"): v for k, v in tags.items()
                         if k.startswith("driftgate_challenger_")}
    figures: dict[str, float] = {}
    for key, value in source.items():
        shown = key == "agreement_rate" or key.startswith(("champion_", "challenger_"))
        if not shown or not key.endswith(SHADOW_KEYS) or isinstance(value, bool):
            continue
        try:
            figures[key] = float(value)
        except (TypeError, ValueError):
            continue
    return tuple(sorted(figures.items()))


_OUTCOMES = {("promotion", "promoted"): "promoted", ("promotion", "bootstrap"): "champion",
             ("init", "bootstrap"): "champion", ("refusal", "refused"): "refused",
             ("rollback", "rolled_back"): "rolled_back", ("promotion", "challenger_set"): "challenger"}


def _lineage(inputs: DashboardInputs, events) -> tuple[Version, ...]:
    versions: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e["at"]):
        version = _version_of(e.get("subject"))
        if version is None:
            continue
        v = versions.setdefault(version, {"registered_at": None, "outcome": "registered", "outcome_at": None,
                                          "replaced": None, "reason": "", "shadow": None})
        details = e.get("details") or {}
        if e["kind"] in ("train", "init") and v["registered_at"] is None:
            v["registered_at"] = e["at"]
        if e["kind"] == "shadow":
            v["shadow"] = e
        outcome = _OUTCOMES.get((e["kind"], e.get("status") or ""))
        if outcome is not None and not (outcome == "challenger" and v["outcome"] != "registered"):
            v.update(outcome=outcome, outcome_at=e["at"], reason=_text(details))
            if outcome == "promoted":
                replaced = details.get("previous_champion") or details.get("champion")
                v["replaced"] = str(replaced) if replaced not in (None, version) else None
    for alias, version in inputs.aliases.items():
        if version is not None:
            versions.setdefault(version, {"registered_at": None, "outcome": "registered", "outcome_at": None,
                                          "replaced": None, "reason": "", "shadow": None})
    out = []
    for version, v in versions.items():
        shadow = v["shadow"]
        tags = inputs.version_tags.get(version, {})
        out.append(Version(
            version=version,
            aliases=tuple(a for a, ver in inputs.aliases.items() if ver == version),
            registered_at=v["registered_at"], outcome=v["outcome"], outcome_at=v["outcome_at"],
            replaced=v["replaced"], reason=v["reason"],
            shadow_status=(shadow or {}).get("status") or tags.get("driftgate_shadow_status"),
            shadow_metrics=_shadow_metrics((shadow or {}).get("details") or {}, tags)))
    return tuple(sorted(out, key=lambda v: (int(v.version) if v.version.isdigit() else 1 << 30, v.version)))


def gather(inputs: DashboardInputs, *, generated_at: datetime, as_of: datetime | None = None) -> Dashboard:
    """The dashboard's record from what was read; everything after ``as_of`` (if given) is left out."""
    drift, profile = _before(inputs.drift, as_of), _before(inputs.profile, as_of)
    when = effective_times(inputs.events, inputs.decisions)
    events = tuple({**e, "recorded_at": e["at"], "at": when[e["event_id"]]} for e in inputs.events
                   if as_of is None or when[e["event_id"]] <= as_of)
    decisions = tuple(d for d in inputs.decisions if as_of is None or d["evaluated_at"] <= as_of)
    drift_charts = _drift_charts(inputs, drift, profile)
    quality = _quality_charts(inputs, profile)
    marks = tuple(sorted((Mark(e["at"], e["kind"], e.get("status") or "", e.get("subject") or "",
                               _text(e.get("details") or {}), e.get("run_key"), e["recorded_at"])
                          for e in events if e["kind"] in MARK_KINDS), key=lambda m: m.at))
    times = [p[0] for c in drift_charts + quality for line in c.lines for p in line.points]
    times += [m.at for m in marks]
    return Dashboard(
        title=f"driftgate: {inputs.model_name} on {inputs.monitor.table_name}",
        model_name=inputs.model_name, generated_at=generated_at, as_of=as_of,
        start=min(times) if times else None, end=max(times) if times else None,
        drift=drift_charts, quality=quality, marks=marks, job_runs=_job_runs(decisions, events),
        lineage=_lineage(inputs, events), aliases=tuple(sorted(inputs.aliases.items())))
