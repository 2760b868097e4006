# Databricks notebook source
# MAGIC %md
# MAGIC # evaluate_drift: the shared drift gate
# MAGIC
# MAGIC Calls `tasks.evaluate`: an interrupted promotion is finished first (`promotion.recover`), the
# MAGIC gate decides and records its decision, an EXCEEDED decision is notified, and the task values `drift_exceeded` (read by the `is_drift_exceeded` condition task as
# MAGIC `{{tasks.evaluate_drift.values.drift_exceeded}}`), `decision`, `run_key`, `trigger` and `champion`
# MAGIC are published; inside `gate.retrain_cooldown` of the last retrain `drift_exceeded` is published
# MAGIC false and `cooldown` says why. When the branch is skipped this is the run's last task and
# MAGIC records the job run.
# MAGIC This task must be a notebook: only notebooks can set task values.
# MAGIC No logic lives here: the same function runs in the local task graph and the CLI.

# COMMAND ----------

from driftgate import tasks
from driftgate.jobtask import open_task_workspace

ws, job, now = open_task_workspace(dbutils, spark, task_key=tasks.EVALUATE)  # noqa: F821 (Databricks globals)

# COMMAND ----------

decision = tasks.evaluate(ws, job=job, now=now)
print(f"{decision.status} drift_exceeded={str(decision.drift_exceeded).lower()}: {decision.summary}")
