"""Where driftgate keeps its state: the local workspace or a Databricks workspace."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from driftgate.core.types import StrictModel


class WorkspaceConfig(StrictModel):
    """Adapters are chosen by ``backend``; everything local lives under ``root``.

    ``local``: Delta tables via ``deltalake`` under ``<root>/lakehouse/<catalog>/<schema>/<table>``,
    MLflow tracking and registry on ``sqlite:///<root>/mlflow.db``, artifacts in ``<root>/mlartifacts``.
    ``databricks``: Spark tables in Unity Catalog, MLflow ``databricks`` tracking and the
    ``databricks-uc`` registry, task values through ``dbutils``.
    """

    backend: Literal["local", "databricks"] = "local"
    """Which adapters to build: local Delta + SQLite MLflow, or Spark + Unity Catalog."""
    root: Path = Path(".driftgate")
    """Local state folder (tables, MLflow store, cursors); git-ignored."""
    tracking_uri: str | None = None
    """Override the tracking URI (default: local SQLite, or ``databricks``)."""
    registry_uri: str | None = None
    """Override the registry URI (default: local SQLite, or ``databricks-uc``)."""
