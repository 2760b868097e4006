"""Training and tuning config: defaults validate, bad values fail at load with one line."""
from __future__ import annotations

import pytest

from driftgate.core.settings import load_settings
from driftgate.core.errors import ConfigError
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load(*overrides: str):
    return load_settings(REPO / "conf", "demo", overrides)


def test_repo_conf_declares_the_demo_feature_lookup_once():
    cfg = load().training
    [lookup] = cfg.feature_lookups
    assert lookup.table_name == "main.driftgate_demo.customer_features"
    assert lookup.lookup_key == ["customer_id"] and lookup.timestamp_lookup_key == "timestamp"
    assert cfg.features == ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "age", "plan", "region"]
    assert set(load().tuning.search_space) == {"hist_gradient_boosting", "logistic_regression", "random_forest"}


@pytest.mark.parametrize("override, fragment", [
    ("tuning.search_space.random_forest.max_depth={type: int, low: 9, high: 3}", "low must be below high"),
    ("tuning.search_space.random_forest.max_depth={type: normal, low: 1}", "tuning.search_space.random_forest"),
    ("tuning.search_space.random_forest.max_depth=12", "tuning.search_space.random_forest.max_depth"),
    ("tuning.search_space.logistic_regression.C={type: float, low: 0, high: 1, log: true}", "log-scaled"),
    ("tuning.storage=postgresql://user:hunter2@db/optuna", "DRIFTGATE_OPTUNA_STORAGE"),
    (("training.validation_fraction=0.45", "training.test_fraction=0.4"), "at least 20% for training"),
    ("training.estimator=xgboost", "training.estimator"),
    ("training.table_features=[plan]", "already looked up"),
])
def test_bad_training_conf_fails_at_load_naming_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load(*((override,) if isinstance(override, str) else override))
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert "hunter2" not in message


def test_setting_one_estimators_space_keeps_the_others():
    space = load("tuning.search_space.logistic_regression={C: {type: float, low: 0.1, high: 10}}").tuning.search_space
    assert space["logistic_regression"]["C"].low == 0.1
    assert "learning_rate" in space["hist_gradient_boosting"]


def test_floor_direction_defaults_by_metric():
    cfg = load("training.quality_floor={log_loss: {threshold: 0.7}, roc_auc: {threshold: 0.6}}").training
    assert cfg.floor_direction("log_loss") is False and cfg.floor_direction("roc_auc") is True
