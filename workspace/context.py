"""Build the adapters for one profile: the only place that knows local from Databricks."""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftgate.core.layering import removed_defaults_tags
from driftgate.workspace.registry import MlflowRegistry, ModelRegistry
from driftgate.workspace.spark_tables import SparkTableStore
from driftgate.workspace.tables import DeltaTableStore, TableStore
from driftgate.workspace.task_values import DbutilsTaskValues, LocalTaskValues, NoTaskValues, TaskValues

if TYPE_CHECKING:
    from driftgate.core.settings import Settings

__all__ = ["Workspace", "open_workspace", "ensure_parent_folder", "MLPROJECT_RUN_TAG", "EXPERIMENT_KIND_TAG", "EXPERIMENT_KIND",
           "mlproject_run_id", "stage_run_tags", "nest_stage_runs", "open_stage_run", "reopen_run",
           "run_key_scope"]

MLPROJECT_RUN_TAG = "driftgate.mlproject_run_id"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3's experiment kind for model training: the UI opens such an experiment on its runs."""
_PARENT_ENV = "DRIFTGATE_MLPROJECT_RUN_ID"
_ADOPTED_ENV = "DRIFTGATE_MLPROJECT_ADOPTED_RUN_ID"
_PARENT_RUN_TAG = "mlflow.parentRunId"
_RUN_KEY: ContextVar[str | None] = ContextVar("driftgate_run_key", default=None)


@contextmanager
def run_key_scope(run_key: str | None):
    """Stage runs opened inside get the tag ``driftgate.run_key`` (a launcher sets it around a job run,
    so the runs a crash leaves ``RUNNING`` can be found and ended by that key)."""
    token = _RUN_KEY.set(run_key)
    try:
        yield
    finally:
        _RUN_KEY.reset(token)


def mlproject_run_id() -> str | None:
    """The ``mlflow run`` run this process was launched by, if any.

    ``MLFLOW_RUN_ID`` while no stage run has adopted it yet; after :func:`nest_stage_runs`, the
    run the stage runs nest under.
    """
    return os.environ.get(_PARENT_ENV) or os.environ.get("MLFLOW_RUN_ID")


def stage_run_tags() -> dict[str, str]:
    """Tags every stage run gets: under ``mlflow run``, the project run it belongs to, and (when
    the command runs several stages, :func:`nest_stage_runs`) ``mlflow.parentRunId``, so the UI
    shows the stage runs nested under the project run."""
    tags: dict[str, str] = {}
    if run_key := _RUN_KEY.get():
        tags["driftgate.run_key"] = run_key
    if parent := os.environ.get(_PARENT_ENV):
        tags[MLPROJECT_RUN_TAG] = parent
        tags[_PARENT_RUN_TAG] = parent
    elif run := os.environ.get("MLFLOW_RUN_ID") or os.environ.get(_ADOPTED_ENV):
        tags[MLPROJECT_RUN_TAG] = run
    return tags


def nest_stage_runs() -> str | None:
    """For a command that runs several stages (the demo, a whole job run): the stage runs nest
    under the ``mlflow run`` run instead of the first one adopting it. Returns the parent run id.

    Without this call, the first stage run a process opens logs into the ``mlflow run`` run
    itself (MLflow's ``MLFLOW_RUN_ID`` convention: ``mlflow.start_run()`` resumes it once, and
    :func:`open_stage_run` does the same for stages that use the client API), so an entry point
    running one stage leaves one run, not an empty wrapper beside a stage run.
    """
    parent = os.environ.pop("MLFLOW_RUN_ID", None)
    if parent:
        os.environ[_PARENT_ENV] = parent
    return os.environ.get(_PARENT_ENV)


def open_stage_run(ws: "Workspace", run_name: str, tags: dict[str, str]) -> str:
    """Open a stage run with the client API; returns its id (end it with ``set_terminated``).

    Adopts the ``mlflow run`` run when no stage run has yet (renamed ``run_name``, the tags
    added), exactly as ``mlflow.start_run()`` resumes ``MLFLOW_RUN_ID``; otherwise creates a
    new run in the project experiment, nested under the project run if :func:`nest_stage_runs`
    was called.
    """
    from mlflow import MlflowClient

    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    experiment_id = ws.experiment_id()
    # A run whose settings removed a default (an explicit null in a layer) says so.
    tags = {**stage_run_tags(), **removed_defaults_tags(ws.settings), **tags}
    adopt = os.environ.pop("MLFLOW_RUN_ID", None)
    if adopt:
        os.environ[_ADOPTED_ENV] = adopt  # later stage runs of this process name it
        return reopen_run(ws, adopt, run_name, tags)
    return client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id


def reopen_run(ws: "Workspace", run_id: str, run_name: str, tags: dict[str, str]) -> str:
    """Log into an existing run (the project run): running again, renamed ``run_name``, tags added."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    client.update_run(run_id, status="RUNNING", name=run_name)
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    return run_id


@dataclass
class Workspace:
    """The adapters a stage may touch. Stages receive this; they never build adapters."""

    settings: "Settings"
    tables: TableStore
    registry: ModelRegistry
    task_values: TaskValues
    tracking_uri: str
    registry_uri: str
    root: Path | None
    """Local state folder (``.driftgate``); None on Databricks."""
    workspace_client: Any = None
    """Databricks only: a ``databricks.sdk.WorkspaceClient`` (default: built from the environment when needed)."""

    def experiment_id(self, name: str | None = None) -> str:
        """Id of the MLflow experiment ``name`` (default: the project's), created if missing.

        Locally its artifacts go under ``<root>/mlartifacts`` so nothing is written elsewhere.
        """
        import mlflow

        name = name or self.settings.project.experiment_name
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        client = mlflow.MlflowClient(self.tracking_uri, self.registry_uri)
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if EXPERIMENT_KIND_TAG not in exp.tags:  # made by `mlflow run` or an older driftgate
                client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return exp.experiment_id
        location = None
        if self.root is not None:
            location = (self.root / "mlartifacts").resolve().as_uri()
        else:
            ensure_parent_folder(name, self.workspace_client)
        return client.create_experiment(name, artifact_location=location,
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})

    def activate_mlflow(self, experiment: str | None = None) -> str:
        """Point the global MLflow client at this workspace and its experiment.

        Under ``mlflow run`` the entry point inherits ``MLFLOW_RUN_ID``; it stays set, so the
        first stage run (``mlflow.start_run()`` or :func:`open_stage_run`) logs into the
        project's own run; see :func:`nest_stage_runs` for commands that run several stages.
        """
        import mlflow

        exp_id = self.experiment_id(experiment)
        mlflow.set_experiment(experiment_id=exp_id)
        return exp_id


def ensure_parent_folder(experiment_name: str, client=None) -> str | None:
    """Create the workspace folder an experiment path lives in (``/Shared/driftgate`` for
    ``/Shared/driftgate/churn_model``); MLflow's create_experiment does not, and answers
    RESOURCE_DOES_NOT_EXIST. ``workspace/mkdirs`` succeeds when the folder exists. Returns the folder.
    """
    parent = experiment_name.rstrip("/").rpartition("/")[0]
    if not experiment_name.startswith("/") or not parent:
        return None
    if client is None:
        from databricks.sdk import WorkspaceClient

        client = WorkspaceClient()
    client.workspace.mkdirs(parent)
    return parent


def open_workspace(settings: "Settings", *, spark=None, dbutils=None, run_id: str | None = None,
                   task_key: str = "driftgate") -> Workspace:
    """Open the workspace for ``settings.workspace.backend``.

    Locally everything lives under ``settings.workspace.root``; on Databricks the
    caller passes the notebook's ``spark`` and ``dbutils``.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    cfg = settings.workspace
    if cfg.backend == "local":
        root = cfg.root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{root / 'mlflow.db'}"
        tracking = cfg.tracking_uri or db
        registry_uri = cfg.registry_uri or tracking
        return Workspace(
            settings=settings,
            tables=DeltaTableStore(root / "lakehouse", spark=spark),  # a notebook's session, if given
            registry=MlflowRegistry(tracking, registry_uri),
            task_values=LocalTaskValues(root, run_id or "adhoc", task_key),
            tracking_uri=tracking,
            registry_uri=registry_uri,
            root=root,
        )
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
    tracking = cfg.tracking_uri or "databricks"
    registry_uri = cfg.registry_uri or "databricks-uc"
    # Task values live in the job run (dbutils); a file under /tmp on one cluster is not what
    # the next task or the condition task reads, so without dbutils every use is refused.
    values: TaskValues = DbutilsTaskValues(dbutils) if dbutils is not None else NoTaskValues()
    return Workspace(
        settings=settings,
        tables=SparkTableStore(spark),
        registry=MlflowRegistry(tracking, registry_uri),
        task_values=values,
        tracking_uri=tracking,
        registry_uri=registry_uri,
        root=None,
    )
