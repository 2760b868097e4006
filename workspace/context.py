"""Build the adapters for one profile: the only place that knows local from Databricks."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftgate.workspace.registry import MlflowRegistry, ModelRegistry
from driftgate.workspace.spark_tables import SparkTableStore
from driftgate.workspace.tables import DeltaTableStore, TableStore
from driftgate.workspace.task_values import DbutilsTaskValues, LocalTaskValues, NoTaskValues, TaskValues

if TYPE_CHECKING:
    from driftgate.core.settings import Settings

__all__ = ["Workspace", "open_workspace", "ensure_parent_folder", "MLPROJECT_RUN_TAG", "mlproject_run_id"]

MLPROJECT_RUN_TAG = "driftgate.mlproject_run_id"


def mlproject_run_id() -> str | None:
    """The ``mlflow run`` run this process was launched by, if any (tag stage runs with it)."""
    return os.environ.get("DRIFTGATE_MLPROJECT_RUN_ID") or os.environ.get("MLFLOW_RUN_ID")


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
            return exp.experiment_id
        location = None
        if self.root is not None:
            location = (self.root / "mlartifacts").resolve().as_uri()
        else:
            ensure_parent_folder(name, self.workspace_client)
        return client.create_experiment(name, artifact_location=location)

    def activate_mlflow(self, experiment: str | None = None) -> str:
        """Point the global MLflow client at this workspace and its experiment.

        Under ``mlflow run`` the entry point inherits ``MLFLOW_RUN_ID``; stages log their
        own runs in the project experiment instead of resuming that one, and tag them
        with it (:data:`MLPROJECT_RUN_TAG`), so ``mlflow.start_run()`` never collides.
        """
        import mlflow

        parent = os.environ.pop("MLFLOW_RUN_ID", None)
        if parent:
            os.environ["DRIFTGATE_MLPROJECT_RUN_ID"] = parent
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
            tables=DeltaTableStore(root / "lakehouse"),
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
