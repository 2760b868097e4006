"""Which features matter: the champion's permutation importance, stored once, read by the monitor.

When a version's baseline is written (``driftgate init``, or a promotion under
``monitor.baseline_policy: champion``), the rows it was scored on, with their labels, give
its permutation importance (:func:`sklearn.inspection.permutation_importance`: how much the
score drops when one column is shuffled). It is stored as rows of the small Delta table
``<project.audit_schema>.driftgate_feature_importance`` (one row per model version and
feature; **choice**: a table, not an MLflow tag or artifact, because the monitor already
reads Delta tables through the workspace's table store, with the same code locally and on
Unity Catalog, and a dashboard can query it beside the drift table; tags are 5,000 characters
and need a registry call from the monitor).

The monitor reads the rows of the version that scored its baseline (the baseline rows' model
id) and writes, per drift comparison, a row with ``column_name = ':importance_weighted'``:
``importance_weighted_drift = Σ w_i d_i / Σ w_i`` over the features with a drift value, where
``w_i`` is the feature's importance (negative importances count 0) and ``d_i`` its population
stability index (numeric columns) or Jensen-Shannon distance (categorical ones). A rule on it
fires on drift in what the model uses and ignores drift in what it does not.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["IMPORTANCE_SCHEMA", "importance_table", "permutation_importances", "normalized", "write_importance",
           "read_importance"]

_log = logging.getLogger(__name__)

IMPORTANCE_SCHEMA = pa.schema([
    ("model_name", pa.string()), ("version", pa.string()), ("feature", pa.string()),
    ("importance", pa.float64()), ("importance_std", pa.float64()), ("scoring", pa.string()),
    ("rows", pa.int64()), ("computed_at", pa.timestamp("us", tz="UTC")),
])


def importance_table(ws) -> str:
    """``<project.audit_schema>.driftgate_feature_importance``."""
    return f"{ws.settings.project.audit_schema}.driftgate_feature_importance"


class _Scored:
    """What ``permutation_importance`` needs of an estimator: it only hands it to the scorer."""

    def __init__(self, proba: Callable[[pd.DataFrame], np.ndarray]):
        self.proba = proba

    def fit(self, *_):  # never called; sklearn checks the object, not its training
        return self


def permutation_importances(proba: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, y: np.ndarray, *,
                            n_repeats: int = 5, seed: int = 0, max_rows: int = 5000) -> tuple[dict, dict, str]:
    """Permutation importance of each column of ``frame`` for a binary classifier.

    Args:
        proba: P(class 1) of a frame with exactly these columns (the model).
        frame: the model's inputs on held-out rows (the baseline).
        y: their 0/1 labels.
        n_repeats, seed: shuffles per column, and their seed.
        max_rows: rows used (a seeded sample above it).

    Returns:
        ``(mean drop per column, its std, scoring)``; scoring is ROC AUC when both classes are
        present, else accuracy at 0.5.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, roc_auc_score

    y = np.asarray(y).astype(int)
    if len(frame) > max_rows:
        pick = np.random.default_rng(seed).choice(len(frame), max_rows, replace=False)
        frame, y = frame.iloc[np.sort(pick)], y[np.sort(pick)]
    both = len(np.unique(y)) == 2
    scoring = "roc_auc" if both else "accuracy"

    def score(est: _Scored, X, labels) -> float:
        p = est.proba(X)
        return float(roc_auc_score(labels, p) if both else accuracy_score(labels, p >= 0.5))

    result = permutation_importance(_Scored(proba), frame.reset_index(drop=True), y, scoring=score,
                                    n_repeats=n_repeats, random_state=seed, n_jobs=1)
    cols = list(frame.columns)
    return (dict(zip(cols, map(float, result.importances_mean))), dict(zip(cols, map(float, result.importances_std))),
            scoring)


def normalized(importance: Mapping[str, float]) -> dict[str, float]:
    """Shares summing to 1 (negative importances, noise, count 0); {} when nothing matters."""
    clipped = {k: max(0.0, float(v)) for k, v in importance.items() if v is not None and np.isfinite(v)}
    total = sum(clipped.values())
    return {k: v / total for k, v in clipped.items()} if total > 0 else {}


def write_importance(ws, version: str, importance: Mapping[str, float], std: Mapping[str, float], *,
                     scoring: str, rows: int) -> str:
    """Replace ``version``'s rows in the importance table; returns the table name."""
    name, table = ws.settings.project.model_name, importance_table(ws)
    now = datetime.now(timezone.utc)
    data = pa.Table.from_pylist([
        {"model_name": name, "version": str(version), "feature": f, "importance": float(v),
         "importance_std": float(std.get(f, float("nan"))), "scoring": scoring, "rows": int(rows), "computed_at": now}
        for f, v in importance.items()], schema=IMPORTANCE_SCHEMA)
    if ws.tables.exists(table):
        where = f"model_name = '{_quoted(name)}' AND version = '{_quoted(str(version))}'"
        ws.tables.write(table, data, replace_where=where)
    else:
        ws.tables.write(table, data, mode="overwrite")
    return table


def read_importance(ws, version: str | None) -> dict[str, float]:
    """The stored importance of ``version`` of the project's model ({} when none is stored)."""
    table = importance_table(ws)
    if version is None or not ws.tables.exists(table):
        return {}
    rows = ws.tables.read(table, columns=["feature", "importance"],
                          filters=[("model_name", "=", ws.settings.project.model_name),
                                   ("version", "=", str(version))])
    return dict(zip(rows.column("feature").to_pylist(), rows.column("importance").to_pylist()))


def _quoted(text: str) -> str:
    return text.replace("'", "''")
