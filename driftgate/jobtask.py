"""Plumbing shared by the Databricks job's notebook tasks (``notebooks/*.py``).

A task notebook stays thin: :func:`open_task_workspace` turns widgets and job parameters
into :class:`~driftgate.core.settings.Settings`, a :class:`~driftgate.workspace.Workspace` whose task
values go through ``dbutils.jobs.taskValues``, and the run's :class:`~driftgate.tasks.JobContext`;
the notebook then calls its one task function in :mod:`driftgate.tasks`, which reads and
publishes everything. Job parameters (pushed down to notebook widgets):

* ``model_name``: three-level registered model name → ``project.model_name``;
* ``thresholds_profile``: gate threshold profile → ``gate.profile``;
* ``catalog`` / ``schema``: move every table, schema and model name of the configuration
  from the configured ``project.audit_schema`` to ``catalog.schema``;
* ``trigger``: what started the run (recorded with the decision);
* ``run_key``: the fact the run answers, when the launcher knows it (the webhook's
  ``alert:...`` key); empty: derived by :func:`driftgate.tasks.run_key_for_job`;
* ``as_of``: the run's as-of time (ISO 8601, UTC when no zone is given), to replay history;
  empty: now.

Task parameters: ``conf_dir`` (the bundle's synced ``conf/``), ``env`` (default
``databricks``), ``job_run_id`` (``{{job.run_id}}``), ``overrides`` (extra ``key=value``
settings, one per line or separated by ``;``).
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from driftgate.tasks import JobContext, as_value, parse_time

__all__ = ["JOB_PARAMETERS", "TASK_PARAMETERS", "widget_params", "settings_for_task", "relocate",
           "open_task_workspace", "job_context", "as_of", "as_value"]

JOB_PARAMETERS = ("model_name", "thresholds_profile", "catalog", "schema", "trigger", "run_key", "as_of")
TASK_PARAMETERS = ("conf_dir", "env", "job_run_id", "overrides")


def widget_params(dbutils, names=JOB_PARAMETERS + TASK_PARAMETERS) -> dict[str, str]:
    """The widgets that are set (job parameters arrive as widgets in notebook tasks)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            value = dbutils.widgets.get(name)
        except Exception:  # an unset widget raises (InputWidgetNotDefined); absent means "use conf"
            continue
        if value not in (None, ""):
            out[name] = str(value)
    return out


def settings_for_task(params: Mapping[str, str], *, conf_dir: str | Path | None = None, env: str | None = None):
    """Settings for one task from its parameters (see module docstring)."""
    from driftgate.core.settings import load_settings

    overrides = [line.strip() for chunk in params.get("overrides", "").splitlines() for line in chunk.split(";")
                 if line.strip()]
    if params.get("thresholds_profile"):
        overrides.append(f"gate.profile={params['thresholds_profile']}")
    settings = load_settings(conf_dir or params.get("conf_dir"), env or params.get("env") or "databricks",
                             tuple(overrides))
    if params.get("catalog") or params.get("schema"):
        catalog, schema = settings.project.audit_schema.split(".")
        settings = relocate(settings, params.get("catalog") or catalog, params.get("schema") or schema)
    if params.get("model_name"):
        dumped = settings.model_dump(mode="json")
        dumped["project"]["model_name"] = params["model_name"]
        settings = settings.revalidated(dumped)
    return settings


def relocate(settings, catalog: str, schema: str):
    """Move every ``<home>`` / ``<home>.<name>`` in the settings to ``catalog.schema``.

    ``<home>`` is ``project.audit_schema``: the configured catalog.schema of the deployment.
    """
    home = settings.project.audit_schema
    target = f"{catalog}.{schema}"

    def move(value: Any) -> Any:
        if isinstance(value, str):
            if value == home:
                return target
            if value.startswith(home + "."):
                return target + value[len(home):]
            return value
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return settings.revalidated(move(settings.model_dump(mode="json")))


def job_context(params: Mapping[str, str]) -> JobContext:
    """The run's context from the job and task parameters."""
    return JobContext(trigger=params.get("trigger") or "table_update", run_key=params.get("run_key") or None,
                      job_run_id=params.get("job_run_id") or None)


def as_of(params: Mapping[str, str]) -> datetime | None:
    """The ``as_of`` parameter as a UTC time (None: now)."""
    return parse_time(params.get("as_of"), "as_of")


def open_task_workspace(dbutils, spark, *, task_key: str, params: Mapping[str, str] | None = None):
    """Settings, workspace, job context and as-of time for one notebook task; task values go
    through ``dbutils``.

    Returns:
        ``(ws, job, now)``: pass them to the task function, ``tasks.<task>(ws, job=job, now=now)``.
    """
    from driftgate.workspace import open_workspace
    from driftgate.workspace.task_values import DbutilsTaskValues

    params = dict(params if params is not None else widget_params(dbutils))
    settings = settings_for_task(params)
    ws = open_workspace(settings, spark=spark, dbutils=dbutils, run_id=params.get("job_run_id"), task_key=task_key)
    if dbutils is not None:
        ws = dataclasses.replace(ws, task_values=DbutilsTaskValues(dbutils))
    return ws, job_context(params), as_of(params)
