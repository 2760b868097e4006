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


def test_problem_type_sets_the_defaults_of_every_stage():
    from driftgate.promotion.policy import thresholds_for

    reg = load("project.problem_type=regression")
    assert reg.monitor.inference_log.problem_type == "regression"
    assert reg.tuning.metric == "root_mean_squared_error" and set(reg.training.quality_floor) == {"r2_score"}
    assert reg.promotion.primary_metric == "root_mean_squared_error"
    assert reg.promotion.fairness.metrics == ["mean_absolute_error"]
    rmse = thresholds_for(reg.promotion, with_baseline=True)["root_mean_squared_error"]
    assert rmse.greater_is_better is False and rmse.min_relative_change == 0.01
    assert reg.training.floor_direction("r2_score") is True

    multi = load("project.problem_type=multiclass")
    assert multi.monitor.inference_log.problem_type == "classification"
    assert multi.promotion.primary_metric == "f1_score" and "roc_auc" not in multi.promotion.metrics
    assert multi.tuning.metric == "f1" and set(multi.training.quality_floor) == {"f1"}
    # conf adds to the problem type's defaults (and wins where it names one)
    own = load("project.problem_type=multiclass", "promotion.criteria={log_loss: {threshold: 0.9}}")
    assert set(own.promotion.criteria) == {"f1_score", "accuracy_score", "log_loss"}
    assert thresholds_for(own.promotion, with_baseline=False)["log_loss"].greater_is_better is False

    binary = load()
    assert binary.project.problem_type == "binary" and binary.promotion.primary_metric == "roc_auc"
    assert set(binary.training.quality_floor) == {"roc_auc"}


@pytest.mark.parametrize("overrides, fragment", [
    (("monitor.inference_log.problem_type=classification",), "monitor.inference_log.problem_type: project.problem_type "
                                                              "is regression, so the monitor must analyse regression"),
    (("promotion.metrics=[roc_auc, r2_score, root_mean_squared_error]",),
     "promotion.metrics: ['roc_auc'] are not regression metrics"),
    (("tuning.metric=roc_auc",), "tuning.metric: 'roc_auc' is not a regression metric"),
    (("training.quality_floor={roc_auc: {threshold: 0.6}}",), "training.quality_floor: ['roc_auc'] are not regression"),
    (("promotion.guard.method=mcnemar",), "promotion.guard.method: McNemar's test"),
    (("training.estimator=logistic_regression",), "training.estimator: logistic_regression classifies"),
    (("promotion.fairness.metrics=[selection_rate]",), "promotion.fairness.metrics: ['selection_rate']"),
])
def test_settings_that_contradict_the_problem_type_are_refused_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load("project.problem_type=regression", *overrides)
    message = str(err.value)
    assert fragment in message and "\n" not in message, message
    assert message.startswith("--set ")  # the layer that set the key


def test_own_estimator_names_are_accepted_in_conf_and_search_space():
    cfg = load("training.estimator=my_models.boosting:make_lgbm",
               "tuning.search_space={my_models.boosting:make_lgbm: {num_leaves: {type: int, low: 8, high: 64}}}")
    assert cfg.training.estimator == "my_models.boosting:make_lgbm"
    assert "num_leaves" in cfg.tuning.search_space["my_models.boosting:make_lgbm"]
    with pytest.raises(ConfigError, match="tuning.search_space: keys must be an estimator"):
        load("tuning.search_space={lightgbm: {num_leaves: {type: int, low: 8, high: 64}}}")


def test_a_layer_naming_one_criterion_keeps_the_problem_types_other_defaults():
    cfg = load("project.problem_type=regression", "promotion.criteria.root_mean_squared_error.threshold=5",
               "training.quality_floor.r2_score.threshold=0.2")
    rmse = cfg.promotion.criteria["root_mean_squared_error"]
    assert (rmse.threshold, rmse.min_relative_change) == (5.0, 0.01)  # the regression default's field is kept
    assert set(cfg.promotion.criteria) == {"root_mean_squared_error", "r2_score"}  # no binary roc_auc seeded
    assert cfg.training.quality_floor["r2_score"].threshold == 0.2
    multi = load("project.problem_type=multiclass", "promotion.criteria.accuracy_score=null")
    assert set(multi.promotion.criteria) == {"f1_score"}
    assert multi.removed_defaults == ("promotion.criteria.accuracy_score",)
