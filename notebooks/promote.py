# Databricks notebook source
# MAGIC %md
# MAGIC # promote: move aliases only if the challenger passed
# MAGIC
# MAGIC Rebuilds the shadow result the shadow task published and calls `promotion.promote`,
# MAGIC which checks, then sets `champion` / `previous_champion` (fails closed).

# COMMAND ----------

from driftgate.jobtask import open_task_workspace

ws, params = open_task_workspace(dbutils, spark, task_key="promote")  # noqa: F821 (Databricks globals)

# COMMAND ----------

from driftgate import promotion

value = ws.task_values.get("shadow", "shadow", default=None)
if not value:
    dbutils.notebook.exit("no shadow result: nothing to promote")  # noqa: F821

result = promotion.promote(ws, promotion.ShadowResult.from_dict(value))
ws.task_values.set("promoted", bool(result.promoted))
print(f"promoted={result.promoted} champion={result.champion_version}: {result.reason}")
