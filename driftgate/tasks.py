"""The job's tasks, one function each: the only glue between the stages.

Every caller runs these and holds no logic of its own: the Databricks notebooks
(``notebooks/*.py``), the CLI commands and MLproject entry points (``driftgate/commands``),
and the local task graph (:func:`driftgate.pipeline.run_retraining_job`). So a task reads its
inputs, publishes task values, audit events, notifications and run keys the same way
wherever it runs.

=============  =========================================  ============================================
task           reads (task values of upstream tasks)       publishes (task values of this task)
=============  =========================================  ============================================
monitor        -                                           ``monitor`` (mode, version, windows, rows)
evaluate_drift -                                           ``drift_exceeded``, ``decision``, ``run_key``,
                                                           ``trigger``, ``champion``, ``cooldown``
train          evaluate_drift: ``decision``, ``run_key``   ``registered``, ``model_version``,
                                                           ``train_run_id``, ``refused_reason``
shadow         train: ``registered``, ``model_version``    ``shadow_status``, ``shadow``
promote        shadow: ``shadow``                          ``promoted``, ``promotion``
=============  =========================================  ============================================

The evaluate task is the job's first: it finishes an interrupted promotion
(:func:`driftgate.promotion.recover`) and applies ``gate.retrain_cooldown`` (an EXCEEDED gate
inside the cooldown publishes ``drift_exceeded`` false and ``cooldown``), so the Databricks
condition task and the local graph skip the same runs.

A value an upstream task did not set falls back to a safe default: no decision id, the
run key derived again, the ``challenger`` alias, no shadow result (so nothing is promoted).
Outside a job (the CLI, ``mlflow run``) the upstream task values are those the previous
command of the same kind published (the local ``adhoc`` run), so ``driftgate shadow`` then
``driftgate promote`` chain exactly as the job's tasks do.

The run key (the fact a run answers) is one definition, :func:`run_key_for_job`: the given
key (a trigger's or a job parameter), else the Delta versions of the tables the job's
table-update trigger watches (``delta:{table}@v{version}``, the key the local watcher uses),
else ``job-run:{id}``. The last task of a job run (``evaluate_drift`` when the gate did not
fire, otherwise ``promote``) records the ``job_run`` audit event.

Every task takes ``now``, the as-of time of the run: the gate and the monitor evaluate at it,
and it is recorded with the job run, so history can be replayed.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    from driftgate.gating.decision import Decision
    from driftgate.monitoring.refresh import RefreshResult
    from driftgate.promotion.results import PromotionResult, ShadowResult
    from driftgate.training.trainer import TrainResult
    from driftgate.training.tuner import TuneResult

__all__ = ["MONITOR", "EVALUATE", "TRAIN", "SHADOW", "PROMOTE", "JOB_TASKS", "JobContext", "JobRunResult",
           "monitor", "evaluate", "condition", "train", "shadow", "promote", "tune", "run_key_for_job", "job_result",
           "upstream", "as_value", "parse_time", "last_retrain"]

log = logging.getLogger("driftgate.tasks")

MONITOR, EVALUATE, TRAIN, SHADOW, PROMOTE = "monitor", "evaluate_drift", "train", "shadow", "promote"
JOB_TASKS = (EVALUATE, TRAIN, SHADOW, PROMOTE)
"""The retraining job's tasks in order (the condition task sits between evaluate and train)."""
SKIPPED = "SKIPPED"

Branch = Literal["retrain", "skip"]


@dataclass(frozen=True)
class JobContext:
    """What every task of one run knows beside the workspace: why it runs and which run it is."""

    trigger: str = "manual"
    """What started the run (``table_update``, ``webhook``, ``schedule``, ``manual``, ``demo``)."""
    run_key: str | None = None
    """The fact the run answers, when the caller knows it (a trigger's key, a job parameter)."""
    job_run_id: str | None = None
    """Set inside a job run (``{{job.run_id}}`` or the local graph's id); outside one, no
    ``job_run`` event is recorded."""


@dataclass
class JobRunResult:
    """What one run of the retraining job did (typed fields, built from the task values)."""

    job_run_id: str
    trigger: str
    run_key: str | None
    branch: Branch
    """``retrain`` when the condition task's outcome was true, else ``skip``."""
    decision_status: str | None
    challenger_version: str | None = None
    shadow_status: str | None = None
    promotion_status: str | None = None
    promoted: bool = False
    champion_before: str | None = None
    champion_after: str | None = None
    as_of: str | None = None
    notes: list[str] = field(default_factory=list)
    # The stage records, when the tasks ran in this process (the local graph).
    decision: "Decision | None" = None
    train: "TrainResult | None" = None
    shadow: "ShadowResult | None" = None
    promotion: "PromotionResult | None" = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready summary (the ``job_run`` audit event's details)."""
        records = {"decision", "train", "shadow", "promotion"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in records}


# --------------------------------------------------------------------------- plumbing


class _TaskValues:
    """One task's task values: sets go to the store (locally one file per task key; ``dbutils``
    knows the task it runs in) and are remembered, so the task reads its own values back from
    memory; reading the running task's values through ``dbutils`` is not something to rely on."""

    def __init__(self, store, task_key: str):
        for_task = getattr(store, "for_task", None)
        self.store = for_task(task_key) if callable(for_task) else store
        self.task_key = task_key
        self.own: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.store.set(key, value)
        self.own[key] = json.loads(json.dumps(value, default=str))  # as a reader gets it back

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        if task_key == self.task_key and key in self.own:
            return self.own[key]
        return self.store.get(task_key, key, default)


def _scoped(ws, task_key: str):
    """The workspace whose task values are this task's."""
    return dataclasses.replace(ws, task_values=_TaskValues(ws.task_values, task_key))


def upstream(ws, task_key: str, key: str, default: Any) -> Any:
    """An upstream task's value, or ``default`` when it did not set one.

    ``default`` must not be None: ``dbutils.jobs.taskValues.get`` treats None as "no default"
    and raises ValueError for a missing key, which means "not set" here too.
    """
    try:
        value = ws.task_values.get(task_key, key, default)
    except ValueError:
        return default
    return default if value is None else value


def parse_time(text: str | None, what: str) -> datetime | None:
    """An as-of time given as text (ISO 8601; UTC when no zone is given); None when empty."""
    from datetime import timezone

    from driftgate.core.errors import ConfigError

    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what}: must be an ISO 8601 time like 2026-06-22T06:00:00Z, got {text!r}",
                          key=what) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _status(record) -> str | None:
    return None if record is None else str(record.status)  # statuses are StrEnums: str() is the value


def as_value(record: Any) -> Any:
    """A JSON-ready form of a stage record, for a task value."""
    for method in ("to_dict", "as_dict"):
        if callable(getattr(record, method, None)):
            return json.loads(json.dumps(getattr(record, method)(), default=str))
    if hasattr(record, "model_dump"):
        return record.model_dump(mode="json")
    if dataclasses.is_dataclass(record):
        return json.loads(json.dumps(dataclasses.asdict(record), default=str))
    return record


def _champion(ws) -> str | None:
    return ws.registry.alias_version(ws.settings.project.model_name, "champion")


def run_key_for_job(ws, job: JobContext) -> str | None:
    """The run key: the given one, else the watched tables' Delta versions, else the job run's id."""
    if job.run_key:
        return job.run_key
    from driftgate.triggers.table_update import run_key_for

    watched = ws.settings.triggers.table_update.table_names or [ws.settings.monitor.drift_metrics_table]
    try:
        if all(ws.tables.exists(t) for t in watched):
            return run_key_for({t: ws.tables.version(t) for t in watched})
    except Exception as exc:  # noqa: BLE001 - a key is a label: an unreadable table falls back to the run id
        log.warning("run key: could not read the versions of %s: %s", watched, exc)
    return f"job-run:{job.job_run_id}" if job.job_run_id else None


def _job_run_key(ws, job: JobContext) -> str | None:
    """Downstream tasks use the key the evaluate task published (derived again if it did not)."""
    return job.run_key or upstream(ws, EVALUATE, "run_key", "") or run_key_for_job(ws, job)


def _log_task_run(ws, run_name: str, tags: dict[str, str], metrics: dict[str, float], record: dict,
                  artifact: str, run_id: str | None = None) -> str:
    """A small MLflow run for a task whose stage logs none (monitor, promote); under
    ``mlflow run`` it is the project's own run (or ``run_id``, when given). Always ends
    FINISHED: it records an outcome."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from driftgate.workspace.context import open_stage_run, reopen_run

    ws.activate_mlflow()
    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    run_id = reopen_run(ws, run_id, run_name, tags) if run_id else open_stage_run(ws, run_name, tags)
    try:
        client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()])
        client.log_dict(run_id, record, artifact)
    finally:
        client.set_terminated(run_id, "FINISHED")
    return run_id


# --------------------------------------------------------------------------- tasks


def monitor(ws, *, job: JobContext | None = None, now: datetime | None = None,
            progress: Callable[[int, int], None] | None = None) -> "RefreshResult":
    """Refresh the profile and drift metric tables; log the refresh as an MLflow run."""
    from driftgate.monitoring.refresh import refresh

    ws = _scoped(ws, MONITOR)
    cfg = ws.settings.monitor
    result = refresh(ws, cfg, progress=progress, now=now)
    summary = {"mode": result.mode, "table": cfg.table_name, "source_version": result.source_version,
               "windows": len(result.windows), "profile_rows": result.profile_rows,
               "drift_rows": result.drift_rows}
    ws.task_values.set("monitor", summary)
    _log_task_run(ws, f"monitor-{result.mode}",
                  {"driftgate.stage": "monitor", "driftgate.monitor.mode": result.mode,
                   "driftgate.monitor.table": cfg.table_name, "driftgate.trigger": (job or JobContext()).trigger},
                  {"source_version": result.source_version, "windows": len(result.windows),
                   "profile_rows": result.profile_rows, "drift_rows": result.drift_rows,
                   "seconds": result.seconds},
                  {**summary, "windows": [[g, str(w)] for g, w in result.windows], "notes": list(result.notes)},
                  "monitor/refresh.json")
    return result


def evaluate(ws, *, job: JobContext | None = None, now: datetime | None = None) -> "Decision":
    """The job's first task: finish an interrupted promotion (:func:`driftgate.promotion.recover`),
    then the shared gate: decide, record (MLflow run, decisions row, audit event), notify an
    EXCEEDED decision, publish; inside ``gate.retrain_cooldown`` of the last retrain an EXCEEDED
    decision is published as ``drift_exceeded`` false (``cooldown`` says why); in a job run
    whose branch is skipped, record the job run."""
    from driftgate import gating, promotion

    job = job or JobContext()
    ws = _scoped(ws, EVALUATE)
    # The job's first task: a promotion a dead process left half-done is finished before the
    # champion is read (locally under the promotion lock; on Databricks only intents older than
    # promotion.recovery's grace, as one may belong to a `driftgate promote` still running).
    promotion.recover(ws, min_age_seconds=promotion.recovery_grace_seconds(ws))
    run_key = run_key_for_job(ws, job)
    champion = _champion(ws)
    decision = gating.evaluate(ws, ws.settings.gate, now=now, trigger=job.trigger, run_key=run_key)
    ws.task_values.set("run_key", run_key or "")
    ws.task_values.set("trigger", job.trigger)
    ws.task_values.set("champion", champion or "")
    if decision.drift_exceeded:
        _apply_cooldown(ws, run_key, now)
    # Notifications never fail the task: send() records its own failures in the audit trail.
    promotion.notify_gate_decision(ws, decision)
    if job.job_run_id and not condition(ws):
        _record_job_run(ws, job, now)
    return decision


def last_retrain(ws) -> datetime | None:
    """As of when the last job run took the retraining branch (the audit trail's ``job_run``)."""
    from driftgate.workspace.audit import read_events

    for event in read_events(ws, ["job_run"], limit=200):
        details = event.get("details") or {}
        if details.get("branch") == "retrain":
            stamp = details.get("as_of")
            return datetime.fromisoformat(stamp) if stamp else event["at"]
    return None


def _apply_cooldown(ws, run_key: str | None, now: datetime | None) -> None:
    """Inside ``gate.retrain_cooldown`` of the last retrain, the gate's EXCEEDED does not retrain:
    ``drift_exceeded`` (what the condition task reads) is published again as false, ``cooldown``
    says why, and a ``job_cooldown`` event is recorded. The ``decision`` value keeps the gate's status."""
    from datetime import timezone

    from driftgate.gating.gate import cooldown_left
    from driftgate.workspace.audit import record_event

    when = now or datetime.now(timezone.utc)
    left = cooldown_left(last_retrain(ws), when, ws.settings.gate.retrain_cooldown)
    if left is None:
        return
    note = (f"gate said EXCEEDED, but the last retrain was less than gate.retrain_cooldown ago "
            f"({left.total_seconds() / 3600:.1f} h left): retraining branch skipped")
    ws.task_values.set("drift_exceeded", False)
    ws.task_values.set("cooldown", {"left_seconds": left.total_seconds(), "note": note})
    record_event(ws, "job_cooldown", run_key=run_key, subject=ws.settings.project.model_name, status="skipped",
                 details={"left_seconds": left.total_seconds(), "as_of": when.isoformat()})


def condition(ws) -> bool:
    """The condition task: ``{{tasks.evaluate_drift.values.drift_exceeded}} == "true"``.

    Databricks serialises a boolean task value as ``"true"``/``"false"`` and ``EQUAL_TO``
    compares strings; mirror that rather than Python truthiness.
    """
    return str(upstream(ws, EVALUATE, "drift_exceeded", False)).lower() == "true"


def train(ws, *, job: JobContext | None = None, now: datetime | None = None, decision_id: str | None = None,
          params: dict | None = None, use_best_params: bool = False) -> "TrainResult":
    """Train and (above the floor) register a candidate, which becomes the ``challenger``.

    The run's reason (tags): the trigger, the gate decision (``decision_id``, else the evaluate
    task's), the run key and the job run id.
    """
    from driftgate import promotion, training
    from driftgate.monitoring.contract import check_inference_contract

    job = job or JobContext()
    ws = _scoped(ws, TRAIN)
    # The Databricks job starts here too: nothing is trained or registered on tables that lack
    # the columns the inference-table contract names (shadow would fail after registering). A
    # train outside a job (the first model, `mlflow run -e train`) may come before any traffic.
    check_inference_contract(ws, need_inference_table=job.job_run_id is not None)
    decision = upstream(ws, EVALUATE, "decision", {})
    reason = {"trigger": job.trigger, "decision_id": decision_id or str(decision.get("decision_id") or ""),
              "run_key": _job_run_key(ws, job) or "", "job_run_id": job.job_run_id or ""}
    result = training.train(ws, reason={k: v for k, v in reason.items() if v}, params=params,
                            use_best_params=use_best_params)
    ws.task_values.set("registered", bool(result.registered))
    ws.task_values.set("model_version", result.version or "")
    ws.task_values.set("train_run_id", result.run_id)
    ws.task_values.set("refused_reason", result.refused_reason or "")
    if result.registered:
        promotion.set_challenger(ws, result.version)
    return result


def shadow(ws, *, job: JobContext | None = None, now: datetime | None = None,
           version: str | None = None) -> "ShadowResult | None":
    """Shadow-test a challenger against the champion: ``version``, else the one the train task
    registered, else the ``challenger`` alias. None when the train task registered nothing."""
    from driftgate import promotion

    ws = _scoped(ws, SHADOW)
    version = str(version) if version else upstream(ws, TRAIN, "model_version", "")
    if not version and upstream(ws, TRAIN, "registered", True) is False:
        ws.task_values.set("shadow_status", SKIPPED)
        ws.task_values.set("shadow", {})
        return None
    name = ws.settings.project.model_name
    if version and ws.registry.alias_version(name, "challenger") != version:
        promotion.set_challenger(ws, version)
    result = promotion.shadow(ws, challenger_version=version or None, as_of=now)
    ws.task_values.set("shadow_status", _status(result))
    ws.task_values.set("shadow", as_value(result))
    return result


def promote(ws, *, job: JobContext | None = None, now: datetime | None = None) -> "PromotionResult":
    """Promote the challenger the shadow task evaluated, only if it passed (check, then set).

    Without a shadow result nothing moves (status ``skipped``). The outcome, promoted or not,
    is logged as a FINISHED MLflow run; a refusal is an outcome, not a failure. In a job run
    this is the last task: it records the job run.
    """
    from driftgate import promotion
    from driftgate.promotion.results import PromotionResult, ShadowResult

    job = job or JobContext()
    ws = _scoped(ws, PROMOTE)
    value = upstream(ws, SHADOW, "shadow", {})
    if value:
        result = promotion.promote(ws, ShadowResult.from_dict(value))
    else:
        name = ws.settings.project.model_name
        result = PromotionResult(False, _champion(ws), "no shadow result: nothing to promote", "skipped",
                                 model_name=name)
    record = result.as_dict()
    ws.task_values.set("promoted", bool(result.promoted))
    ws.task_values.set("promotion", record)
    version = result.challenger_version or "none"
    _log_task_run(ws, f"promote v{version}: {result.status}",
                  {"driftgate.stage": "promote", "driftgate.promotion.status": result.status,
                   "driftgate.promotion.reason": result.reason[:4000], "driftgate.model": str(result.model_name),
                   "driftgate.challenger_version": version, "driftgate.champion_version": str(result.champion_version),
                   "driftgate.trigger": job.trigger, **({"driftgate.run_key": k} if (k := _job_run_key(ws, job))
                                                        else {})},
                  {"promoted": float(result.promoted)}, record, "promotion/result.json")
    if job.job_run_id:
        _record_job_run(ws, job, now)
    return result


def tune(ws, *, now: datetime | None = None, n_trials: int | None = None, timeout: float | None = None,
         progress: Callable | None = None) -> "TuneResult":
    """Tune hyperparameters (no job task: the ``tune`` command and entry point).

    A study's trials nest under one parent run kept across calls. When this call resumed a
    study whose parent is another run, the ``mlflow run`` run that launched it records what
    this call did (trials run, best value and parameters, the study's parent run), so it is
    never left empty.
    """
    from driftgate import training

    project = os.environ.get("MLFLOW_RUN_ID")
    result = training.tune(ws, n_trials=n_trials, timeout=timeout, progress=progress)
    if project and project != result.parent_run_id:
        _log_task_run(ws, f"tune-{result.study_name}: +{result.n_new} trials",
                      {"driftgate.stage": "tune", "driftgate.study": result.study_name,
                       "driftgate.study_parent_run_id": result.parent_run_id,
                       **{f"best.{k}": str(v) for k, v in result.best_params.items()}},
                      {"n_new": result.n_new, "n_finished": result.n_finished,
                       **({f"best_{result.metric}": result.best_value} if result.best_value is not None else {})},
                      as_value(result), "tune/result.json", run_id=project)
    return result


# --------------------------------------------------------------------------- the job run


def job_result(ws, job: JobContext, now: datetime | None = None) -> JobRunResult:
    """The job run's summary, from the task values its tasks published."""
    decision = upstream(ws, EVALUATE, "decision", {})
    branch: Branch = "retrain" if condition(ws) else "skip"
    result = JobRunResult(
        job_run_id=job.job_run_id or "", trigger=upstream(ws, EVALUATE, "trigger", "") or job.trigger,
        run_key=_job_run_key(ws, job), branch=branch, decision_status=decision.get("status"),
        champion_before=upstream(ws, EVALUATE, "champion", "") or None, champion_after=_champion(ws),
        as_of=now.isoformat() if now else None)
    if branch == "skip":
        cooldown = upstream(ws, EVALUATE, "cooldown", {})
        result.notes.append(cooldown.get("note") if isinstance(cooldown, dict) and cooldown.get("note")
                            else f"gate said {result.decision_status}: retraining branch skipped")
        return result
    result.challenger_version = upstream(ws, TRAIN, "model_version", "") or None
    if upstream(ws, TRAIN, "registered", False) is False:
        result.notes.append(f"candidate not registered: {upstream(ws, TRAIN, 'refused_reason', '')}")
    shadow_status = upstream(ws, SHADOW, "shadow_status", "")
    result.shadow_status = shadow_status if shadow_status and shadow_status != SKIPPED else None
    promotion = upstream(ws, PROMOTE, "promotion", {})
    result.promotion_status = promotion.get("status")
    result.promoted = bool(upstream(ws, PROMOTE, "promoted", False))
    if result.shadow_status and promotion.get("reason"):
        result.notes.append(str(promotion["reason"]))
    return result


def _record_job_run(ws, job: JobContext, now: datetime | None) -> None:
    from driftgate.workspace.audit import record_event

    result = job_result(ws, job, now)
    record_event(ws, "job_run", run_key=result.run_key, subject=ws.settings.project.model_name,
                 status=result.branch, details=result.as_dict())
