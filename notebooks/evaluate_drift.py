# Databricks notebook source
# MAGIC %md
# MAGIC # evaluate_drift: the shared drift gate
# MAGIC
# MAGIC Runs `gating.evaluate` on the monitor's metric tables and publishes the task values
# MAGIC `drift_exceeded` (boolean, read by the `is_drift_exceeded` condition task as
# MAGIC `{{tasks.evaluate_drift.values.drift_exceeded}}`) and `decision` (JSON). This task must be a
# MAGIC notebook: only notebooks can set task values. No decision logic lives here.

# COMMAND ----------

from driftgate.jobtask import open_task_workspace

ws, params = open_task_workspace(dbutils, spark, task_key="evaluate_drift")  # noqa: F821 (Databricks globals)

# COMMAND ----------

from driftgate import gating
from driftgate.commands.gating import render

decision = gating.evaluate(
    ws,
    ws.settings.gate,
    trigger=params.get("trigger", "table_update"),
    run_key=f"job-run:{params['job_run_id']}" if params.get("job_run_id") else None,
)
render(decision)
