"""Packaging: the wheel holds one top-level package, ``driftgate``, with every source folder in it,
and driftgate keeps working beside a user's own ``training``/``monitoring``/``gating`` packages."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("workspace", "monitoring", "gating", "training", "promotion", "triggers")
IGNORE = shutil.ignore_patterns(".venv", ".git", ".driftgate", "build", "dist", "*.egg-info", "__pycache__", ".bench")


def source_packages() -> set[str]:
    """What the folders say the installed packages are: every folder with an __init__.py."""
    found = {"driftgate"}
    for init in (REPO / "driftgate").rglob("__init__.py"):
        found.add(".".join(("driftgate", *init.parent.relative_to(REPO / "driftgate").parts)).rstrip("."))
    for stage in STAGES:
        for init in (REPO / stage).rglob("__init__.py"):
            found.add(".".join(("driftgate", *init.parent.relative_to(REPO).parts)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "driftgate"
    shutil.copytree(REPO, src, ignore=IGNORE)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    (found,) = out.glob("driftgate-*.whl")
    return found


def test_the_wheel_has_one_top_level_package_holding_every_source_folder(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"driftgate"}
    packages = {os.path.dirname(n).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == source_packages()
    modules = {n for n in names if n.endswith(".py")}
    for stage in STAGES:  # every module of every folder, not only the packages
        for path in (REPO / stage).rglob("*.py"):
            assert f"driftgate/{path.relative_to(REPO).as_posix()}" in modules, path
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    targets = [line.split("=", 1)[1].strip() for line in entry_points.splitlines() if "=" in line]
    assert targets and all(t.startswith("driftgate.") for t in targets), targets


def test_the_editable_install_maps_the_same_packages():
    import importlib

    for name in sorted(source_packages()):
        module = importlib.import_module(name)
        folder = Path(module.__file__).parent
        assert folder.is_relative_to(REPO), (name, folder)


@pytest.mark.slow
def test_driftgate_runs_from_a_project_with_its_own_stage_packages(tmp_path):
    """A data scientist's project with its own training/, monitoring/ and gating/ packages on the path."""
    project = tmp_path / "my_project"
    for name in ("training", "monitoring", "gating"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(
            f"raise ImportError('the user\\'s own {name} package was imported by driftgate')\n")
        (project / name / "model.py").write_text("VALUE = 'user'\n")
    env = {**os.environ, "PYTHONPATH": str(project), "MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1",
           "DRIFTGATE_CONF_DIR": str(REPO / "conf")}
    small = ["--set", f"workspace.root={tmp_path / '.driftgate'}", "--set", "demo.customers=600",
             "--set", "training.params={max_iter: 40}", "--set", "training.calibration_folds=2",
             "--set", "promotion.guard.n_resamples=200"]
    proc = subprocess.run([sys.executable, "-m", "driftgate.cli", "demo", *small], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "champion now" in proc.stdout
    assert "was imported by driftgate" not in proc.stdout + proc.stderr
    # and the user's own package still imports as theirs, next to driftgate
    check = subprocess.run([sys.executable, "-c", "import importlib, driftgate.training; "
                            "print(importlib.import_module('training.model').VALUE)"],
                           cwd=project, env=env, capture_output=True, text=True)
    assert "the user's own training package was imported" in check.stderr  # theirs, not ours
