"""The model registry seam: aliases, tags and versions of three-level model names.

Locally this is MLflow's SQLite registry; on Databricks it is ``databricks-uc``.
Both go through :class:`MlflowRegistry`; tests use :class:`FakeRegistry`, which
passes the same contract tests. ``MlflowException`` never leaks: it becomes
:class:`~driftgate.core.errors.RegistryError` naming the model and version.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

from driftgate.core.errors import RegistryError

__all__ = ["ModelRegistry", "ModelVersionInfo", "MlflowRegistry", "FakeRegistry", "logged_model_id"]


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str | None
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    model_id: str | None = None
    """The MLflow 3 logged model this version was registered from, if any."""


def logged_model_id(model_uri: str) -> str | None:
    """``m-...`` from an MLflow 3 logged-model URI ``models:/m-...``; None for any other URI.

    (``models:/<name>/<version>`` and ``models:/<name>@<alias>`` name registered models.)
    """
    if not model_uri.startswith("models:/"):
        return None
    rest = model_uri[len("models:/"):].strip("/")
    return rest if rest.startswith("m-") and "/" not in rest and "@" not in rest else None


@runtime_checkable
class ModelRegistry(Protocol):
    def register(self, model_uri: str, name: str, tags: dict[str, str] | None = None,
                 run_id: str | None = None) -> ModelVersionInfo:
        """Register ``model_uri`` as a new version; returns that version (never a 'latest' scan).

        The version keeps its lineage: ``run_id`` (the training run) and, for an MLflow 3
        logged model (``models:/m-...``), its ``model_id``.
        """
        ...

    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the alias is unset."""
        ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The training run's metrics (latest value of each); {} when the run cannot be read."""
        ...


class MlflowRegistry:
    """MLflow's registry client (SQLite locally, ``databricks-uc`` on Databricks)."""

    def __init__(self, tracking_uri: str, registry_uri: str):
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri

    @cached_property
    def client(self):
        """MLflow's client, made on first use: opening a workspace imports no MLflow (~1 s)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @cached_property
    def _reader(self):
        """Reads without MLflow on a verified local SQLite store (``workspace/mlflow_sqlite.py``), else None."""
        from driftgate.workspace.mlflow_sqlite import reader_for

        return reader_for(self.tracking_uri, self.registry_uri)

    def _wrap(self, exc: Exception, what: str, name: str, version: str | None = None) -> RegistryError:
        ver = f" version {version}" if version else ""
        return RegistryError(f"{name}{ver}: {what} failed: {exc}", model=name, version=version)

    def register(self, model_uri, name, tags=None, run_id=None) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        model_id = logged_model_id(model_uri)
        try:
            try:
                self.client.get_registered_model(name)
            except MlflowException:
                self.client.create_registered_model(name)
            if run_id is None and model_uri.startswith("runs:/"):
                run_id = model_uri.split("/")[1]
            if run_id is None and model_id is not None:
                run_id = self.client.get_logged_model(model_id).source_run_id
            mv = self.client.create_model_version(name=name, source=model_uri, run_id=run_id, tags=tags or {},
                                                  model_id=model_id)
            if model_id is not None:
                self._link_logged_model(model_id, mv)
        except MlflowException as exc:
            raise self._wrap(exc, "register", name) from exc
        return self._info(mv)

    def _link_logged_model(self, model_id: str, mv) -> None:
        """Record the new version on the logged model, as ``mlflow.register_model`` does (UI link)."""
        import json

        from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

        model = self.client.get_logged_model(model_id)
        linked = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
        linked.append({"name": mv.name, "version": str(mv.version)})
        self.client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(linked)})

    def get_version(self, name, version) -> ModelVersionInfo:
        if self._reader is not None:
            from driftgate.workspace.mlflow_sqlite import NotFound

            try:
                found = self._reader.get_version(name, str(version))
            except NotFound as exc:
                raise RegistryError(f"{name} version {version}: get model version failed: {exc}", model=name,
                                    version=str(version)) from exc
            return self._info(found)
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            raise self._wrap(exc, "get model version", name, str(version)) from exc

    def alias_version(self, name, alias) -> str | None:
        if self._reader is not None:
            from driftgate.workspace.mlflow_sqlite import NotFound

            try:
                return self._reader.alias_version(name, alias)
            except NotFound:
                return None  # as below: the model or the aliased version does not exist
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise self._wrap(exc, f"read alias {alias!r}", name) from exc

    def set_alias(self, name, alias, version) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_registered_model_alias(name, alias, str(version))
        except MlflowException as exc:
            raise self._wrap(exc, f"set alias {alias!r}", name, str(version)) from exc

    def delete_alias(self, name, alias) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(name, alias)
        except MlflowException as exc:
            raise self._wrap(exc, f"delete alias {alias!r}", name) from exc

    def set_tag(self, name, version, key, value) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_model_version_tag(name, str(version), key, str(value))
        except MlflowException as exc:
            raise self._wrap(exc, f"tag {key!r}", name, str(version)) from exc

    def run_metrics(self, run_id) -> dict[str, float]:
        if self._reader is not None:
            from driftgate.workspace.mlflow_sqlite import NotFound

            try:
                return self._reader.run_metrics(run_id)
            except NotFound:
                return {}
        try:
            return dict(self.client.get_run(run_id).data.metrics)
        except Exception:  # noqa: BLE001 - the run may live in another tracking server
            return {}

    @staticmethod
    def _info(mv) -> ModelVersionInfo:
        """From MLflow's ``ModelVersion``, or the SQLite reader's ``VersionRow`` (same fields)."""
        return ModelVersionInfo(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or None,
            source=mv.source,
            aliases=tuple(getattr(mv, "aliases", ()) or ()),
            tags=dict(mv.tags or {}),
            # the SQLite store keeps no model_id column; its source is then the models:/m-... URI
            model_id=getattr(mv, "model_id", None) or logged_model_id(mv.source or ""),
        )


class FakeRegistry:
    """An in-memory registry that records every call (for tests and fault injection)."""

    def __init__(self):
        self.versions: dict[str, dict[str, ModelVersionInfo]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.calls: list[tuple] = []
        self.metrics: dict[str, dict[str, float]] = {}
        """Run id → metrics, for :meth:`run_metrics`."""
        self._lock = threading.Lock()

    def register(self, model_uri, name, tags=None, run_id=None) -> ModelVersionInfo:
        with self._lock:
            self.calls.append(("register", name, model_uri))
            versions = self.versions.setdefault(name, {})
            version = str(len(versions) + 1)
            info = ModelVersionInfo(name, version, run_id, model_uri, (), dict(tags or {}), logged_model_id(model_uri))
            versions[version] = info
            return info

    def get_version(self, name, version) -> ModelVersionInfo:
        self.calls.append(("get_version", name, str(version)))
        try:
            info = self.versions[name][str(version)]
        except KeyError:
            raise RegistryError(f"{name} version {version}: does not exist", model=name, version=str(version)) from None
        aliases = tuple(a for a, v in self.aliases.get(name, {}).items() if v == info.version)
        return dataclasses.replace(info, aliases=aliases, tags=dict(info.tags))

    def alias_version(self, name, alias) -> str | None:
        self.calls.append(("alias_version", name, alias))
        return self.aliases.get(name, {}).get(alias)

    def set_alias(self, name, alias, version) -> None:
        self.calls.append(("set_alias", name, alias, str(version)))
        if str(version) not in self.versions.get(name, {}):
            raise RegistryError(f"{name} version {version}: does not exist", model=name, version=str(version))
        self.aliases.setdefault(name, {})[alias] = str(version)

    def delete_alias(self, name, alias) -> None:
        self.calls.append(("delete_alias", name, alias))
        self.aliases.get(name, {}).pop(alias, None)

    def set_tag(self, name, version, key, value) -> None:
        self.calls.append(("set_tag", name, str(version), key))
        self.versions[name][str(version)].tags[key] = str(value)

    def run_metrics(self, run_id) -> dict[str, float]:
        self.calls.append(("run_metrics", run_id))
        return dict(self.metrics.get(run_id, {}))
