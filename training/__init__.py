"""Training and tuning: config-driven scikit-learn pipelines on looked-up features, as MLflow runs.

``train(ws, ...)`` trains, logs and registers a candidate (never touching aliases);
``tune(ws, ...)`` runs a persistent Optuna study whose best parameters ``train`` can use.
"""
if __name__ != "driftgate.training":  # the training/ folder installs as driftgate.training only (setup.py)
    raise ImportError(f"import driftgate.training, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.training.features import (DatabricksFeatureSource, FeatureSource, LocalFeatureSource, TableVersion,
                               TrainingData, feature_source, load_training_data, point_in_time_join)
from driftgate.training.trainer import TrainResult, train
from driftgate.training.tuner import TuneProgress, TuneResult, best_params, tune

__all__ = [
    "train", "TrainResult", "tune", "TuneResult", "TuneProgress", "best_params",
    "FeatureSource", "LocalFeatureSource", "DatabricksFeatureSource", "feature_source",
    "load_training_data", "point_in_time_join", "TrainingData", "TableVersion",
]
