# Databricks notebook source
# MAGIC %md
# MAGIC # shadow: challenger vs champion
# MAGIC
# MAGIC Sets the `challenger` alias on the version the train task registered, then runs
# MAGIC `promotion.shadow`. Publishes `shadow_status` and `shadow` (JSON) for the promote task.

# COMMAND ----------

from driftgate.jobtask import open_task_workspace

ws, params = open_task_workspace(dbutils, spark, task_key="shadow")  # noqa: F821 (Databricks globals)

# COMMAND ----------

from driftgate import promotion
from driftgate.jobtask import as_value

version = ws.task_values.get("train", "model_version", default="") or ""
if not version:
    ws.task_values.set("shadow_status", "SKIPPED")
    dbutils.notebook.exit("the train task registered no candidate: nothing to shadow-test")  # noqa: F821

promotion.set_challenger(ws, version)
shadow = promotion.shadow(ws, challenger_version=version)
status = str(shadow.status)
ws.task_values.set("shadow_status", status)
ws.task_values.set("shadow", as_value(shadow))
print(f"shadow {status}: champion {shadow.champion_version} vs challenger {shadow.challenger_version}: {shadow.reasons}")
