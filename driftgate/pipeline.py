"""The retraining job's task graph, run locally exactly as the Databricks job runs it.

Databricks job (``resources/retraining_job.yml``)        local (this module)
-------------------------------------------------       -------------------------------------------
evaluate_drift    notebook → tasks.evaluate              tasks.evaluate, task values in
                                                          <root>/task_values/<job run>/<task>.json
is_drift_exceeded condition_task EQUAL_TO "true"         tasks.condition (reads the task value back)
train             notebook → tasks.train                 tasks.train
shadow            notebook → tasks.shadow                tasks.shadow
promote           notebook → tasks.promote               tasks.promote

Both sides call the same task functions (:mod:`driftgate.tasks`), so task values, audit
events, notifications and run keys are the same. Every trigger (the table watcher, the
webhook worker, schedule, manual) launches :func:`run_retraining_job` locally, or the
Databricks job through the Jobs API.
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from driftgate import tasks
from driftgate.tasks import EVALUATE, JobContext, JobRunResult
from driftgate.workspace.audit import record_event
from driftgate.workspace.task_values import LocalTaskValues

__all__ = ["JobRunResult", "run_retraining_job", "DemoSummary", "DemoStart", "start_demo", "run_demo",
           "EVALUATE_TASK"]

EVALUATE_TASK = EVALUATE


def run_retraining_job(ws, *, trigger: str, run_key: str | None = None, now: datetime | None = None,
                       job_run_id: str | None = None) -> JobRunResult:
    """Run evaluate → condition → train → shadow → promote once (the job's task graph).

    Args:
        ws: the open workspace.
        trigger: what started the run (``table_update``, ``webhook``, ``schedule``, ``manual``, ``demo``).
        run_key: the deterministic key of the fact that triggered it (default:
            :func:`driftgate.tasks.run_key_for_job`), recorded with every event.
        now: the as-of time of the run (the gate's staleness checks; default: the clock).
        job_run_id: id of this job run (default: a new one); names the local task-values folder.

    Returns:
        A :class:`~driftgate.tasks.JobRunResult`; the champion alias moved only if ``promoted`` is true.
    """
    from driftgate.monitoring.contract import check_inference_contract
    from driftgate.workspace.context import nest_stage_runs

    # Before anything is trained or registered: the tables have the columns the conf names.
    check_inference_contract(ws)
    nest_stage_runs()  # several stage runs: under `mlflow run` they nest under its run
    job = JobContext(trigger=trigger, run_key=run_key, job_run_id=job_run_id or uuid.uuid4().hex[:12])
    now = now or datetime.now(timezone.utc)  # recorded with the job run: the cooldown reads it back
    # Each job run gets its own task-values folder, as each Databricks run does.
    if ws.root is not None:
        ws = dataclasses.replace(ws, task_values=LocalTaskValues(ws.root, job.job_run_id, EVALUATE))
    records: dict[str, Any] = {"decision": tasks.evaluate(ws, job=job, now=now)}
    # The condition task: false when the gate did not fire, or fired inside gate.retrain_cooldown
    # (the evaluate task applies the cooldown, as in the Databricks job).
    if tasks.condition(ws):
        records["train"] = tasks.train(ws, job=job, now=now)
        records["shadow"] = tasks.shadow(ws, job=job, now=now)
        records["promotion"] = tasks.promote(ws, job=job, now=now)
    return dataclasses.replace(tasks.job_result(ws, job, now), **records)


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
    """Forget the previous demo's tables, trigger state, webhook queue and registered model (local only).

    The webhook queue goes too: it holds parked launches and the last launch time that drives
    the webhook's cooldown, which would otherwise carry over into the new demo."""
    import shutil

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if ws.root is None:
        raise RuntimeError("the demo resets local state only; run it with the local profile")
    shutil.rmtree(ws.root / "lakehouse", ignore_errors=True)
    shutil.rmtree(ws.root / "task_values", ignore_errors=True)
    for name in ("state.db", "webhook_queue.db", "optuna.db"):
        for suffix in ("", "-wal", "-shm"):  # SQLite's write-ahead log holds committed rows too
            (ws.root / f"{name}{suffix}").unlink(missing_ok=True)
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
    frame = demo.served_frame(events, demo.score(model, events), version, ws.settings.monitor.columns)
    from driftgate.promotion.bootstrap import write_baseline

    # the one baseline writer: it also stores the champion's permutation importance for weighted drift
    write_baseline(ws, frame, version, reason="demo")


@dataclass
class DemoStart:
    """The demo world up to its first job run: champion serving, monitor refreshed."""

    world: Any
    bootstrap_version: str
    served_rows: int
    served_days: int
    refresh: Any
    as_of: datetime
    """The end of the served days: the first job run's as-of time."""


def start_demo(ws, *, say=print, today: datetime | None = None) -> DemoStart:
    """Reset the demo, build the world, bootstrap v1 as champion, serve drifting days, monitor."""
    import mlflow

    from driftgate import demo, training

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
    refresh = tasks.monitor(ws, job=JobContext(trigger="demo"))
    say(f"champion served {len(served)} requests over {served_days} days; monitor refreshed")
    return DemoStart(world, first.version, len(served), served_days, refresh,
                     world.history_end + timedelta(days=served_days))


def run_demo(ws, *, say=print, today: datetime | None = None) -> DemoSummary:
    """The walking skeleton of the whole loop on the seeded demo world.

    bootstrap v1 as champion → serve days with drift → monitor → job run 1 (gate →
    retrain → shadow → promote) → serve two more days → monitor → job run 2, whose
    challenger learned the same regime as the fresh champion, is no better and is refused
    (with the base conf's two-week training window; the statistical guard decides).
    """
    import mlflow

    from driftgate import demo
    from driftgate.workspace.context import nest_stage_runs

    name = ws.settings.project.model_name
    nest_stage_runs()  # under `mlflow run -e main`, every stage run nests under the project run
    start = start_demo(ws, say=say, today=today)
    runs = [run_retraining_job(ws, trigger="demo", now=start.as_of)]

    champion = mlflow.sklearn.load_model(f"models:/{name}@champion")
    current = ws.registry.alias_version(name, "champion")
    more = demo.serve_days(ws, champion, current, first_served_day=start.served_days, days=2, world=start.world,
                           label_delay_days=1)
    tasks.monitor(ws, job=JobContext(trigger="demo"))
    runs.append(run_retraining_job(ws, trigger="demo", now=start.as_of + timedelta(days=2)))
    return DemoSummary(start.world, start.bootstrap_version, start.served_rows + len(more), start.refresh, runs,
                       ws.registry.alias_version(name, "champion"))


def _fmt_metrics(metrics: dict[str, float], keys=("test_roc_auc", "test_f1", "test_accuracy",
                                                  "test_root_mean_squared_error", "test_r2_score")) -> str:
    shown = [f"{k}={metrics[k]:.3f}" for k in keys if k in metrics]
    return ", ".join(shown) or "no metrics"
