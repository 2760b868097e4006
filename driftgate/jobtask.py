"""Plumbing shared by the Databricks job's notebook tasks (``notebooks/*.py``).

A task notebook stays thin: :func:`open_task_workspace` turns widgets and job parameters
into :class:`~driftgate.core.settings.Settings` and a :class:`~driftgate.workspace.Workspace` whose task
values go through ``dbutils.jobs.taskValues``; the notebook then calls one stage function
and publishes its result. Job parameters (pushed down to notebook widgets):

* ``model_name``: three-level registered model name → ``project.model_name``;
* ``thresholds_profile``: gate threshold profile → ``gate.profile``;
* ``catalog`` / ``schema``: move every table, schema and model name of the configuration
  from the configured ``project.audit_schema`` to ``catalog.schema``;
* ``trigger``: what started the run (recorded with the decision).

Task parameters: ``conf_dir`` (the bundle's synced ``conf/``), ``env`` (default
``databricks``), ``job_run_id`` (``{{job.run_id}}``), ``overrides`` (extra ``key=value``
settings, one per line or separated by ``;``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

__all__ = ["JOB_PARAMETERS", "TASK_PARAMETERS", "widget_params", "settings_for_task", "relocate",
           "open_task_workspace", "as_value"]

JOB_PARAMETERS = ("model_name", "thresholds_profile", "catalog", "schema", "trigger")
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
        settings = type(settings).model_validate(dumped)
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

    return type(settings).model_validate(move(settings.model_dump(mode="json")))


def open_task_workspace(dbutils, spark, *, task_key: str, params: Mapping[str, str] | None = None):
    """Settings + workspace for one notebook task; task values go through ``dbutils``.

    Returns:
        ``(ws, params)``.
    """
    from driftgate.workspace import open_workspace
    from driftgate.workspace.task_values import DbutilsTaskValues

    params = dict(params if params is not None else widget_params(dbutils))
    settings = settings_for_task(params)
    ws = open_workspace(settings, spark=spark, dbutils=dbutils, run_id=params.get("job_run_id"), task_key=task_key)
    if dbutils is not None:
        ws = dataclasses.replace(ws, task_values=DbutilsTaskValues(dbutils))
    return ws, params


def as_value(record: Any) -> Any:
    """A JSON-ready form of a stage result, for a task value."""
    import json

    for method in ("to_dict", "as_dict"):
        if callable(getattr(record, method, None)):
            return json.loads(json.dumps(getattr(record, method)(), default=str))
    if hasattr(record, "model_dump"):
        return record.model_dump(mode="json")
    if dataclasses.is_dataclass(record):
        return json.loads(json.dumps(dataclasses.asdict(record), default=str))
    return record
