"""Reading the drift table back for people: the most drifted columns of the latest window."""
from __future__ import annotations

from typing import Any

import pyarrow.compute as pc

from monitoring.config import MonitorConfig

__all__ = ["drifted_columns"]


def _score(row: dict[str, Any]) -> float:
    """One comparable severity: PSI for numeric columns, JS distance for categorical ones."""
    for key in ("psi", "js_distance"):
        if row.get(key) is not None:
            return float(row[key])
    return 0.0


def drifted_columns(ws, monitor: MonitorConfig, *, top: int = 10, granularity: str | None = None,
                    drift_type: str | None = None) -> list[dict[str, Any]]:
    """The ``top`` columns by drift in the latest window (whole table, all models).

    BASELINE drift is shown when a baseline table is configured, else CONSECUTIVE.
    """
    name = monitor.drift_metrics_table
    if not ws.tables.exists(name):
        return []
    analysis = monitor.inference_log or monitor.time_series
    grain = granularity or (analysis.granularities[0] if analysis is not None else "")
    kind = drift_type or ("BASELINE" if monitor.baseline_table_name else "CONSECUTIVE")
    t = ws.tables.read(name)
    mask = pc.and_(pc.equal(t["granularity"], grain), pc.equal(t["drift_type"], kind))
    mask = pc.and_(mask, pc.is_null(t["slice_key"]))
    mask = pc.and_(mask, pc.not_equal(t["column_name"], ":table"))
    if monitor.inference_log is not None and monitor.inference_log.model_id_col in t.column_names:
        mask = pc.and_(mask, pc.equal(t[monitor.inference_log.model_id_col], "*"))
    t = t.filter(pc.fill_null(mask, False))
    if t.num_rows == 0:
        return []
    starts = pc.struct_field(t["window"], "start")
    t = t.filter(pc.equal(starts, pc.max(starts)))
    rows = []
    for r in t.to_pylist():
        ks, chi = r.get("ks_test") or {}, r.get("chi_squared_test") or {}
        rows.append({
            "window_start": r["window"]["start"], "column_name": r["column_name"], "data_type": r["data_type"],
            "drift_type": r["drift_type"], "psi": r["population_stability_index"],
            "ks_statistic": ks.get("statistic"), "ks_pvalue": ks.get("pvalue"), "js_distance": r["js_distance"],
            "chi2_pvalue": chi.get("pvalue"), "avg_delta": r["avg_delta"],
            "wasserstein_distance": r["wasserstein_distance"],
        })
    rows.sort(key=_score, reverse=True)
    return rows[:top]
