"""Which estimator is fitted: a built-in, or a data scientist's own ``package.module:factory``.

:func:`new_estimator` is the one place an estimator instance is made. A factory is any
importable callable returning a scikit-learn-compatible estimator or ``Pipeline`` (a
LightGBM or XGBoost model through their scikit-learn API, a custom pipeline...). It is
resolved and checked before any data is read: importable, callable, returns something
with ``fit``, ``predict`` and ``get_params`` (and ``predict_proba`` for classification),
and every configured parameter name is one of ``get_params()`` of a fresh instance.

Threads: :func:`fit_threads` limits the OpenMP/BLAS pools around a fit (``threadpoolctl``)
to ``training.n_jobs``, default the cores this process may run on, and
:func:`estimator_params` sets any ``n_jobs`` parameter the estimator has to the same.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from driftgate.core.errors import ConfigError
from driftgate.training.config import TrainingConfig, is_factory

__all__ = ["new_estimator", "estimator_params", "check_params", "check_estimator", "fit_threads", "is_classifier"]

# Why these differ from scikit-learn's defaults: HistGradientBoosting's early_stopping="auto"
# switches itself on above 10,000 rows, so the same parameters would mean different models on
# small and large folds (and max_iter, a tuned parameter, would stop mattering); lbfgs needs
# more iterations on scaled one-hot data to converge.
_BASE_PARAMS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"early_stopping": False},
    "logistic_regression": {"max_iter": 1000},
    "random_forest": {},
}


def is_classifier(problem_type: str) -> bool:
    return problem_type != "regression"


def _builtin(name: str, problem_type: str):
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression

    if is_classifier(problem_type):
        return {"hist_gradient_boosting": HistGradientBoostingClassifier, "logistic_regression": LogisticRegression,
                "random_forest": RandomForestClassifier}[name]
    if name == "logistic_regression":
        raise ConfigError("training.estimator: logistic_regression classifies and project.problem_type is "
                          "regression; use hist_gradient_boosting, random_forest or 'package.module:factory'",
                          key="training.estimator")
    return {"hist_gradient_boosting": HistGradientBoostingRegressor, "random_forest": RandomForestRegressor}[name]


def _factory(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"training.estimator: cannot import {module_name!r} for {spec!r}: {exc}",
                          key="training.estimator") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"training.estimator: {module_name} has no callable {attr!r}, got {type(factory).__name__}",
                          key="training.estimator")
    return factory


def new_estimator(cfg: TrainingConfig, problem_type: str, params: dict[str, Any] | None = None):
    """A fresh, unfitted estimator for ``training.estimator``, with ``params`` set.

    Raises:
        ConfigError: the factory cannot be imported or returns something that is not an estimator.
    """
    if not is_factory(cfg.estimator):
        return _builtin(cfg.estimator, problem_type)(**(params or {}))
    estimator = _factory(cfg.estimator)()
    needed = ["fit", "predict", "get_params", "set_params"]
    if is_classifier(problem_type):
        needed.append("predict_proba")
    lacking = [m for m in needed if not callable(getattr(estimator, m, None))]
    if lacking:
        raise ConfigError(
            f"training.estimator: {cfg.estimator} must return a scikit-learn-compatible "
            f"{'classifier' if is_classifier(problem_type) else 'regressor'} or Pipeline, got a "
            f"{type(estimator).__name__} without {', '.join(lacking)}", key="training.estimator")
    if params:
        estimator.set_params(**params)
    return estimator


# Estimators whose n_jobs does nothing (scikit-learn 1.8 deprecated LogisticRegression's and warns when it is set).
_IDLE_N_JOBS = frozenset({"LogisticRegression"})


def _param_names(cfg: TrainingConfig, problem_type: str) -> set[str]:
    return set(new_estimator(cfg, problem_type).get_params())


def _thread_params(cfg: TrainingConfig, problem_type: str) -> list[str]:
    """``n_jobs`` parameters of the estimator (or its Pipeline steps) that do something."""
    estimator = new_estimator(cfg, problem_type)
    params = estimator.get_params()
    owners = {name: params.get(name.rsplit("__", 1)[0]) if "__" in name else estimator
              for name in _matching(set(params), "n_jobs")}
    return [name for name, owner in owners.items() if type(owner).__name__ not in _IDLE_N_JOBS]


def check_estimator(cfg: TrainingConfig, problem_type: str) -> None:
    """Resolve ``training.estimator`` and make one instance, so a bad factory fails before any data is read."""
    new_estimator(cfg, problem_type)


def check_params(cfg: TrainingConfig, problem_type: str, params: dict[str, Any], where: str) -> None:
    """Refuse parameter names the estimator does not have, before anything is fitted.

    Raises:
        ConfigError: ``<where>: unknown parameter ...`` listing the valid ones.
    """
    valid = _param_names(cfg, problem_type)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} is not a parameter of {cfg.estimator}; valid: {', '.join(sorted(valid))}",
            key=where,
        )


def _matching(names: set[str], param: str) -> list[str]:
    """``param`` itself and any ``step__param`` of a Pipeline's steps."""
    return sorted(n for n in names if n == param or n.endswith(f"__{param}"))


def estimator_params(cfg: TrainingConfig, problem_type: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The estimator's full parameters: base, conf ``training.params``, then ``params``; plus seed, class
    weights and threads wherever the estimator takes them (``random_state``, ``class_weight``, ``n_jobs``,
    also as a Pipeline's ``step__...``), unless set explicitly.
    """
    explicit = {**cfg.params, **(params or {})}
    names = _param_names(cfg, problem_type)
    merged = {**_BASE_PARAMS.get(cfg.estimator, {}), **explicit}
    implied = {"random_state": cfg.seed}
    if is_classifier(problem_type) and cfg.class_weight == "balanced":
        implied["class_weight"] = "balanced"
    targets = {name: value for param, value in implied.items() for name in _matching(names, param)}
    targets.update({name: cfg.threads for name in _thread_params(cfg, problem_type)})
    merged.update({name: value for name, value in targets.items() if name not in explicit})
    if is_factory(cfg.estimator) and "class_weight" in implied and not _matching(names, "class_weight"):
        raise ConfigError(f"training.class_weight: balanced needs a class_weight parameter and {cfg.estimator} has "
                          "none; set training.class_weight: none (or weight classes inside your estimator)",
                          key="training.class_weight")
    return merged


@contextmanager
def fit_threads(cfg: TrainingConfig) -> Iterator[int]:
    """Limit OpenMP and BLAS thread pools to ``training.n_jobs`` (default: the cores available) while fitting."""
    from threadpoolctl import threadpool_limits

    n = cfg.threads
    with threadpool_limits(limits=n):
        yield n
