# Databricks notebook source
# MAGIC %md
# MAGIC # promote: move aliases only if the challenger passed
# MAGIC
# MAGIC Calls `tasks.promote` on the shadow task's result: checks, then sets `champion` /
# MAGIC `previous_champion` (fails closed); publishes `promoted` and `promotion`, records the job run.
# MAGIC No logic lives here: the same function runs in the local task graph and the CLI.

# COMMAND ----------

from driftgate import tasks
from driftgate.jobtask import open_task_workspace

ws, job, now = open_task_workspace(dbutils, spark, task_key=tasks.PROMOTE)  # noqa: F821 (Databricks globals)

# COMMAND ----------

result = tasks.promote(ws, job=job, now=now)
print(f"{result.status}: champion={result.champion_version}: {result.reason}")
