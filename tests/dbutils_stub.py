"""``dbutils`` as a Databricks notebook task sees it, for running ``notebooks/*.py`` as plain Python.

Transcribed from the documented API, not from driftgate's adapter:

* ``dbutils.widgets.get(name)`` returns the task's parameter; an undefined widget raises
  (``InputWidgetNotDefined``).
* ``dbutils.jobs.taskValues.set(key, value)``: the value must be JSON-serialisable and its JSON
  representation at most 48 KiB; it is stored under the running task's key.
* ``dbutils.jobs.taskValues.get(taskKey, key, default, debugValue)``: the value ``taskKey`` set;
  a missing key returns ``default``, or raises ``ValueError`` when no default is given
  (``default`` cannot be None).
* ``dbutils.notebook.exit(value)`` ends the notebook successfully.
"""
from __future__ import annotations

import json

MAX_BYTES = 48 * 1024


class NotebookExit(Exception):
    """``dbutils.notebook.exit`` was called (the task still succeeds)."""


class StubDbutils:
    """One notebook task of one job run; ``values`` is the run's task-value store, shared by tasks."""

    def __init__(self, widgets: dict[str, str], task_key: str, values: dict | None = None):
        self.values: dict[tuple[str, str], object] = {} if values is None else values
        store = self.values

        class Widgets:
            def get(self, name):
                if name not in widgets:
                    raise ValueError(f"InputWidgetNotDefined: No input widget named {name} is defined")
                return widgets[name]

        class TaskValues:
            def set(self, key, value):
                if len(json.dumps(value).encode()) > MAX_BYTES:
                    raise ValueError(f"task value {key}: larger than 48 KiB")
                store[(task_key, key)] = value

            def get(self, taskKey, key, default=None, debugValue=None):
                if taskKey == task_key:
                    # Undocumented (values are read by downstream tasks): refused, so nothing relies on it.
                    raise AssertionError(f"task {task_key} read its own task value {key} through dbutils")
                if (taskKey, key) in store:
                    return store[(taskKey, key)]
                if default is None:
                    raise ValueError(f"No task value found for key {key} of task {taskKey}")
                return default

        class Jobs:
            taskValues = TaskValues()

        class Notebook:
            def exit(self, value):
                raise NotebookExit(value)

        self.widgets, self.jobs, self.notebook = Widgets(), Jobs(), Notebook()


def run_notebook(path, widgets: dict[str, str], task_key: str, values: dict, spark=None) -> None:
    """Execute a notebook source file as plain Python with a stub ``dbutils`` and ``spark`` (a real
    local session, or None)."""
    source = path.read_text()
    try:
        exec(compile(source, str(path), "exec"), {"dbutils": StubDbutils(widgets, task_key, values), "spark": spark})
    except NotebookExit:
        pass
