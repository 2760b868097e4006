"""Adapters that differ between the local workspace and Databricks: tables, registry,
task values and job launching. Stages receive a :class:`Workspace` and never build one."""
if __name__ != "driftgate.workspace":  # the workspace/ folder installs as driftgate.workspace only (setup.py)
    raise ImportError(f"import driftgate.workspace, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.workspace.context import Workspace, open_workspace
from driftgate.workspace.registry import FakeRegistry, MlflowRegistry, ModelRegistry, ModelVersionInfo
from driftgate.workspace.spark_tables import SparkTableStore
from driftgate.workspace.tables import DeltaTableStore, TableStore
from driftgate.workspace.task_values import DbutilsTaskValues, LocalTaskValues, TaskValues

__all__ = [
    "Workspace", "open_workspace", "TableStore", "DeltaTableStore", "SparkTableStore",
    "ModelRegistry", "MlflowRegistry", "FakeRegistry", "ModelVersionInfo",
    "TaskValues", "LocalTaskValues", "DbutilsTaskValues",
]
