"""Command-line entry points of the training package (registered in driftgate/cli.py)."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def train(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Train, log and register a challenger candidate as an MLflow run."""
    not_built("train")


def tune(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Tune hyperparameters with an Optuna study (nested MLflow runs, resumable)."""
    not_built("tune")
