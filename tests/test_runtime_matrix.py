"""The runtime matrix's constraints files, checked offline (``make test-runtimes`` needs network).

Each ``constraints/runtimes/<target>.txt`` names the runtime's Python and Spark in its header, pins
pyspark to that Spark, and pins every package driftgate requires at a version driftgate's ranges
admit: otherwise a job task's ``pip install`` of the wheel would replace a runtime package.
"""
from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.conftest import REPO

FILES = sorted((REPO / "constraints" / "runtimes").glob("*.txt"))


def _headers(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# (python|spark|spark_mode): *(\S+)", text, re.M))


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = ver.strip()
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["databricks"]]


def test_there_are_several_targets_and_one_is_serverless():
    modes = [_headers(f.read_text()).get("spark_mode", "classic") for f in FILES]
    assert len(FILES) >= 3 and "connect" in modes and "classic" in modes


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_header_names_python_spark_and_mode(path):
    text = path.read_text()
    head = _headers(text)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(head["python"] + ".0"), head
    assert _pins(text)["pyspark"] == head["spark"]
    assert head.get("spark_mode", "classic") in ("classic", "connect")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_driftgate_ranges_admit_every_pinned_runtime_package(path):
    pins = _pins(path.read_text())
    refused = [f"{r.name} {pins[r.name.lower()]} not in {r.specifier}" for r in _requirements()
               if r.name.lower() in pins and not r.specifier.contains(pins[r.name.lower()], prereleases=True)]
    assert not refused, refused


def test_the_range_check_refuses_a_runtime_below_a_lower_end():
    """What DBR 16.4 LTS ML ships (MLflow 2.21.3, numpy 1.26.4) is outside the ranges."""
    pins = {"mlflow": "2.21.3", "numpy": "1.26.4", "pandas": "2.2.3"}
    refused = {r.name for r in _requirements() if r.name in pins and not r.specifier.contains(pins[r.name])}
    assert refused == {"mlflow", "numpy"}
