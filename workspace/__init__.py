"""Adapters that differ between the local workspace and Databricks: tables, registry,
task values and job launching. Stages receive a :class:`Workspace` and never build one."""
from workspace.context import Workspace, open_workspace
from workspace.registry import FakeRegistry, MlflowRegistry, ModelRegistry, ModelVersionInfo
from workspace.tables import DeltaTableStore, SparkTableStore, TableStore
from workspace.task_values import DbutilsTaskValues, LocalTaskValues, TaskValues

__all__ = [
    "Workspace", "open_workspace", "TableStore", "DeltaTableStore", "SparkTableStore",
    "ModelRegistry", "MlflowRegistry", "FakeRegistry", "ModelVersionInfo",
    "TaskValues", "LocalTaskValues", "DbutilsTaskValues",
]
