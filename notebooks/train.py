# Databricks notebook source
# MAGIC %md
# MAGIC # train: retrain the candidate (runs only when the gate said EXCEEDED)
# MAGIC
# MAGIC Calls `tasks.train`: trains, registers the candidate above the quality floor and makes it the
# MAGIC `challenger`; publishes `registered`, `model_version`, `train_run_id` and `refused_reason`.
# MAGIC No logic lives here: the same function runs in the local task graph and the CLI.

# COMMAND ----------

from driftgate import tasks
from driftgate.jobtask import open_task_workspace

ws, job, now = open_task_workspace(dbutils, spark, task_key=tasks.TRAIN)  # noqa: F821 (Databricks globals)

# COMMAND ----------

result = tasks.train(ws, job=job, now=now)
print(f"run {result.run_id}: registered={result.registered} version={result.version} "
      f"refused={result.refused_reason}")
