# Databricks notebook source
# MAGIC %md
# MAGIC # train: retrain the candidate (runs only when the gate said EXCEEDED)
# MAGIC
# MAGIC Calls `training.train`, which registers the candidate under the project's model name
# MAGIC (no aliases). Publishes `registered`, `model_version` and `train_run_id` for the shadow task.

# COMMAND ----------

from driftgate.jobtask import open_task_workspace

ws, params = open_task_workspace(dbutils, spark, task_key="train")  # noqa: F821 (Databricks globals)

# COMMAND ----------

from driftgate import training

decision = ws.task_values.get("evaluate_drift", "decision", default={}) or {}
result = training.train(
    ws,
    reason={"trigger": params.get("trigger", "table_update"), "decision_id": str(decision.get("decision_id", "")),
            "job_run_id": params.get("job_run_id", "")},
    use_best_params=bool(getattr(ws.settings.training, "use_best_params", False)),
)
ws.task_values.set("registered", bool(result.registered))
ws.task_values.set("model_version", result.version or "")
ws.task_values.set("train_run_id", result.run_id)
print(f"run {result.run_id}: registered={result.registered} version={result.version} "
      f"refused={result.refused_reason} metrics={result.metrics}")
