"""training.tune: a persistent Optuna study, nested MLflow runs, pruning, resume, best params to train."""
from __future__ import annotations

import dataclasses

import mlflow
import optuna
import pytest

from driftgate import training
import training_world as tw
from driftgate.core.settings import Settings
from driftgate.core.errors import ConfigError
from driftgate.training.tuner import storage_url, study_name
from training_world import mlflow_template, tws  # noqa: F401  (fixtures)
from driftgate.workspace import FakeRegistry

SMALL_SPACE = {"hist_gradient_boosting": {
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "max_iter": {"type": "int", "low": 5, "high": 20, "step": 5},
    "max_leaf_nodes": {"type": "categorical", "choices": [7, 15]},
}}


def small(ws, **tuning):
    data = ws.settings.model_dump()
    data["tuning"].update({"cv_folds": 3, "pruner_startup_trials": 2, "search_space": SMALL_SPACE, **tuning})
    return dataclasses.replace(ws, settings=Settings.model_validate(data))


def children(ws, parent_id):
    client = mlflow.MlflowClient(ws.tracking_uri)
    return client.search_runs([ws.experiment_id()], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


def test_tune_runs_a_persistent_study_with_nested_trials_and_feeds_train(tws):
    tw.world(tws, days=16, rows_per_day=25)
    ws = small(tws)
    seen = []
    result = training.tune(ws, n_trials=5, progress=seen.append)

    assert result.n_finished == 5 and result.n_new == 5 and result.best_value > 0.5
    assert set(result.best_params) == {"learning_rate", "max_iter", "max_leaf_nodes"}
    assert [p.finished for p in seen] == [1, 2, 3, 4, 5] and seen[-1].best_value == result.best_value
    assert storage_url(ws) == f"sqlite:///{ws.root / 'optuna.db'}" and (ws.root / "optuna.db").exists()

    trials = children(ws, result.parent_run_id)
    assert len(trials) == 5
    assert {r.data.tags["optuna.state"] for r in trials} <= {"COMPLETE", "PRUNED"}
    parent = mlflow.MlflowClient(ws.tracking_uri).get_run(result.parent_run_id)
    assert parent.data.tags["driftgate.study"] == study_name(ws.settings) == "driftgate-tuning.hist_gradient_boosting"
    assert parent.data.metrics["best_roc_auc"] == pytest.approx(result.best_value)

    trained = training.train(dataclasses.replace(ws, registry=FakeRegistry()), use_best_params=True)
    assert all(trained.params[k] == v for k, v in result.best_params.items())
    run = mlflow.MlflowClient(ws.tracking_uri).get_run(trained.run_id)
    assert run.data.params["params_source"] == "tuning"


def test_a_stopped_study_resumes_under_the_same_parent(tws, monkeypatch):
    tw.world(tws, days=16, rows_per_day=25)
    ws = small(tws, pruner="none")
    fits = {"n": 0}
    real_fit = __import__("sklearn.pipeline", fromlist=["Pipeline"]).Pipeline.fit

    def crash_on_the_seventh_fit(self, *args, **kwargs):
        fits["n"] += 1
        if fits["n"] == 7:  # third trial, first fold: a crash mid-tuning
            raise KeyboardInterrupt("worker killed")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr("sklearn.pipeline.Pipeline.fit", crash_on_the_seventh_fit)
    with pytest.raises(KeyboardInterrupt):
        training.tune(ws, n_trials=4)
    monkeypatch.undo()

    study = optuna.load_study(study_name=study_name(ws.settings), storage=storage_url(ws))
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2

    result = training.tune(ws, n_trials=4)
    assert result.n_finished == 4 and result.n_new == 2 and result.n_complete == 4
    assert len([r for r in children(ws, result.parent_run_id) if r.info.status == "FINISHED"]) == 4
    again = training.tune(ws, n_trials=4)
    assert again.n_new == 0 and again.best_params == result.best_params


def test_pruning_stops_trials_after_an_early_fold(tws):
    tw.world(tws, days=16, rows_per_day=25)
    ws = small(tws, pruner="percentile", percentile=10.0, pruner_startup_trials=1)  # keep the top 10%
    result = training.tune(ws, n_trials=5)
    assert result.n_pruned >= 1 and result.n_complete >= 1
    pruned = [r for r in children(ws, result.parent_run_id) if r.data.tags["optuna.state"] == "PRUNED"]
    client = mlflow.MlflowClient(ws.tracking_uri)
    assert all(len(client.get_metric_history(r.info.run_id, "cv_roc_auc")) < 3 for r in pruned)


def test_search_space_naming_an_unknown_parameter_fails_before_any_trial(tws):
    tw.world(tws, days=10, rows_per_day=20)
    ws = small(tws, search_space={"hist_gradient_boosting": {"depth": {"type": "int", "low": 2, "high": 5}}})
    with pytest.raises(ConfigError, match="tuning.search_space.hist_gradient_boosting: depth is not a parameter"):
        training.tune(ws, n_trials=2)
    assert not (ws.root / "optuna.db").exists()


def test_best_params_is_none_without_a_study(tws):
    assert training.best_params(tws) is None
    assert not (tws.root / "optuna.db").exists()
