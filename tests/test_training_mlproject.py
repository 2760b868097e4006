"""The MLflow Project: every entry point runs its driftgate command with parameters mapped."""
from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
ENTRY_COMMANDS = {"main": "demo", "train": "train", "tune": "tune", "monitor": "monitor",
                  "evaluate_drift": "gate", "shadow": "shadow", "promote": "promote"}


def project():
    return yaml.safe_load((REPO / "MLproject").read_text())


def render(entry: str, **given: str) -> str:
    """Format the command as ``mlflow run`` does: defaults filled in, every value shell-quoted."""
    spec = project()["entry_points"][entry]
    values = {k: str(given.get(k, v.get("default"))) for k, v in spec["parameters"].items()}
    return spec["command"].format(**{k: shlex.quote(v) for k, v in values.items()})


def argv(tmp_path: Path, entry: str, **given: str) -> list[str]:
    """Run the rendered command with a stand-in ``driftgate`` that prints its arguments."""
    stub = tmp_path / "driftgate"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", render(entry, **given)], capture_output=True, text=True, env=env, check=True,
                         cwd=tmp_path)
    return out.stdout.splitlines()


def test_every_stage_has_an_entry_point_with_typed_parameters_and_python_env():
    spec = project()
    assert set(spec["entry_points"]) == set(ENTRY_COMMANDS)
    for entry in spec["entry_points"].values():
        assert all(p["type"] in {"string", "float", "path", "uri"} for p in entry["parameters"].values())
    env = yaml.safe_load((REPO / spec["python_env"]).read_text())
    assert env["python"] == "3.11.7"


@pytest.mark.parametrize("entry, command", sorted(ENTRY_COMMANDS.items()))
def test_entry_point_runs_the_matching_driftgate_command(tmp_path, entry, command):
    from driftgate.cli import app

    args = argv(tmp_path, entry)
    # The main entry point runs the demo, on the demo environment's names; every other one on local.
    env = "demo" if entry == "main" else "local"
    assert args[0] == command and args[1:5] == ["--conf", "conf", "--env", env]
    assert command in {c.name for c in app.registered_commands}
    assert "--set" not in args  # defaults change nothing configured in conf


def test_parameters_map_to_options_and_set_overrides(tmp_path):
    args = argv(tmp_path, "train", estimator_name="random_forest", use_best_params="true", decision_id="d-9",
                overrides="training.window_days=30 training.seed=5", params='{"max_depth": 4}')
    assert args[args.index("--decision-id") + 1] == "d-9" and "--use-best-params" in args
    assert args[args.index("--params") + 1] == '{"max_depth": 4}'
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == ["training.window_days=30", "training.seed=5", "training.estimator=random_forest"]
    tune = argv(tmp_path, "tune", n_trials="30", sampler="random")
    assert tune[tune.index("--n-trials") + 1] == "30" and "tuning.sampler=random" in tune
    gate = argv(tmp_path, "evaluate_drift", now="2026-07-01T00:00:00Z")
    assert gate[gate.index("--now") + 1] == "2026-07-01T00:00:00Z"


def test_train_command_rejects_params_that_are_not_a_json_object(tmp_path):
    from driftgate.cli import app

    result = CliRunner().invoke(app, ["train", "--conf", str(REPO / "conf"), "--env", "demo", "--set",
                                      f"workspace.root={tmp_path}", "--params", "[1, 2]"])
    assert result.exit_code == 1
    assert "--params: must be a JSON object, got list" in result.output


@pytest.mark.parametrize("overrides, expected", [
    ("training.window_days=30 training.seed=5", ["training.window_days=30", "training.seed=5"]),
    ("project.experiment_name=/Users/me/churn runs; gate.rules.f1_drop.threshold=0.55",
     ["project.experiment_name=/Users/me/churn runs", "gate.rules.f1_drop.threshold=0.55"]),
    ("project.experiment_name=/Users/me/churn runs;", ["project.experiment_name=/Users/me/churn runs"]),
    ("project.experiment_name=/a b; c\ngate.rules.f1_drop.filters.model_id='*'\n",
     ["project.experiment_name=/a b; c", "gate.rules.f1_drop.filters.model_id='*'"]),
    ("gate.rules.f1_drop.filters.model_id=*", ["gate.rules.f1_drop.filters.model_id=*"]),
    ("  ", []),
])
def test_overrides_split_on_newlines_then_semicolons_then_spaces(tmp_path, overrides, expected):
    (tmp_path / "gate.rules.f1_drop.filters.model_id=x").touch()  # what an unquoted '*' would glob to
    args = argv(tmp_path, "monitor", overrides=overrides)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert [s.strip() for s in sets] == expected


def test_overrides_with_spaces_reach_the_settings(tmp_path):
    from driftgate.core.settings import load_settings

    args = argv(tmp_path, "shadow", overrides="project.experiment_name=/Users/me/churn runs; "
                                              "promotion.criteria.roc_auc.threshold=0.7")
    sets = tuple(args[i + 1] for i, a in enumerate(args) if a == "--set")
    s = load_settings(REPO / "conf", "local", sets)
    assert s.project.experiment_name == "/Users/me/churn runs"
    assert s.promotion.criteria["roc_auc"].threshold == 0.7 and s.promotion.criteria["roc_auc"].min_absolute_change
