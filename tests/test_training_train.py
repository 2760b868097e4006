"""training.train: a tracked, reproducible run that registers only above the quality floor."""
from __future__ import annotations

import dataclasses

import mlflow
import pandas as pd
import pytest

from driftgate import training
import training_world as tw
from driftgate.core.errors import ConfigError
from driftgate.training.config import TrainingConfig
from driftgate.training.model import time_folds, time_split
from training_world import mlflow_template, tws, with_training  # noqa: F401  (fixtures)
from driftgate.workspace import FakeRegistry


def test_time_split_orders_train_before_validation_before_test():
    frame = tw.events(days=20, rows_per_day=25)
    split = time_split(frame, TrainingConfig())
    assert split.train["timestamp"].max() < split.validation["timestamp"].min()
    assert split.validation["timestamp"].max() < split.test["timestamp"].min()
    assert len(split.train) + len(split.validation) + len(split.test) == len(frame)
    assert abs(len(split.test) / len(frame) - 0.15) < 0.01


def test_time_folds_only_ever_train_on_the_past():
    frame = tw.events(days=12, rows_per_day=25)
    folds = list(time_folds(frame["timestamp"], 4))
    assert len(folds) == 4
    for train_idx, test_idx in folds:
        assert frame["timestamp"].iloc[train_idx].max() < frame["timestamp"].iloc[test_idx].min()
    assert [len(tr) for tr, _ in folds] == sorted(len(tr) for tr, _ in folds)


def test_train_registers_a_tracked_candidate_with_lineage(tws):
    tw.world(tws, days=30, rows_per_day=40)
    result = training.train(tws, reason={"trigger": "table_update", "decision_id": "dec-1", "run_key": "k1"})

    assert result.registered and result.refused_reason is None
    info = tws.registry.get_version(tws.settings.project.model_name, result.version)
    assert info.run_id == result.run_id and info.tags["driftgate.decision_id"] == "dec-1"
    assert info.aliases == ()  # training never moves aliases
    assert result.metrics["test_roc_auc"] > 0.6
    assert {f"{s}_{m}" for s in ("train", "validation", "test") for m in ("roc_auc", "log_loss")} <= set(result.metrics)

    run = mlflow.MlflowClient(tws.tracking_uri).get_run(result.run_id)
    tags, params = run.data.tags, run.data.params
    assert tags["driftgate.trigger"] == "table_update" and tags["driftgate.decision_id"] == "dec-1"
    assert tags["driftgate.code_version"] and tags["driftgate.registered"] == "true"
    assert params["estimator"] == "hist_gradient_boosting" and params["model.class_weight"] == "balanced"
    # the shadow test's leakage guard: every fitted row lies before the validation cut
    assert info.tags["driftgate.trained_before"] == params["validation_start"]
    names = sorted(d.dataset.name for d in run.inputs.dataset_inputs)
    assert names == sorted([f"{tw.TRAINING}@v0:train", f"{tw.TRAINING}@v0:validation", f"{tw.TRAINING}@v0:test",
                            f"{tw.FEATURES}@v0"])
    contexts = {d.dataset.name: {t.key: t.value for t in d.tags} for d in run.inputs.dataset_inputs}
    assert contexts[f"{tw.FEATURES}@v0"]["mlflow.data.context"] == "feature_lookup"
    assert contexts[f"{tw.FEATURES}@v0"]["delta_table_version"] == "0"

    model = mlflow.sklearn.load_model(f"models:/{tws.settings.project.model_name}/{result.version}")
    frame = tw.events(days=1, rows_per_day=10, seed=5)
    proba = model.predict_proba(frame[tw.NUMERIC + tw.CATEGORICAL])[:, 1]
    assert ((proba > 0) & (proba < 1)).all()
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    assert pyfunc.metadata.get_input_schema().input_names() == tws.settings.training.features


def test_same_seed_and_data_versions_give_the_same_metrics(tws):
    tw.world(tws, days=20, rows_per_day=30)
    ws = dataclasses.replace(tws, registry=FakeRegistry())
    first, second = training.train(ws), training.train(ws)
    assert first.metrics == second.metrics and first.run_id != second.run_id
    assert first.data_versions == second.data_versions == {tw.TRAINING: 0, tw.FEATURES: 0}


def test_candidate_below_the_floor_is_not_registered_and_the_run_says_why(tws):
    tw.world(tws, days=20, rows_per_day=30, signal=0.0)  # labels are noise
    registry = FakeRegistry()
    ws = dataclasses.replace(with_training(tws, quality_floor={"roc_auc": {"threshold": 0.9}}), registry=registry)
    result = training.train(ws)
    assert not result.registered and result.version is None
    assert "roc_auc" in result.refused_reason and "0.9" in result.refused_reason
    assert not [c for c in registry.calls if c[0] == "register"]
    tags = mlflow.MlflowClient(tws.tracking_uri).get_run(result.run_id).data.tags
    assert tags["driftgate.registered"] == "false" and "roc_auc" in tags["driftgate.refused_reason"]


def test_a_removed_default_floor_is_recorded_on_the_training_run(tws):
    from driftgate.core.settings import load_settings
    from tests.conftest import REPO

    tw.world(tws, days=20, rows_per_day=30)
    settings = load_settings(REPO / "conf", "demo", (f"workspace.root={tws.root}",
                                                       "training.quality_floor.roc_auc=null",
                                                       "training.quality_floor.log_loss={threshold: 5}"))
    result = training.train(dataclasses.replace(tws, settings=settings, registry=FakeRegistry()))
    tags = mlflow.MlflowClient(tws.tracking_uri).get_run(result.run_id).data.tags
    assert tags["driftgate.config.removed_defaults"] == (
        "training.quality_floor.roc_auc (--set training.quality_floor.roc_auc)")


def test_a_crash_mid_training_leaves_the_registry_untouched(tws, monkeypatch):
    tw.world(tws, days=20, rows_per_day=30)
    registry = FakeRegistry()
    ws = dataclasses.replace(tws, registry=registry)

    def boom(*args, **kwargs):
        raise MemoryError("killed mid-fit")

    monkeypatch.setattr("sklearn.pipeline.Pipeline.fit", boom)
    with pytest.raises(MemoryError):
        training.train(ws)
    assert registry.calls == []
    [run] = mlflow.MlflowClient(tws.tracking_uri).search_runs(
        [tws.experiment_id()], filter_string="tags.`driftgate.stage` = 'train'")
    assert run.info.status == "FAILED"


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest"])
def test_other_estimators_and_explicit_params(tws, estimator):
    tw.world(tws, days=20, rows_per_day=30)
    ws = dataclasses.replace(with_training(tws, estimator=estimator, calibration="isotonic", params={}), registry=FakeRegistry())
    params = {"C": 0.5} if estimator == "logistic_regression" else {"n_estimators": 20, "max_depth": 4}
    result = training.train(ws, params=params)
    assert result.registered and all(result.params[k] == v for k, v in params.items())


def test_unknown_estimator_parameter_fails_before_any_run(tws):
    tw.world(tws, days=10, rows_per_day=20)
    with pytest.raises(ConfigError, match="max_leaves is not a parameter of hist_gradient_boosting"):
        training.train(tws, params={"max_leaves": 3})
    assert mlflow.MlflowClient(tws.tracking_uri).search_runs([tws.experiment_id()]) == []


@pytest.mark.parametrize("floor, metrics, passes", [
    ({"roc_auc": {"threshold": 0.7}}, {"roc_auc": 0.71}, True),
    ({"roc_auc": {"threshold": 0.7}}, {"roc_auc": 0.69}, False),
    ({"log_loss": {"threshold": 0.5}}, {"log_loss": 0.45}, True),   # lower is better
    ({"log_loss": {"threshold": 0.5}}, {"log_loss": 0.55}, False),
    ({"roc_auc": {"threshold": 0.7}}, {"roc_auc": float("nan")}, False),
    ({}, {"roc_auc": 0.1}, True),
])
def test_quality_floor_truth_table(floor, metrics, passes):
    from driftgate.training.trainer import check_floor

    cfg = TrainingConfig(quality_floor=floor)
    reason = check_floor(cfg, metrics)
    assert (reason is None) is passes
    if not passes:
        assert next(iter(floor)) in reason
