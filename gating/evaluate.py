"""The gate's edges: read the metric tables, decide, record, publish.

Reads only what the rules need: the columns they name, and rows filtered by
granularity, drift type / log type, model id, slice, monitored column and (when a
staleness limit bounds it) window start, pushed into the Delta scan. Every decision
is recorded three ways: an MLflow run (tags + ``gate/decision.json``), a row in
``<audit_schema>.driftgate_decisions``, and a ``gate_decision`` audit event.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from driftgate.core.faults import fault_point
from driftgate.core.errors import GateError, TableError
from driftgate.gating.config import GateConfig, Rule
from driftgate.gating.decision import Decision
from driftgate.gating.gate import Unreadable, decide

__all__ = ["evaluate", "read_metrics", "metric_tables", "decisions_table", "read_decisions", "record_decision",
           "publish_decision", "attach_drift_chart", "output_columns"]

logger = logging.getLogger(__name__)

_GRAIN = re.compile(r"^\s*(\d+)\s*(minute|hour|day|week|month|year)s?\s*$")
_GRAIN_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400,
                  "year": 366 * 86400}

_DECISIONS_SCHEMA = pa.schema([
    ("decision_id", pa.string()),
    ("evaluated_at", pa.timestamp("us", tz="UTC")),
    ("recorded_at", pa.timestamp("us", tz="UTC")),
    ("status", pa.string()),
    ("drift_exceeded", pa.bool_()),
    ("trigger", pa.string()),
    ("run_key", pa.string()),
    ("mlflow_run_id", pa.string()),
    ("mode", pa.string()),
    ("combine", pa.string()),
    ("profile", pa.string()),
    ("rules_exceeded", pa.string()),
    ("summary", pa.string()),
    ("decision_json", pa.string()),
])


def decisions_table(ws) -> str:
    """``<project.audit_schema>.driftgate_decisions``."""
    return f"{ws.settings.project.audit_schema}.driftgate_decisions"


def metric_tables(ws, gate: GateConfig) -> dict[str, str]:
    """The drift and profile metric table names the gate reads."""
    monitor = ws.settings.monitor
    return {
        "drift": gate.drift_table or monitor.drift_metrics_table,
        "profile": gate.profile_table or monitor.profile_metrics_table,
    }


def _model_id_col(ws, gate: GateConfig) -> str:
    if gate.model_id_col:
        return gate.model_id_col
    il = ws.settings.monitor.inference_log
    return il.model_id_col if il is not None else "model_id"


def evaluate(
    ws,
    gate: GateConfig,
    *,
    now: datetime | None = None,
    trigger: str = "manual",
    publish: bool = True,
    run_key: str | None = None,
    record: bool = True,
) -> Decision:
    """Read the metric tables, decide, record the decision and publish it as task values.

    Args:
        ws: the open workspace.
        gate: the gate configuration (usually ``ws.settings.gate``).
        now: evaluation time (UTC) for staleness and open windows; default the clock.
        trigger: what asked (``manual``, ``table_update``, ``webhook``, ``schedule``...).
        publish: set the task values ``drift_exceeded`` (bool) and ``decision`` (JSON).
        run_key: the run key of the job run this decision belongs to, if any.
        record: False records nothing (no MLflow run, no decisions row, no audit event): a
            what-if or a replay of history (``driftgate gate --as-of ... --no-record``).

    Returns:
        The recorded :class:`Decision`.

    Raises:
        GateError: the decision could not be recorded (it is then not published either).
    """
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    model_id_col = _model_id_col(ws, gate)
    frames = read_metrics(ws, gate, now=now) if gate.mode == "rules" else {}
    decision = decide(frames, gate, now=now, model_id_col=model_id_col, trigger=trigger,
                      output_columns=output_columns(ws))
    if record:
        record_decision(ws, decision, run_key=run_key, subject=metric_tables(ws, gate)["drift"], gate=gate)
    if publish:
        publish_decision(ws, decision)
    return decision


def output_columns(ws) -> tuple[str, ...]:
    """The inference contract's prediction, label and probability columns (not features)."""
    log = ws.settings.monitor.inference_log
    if log is None:
        return ()
    return tuple(c for c in (log.prediction_col, log.label_col, log.prediction_proba_col) if c)


def read_metrics(ws, gate: GateConfig, *, now: datetime) -> dict[str, Any]:
    """The rows the gate's rules need, per table (``Unreadable`` when a table is missing or broken)."""
    names = metric_tables(ws, gate)
    model_id_col = _model_id_col(ws, gate)
    rules = gate.effective_rules()
    frames: dict[str, Any] = {}
    for kind, name in names.items():
        mine = [r for r in rules if r.table == kind]
        # The profile table also supplies row counts for min_rows of drift rules.
        if not mine and not (kind == "profile" and any(r.min_rows > 0 for r in rules)):
            continue
        frames[kind] = _read_one(ws, kind, name, mine, rules, model_id_col, now)
    return frames


def _read_one(ws, kind: str, name: str, mine: list[Rule], rules: list[Rule], model_id_col: str, now: datetime):
    try:
        if not ws.tables.exists(name):
            return Unreadable(f"{name} does not exist yet (has the monitor refreshed?)", status="INSUFFICIENT_DATA")
        available = _columns_of(ws, name)
        wanted = {"window", "column_name", "granularity", "slice_key", "slice_value", model_id_col}
        wanted |= {"drift_type"} if kind == "drift" else {"log_type", "count"}
        wanted |= {r.path.column for r in mine}
        columns = sorted(wanted & set(available))
        scope = mine + ([r for r in rules if r.min_rows > 0] if kind == "profile" else [])
        filters = _pushdown(kind, mine, scope, model_id_col, set(available))
        since = _horizon(scope, now)
        rows = _scan(ws, name, columns, filters, since)
        if since is not None and _lacks_some_grain(rows, scope):
            # Nothing recent: read the older windows too, so the verdict is STALE (not "no rows").
            rows = _scan(ws, name, columns, filters, None)
        elif since is not None and any(r.relative_to == "baseline" for r in mine):
            # The BASELINE profile window starts where the baseline's rows do, before any horizon.
            base = [(c, o, v) for c, o, v in filters if c != "log_type"] + [("log_type", "in", ["BASELINE"])]
            rows = pa.concat_tables([rows, _scan(ws, name, columns, base, None).cast(rows.schema)])
        return rows
    except TableError as exc:
        return Unreadable(f"{name}: {exc}", status="ERROR")


def _columns_of(ws, name: str) -> list[str]:
    return list(ws.tables.schema(name).names)


def _pushdown(kind, mine: list[Rule], scope: list[Rule], model_id_col: str, available: set[str]):
    """DNF-free conjunctive filters that every rule in ``scope`` agrees to (a superset of their rows)."""
    filters: list[tuple[str, str, Any]] = []
    grains = sorted({r.filters.granularity for r in scope})
    filters.append(("granularity", "in", grains))
    if kind == "drift":
        filters.append(("drift_type", "in", sorted({r.drift_type for r in mine})))
    else:
        baseline = {"BASELINE"} if any(r.relative_to == "baseline" for r in mine) else set()
        filters.append(("log_type", "in", sorted({r.log_type for r in mine} | {"INPUT"} | baseline)))
    models = {r.filters.model_id for r in scope} | {"*" for r in mine if r.relative_to == "baseline"}
    if None not in models and model_id_col in available:
        filters.append((model_id_col, "in", sorted(models)))
    # The profile table also answers row counts, from ":table" or (if a monitor has no such
    # row) the largest column count, so its column names are not narrowed.
    if kind == "drift" and all(r.columns != "all" for r in mine):
        filters.append(("column_name", "in", sorted({c for r in mine for c in r.columns})))
    return filters


def _horizon(scope: list[Rule], now: datetime) -> datetime | None:
    """Earliest window start any rule can use; None when a rule has no staleness bound."""
    earliest = now
    for r in scope:
        grain = _grain(r.filters.granularity)
        if r.max_staleness is None or grain is None:
            return None
        earliest = min(earliest, now - r.max_staleness - grain * (r.persistence.windows + 1))
    return earliest


def _lacks_some_grain(rows: pa.Table, scope: list[Rule]) -> bool:
    if rows.num_rows == 0:
        return True
    present = set(rows["granularity"].unique().to_pylist()) if "granularity" in rows.column_names else set()
    return any(r.filters.granularity not in present for r in scope)


def _grain(text: str) -> timedelta | None:
    m = _GRAIN.match(text)
    return timedelta(seconds=int(m[1]) * _GRAIN_SECONDS[m[2]]) if m else None


def _scan(ws, name: str, columns, filters, since: datetime | None) -> pa.Table:
    """One pushed-down read through the table store (window starts as a nested-field filter)."""
    if since is not None:
        filters = [*filters, ("window.start", ">=", since)]
    return ws.tables.read(name, columns=columns, filters=filters)


# -- recording -----------------------------------------------------------------------------------


def record_decision(ws, decision: Decision, *, run_key: str | None = None, subject: str | None = None,
                    gate: GateConfig | None = None) -> str:
    """Log the MLflow run, append the decisions row and the audit event; returns the MLflow run id.

    With ``gate`` (and ``gate.log_chart``), the run also gets the drift-over-time chart of the
    drift table the gate read, with the rules' thresholds drawn.
    """
    from driftgate.workspace import audit

    text = decision.to_json()
    run_id = _log_mlflow(ws, decision, text, run_key, gate)
    exceeded = ",".join(r.name for r in decision.reasons if r.status == "EXCEEDED")
    row = {
        "decision_id": [decision.decision_id],
        "evaluated_at": [decision.evaluated_at],
        "recorded_at": [datetime.now(timezone.utc)],
        "status": [decision.status],
        "drift_exceeded": [decision.drift_exceeded],
        "trigger": [decision.trigger],
        "run_key": [run_key],
        "mlflow_run_id": [run_id],
        "mode": [decision.mode],
        "combine": [decision.combine],
        "profile": [decision.profile],
        "rules_exceeded": [exceeded],
        "summary": [decision.summary],
        "decision_json": [text],
    }
    ws.tables.write(decisions_table(ws), pa.table(row, schema=_DECISIONS_SCHEMA), mode="append")
    audit.record_event(
        ws, "gate_decision", run_key=run_key, subject=subject,
        status=decision.status,
        details={"decision_id": decision.decision_id, "drift_exceeded": decision.drift_exceeded,
                 "trigger": decision.trigger, "summary": decision.summary, "mlflow_run_id": run_id,
                 "rules_exceeded": exceeded},
    )
    return run_id


def _log_mlflow(ws, decision: Decision, text: str, run_key: str | None, gate: GateConfig | None) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from driftgate.workspace.context import open_stage_run

    tags = {
        "driftgate.stage": "gate",
        "driftgate.decision_id": decision.decision_id,
        "driftgate.gate.status": decision.status,
        "driftgate.gate.drift_exceeded": str(decision.drift_exceeded).lower(),
        "driftgate.trigger": decision.trigger,
        "driftgate.gate.summary": decision.summary[:4000],
    }
    if run_key:
        tags["driftgate.run_key"] = run_key
    try:
        client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
        rid = open_stage_run(ws, f"gate-{decision.status.lower()}", tags)
        fault_point("gate.mlflow_run")  # crash tests: a process killed while its gate run is RUNNING
        from mlflow.entities import Metric

        stamp = int(decision.evaluated_at.timestamp() * 1000)
        metrics = [Metric("gate.drift_exceeded", float(decision.drift_exceeded), stamp, 0)]
        for r in decision.reasons:
            metrics.append(Metric(f"gate.{r.name}.violating_windows", float(r.violating_windows), stamp, 0))
            if r.latest is not None and r.latest.score is not None:
                metrics.append(Metric(f"gate.{r.name}.latest_score", float(r.latest.score), stamp, 0))
        client.log_batch(rid, metrics=metrics)
        client.log_text(rid, text, "gate/decision.json")
        if gate is not None:
            attach_drift_chart(ws, rid, gate)
        client.set_terminated(rid, "FINISHED")
        return rid
    except MlflowException as exc:
        raise GateError(f"gate decision {decision.decision_id}: could not record the MLflow run: {exc}") from exc


def attach_drift_chart(ws, run_id: str, gate: GateConfig | None = None) -> str | None:
    """Log the drift-over-time chart of the table ``gate`` reads, with its rules' thresholds,
    to the MLflow run ``run_id``; the gate and the shadow step both call it.

    Nothing is logged when ``gate.log_chart`` is off. The chart is evidence for a reader, not
    part of any decision: a failure to draw it is logged as a warning and returns None, so the
    caller's record is written all the same.
    """
    from driftgate.monitoring.report import log_drift_chart, rule_panels

    gate = gate or ws.settings.gate
    if not gate.log_chart:
        return None
    try:
        tables = metric_tables(ws, gate)
        # The rules' own metrics and thresholds, so the chart shows what the decision read.
        panels = rule_panels(gate.effective_rules(), exclude=output_columns(ws)) if gate.mode == "rules" else []
        return log_drift_chart(ws, ws.settings.monitor, run_id=run_id, table=tables["drift"],
                               panels=panels, profile_table=tables["profile"])
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("MLflow run %s: drift chart not logged: %s", run_id, exc)
        return None


def publish_decision(ws, decision: Decision) -> None:
    """Set the task values the job's condition task reads: ``drift_exceeded`` and ``decision``."""
    ws.task_values.set("drift_exceeded", bool(decision.drift_exceeded))
    ws.task_values.set("decision", json.loads(decision.to_json()))


def read_decisions(ws, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent recorded decisions first (``decision`` decoded)."""
    name = decisions_table(ws)
    if not ws.tables.exists(name):
        return []
    rows = ws.tables.read(name).to_pylist()
    rows.sort(key=lambda r: r["recorded_at"], reverse=True)
    out = []
    for r in rows[:limit]:
        r["decision"] = json.loads(r.pop("decision_json") or "{}")
        out.append(r)
    return out
