# Databricks notebook source
# MAGIC %md
# MAGIC # shadow: challenger vs champion
# MAGIC
# MAGIC Calls `tasks.shadow` on the version the train task registered; publishes `shadow_status` and
# MAGIC `shadow` (JSON) for the promote task (`SKIPPED` when no candidate was registered).
# MAGIC No logic lives here: the same function runs in the local task graph and the CLI.

# COMMAND ----------

from driftgate import tasks
from driftgate.jobtask import open_task_workspace

ws, job, now = open_task_workspace(dbutils, spark, task_key=tasks.SHADOW)  # noqa: F821 (Databricks globals)

# COMMAND ----------

result = tasks.shadow(ws, job=job, now=now)
print("nothing to shadow-test" if result is None else
      f"shadow {result.status}: champion {result.champion_version} vs challenger {result.challenger_version}")
