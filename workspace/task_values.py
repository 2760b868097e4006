"""Task values: how one job task hands a small JSON value to the next.

On Databricks this is ``dbutils.jobs.taskValues`` (48 KiB per value); locally
the same calls write ``<root>/task_values/<run_id>/<task_key>.json``, which the
local task-graph runner reads to evaluate its condition task.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from driftgate.core.errors import DriftgateError

__all__ = ["TaskValues", "LocalTaskValues", "DbutilsTaskValues", "NoTaskValues", "MAX_TASK_VALUE_BYTES"]

MAX_TASK_VALUE_BYTES = 48 * 1024


@runtime_checkable
class TaskValues(Protocol):
    def set(self, key: str, value: Any) -> None: ...

    def get(self, task_key: str, key: str, default: Any = None) -> Any: ...


def _encoded(key: str, value: Any) -> str:
    text = json.dumps(value, default=str)
    if len(text.encode()) > MAX_TASK_VALUE_BYTES:
        raise DriftgateError(f"task value {key!r}: must be at most 48 KiB as JSON, got {len(text.encode())} bytes")
    return text


class LocalTaskValues:
    """File-backed task values for one local job run."""

    def __init__(self, root: str | Path, run_id: str, task_key: str):
        self.dir = Path(root) / "task_values" / run_id
        self.task_key = task_key

    def for_task(self, task_key: str) -> "LocalTaskValues":
        other = LocalTaskValues.__new__(LocalTaskValues)
        other.dir, other.task_key = self.dir, task_key
        return other

    def set(self, key: str, value: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.task_key}.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = json.loads(_encoded(key, value))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        path = self.dir / f"{task_key}.json"
        if not path.exists():
            return default
        return json.loads(path.read_text()).get(key, default)


_UNSET = "__driftgate_task_value_unset__"


class DbutilsTaskValues:
    """``dbutils.jobs.taskValues`` inside a Databricks notebook task.

    ``dbutils.jobs.taskValues.get`` refuses ``default=None`` and ``debugValue=None`` (the
    Databricks task-values reference: "default cannot be None"), and raises when the key is
    missing and no default is given; an upstream task that exited early never set its
    values. So a ``None`` default travels as a sentinel string and comes back as ``None``.
    """

    def __init__(self, dbutils):
        self.dbutils = dbutils

    def set(self, key: str, value: Any) -> None:
        _encoded(key, value)
        self.dbutils.jobs.taskValues.set(key=key, value=value)

    def get(self, task_key: str, key: str, default: Any = None) -> Any:
        fallback = _UNSET if default is None else default
        value = self.dbutils.jobs.taskValues.get(taskKey=task_key, key=key, default=fallback, debugValue=fallback)
        return None if value == _UNSET else value


class NoTaskValues:
    """Databricks without ``dbutils`` (a laptop, the webhook service): task values are refused."""

    def _refuse(self, *args, **kwargs):
        raise DriftgateError("workspace.backend=databricks: task values need the notebook's dbutils "
                             "(open_workspace(settings, spark=spark, dbutils=dbutils)); nothing is kept in /tmp")

    set = get = _refuse
