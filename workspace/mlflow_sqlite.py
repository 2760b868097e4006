"""Read-only reads of MLflow's local SQLite store, without importing MLflow.

``import mlflow`` alone costs about a second on a 2-core machine (its package ``__init__``
loads pandas, FastAPI, SQLAlchemy and the GenAI modules) and opening its SQLAlchemy store
another half; ``driftgate status`` only reads three aliases, a few tags and a run's metrics.
:class:`SqliteRegistryReader` answers those reads with the standard library's ``sqlite3`` on a
read-only connection, with the same queries MLflow's ``SqlAlchemyStore`` runs.

It is used only where that equivalence was checked: the database's schema revision (Alembic's
``alembic_version``) must be one of :data:`VERIFIED_REVISIONS`, MLflow's multi-workspace mode
must be off, and the URI must be a plain ``sqlite:///`` file. Anything else (a server, a newer
or older schema, a missing file) gives ``None`` from :func:`reader_for` and the caller uses
MLflow's client. ``tests/test_mlflow_sqlite.py`` compares every answer with ``MlflowClient``'s on
the installed MLflow, and fails when the installed MLflow creates a revision not listed here (an
MLflow upgrade: re-run that test, then add the revision).
"""
from __future__ import annotations

import math
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SqliteRegistryReader", "reader_for", "VERIFIED_REVISIONS", "NotFound", "VersionRow"]

VERIFIED_REVISIONS = frozenset({
    "dc11669786a5",  # MLflow 3.17.x (constraints/local.txt)
})
"""Schema revisions whose tables and semantics the parity tests checked against ``MlflowClient``."""

_DELETED = "Deleted_Internal"  # mlflow.entities.model_registry.model_version_stages.STAGE_DELETED_INTERNAL
_WORKSPACE = "default"  # mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME (single-tenant stores)


@dataclass(frozen=True)
class VersionRow:
    """A live model version as MLflow's ``ModelVersion`` carries it (the fields driftgate reads)."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]


class NotFound(LookupError):
    """The model, version or run does not exist (MLflow's ``RESOURCE_DOES_NOT_EXIST``)."""


def _sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///path`` URI (as SQLAlchemy reads it), None for anything else."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or "?" in uri:
        return None
    rest = uri[len(prefix):]
    return Path(rest) if rest and rest != ":memory:" else None


def _query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    # mode=ro: a reader never creates, migrates or locks the store for writing; the timeout
    # waits out a writer's lock as MLflow's own engine does.
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def _revision(path: Path) -> str | None:
    try:
        rows = _query(path, "SELECT version_num FROM alembic_version")
    except sqlite3.Error:
        return None
    return rows[0][0] if rows else None


def reader_for(tracking_uri: str, registry_uri: str) -> "SqliteRegistryReader | None":
    """A reader when both stores are verified SQLite files, else None (use MLflow's client)."""
    if os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("1", "true", "yes"):
        return None
    paths = (_sqlite_path(tracking_uri), _sqlite_path(registry_uri))
    if None in paths or not all(p.is_file() for p in paths):
        return None
    if any(_revision(p) not in VERIFIED_REVISIONS for p in set(paths)):
        return None
    return SqliteRegistryReader(*paths)


class SqliteRegistryReader:
    """MLflow's registry and run-metric reads on its SQLite files (read-only connections)."""

    def __init__(self, tracking_db: Path, registry_db: Path):
        self.tracking_db, self.registry_db = tracking_db, registry_db

    def _model_exists(self, name: str) -> bool:
        return bool(_query(self.registry_db, "SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?",
                               (_WORKSPACE, name)))

    def alias_version(self, name: str, alias: str) -> str | None:
        """The live version ``alias`` points at; None when the alias is unset.

        Raises :class:`NotFound` when the model does not exist or the alias points at a deleted
        version (where ``get_model_version_by_alias`` raises ``RESOURCE_DOES_NOT_EXIST``).
        """
        if not self._model_exists(name):
            raise NotFound(f"registered model {name!r} not found")
        rows = _query(
            self.registry_db,
            "SELECT a.version, v.version FROM registered_model_aliases a LEFT JOIN model_versions v "
            "ON v.workspace = a.workspace AND v.name = a.name AND v.version = a.version "
            "AND v.current_stage != ? WHERE a.workspace = ? AND a.name = ? AND a.alias = ?",
            (_DELETED, _WORKSPACE, name, alias))
        if not rows:
            return None
        if rows[0][1] is None:
            raise NotFound(f"{name} version {rows[0][0]} (alias {alias!r}) not found")
        return str(rows[0][0])

    def get_version(self, name: str, version: str) -> VersionRow:
        """A live version with its aliases and tags."""
        try:
            number = int(version)
        except ValueError:
            raise NotFound(f"model version must be an integer, got {version!r}") from None
        found = _query(
            self.registry_db,
            "SELECT name, version, run_id, source FROM model_versions "
            "WHERE workspace = ? AND name = ? AND version = ? AND current_stage != ?",
            (_WORKSPACE, name, number, _DELETED))
        if not found:
            raise NotFound(f"{name} version {version} not found")
        key = (_WORKSPACE, name, number)
        tags = _query(self.registry_db, 'SELECT "key", value FROM model_version_tags '
                          "WHERE workspace = ? AND name = ? AND version = ?", key)
        aliases = _query(self.registry_db, "SELECT alias FROM registered_model_aliases "
                             "WHERE workspace = ? AND name = ? AND version = ? ORDER BY alias", key)
        name_, version_, run_id, source = found[0]
        return VersionRow(name_, str(version_), run_id, source, tuple(a for (a,) in aliases), dict(tags))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The run's latest value of each metric (``Run.data.metrics``)."""
        if not _query(self.tracking_db, "SELECT 1 FROM runs WHERE run_uuid = ?", (run_id,)):
            raise NotFound(f"run {run_id!r} not found")
        rows = _query(self.tracking_db, 'SELECT "key", value, is_nan FROM latest_metrics WHERE run_uuid = ?',
                          (run_id,))
        return {k: (math.nan if is_nan else float(v)) for k, v, is_nan in rows}
