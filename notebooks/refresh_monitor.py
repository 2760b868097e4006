# Databricks notebook source
# MAGIC %md
# MAGIC # refresh_monitor: bring the drift metrics table up to date
# MAGIC
# MAGIC The monitor job's one task, on the job's schedule. The job parameter `monitor_engine`
# MAGIC (bundle variable) chooses who computes the metric tables: `lakehouse` refreshes the
# MAGIC bundle's native `quality_monitors` resource and waits for it; `driftgate` runs driftgate's
# MAGIC own engine (`tasks.monitor`, `monitor.engine: spark`). Either way the drift table
# MAGIC changes and its table-update trigger starts the retraining job.

# COMMAND ----------

from driftgate import tasks
from driftgate.jobtask import open_task_workspace

ws, job, now = open_task_workspace(dbutils, spark, task_key=tasks.MONITOR)  # noqa: F821 (Databricks globals)

# COMMAND ----------

engine = dbutils.widgets.get("monitor_engine")  # noqa: F821
if engine == "lakehouse":
    from driftgate.workspace.lakehouse_monitor import refresh_native_monitor

    print(f"refresh {refresh_native_monitor(ws.settings.monitor.table_name)} of {ws.settings.monitor.table_name}: SUCCESS")
elif engine == "driftgate":
    print(tasks.monitor(ws, job=job, now=now).summary)
else:
    raise ValueError(f"job parameter monitor_engine: expected 'lakehouse' or 'driftgate', got {engine!r}")
