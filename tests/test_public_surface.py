"""The public surface is explicit, importable, and the exception tree has one root."""
from __future__ import annotations

import subprocess
import sys

import importlib

import pytest

from driftgate.core import errors

PACKAGES = ["driftgate.workspace", "driftgate.monitoring", "driftgate.gating", "driftgate.training",
            "driftgate.promotion", "driftgate.triggers", "driftgate.triggers.webhook"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist(package):
    module = importlib.import_module(package)
    assert module.__all__, "the public surface must not be empty"
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_error_derives_from_driftgate_error():
    names = [n for n in errors.__all__ if n != "DriftgateError"]
    assert names
    for name in names:
        assert issubclass(getattr(errors, name), errors.DriftgateError), name


def test_cli_help_lists_every_stage_in_one_line_each():
    out = subprocess.run([sys.executable, "-m", "driftgate.cli", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": ""}, check=True).stdout
    for command in ("demo", "monitor", "gate", "train", "tune", "shadow", "promote", "watch", "serve", "status"):
        assert f" {command} " in out, command


def test_cli_reports_config_errors_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "driftgate.cli", "init", "--set", "project.model_name=bad"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines and "project.model_name" in lines[0] and "catalog.schema.name" in lines[0]
