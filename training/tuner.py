"""``training.tune``: a persistent, resumable Optuna study with one MLflow parent run.

Each trial samples parameters from the configured search space, scores them on
expanding time-ordered folds of the training + validation window (the test window
is never used for tuning), reports the running mean after every fold so the pruner
can stop hopeless trials early, and is logged as a nested MLflow run under the
study's parent run. The study lives in a database (SQLite under the workspace root
by default), so a stopped study resumes and several workers can share it.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from driftgate.core.errors import ConfigError, TrainingError
from driftgate.training.features import feature_source, load_training_data
from driftgate.training.config import LOWER_IS_BETTER
from driftgate.training.estimators import check_estimator, fit_threads
from driftgate.training.model import build_pipeline, check_params, column_kinds, enough_labels, estimator_params, \
    model_input, quiet_fit, score_metrics, time_folds, time_split

__all__ = ["TuneResult", "TuneProgress", "tune", "best_params", "storage_url", "study_name"]

STORAGE_ENV = "DRIFTGATE_OPTUNA_STORAGE"
PARENT_ATTR = "mlflow_parent_run_id"


@dataclass(frozen=True)
class TuneProgress:
    """Reported after every trial (for progress bars)."""

    finished: int
    target: int
    best_value: float | None
    last_state: str
    last_number: int


@dataclass(frozen=True)
class TuneResult:
    """The study after this call: its best trial and how many trials it holds."""

    study_name: str
    storage: str
    """The storage URL with any password masked."""
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    n_finished: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_new: int
    """Trials this call ran (0 when the study already had ``n_trials``)."""
    parent_run_id: str
    data_versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_name(settings) -> str:
    """``<tuning.study_name>.<training.estimator>``: one study per search space."""
    return f"{settings.tuning.study_name}.{settings.training.estimator}"


def storage_url(ws) -> str:
    """``$DRIFTGATE_OPTUNA_STORAGE``, else ``tuning.storage``, else ``sqlite:///<root>/optuna.db``."""
    from driftgate.core.secrets import secret

    url = secret(STORAGE_ENV) or ws.settings.tuning.storage
    if url:
        return url
    if ws.root is None:
        raise ConfigError(
            f"tuning.storage: must be a database URL on Databricks (or set {STORAGE_ENV}), got nothing",
            key="tuning.storage",
        )
    return f"sqlite:///{ws.root / 'optuna.db'}"


def _masked(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _storage(url: str, heartbeat: int):
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        # Heartbeats let a later worker fail the trials of a killed one, so the study moves on;
        # the retry callback re-runs such a trial's parameters once. (Both are "experimental"
        # in Optuna since 2.8; the warning is noise on every command.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise ConfigError(f"tuning.storage: cannot open {_masked(url)!r}: {exc}", key="tuning.storage") from exc
    except Exception as exc:  # sqlalchemy's errors (bad dialect, unreachable host)
        raise ConfigError(f"tuning.storage: cannot open {_masked(url)!r}: {exc}", key="tuning.storage") from exc


def _sampler(tcfg, seed: int):
    import optuna

    if tcfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if tcfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(tcfg):
    import optuna

    if tcfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tcfg.pruner_startup_trials,
                                           n_warmup_steps=tcfg.pruner_warmup_steps)
    if tcfg.pruner == "percentile":
        return optuna.pruners.PercentilePruner(tcfg.percentile, n_startup_trials=tcfg.pruner_startup_trials,
                                               n_warmup_steps=tcfg.pruner_warmup_steps)
    if tcfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if tcfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=tcfg.cv_folds)
    return optuna.pruners.NopPruner()


def _suggest(trial, space: dict) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        if spec.type == "float":
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            params[name] = trial.suggest_categorical(name, spec.choices)
    return params


def _score(metric: str, problem_type: str, y, model, x) -> float:
    """One fold's score: the same metric definitions as training's (:func:`score_metrics`)."""
    from driftgate.promotion.scoring import predict

    return score_metrics(y, predict(model, x, problem_type), problem_type)[metric]


def _open_study(ws, *, create: bool):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(ws)
    if not create and url.startswith("sqlite:///"):
        from pathlib import Path

        if not Path(url.removeprefix("sqlite:///")).exists():
            return None
    storage = _storage(url, ws.settings.tuning.heartbeat_seconds)
    name = study_name(ws.settings)
    if not create:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
    tcfg = ws.settings.tuning
    direction = "minimize" if tcfg.metric in LOWER_IS_BETTER else "maximize"
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None and existing.direction.name.lower() != direction:
        raise ConfigError(
            f"tuning.metric: study {name!r} in {_masked(url)} was created to {existing.direction.name.lower()}, "
            f"but {tcfg.metric} needs {direction}; use another tuning.study_name",
            key="tuning.metric",
        )
    # Seeding with the trial count keeps reruns deterministic without replaying the same draws.
    seed = ws.settings.training.seed + (len(existing.trials) if existing is not None else 0)
    return optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True,
                               sampler=_sampler(tcfg, seed), pruner=_pruner(tcfg))


def best_params(ws) -> dict[str, Any] | None:
    """The best parameters of this estimator's study, or None when no trial has completed."""
    study = _open_study(ws, create=False)
    if study is None:
        return None
    import optuna

    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        return None
    return dict(study.best_params)


def tune(ws, *, n_trials: int | None = None, timeout: float | None = None,
         progress: Callable[[TuneProgress], None] | None = None) -> TuneResult:
    """Run (or resume) the tuning study until it holds ``n_trials`` finished trials or ``timeout`` passes.

    Args:
        ws: the open workspace.
        n_trials: total finished (complete + pruned) trials wanted in the study (default ``tuning.n_trials``).
        timeout: seconds this call may spend (default ``tuning.timeout_seconds``; None: no limit).
        progress: called after every trial with a :class:`TuneProgress`.

    Returns:
        A :class:`TuneResult` with the study's best parameters (what ``train(use_best_params=True)`` uses).

    Raises:
        TrainingError: bad training data, before any trial.
        ConfigError: a search-space parameter the estimator does not have, or an unusable storage URL.
    """
    import mlflow
    import optuna
    from mlflow import MlflowClient

    from driftgate.workspace.context import nest_stage_runs, stage_run_tags

    settings = ws.settings
    cfg, tcfg = settings.training, settings.tuning
    problem_type = settings.project.problem_type
    n_trials = n_trials if n_trials is not None else tcfg.n_trials
    timeout = timeout if timeout is not None else tcfg.timeout_seconds
    if n_trials < 1:
        raise ConfigError(f"tune: n_trials must be at least 1, got {n_trials}", key="n_trials")
    check_estimator(cfg, problem_type)
    space = tcfg.search_space.get(cfg.estimator)
    if not space:
        raise ConfigError(f"tuning.search_space.{cfg.estimator}: no search space for training.estimator "
                          f"{cfg.estimator!r}; name its parameters and ranges there", key="tuning.search_space")
    check_params(cfg, problem_type, dict(space), f"tuning.search_space.{cfg.estimator}")

    data = load_training_data(ws, cfg, feature_source(ws))
    split = time_split(data.frame, cfg, problem_type)
    import pandas as pd

    window = pd.concat([split.train, split.validation])
    numeric, categorical = column_kinds(window, data.features)
    x = model_input(window, data.features, categorical).reset_index(drop=True)
    y = window[cfg.label_col].to_numpy()
    folds = [(tr, te) for tr, te in time_folds(window[cfg.timestamp_col], tcfg.cv_folds)
             if enough_labels(y[tr], problem_type) and enough_labels(y[te], problem_type)]
    if not folds:
        raise TrainingError(f"{cfg.table}: no time fold holds two classes (label values); lower tuning.cv_folds or "
                            "widen the window")
    calibrate = tcfg.metric == "log_loss"  # ranking metrics are unchanged by calibration; skip its cost

    study = _open_study(ws, create=True)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    already = len(study.get_trials(deepcopy=False, states=finished_states))
    remaining = max(0, n_trials - already)

    ws.activate_mlflow()
    client = MlflowClient(ws.tracking_uri)
    parent_id = study.user_attrs.get(PARENT_ATTR)
    if parent_id:
        try:
            client.get_run(parent_id)
        except Exception:
            parent_id = None  # the study moved to another tracking server; start a new parent there
    data_versions = {t.name: t.version for t in data.tables}
    tags = {"driftgate.stage": "tune", "driftgate.study": study.study_name,
            "driftgate.storage": _masked(storage_url(ws)), "driftgate.estimator": cfg.estimator}
    tags.update(stage_run_tags())  # under `mlflow run`: the project run (see workspace.context)
    if parent_id:
        # A resumed study logs on under its own parent run: an `mlflow run` run must not be
        # adopted by the first trial, so it becomes the parent of nothing (see workspace.context).
        nest_stage_runs()
    parent_run = (mlflow.start_run(run_id=parent_id) if parent_id
                  else mlflow.start_run(run_name=f"tune-{study.study_name}", tags=tags))
    parent_id = parent_run.info.run_id
    study.set_user_attr(PARENT_ATTR, parent_id)
    study.set_user_attr("data_versions", data_versions)
    new_numbers: list[int] = []

    def objective(trial) -> float:
        new_numbers.append(trial.number)
        params = _suggest(trial, space)
        mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, parent_run_id=parent_id,
                         tags={"driftgate.stage": "tune-trial", "optuna.trial": str(trial.number),
                               "driftgate.study": study.study_name})
        try:
            mlflow.log_params(params)
            scores: list[float] = []
            value = math.nan
            for step, (tr, te) in enumerate(folds):
                model = build_pipeline(cfg, problem_type, estimator_params(cfg, problem_type, params), numeric,
                                       categorical, calibrate=calibrate)
                with quiet_fit(), fit_threads(cfg):
                    model.fit(x.iloc[tr], y[tr])
                scores.append(_score(tcfg.metric, problem_type, y[te], model, x.iloc[te]))
                value = float(sum(scores) / len(scores))
                mlflow.log_metric(f"cv_{tcfg.metric}", value, step=step)
                trial.report(value, step)
                if trial.should_prune():
                    mlflow.set_tag("optuna.state", "PRUNED")
                    raise optuna.TrialPruned(f"pruned after fold {step + 1} of {len(folds)}")
            mlflow.log_metric(tcfg.metric, value)
            mlflow.set_tag("optuna.state", "COMPLETE")
        except optuna.TrialPruned:
            mlflow.end_run("KILLED")
            raise
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")
        return value

    def report(study_, trial) -> None:
        if progress is None:
            return
        done = len(study_.get_trials(deepcopy=False, states=finished_states))
        try:
            best = study_.best_value
        except ValueError:
            best = None
        progress(TuneProgress(done, n_trials, best, trial.state.name, trial.number))

    try:
        if remaining:
            study.optimize(
                objective, n_trials=remaining, timeout=timeout, gc_after_trial=False,
                callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=finished_states), report],
            )
        result = _summarise(study, tcfg.metric, storage_url(ws), parent_id, data_versions, len(new_numbers))
        if result.best_trial is not None:
            # Tags, not params: a resumed study's best changes and params are write-once.
            mlflow.set_tags({f"best.{k}": str(v) for k, v in result.best_params.items()})
            mlflow.log_metrics({f"best_{tcfg.metric}": result.best_value, "n_complete": result.n_complete,
                                "n_pruned": result.n_pruned}, step=result.n_finished)
            mlflow.log_text(json.dumps(result.best_params, indent=2, sort_keys=True), "best_params.json")
            mlflow.set_tags({"driftgate.best_trial": str(result.best_trial),
                             "driftgate.best_params": json.dumps(result.best_params, sort_keys=True)[:5000]})
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
    return result


def _summarise(study, metric, url, parent_id, data_versions, n_new) -> TuneResult:
    import optuna

    states = [t.state for t in study.get_trials(deepcopy=False)]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    failed = states.count(optuna.trial.TrialState.FAIL)
    best_value, best_params, best_trial = None, {}, None
    if complete:
        best = study.best_trial
        best_value, best_params, best_trial = float(best.value), dict(best.params), best.number
    return TuneResult(
        study_name=study.study_name, storage=_masked(url), metric=metric, direction=study.direction.name.lower(),
        best_value=best_value, best_params=best_params, best_trial=best_trial, n_finished=complete + pruned,
        n_complete=complete, n_pruned=pruned, n_failed=failed, n_new=n_new, parent_run_id=parent_id,
        data_versions=data_versions,
    )
