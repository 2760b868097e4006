"""Config loading: layers, overrides, and one-line errors that name file and key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftgate.core.settings import Settings, load_settings
from driftgate.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def conf(tmp_path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(REPO / "conf", target, ignore=shutil.ignore_patterns("user"))
    return target


def test_repo_conf_loads_in_both_environments():
    local = load_settings(REPO / "conf", "local")
    remote = load_settings(REPO / "conf", "databricks")
    assert isinstance(local, Settings)
    assert local.workspace.backend == "local" and remote.workspace.backend == "databricks"
    # Table and model names are the same three-level names in both profiles.
    assert local.project == remote.project
    assert local.monitor.table_name == remote.monitor.table_name


def test_environment_overlay_wins_over_base(conf):
    (conf / "local" / "extra.yml").write_text("project:\n  experiment_name: /Shared/other\n")
    assert load_settings(conf, "local").project.experiment_name == "/Shared/other"
    assert load_settings(conf, "databricks").project.experiment_name != "/Shared/other"


def test_user_layer_and_overrides_win(conf):
    (conf / "user").mkdir()
    (conf / "user" / "me.yml").write_text("project:\n  experiment_name: /Users/me/exp\n")
    assert load_settings(conf, "local").project.experiment_name == "/Users/me/exp"
    s = load_settings(conf, "local", ["project.experiment_name=/x", "demo.seed=11"])
    assert s.project.experiment_name == "/x" and s.demo.seed == 11


def test_env_variable_selects_environment(conf, monkeypatch):
    monkeypatch.setenv("DRIFTGATE_ENV", "databricks")
    assert load_settings(conf).env == "databricks"


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("project:\n  modle_name: a.b.c\n", "project.modle_name: unknown key"),
        ("demo:\n  seed: many\n", "demo.seed: Input should be a valid integer"),
        ("project:\n  model_name: churn\n", "project.model_name: must be a Unity Catalog name"),
        ("demo:\n  customers: 5\n", "demo.customers: Input should be greater than or equal to 200"),
    ],
)
def test_bad_values_name_file_and_key(conf, yaml_text, expected):
    bad = conf / "local" / "bad.yml"
    bad.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(conf, "local")
    message = str(err.value)
    assert message.startswith(f"{bad}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_required_field_is_reported(conf):
    (conf / "local" / "bad.yml").write_text("gate:\n  rules:\n    - {}\n")
    with pytest.raises(ConfigError, match=r"gate\.rules\[\d+\]\.\w+: (required key is missing|Field required)"):
        load_settings(conf, "local")


def test_invalid_yaml_names_file_and_line(conf):
    bad = conf / "base" / "broken.yml"
    bad.write_text("project:\n  model_name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yml: line \d+ not valid YAML"):
        load_settings(conf, "local")


def test_secrets_are_refused_in_committed_layers(conf):
    (conf / "base" / "oops.yml").write_text("webhook:\n  password: hunter2\n")
    with pytest.raises(ConfigError, match=r"oops\.yml: webhook\.password: secrets must not live"):
        load_settings(conf, "local")


def test_bad_override_and_bad_environment(conf):
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_settings(conf, "local", ["nonsense"])
    with pytest.raises(ConfigError, match="--set project.model_name: project.model_name"):
        load_settings(conf, "local", ["project.model_name=x"])
    with pytest.raises(ConfigError, match="must be one of local, databricks"):
        load_settings(conf, "staging")


def test_settings_are_frozen():
    s = load_settings(REPO / "conf", "local")
    with pytest.raises(Exception):
        s.project.model_name = "a.b.c"  # type: ignore[misc]


def test_monitor_conf_accepts_the_sdk_enum_spellings():
    from driftgate.monitoring.config import CustomMetric, InferenceLogConfig

    assert InferenceLogConfig(problem_type="PROBLEM_TYPE_REGRESSION").problem_type == "regression"
    assert InferenceLogConfig(problem_type="INFERENCE_PROBLEM_TYPE_CLASSIFICATION").problem_type == "classification"
    assert CustomMetric(name="m", definition="avg(x)", type="CUSTOM_METRIC_TYPE_DERIVED").type == "derived"
    assert CustomMetric(name="m", definition="avg(x)", type="DATA_PROFILING_CUSTOM_METRIC_TYPE_DRIFT").type == "drift"
