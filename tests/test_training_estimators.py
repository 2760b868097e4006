"""A data scientist's own estimator (``package.module:factory``) and the threads a fit may use."""
from __future__ import annotations

import dataclasses
import os

import mlflow
import pytest

from driftgate import training
import training_world as tw
from driftgate.core.errors import ConfigError
from driftgate.core.settings import Settings
from driftgate.training.config import TrainingConfig
from training_world import mlflow_template, tws, with_training  # noqa: F401  (fixtures)
from driftgate.workspace import FakeRegistry

SGD = "estimator_factories:sgd_pipeline"


def runs(ws):
    return mlflow.MlflowClient(ws.tracking_uri).search_runs([ws.experiment_id()])


def test_own_pipeline_trains_registers_and_gets_seed_and_class_weights(tws):
    tw.world(tws, days=20, rows_per_day=30)
    ws = dataclasses.replace(with_training(tws, estimator=SGD, params={"sgdclassifier__alpha": 0.001}),
                             registry=FakeRegistry())
    result = training.train(ws)
    assert result.registered, result.refused_reason
    assert result.params["sgdclassifier__alpha"] == 0.001
    # seed and class weights reach the pipeline's step, as for the built-ins
    assert result.params["sgdclassifier__random_state"] == ws.settings.training.seed
    assert result.params["sgdclassifier__class_weight"] == "balanced"
    model = mlflow.sklearn.load_model(result.model_uri)
    fitted = model.named_steps["model"].calibrated_classifiers_[0].estimator
    assert [name for name, _ in fitted.steps] == ["standardscaler", "sgdclassifier"]
    assert fitted.named_steps["sgdclassifier"].alpha == 0.001
    assert mlflow.MlflowClient(ws.tracking_uri).get_run(result.run_id).data.params["estimator"] == SGD


@pytest.mark.parametrize("estimator, fragment", [
    ("estimator_factories:not_an_estimator", "must return a scikit-learn-compatible classifier or Pipeline, got a "
                                             "dict without fit, predict"),
    ("estimator_factories:NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
    ("no_such_package.models:factory", "cannot import 'no_such_package.models'"),
])
def test_a_factory_that_gives_no_estimator_is_refused_before_any_run(tws, estimator, fragment):
    tw.world(tws, days=10, rows_per_day=20)
    ws = with_training(tws, estimator=estimator)
    for call in (training.train, lambda w: training.tune(w, n_trials=1)):
        with pytest.raises(ConfigError) as err:
            call(ws)
        message = str(err.value)
        assert message.startswith("training.estimator: ") and fragment in message and "\n" not in message
    assert runs(ws) == []


def test_own_estimator_parameters_are_checked_against_get_params_before_fitting(tws):
    tw.world(tws, days=10, rows_per_day=20)
    ws = with_training(tws, estimator=SGD, params={"sgdclassifier__alfa": 0.1})
    with pytest.raises(ConfigError, match=f"training.params: sgdclassifier__alfa is not a parameter of {SGD}; "
                                          "valid: .*sgdclassifier__alpha"):
        training.train(ws)
    assert runs(ws) == []


def test_own_estimator_is_tuned_over_its_search_space_from_conf(tws):
    tw.world(tws, days=16, rows_per_day=25)
    data = tws.settings.model_dump()
    data["training"].update(estimator=SGD, params={})
    data["tuning"].update(cv_folds=2, search_space={SGD: {
        "sgdclassifier__alpha": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}}})
    ws = dataclasses.replace(tws, settings=Settings.model_validate(data))
    result = training.tune(ws, n_trials=2)
    assert result.n_complete == 2 and set(result.best_params) == {"sgdclassifier__alpha"}
    assert result.study_name == f"driftgate-tuning.{SGD}"

    data["tuning"]["search_space"] = {SGD: {"alpha": {"type": "float", "low": 1e-5, "high": 1e-1}}}
    with pytest.raises(ConfigError, match=f"tuning.search_space.{SGD}: alpha is not a parameter"):
        training.tune(dataclasses.replace(tws, settings=Settings.model_validate(data)), n_trials=1)


def test_own_estimator_without_a_search_space_cannot_be_tuned(tws):
    tw.world(tws, days=10, rows_per_day=20)
    with pytest.raises(ConfigError, match=f"tuning.search_space.{SGD}: no search space"):
        training.tune(with_training(tws, estimator=SGD, params={}), n_trials=1)


def test_balanced_classes_need_a_class_weight_parameter(tws):
    tw.world(tws, days=10, rows_per_day=20)
    ws = with_training(tws, estimator="estimator_factories:forest_with_threads", params={})
    assert training.train(dataclasses.replace(ws, registry=FakeRegistry())).params["class_weight"] == "balanced"
    from sklearn.neighbors import KNeighborsClassifier  # no class_weight parameter

    import estimator_factories

    estimator_factories.knn = lambda: KNeighborsClassifier()
    try:
        with pytest.raises(ConfigError, match="training.class_weight: balanced needs a class_weight parameter"):
            training.train(with_training(tws, estimator="estimator_factories:knn", params={}))
        knn = training.train(dataclasses.replace(with_training(tws, estimator="estimator_factories:knn", params={},
                                                               class_weight="none"), registry=FakeRegistry()))
        assert "class_weight" not in knn.params
    finally:
        del estimator_factories.knn


def test_threads_default_to_the_cores_available_to_the_process(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert TrainingConfig().threads == len(os.sched_getaffinity(0))
    assert TrainingConfig(n_jobs=3).threads == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # an operator's explicit choice is kept
    assert TrainingConfig().threads == 1 and TrainingConfig(n_jobs=3).threads == 3


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "estimator_factories:forest_with_threads"])
def test_n_jobs_reaches_the_estimator_and_the_openmp_pool_of_every_fit(tws, monkeypatch, estimator):
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_info

    tw.world(tws, days=12, rows_per_day=20)
    ws = dataclasses.replace(with_training(tws, estimator=estimator, n_jobs=3,
                                           params={} if "forest" in estimator else {"max_iter": 5}),
                             registry=FakeRegistry())
    seen = []
    real_fit = Pipeline.fit

    def recording_fit(self, *args, **kwargs):
        seen.append({p["user_api"]: p["num_threads"] for p in threadpool_info()})
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "fit", recording_fit)
    result = training.train(ws)
    assert seen and all(pools.get("openmp") == 3 for pools in seen), seen
    assert {p["user_api"]: p["num_threads"] for p in threadpool_info()}.get("openmp") == 1  # restored after
    if "forest" in estimator:
        assert result.params["n_jobs"] == 3
    assert mlflow.MlflowClient(ws.tracking_uri).get_run(result.run_id).data.params["threads"] == "3"


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_a_container_cpu_quota_caps_the_default_threads(tmp_path, files, expected):
    from driftgate.training.config import available_cores

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cores = len(os.sched_getaffinity(0))
    assert available_cores(str(tmp_path)) == (min(cores, expected) if expected else cores)


def test_n_jobs_is_not_set_where_it_does_nothing():
    import warnings

    from driftgate.training.estimators import estimator_params, new_estimator

    cfg = TrainingConfig(estimator="logistic_regression", n_jobs=2)
    params = estimator_params(cfg, "binary")
    assert "n_jobs" not in params and params["class_weight"] == "balanced"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # scikit-learn warns when LogisticRegression gets n_jobs
        new_estimator(cfg, "binary", params).fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])
    assert estimator_params(TrainingConfig(estimator="random_forest", n_jobs=2), "regression")["n_jobs"] == 2
