"""``training.train``: one MLflow run that trains, evaluates, logs and (maybe) registers a candidate.

Order matters for "nothing half-written": data is read and checked before the run
starts; the candidate is registered last, only after the quality floor passed, so a
crash anywhere before leaves the registry exactly as it was (the run ends FAILED).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftgate.workspace.audit import record_event
from driftgate.core.errors import TrainingError
from driftgate.core.layering import removed_defaults_tags
from driftgate.training.features import TrainingData, feature_source, load_training_data
from driftgate.training.estimators import check_estimator, fit_threads
from driftgate.training.model import (build_pipeline, check_params, column_kinds, estimator_params, model_input, quiet_fit,
                            score_metrics, time_split)

__all__ = ["TrainResult", "train", "code_version", "check_floor", "TRAINED_BEFORE_TAG"]

MODEL_NAME = "model"
TRAINED_BEFORE_TAG = "driftgate.trained_before"
"""Model version tag: ISO time before which every row the model was fitted on lies (the
validation cut). The shadow test evaluates only served rows from this time on."""
"""Artifact name of the logged model inside the run."""


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced. ``version`` is None unless the candidate was registered."""

    run_id: str
    model_uri: str
    metrics: dict[str, float]
    version: str | None
    registered: bool
    refused_reason: str | None
    params: dict[str, Any] = field(default_factory=dict)
    data_versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def code_version() -> str:
    """The git commit of the code that ran (``DRIFTGATE_CODE_VERSION`` wins, e.g. set by a job)."""
    if env := os.environ.get("DRIFTGATE_CODE_VERSION"):
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"driftgate=={version('driftgate')}"
    except PackageNotFoundError:
        return "unknown"


def check_floor(cfg, metrics: dict[str, float]) -> str | None:
    """Check ``metrics`` against the absolute quality floor with MLflow's ``MetricThreshold``.

    Returns:
        None when every floor holds, else the reason (which metric, value and floor).
    """
    import math

    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    if not cfg.quality_floor:
        return None
    nan = [m for m in cfg.quality_floor if not math.isfinite(metrics.get(m, float("nan")))]
    if nan:
        return f"{cfg.floor_split} {', '.join(nan)} is not a finite number; the floor cannot be checked"
    thresholds = {
        m: MetricThreshold(threshold=f.threshold, greater_is_better=cfg.floor_direction(m))
        for m, f in cfg.quality_floor.items()
    }
    candidate = EvaluationResult(metrics={m: metrics[m] for m in cfg.quality_floor}, artifacts={})
    try:
        import mlflow

        mlflow.validate_evaluation_results(thresholds, candidate, None)
    except ModelValidationFailedException as exc:
        return f"below the quality floor on the {cfg.floor_split} split: {' '.join(str(exc).split())}"
    return None


def _delta_source(tv):
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    # Locally the table id is known (Delta metadata), which also spares MLflow a Unity
    # Catalog lookup that cannot succeed off Databricks.
    return DeltaDatasetSource(delta_table_name=tv.name, delta_table_version=tv.version, delta_table_id=tv.table_id)


def _lineage_tags(tv) -> dict[str, str]:
    # MLflow's Delta source drops version 0 from its JSON (falsy), so the tags carry it too.
    tags = {"delta_table_name": tv.name, "delta_table_version": str(tv.version), "role": tv.role}
    if tv.path:
        tags["delta_path"] = tv.path
    return tags


def _resolve_params(ws, cfg, params: dict | None, use_best_params: bool) -> tuple[dict[str, Any], str | None]:
    problem_type = ws.settings.project.problem_type
    check_estimator(cfg, problem_type)
    extra: dict[str, Any] = {}
    source = None
    if use_best_params or cfg.use_best_params:
        from driftgate.training.tuner import best_params

        best = best_params(ws)
        if best is not None:
            extra.update(best)
            source = "tuning"
    extra.update(params or {})
    check_params(cfg, problem_type, {**cfg.params, **extra}, "training.params")
    return estimator_params(cfg, problem_type, extra), source


def train(ws, *, reason: dict[str, str] | None = None, params: dict | None = None,
          use_best_params: bool = False, source=None) -> TrainResult:
    """Train, evaluate, log and — if it clears the quality floor — register a candidate.

    Args:
        ws: the open workspace.
        reason: why this run happened (``trigger``, ``decision_id``, ``run_key``...); becomes run tags.
        params: estimator parameters over the configured ones (they win over tuned ones too).
        use_best_params: start from the tuning study's best parameters (if a study exists).
        source: the feature source (default: local Delta tables, or Databricks Feature Engineering).

    Returns:
        A :class:`TrainResult`; ``registered`` is False and ``refused_reason`` says why when the
        candidate missed the floor. Aliases are never touched.

    Raises:
        TrainingError: bad training data (missing columns, empty window, one class), before any run.
        ConfigError: an estimator parameter that does not exist, or a ``training.estimator`` factory that
            cannot be imported or returns no estimator (before any data is read).
        TableError: a table is missing.
    """
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    from driftgate.promotion.scoring import predict
    from driftgate.workspace.context import stage_run_tags

    settings = ws.settings
    cfg = settings.training
    problem_type = settings.project.problem_type
    reason = {k: str(v) for k, v in (reason or {}).items()}
    source = source or feature_source(ws)
    resolved, params_source = _resolve_params(ws, cfg, params, use_best_params)
    data: TrainingData = load_training_data(ws, cfg, source)
    split = time_split(data.frame, cfg, problem_type)
    numeric, categorical = column_kinds(data.frame, data.features)
    x = {name: model_input(part, data.features, categorical)
         for name, part in (("train", split.train), ("validation", split.validation), ("test", split.test))}
    y = {name: part[cfg.label_col].to_numpy()
         for name, part in (("train", split.train), ("validation", split.validation), ("test", split.test))}
    training_table = data.tables[0]

    ws.activate_mlflow()
    tags = {
        "driftgate.stage": "train",
        "driftgate.trigger": reason.get("trigger", "manual"),
        "driftgate.code_version": code_version(),
        "driftgate.estimator": cfg.estimator,
        **{f"driftgate.reason.{k}": v for k, v in reason.items()},
    }
    if reason.get("decision_id"):
        tags["driftgate.decision_id"] = reason["decision_id"]
    tags.update(stage_run_tags())  # under `mlflow run`: the project run (see workspace.context)
    tags.update(removed_defaults_tags(ws.settings))  # e.g. a quality floor removed with an explicit null
    with mlflow.start_run(run_name=f"train-{cfg.estimator}", tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params({
            "estimator": cfg.estimator, "problem_type": problem_type, "threads": cfg.threads,
            "preprocessing": cfg.preprocessing, "class_weight": cfg.class_weight, "calibration": cfg.calibration,
            "window_days": cfg.window_days, "validation_fraction": cfg.validation_fraction,
            "test_fraction": cfg.test_fraction, "seed": cfg.seed, "params_source": params_source or "conf",
            "numeric_features": ",".join(numeric), "categorical_features": ",".join(categorical),
            "window_start": data.window_start.isoformat(), "window_end": data.window_end.isoformat(),
            "validation_start": split.validation_start.isoformat(), "test_start": split.test_start.isoformat(),
            **{f"model.{k}": v for k, v in resolved.items()},
        })
        for name in ("train", "validation", "test"):
            part = {"train": split.train, "validation": split.validation, "test": split.test}[name]
            dataset = mlflow.data.from_pandas(
                part[[*data.features, cfg.label_col]].reset_index(drop=True),
                source=_delta_source(training_table),
                targets=cfg.label_col,
                name=f"{training_table.name}@v{training_table.version}:{name}",
            )
            mlflow.log_input(dataset, context=name, tags=_lineage_tags(training_table))
        for tv in data.tables[1:]:
            meta = MetaDataset(_delta_source(tv), name=f"{tv.name}@v{tv.version}")
            mlflow.log_input(meta, context="feature_lookup", tags=_lineage_tags(tv))

        model = build_pipeline(cfg, problem_type, resolved, numeric, categorical)
        with quiet_fit(), fit_threads(cfg):
            model.fit(x["train"], y["train"])
        metrics: dict[str, float] = {}
        by_split: dict[str, dict[str, float]] = {}
        for name in ("train", "validation", "test"):
            by_split[name] = score_metrics(y[name], predict(model, x[name], problem_type), problem_type)
            metrics.update({f"{name}_{k}": v for k, v in by_split[name].items()})
        mlflow.log_metrics(metrics)

        example = x["train"].head(5)
        signature = infer_signature(example, model.predict(example))
        model_uri = source.log_model(model, name=MODEL_NAME, data=data, signature=signature, input_example=example)

        refused = check_floor(cfg, by_split[cfg.floor_split])
        version = None
        if refused is None:
            info = ws.registry.register(model_uri, settings.project.model_name, tags={
                "driftgate.run_id": run_id,
                "driftgate.trigger": tags["driftgate.trigger"],
                "driftgate.decision_id": reason.get("decision_id", ""),
                "driftgate.code_version": tags["driftgate.code_version"],
                "driftgate.data_versions": ",".join(f"{t.name}@v{t.version}" for t in data.tables),
                # every fitted row is older: the shadow test replays only rows from here on
                TRAINED_BEFORE_TAG: split.validation_start.isoformat(),
            }, run_id=run_id)
            version = info.version
            mlflow.set_tags({"driftgate.registered": "true", "driftgate.model_version": version})
        else:
            mlflow.set_tags({"driftgate.registered": "false", "driftgate.refused_reason": refused[:5000]})

    result = TrainResult(
        run_id=run_id,
        model_uri=model_uri,
        metrics=metrics,
        version=version,
        registered=version is not None,
        refused_reason=refused,
        params=resolved,
        data_versions={t.name: t.version for t in data.tables},
    )
    record_event(
        ws, "train" if refused is None else "refusal", run_key=reason.get("run_key") or None,
        subject=f"{settings.project.model_name}@{version}" if version else settings.project.model_name,
        status="registered" if version else "below_floor",
        details={"run_id": run_id, "version": version, "refused_reason": refused,
                 "metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
                 "data_versions": result.data_versions, "trigger": tags["driftgate.trigger"]},
    )
    return result
