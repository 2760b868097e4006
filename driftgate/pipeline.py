"""The retraining job's task graph, run locally exactly as the Databricks job runs it.

Databricks job (``resources/retraining_job.yml``)        local (this module)
-------------------------------------------------       -------------------------------------------
evaluate_drift   notebook: gating.evaluate, sets task    gating.evaluate, task values to
                 values drift_exceeded / decision         <root>/task_values/<job run>/evaluate_drift.json
is_drift_exceeded condition_task EQUAL_TO "true"         _condition(): reads the task value back
train            training.train                           training.train
shadow           promotion.set_challenger + shadow        promotion.set_challenger + promotion.shadow
promote          promotion.promote                        promotion.promote

Every trigger (the table watcher, the webhook worker, schedule, manual) launches
:func:`run_retraining_job` locally, or the Databricks job through the Jobs API.
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from driftgate.workspace.audit import record_event
from driftgate.workspace.task_values import LocalTaskValues

__all__ = ["JobRunResult", "run_retraining_job", "DemoSummary", "run_demo", "EVALUATE_TASK"]

EVALUATE_TASK = "evaluate_drift"


@dataclass
class JobRunResult:
    """What one run of the retraining job did, task by task."""

    job_run_id: str
    trigger: str
    run_key: str | None
    decision: Any
    branch: str
    """``retrain`` when the condition task's outcome was true, else ``skip``."""
    train: Any = None
    shadow: Any = None
    promotion: Any = None
    champion_before: str | None = None
    champion_after: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def promoted(self) -> bool:
        return bool(self.promotion is not None and getattr(self.promotion, "promoted", False))

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_run_id": self.job_run_id,
            "trigger": self.trigger,
            "run_key": self.run_key,
            "decision_status": _status(self.decision),
            "branch": self.branch,
            "challenger_version": getattr(self.train, "version", None),
            "shadow_status": _status(self.shadow),
            "promoted": self.promoted,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "notes": self.notes,
        }


def _status(record) -> str | None:
    status = getattr(record, "status", None)
    return getattr(status, "value", status)


def _condition(values, task_key: str = EVALUATE_TASK) -> bool:
    """The condition task: ``{{tasks.evaluate_drift.values.drift_exceeded}} == "true"``.

    Databricks serialises a boolean task value as ``"true"``/``"false"`` and
    ``EQUAL_TO`` compares strings; mirror that rather than Python truthiness.
    """
    value = values.get(task_key, "drift_exceeded", default=False)
    return str(value).lower() == "true"


def run_retraining_job(ws, *, trigger: str, run_key: str | None = None, now: datetime | None = None,
                       job_run_id: str | None = None) -> JobRunResult:
    """Run evaluate → condition → train → challenger → shadow → promote once.

    Args:
        ws: the open workspace.
        trigger: what started the run (``table_update``, ``webhook``, ``schedule``, ``manual``, ``demo``).
        run_key: the deterministic key of the fact that triggered it, recorded with every event.
        now: the evaluation time for the gate's staleness checks (default: the clock).
        job_run_id: id of this job run (default: a new one); names the local task-values folder.

    Returns:
        A :class:`JobRunResult`; the champion alias moved only if ``promoted`` is true.
    """
    from driftgate import gating
    from driftgate import promotion
    from driftgate import training

    job_run_id = job_run_id or uuid.uuid4().hex[:12]
    registry, model = ws.registry, ws.settings.project.model_name
    champion_before = registry.alias_version(model, "champion")
    if ws.root is not None:
        # Each job run gets its own task-values folder, as each Databricks run does.
        ws = dataclasses.replace(ws, task_values=LocalTaskValues(ws.root, job_run_id, EVALUATE_TASK))

    decision = gating.evaluate(ws, ws.settings.gate, now=now, trigger=trigger, run_key=run_key)
    # Notifications never fail the job: send() records its own failures in the audit trail.
    promotion.notify_gate_decision(ws, decision)
    result = JobRunResult(job_run_id, trigger, run_key, decision, "skip", champion_before=champion_before)
    if not _condition(ws.task_values):
        result.notes.append(f"gate said {_status(decision)}: retraining branch skipped")
    else:
        result.branch = "retrain"
        reason = {"trigger": trigger, "decision_id": str(getattr(decision, "decision_id", "")),
                  "run_key": run_key or "", "job_run_id": job_run_id}
        result.train = training.train(ws, reason=reason)
        if not result.train.registered:
            result.notes.append(f"candidate not registered: {result.train.refused_reason}")
        else:
            promotion.set_challenger(ws, result.train.version)
            result.shadow = promotion.shadow(ws, challenger_version=result.train.version)
            result.promotion = promotion.promote(ws, result.shadow)
            result.notes.append(str(getattr(result.promotion, "reason", "")))
    result.champion_after = registry.alias_version(model, "champion")
    record_event(ws, "job_run", run_key=run_key, subject=model, status=result.branch, details=result.as_dict())
    return result


# --------------------------------------------------------------------------- demo


@dataclass
class DemoSummary:
    world: Any
    bootstrap_version: str
    served_rows: int
    refresh: Any
    runs: list[JobRunResult]
    champion: str | None


def reset_demo(ws) -> None:
    """Forget the previous demo's tables, trigger state and registered model (local only)."""
    import shutil

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if ws.root is None:
        raise RuntimeError("the demo resets local state only; run it with the local profile")
    shutil.rmtree(ws.root / "lakehouse", ignore_errors=True)
    shutil.rmtree(ws.root / "task_values", ignore_errors=True)
    for name in ("state.db", "webhook.db", "optuna.db"):
        (ws.root / name).unlink(missing_ok=True)
    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    try:
        client.delete_registered_model(ws.settings.project.model_name)
    except MlflowException:
        pass


def _bootstrap_champion(ws, version: str) -> None:
    """The very first model has nothing to be compared with: it becomes champion directly."""
    name = ws.settings.project.model_name
    ws.registry.set_alias(name, "champion", version)
    ws.registry.set_tag(name, version, "driftgate.promotion", "bootstrap: first model, no champion to compare")
    record_event(ws, "promotion", subject=f"{name}@{version}", status="bootstrap",
                 details={"version": version, "reason": "first model of the demo world"})


def _write_baseline(ws, model, world, version: str) -> None:
    """The champion's scored validation rows: the monitor's BASELINE comparison."""
    from driftgate import demo

    cfg = ws.settings.demo
    days = 7
    events = demo.simulate_events(cfg, first_day=cfg.history_days - days, days=days, drift_onset=None,
                                  start=world.start, seed_offset=2)
    frame = demo.served_frame(events, demo.score(model, events), version)
    import pyarrow as pa

    ws.tables.write(ws.settings.monitor.baseline_table_name or demo.TABLES.inference_baseline,
                    pa.Table.from_pandas(frame, preserve_index=False), mode="overwrite")


def run_demo(ws, *, say=print, today: datetime | None = None) -> DemoSummary:
    """The walking skeleton of the whole loop on the seeded demo world.

    bootstrap v1 as champion → serve days with drift → monitor → job run 1 (gate →
    retrain → shadow → promote) → serve two more days → monitor → job run 2, whose
    challenger learned the same regime as the fresh champion, is no better and is refused
    (with the base conf's two-week training window; the statistical guard decides).
    """
    import mlflow

    from driftgate import monitoring
    from driftgate import training
    from driftgate import demo

    cfg = ws.settings.demo
    name = ws.settings.project.model_name
    reset_demo(ws)
    ws.activate_mlflow()
    world = demo.build_world(ws, today=today)
    say(f"demo world: {world.rows_history} labelled requests over {cfg.history_days} days "
        f"from {world.start:%Y-%m-%d}; drift starts {world.drift_onset:%Y-%m-%d}")

    first = training.train(ws, reason={"trigger": "demo-bootstrap"})
    if not first.registered:
        raise RuntimeError(f"bootstrap model was not registered: {first.refused_reason}")
    _bootstrap_champion(ws, first.version)
    champion = mlflow.sklearn.load_model(f"models:/{name}@champion")
    _write_baseline(ws, champion, world, first.version)
    say(f"v{first.version} trained ({_fmt_metrics(first.metrics)}) and made champion")

    served_days = cfg.served_days - 2
    served = demo.serve_days(ws, champion, first.version, first_served_day=0, days=served_days, world=world,
                             label_delay_days=1)
    refresh = monitoring.refresh(ws, ws.settings.monitor)
    say(f"champion served {len(served)} requests over {served_days} days; monitor refreshed")

    end_first = world.history_end + timedelta(days=served_days)
    runs = [run_retraining_job(ws, trigger="demo", run_key=_table_key(ws), now=end_first)]

    champion = mlflow.sklearn.load_model(f"models:/{name}@champion")
    current = ws.registry.alias_version(name, "champion")
    more = demo.serve_days(ws, champion, current, first_served_day=served_days, days=2, world=world,
                           label_delay_days=1)
    monitoring.refresh(ws, ws.settings.monitor)
    runs.append(run_retraining_job(ws, trigger="demo", run_key=_table_key(ws),
                                   now=end_first + timedelta(days=2)))
    return DemoSummary(world, first.version, len(served) + len(more), refresh, runs,
                       ws.registry.alias_version(name, "champion"))


def _table_key(ws) -> str:
    table = ws.settings.monitor.drift_metrics_table
    return f"delta:{table}@v{ws.tables.version(table)}"


def _fmt_metrics(metrics: dict[str, float], keys=("test_roc_auc", "test_f1", "test_accuracy",
                                                  "test_root_mean_squared_error", "test_r2_score")) -> str:
    shown = [f"{k}={metrics[k]:.3f}" for k in keys if k in metrics]
    return ", ".join(shown) or "no metrics"
