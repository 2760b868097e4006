"""Bootstrapping an existing model: the first champion and its baseline.

A model that has never been through driftgate has no champion alias and no baseline table,
so neither shadow (nothing to compare with) nor the monitor's BASELINE drift can run.
:func:`bootstrap` makes both, from either

* the training table: train a candidate (``training.train``), register it (above the floor),
  and take its held-out test split (the newest ``training.test_fraction`` of the window); or
* a version already registered, with its held-out rows (features, label, timestamp).

The version becomes ``champion`` (only when the model has none, or it already is the
champion), its scored held-out rows are written as the baseline table in the inference
table's contract, and an ``init`` audit event records what was done.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from driftgate.core.errors import PromotionRefused, RegistryError, TrainingError
from driftgate.monitoring.config import InferenceColumns
from driftgate.workspace.audit import record_event

__all__ = ["BootstrapResult", "bootstrap", "baseline_rows", "write_baseline", "refresh_baseline", "BASELINE_TAG"]

BASELINE_TAG = "driftgate.baseline"
"""Version tag: which table holds this version's scored held-out rows (the monitor's baseline)."""


@dataclass(frozen=True)
class BootstrapResult:
    model_name: str
    version: str
    trained: bool
    """A new version was trained and registered (False: an existing version was adopted)."""
    champion_set: bool
    """The champion alias was set now (False: the version already was the champion)."""
    baseline_table: str | None
    baseline_rows: int
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def baseline_rows(rows: pd.DataFrame, cols: InferenceColumns, *, version: str, proba: np.ndarray,
                  threshold: float, label_col: str | None = None, timestamp_col: str | None = None) -> pd.DataFrame:
    """Held-out rows scored by ``version``, in the inference table's contract (pure).

    ``label_col`` / ``timestamp_col`` name the rows' own label and time columns when they differ
    from the contract's (a training table's); request ids are ``baseline-<version>-<i>``.
    """
    out = rows.copy()
    renames = {src: dst for src, dst in ((label_col, cols.label), (timestamp_col, cols.timestamp))
               if src and dst and src != dst and src in out}
    out = out.rename(columns=renames)
    out[cols.model_id] = str(version)
    if cols.probability:
        out[cols.probability] = np.asarray(proba, dtype=float)
    out[cols.prediction] = (np.asarray(proba, dtype=float) >= threshold).astype("int64")
    if cols.request_id and cols.request_id not in out:
        out[cols.request_id] = [f"baseline-{version}-{i}" for i in range(len(out))]
    if cols.timestamp in out:
        out[cols.timestamp] = pd.to_datetime(out[cols.timestamp], utc=True).astype("datetime64[us, UTC]")
    if cols.label and cols.label in out:
        out[cols.label] = out[cols.label].astype("Int64")
    return out.reset_index(drop=True)


def write_baseline(ws, frame: pd.DataFrame, version: str, *, reason: str) -> str | None:
    """Overwrite the monitor's baseline table with ``frame``; tag ``version`` with where it went."""
    table = ws.settings.monitor.baseline_table_name
    if table is None:
        return None
    inference = ws.settings.project.inference_table
    data = pa.Table.from_pandas(frame, preserve_index=False)
    if ws.tables.exists(inference):
        # Same columns and types as the served rows, so BASELINE drift compares like with like.
        schema = ws.tables.schema(inference) if hasattr(ws.tables, "schema") else ws.tables.read(inference).schema
        keep = [f for f in schema if f.name in data.column_names]
        data = data.select([f.name for f in keep]).cast(pa.schema(keep))
    if ws.settings.monitor.importance_weighting:
        record_importance(ws, frame, version)  # before the baseline: its new version makes the monitor re-read both
    ws.tables.write(table, data, mode="overwrite", metadata={"baseline_version": str(version), "reason": reason})
    try:
        ws.registry.set_tag(ws.settings.project.model_name, version, BASELINE_TAG, table)
    except RegistryError:
        pass  # the tag annotates; the table's commit info records the version too
    return table


def refresh_baseline(ws, version: str, shadow) -> int:
    """``monitor.baseline_policy: champion``: after ``version`` is promoted, its scored shadow rows
    (the champion's served window replayed through it, rows it was not trained on) become the
    baseline. Returns the rows written; a failure is logged and recorded, never undoes the promotion.
    """
    import logging

    from driftgate.promotion.replay import shadow_table_name

    table = shadow_table_name(ws)
    cols = ws.settings.monitor.columns
    try:
        if getattr(shadow, "shadow_table", None) is None or not ws.tables.exists(table):
            raise RuntimeError("the shadow evaluation wrote no rows")
        rows = ws.tables.read(table, filters=[(cols.model_id, "=", str(version))]).to_pandas()
        if cols.label:
            rows = rows[rows[cols.label].notna()]
        if rows.empty:
            raise RuntimeError(f"no labelled shadow rows of version {version}")
        written = write_baseline(ws, rows, version, reason="promotion")
    except Exception as exc:  # noqa: BLE001 - the promotion stands; the old baseline stays
        logging.getLogger(__name__).warning("baseline not refreshed after promoting v%s: %s", version, exc)
        record_event(ws, "baseline_refresh", subject=f"{ws.settings.project.model_name}@{version}",
                     status="failed", details={"reason": str(exc)})
        return 0
    record_event(ws, "baseline_refresh", subject=f"{ws.settings.project.model_name}@{version}", status="refreshed",
                 details={"table": written, "rows": len(rows), "version": str(version), "source": table})
    return len(rows)


def _scorer(ws, version: str, frame: pd.DataFrame):
    from driftgate.monitoring.contract import model_input_columns
    from driftgate.promotion.replay import load_scorer, model_inputs

    uri = f"models:/{ws.settings.project.model_name}/{version}"
    columns = [c for c, _ in (model_inputs(uri) or [])] or model_input_columns(ws.settings)
    missing = [c for c in columns if c not in frame]
    if missing:
        raise TrainingError(f"held-out rows lack the model inputs {missing}")
    return load_scorer(uri, columns, ws.settings.project.problem_type)


def _score(ws, version: str, frame: pd.DataFrame) -> np.ndarray:
    return _scorer(ws, version, frame).probability(frame)


def record_importance(ws, frame: pd.DataFrame, version: str) -> str | None:
    """Permutation importance of ``version`` on its baseline rows (scored, labelled), stored for the
    monitor's importance-weighted drift (:mod:`driftgate.monitoring.importance`). A failure is logged and
    recorded, never fails the baseline: the monitor then writes no ``:importance_weighted`` rows and a
    rule on them says INSUFFICIENT_DATA."""
    import logging

    from driftgate.monitoring.importance import permutation_importances, write_importance

    label = ws.settings.monitor.columns.label
    try:
        if not label or label not in frame or ws.settings.monitor.columns.probability is None:
            raise TrainingError("the baseline rows need labels and a probability column")
        rows = frame[frame[label].notna()]
        scorer = _scorer(ws, version, rows)
        mean, std, scoring = permutation_importances(scorer.probability, rows[scorer.columns],
                                                     rows[label].to_numpy(), seed=0)
        return write_importance(ws, version, mean, std, scoring=scoring, rows=len(rows))
    except Exception as exc:  # noqa: BLE001 - importance annotates the baseline; it never blocks it
        logging.getLogger(__name__).warning("feature importance of v%s not computed: %s", version, exc)
        record_event(ws, "feature_importance", subject=f"{ws.settings.project.model_name}@{version}",
                     status="failed", details={"reason": str(exc)})
        return None


def _train_first(ws) -> tuple[str, str, pd.DataFrame]:
    from driftgate import training
    from driftgate.training.features import feature_source, load_training_data
    from driftgate.training.model import time_split

    result = training.train(ws, reason={"trigger": "init"})
    if not result.registered:
        raise PromotionRefused(f"init: the first model was not registered: {result.refused_reason}",
                               model=ws.settings.project.model_name, version=None)
    data = load_training_data(ws, ws.settings.training, feature_source(ws))
    return result.version, result.run_id, time_split(data.frame, ws.settings.training).test


def bootstrap(ws, *, version: str | None = None, holdout: pd.DataFrame | None = None) -> BootstrapResult:
    """Make the first champion and its baseline (see the module docstring).

    Args:
        version: an already registered version to adopt; None trains one from ``training.table``.
        holdout: the adopted version's held-out rows (model inputs, label, timestamp); required
            with ``version``.

    Raises:
        PromotionRefused: the model already has another champion (recorded), or the trained
            candidate missed the quality floor.
        TrainingError: the held-out rows lack model inputs.
    """
    from driftgate.monitoring.contract import check_inference_contract

    name = ws.settings.project.model_name
    cols = check_inference_contract(ws, need_inference_table=False, need_training=version is None)
    champion = ws.registry.alias_version(name, "champion")
    if champion is not None and (version is None or str(version) != champion):
        message = (f"init: {name} already has a champion (version {champion}); init bootstraps a model without "
                   "one. Promote through shadow, or rollback.")
        record_event(ws, "refusal", subject=f"{name}@{version}", status="refused", details={"reason": message})
        raise PromotionRefused(message, model=name, version=str(version) if version else None)
    run_id = None
    label_col = timestamp_col = None
    if version is None:
        version, run_id, holdout = _train_first(ws)
        label_col, timestamp_col = ws.settings.training.label_col, ws.settings.training.timestamp_col
        trained = True
    else:
        version = str(version)
        try:
            ws.registry.get_version(name, version)
        except RegistryError as exc:
            raise PromotionRefused(f"init: {name} version {version} does not exist ({exc})", model=name,
                                   version=version) from None
        if holdout is None or holdout.empty:
            raise TrainingError(f"init: adopting {name} version {version} needs its held-out rows (--holdout)")
        trained = False
    ws.activate_mlflow()
    proba = _score(ws, version, holdout)
    frame = baseline_rows(holdout, cols, version=version, proba=proba,
                          threshold=ws.settings.promotion.decision_threshold,
                          label_col=label_col, timestamp_col=timestamp_col)
    table = write_baseline(ws, frame, version, reason="init")
    champion_set = champion is None
    if champion_set:
        ws.registry.set_alias(name, "champion", version)
        ws.registry.set_tag(name, version, "driftgate.promotion", "bootstrap: first champion (driftgate init)")
    result = BootstrapResult(name, version, trained, champion_set, table, len(frame), run_id)
    record_event(ws, "init", subject=f"{name}@{version}", status="bootstrap", details=result.to_dict())
    return result
