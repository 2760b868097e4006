"""Pluggable triggers: a separately installed package registers one through the entry-point group."""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftgate.core.settings import load_settings
from driftgate.core.errors import ConfigError, TriggerError
from driftgate.triggers import StateStore, TriggerRunner, available, build_triggers, create, load
from driftgate.triggers.base import TickResult

FIXTURE = Path(__file__).parent / "fixtures" / "driftgate_trigger_example"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """pip-install the example package into a private target dir and put it on sys.path."""
    src = tmp_path_factory.mktemp("src") / "pkg"
    shutil.copytree(FIXTURE, src)  # build in a scratch copy: the repo stays clean
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("driftgate_trigger_example", None)
    importlib.invalidate_caches()


def test_builtins_are_registered():
    kinds = available()
    assert {"table_update", "schedule", "manual", "webhook"} <= set(kinds)
    assert load("schedule").__name__ == "ScheduleTrigger"


def test_unknown_kind_and_bad_config_are_clear():
    with pytest.raises(TriggerError, match="'nope' is not registered under the entry-point group 'driftgate.triggers'"):
        load("nope")
    with pytest.raises(ConfigError, match="triggers.schedule: schedule: cron must be"):
        create("schedule", where="triggers.schedule", cron="whenever")


def test_external_trigger_runs_without_touching_driftgate(installed_plugin, tmp_path):
    assert "marker_file" in available()
    marker = tmp_path / "marker.txt"
    settings = load_settings(REPO / "conf", "demo", (
        f"workspace.root={tmp_path / '.driftgate'}",
        "triggers.table_update.enabled=false",
        f"triggers.plugins=[{{name: marker, kind: marker_file, config: {{path: '{marker}'}}}}]",
    ))
    triggers = build_triggers(settings)
    plugin = next(t for t in triggers if t.name == "marker")
    assert type(plugin).__module__ == "driftgate_trigger_example"
    launched = []
    runner = TriggerRunner([plugin], StateStore(tmp_path / "state.db"), lambda req, trig: launched.append(req.run_key),
                           background=False)
    assert "does not exist" in runner.tick()[0].skip
    marker.write_text("v1")
    runner.tick()
    runner.tick()
    marker.write_text("v2")
    runner.tick()
    assert len(launched) == 2 and all(k.startswith("marker:") for k in launched)


def test_plugin_with_bad_config_names_its_path(installed_plugin, tmp_path):
    settings = load_settings(REPO / "conf", "demo", (
        f"workspace.root={tmp_path / '.driftgate'}",
        "triggers.plugins=[{name: marker, kind: marker_file, config: {colour: red}}]",
    ))
    with pytest.raises(ConfigError, match=r"triggers.plugins\[0\]:"):
        build_triggers(settings)


def test_a_tick_must_say_why_it_did_nothing():
    with pytest.raises(ValueError, match="SkipReason"):
        TickResult()
