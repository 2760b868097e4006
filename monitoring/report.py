"""Operator views of the metric tables: the most drifted columns, and a drift-over-time chart.

Rendering only: both functions read the drift table and draw; nothing here decides.
:func:`log_drift_chart` is what the gate and promotion steps call to attach the chart
to their MLflow run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from driftgate.monitoring.config import MonitorConfig

__all__ = ["DriftedColumn", "most_drifted", "drift_chart", "log_drift_chart", "chart_thresholds",
           "DEFAULT_THRESHOLDS"]

DEFAULT_THRESHOLDS = {"js_distance": 0.1, "population_stability_index": 0.2, "ks_statistic": 0.1}
"""Reference lines drawn on the chart (the gate's own thresholds are passed in when known)."""


@dataclass(frozen=True)
class DriftedColumn:
    column_name: str
    metric: str
    value: float
    window_start: str
    drift_type: str
    count: int | None


def _whole_table_rows(drift: pa.Table, cfg: MonitorConfig, drift_type: str, granularity: str | None) -> pa.Table:
    mask = pc.and_(pc.is_null(drift.column("slice_key")), pc.equal(drift.column("drift_type"), drift_type))
    mask = pc.and_(mask, pc.not_equal(drift.column("column_name"), ":table"))
    if cfg.model_id_col and cfg.model_id_col in drift.column_names:
        mask = pc.and_(mask, pc.equal(drift.column(cfg.model_id_col), "*"))
    if granularity:
        mask = pc.and_(mask, pc.equal(drift.column("granularity"), granularity))
    return drift.filter(mask)


def _score(row: dict) -> tuple[str, float | None]:
    """The column's headline distance: JS for categorical columns, KS statistic for numeric ones,
    PSI when a table (say, one written by another tool) has neither."""
    if row.get("js_distance") is not None:
        return "js_distance", row["js_distance"]
    ks = row.get("ks_test")
    if ks and ks.get("statistic") is not None:
        return "ks_statistic", ks["statistic"]
    if row.get("population_stability_index") is not None:
        return "population_stability_index", row["population_stability_index"]
    return "none", None


def most_drifted(drift: pa.Table, cfg: MonitorConfig, *, drift_type: str = "BASELINE", limit: int = 10,
                 granularity: str | None = None) -> list[DriftedColumn]:
    """Columns of the latest window ranked by their headline distance (largest first)."""
    rows = _whole_table_rows(drift, cfg, drift_type, granularity)
    if rows.num_rows == 0:
        return []
    starts = pc.struct_field(rows.column("window"), "start")
    latest = pc.max(starts)
    rows = rows.filter(pc.equal(starts, latest))
    out = []
    for row in rows.to_pylist():
        metric, value = _score(row)
        if value is None:
            continue
        out.append(DriftedColumn(row["column_name"], metric, float(value), str(row["window"]["start"]),
                                 drift_type, row.get("count")))
    out.sort(key=lambda d: -d.value)
    return out[:limit]


def drift_chart(drift: pa.Table, cfg: MonitorConfig, path: str | Path, *, drift_type: str = "BASELINE",
                thresholds: dict[str, float] | None = None, granularity: str | None = None) -> Path:
    """Write a drift-over-time chart: one line per column and metric, thresholds dashed.

    ``path`` ending in ``.html`` gets a self-contained HTML page embedding the PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    rows = _whole_table_rows(drift, cfg, drift_type, granularity)
    series: dict[tuple[str, str], list[tuple]] = {}
    for row in rows.to_pylist():
        metric, value = _score(row)
        if value is not None:
            series.setdefault((metric, row["column_name"]), []).append((row["window"]["start"], value))
    metrics = sorted({m for m, _ in series}) or ["js_distance"]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(10, 3.2 * len(metrics)), squeeze=False, sharex=True)
    for ax, metric in zip(axes[:, 0], metrics):
        for (m, col), points in sorted(series.items()):
            if m != metric:
                continue
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=col)
        if metric in thresholds:
            ax.axhline(thresholds[metric], color="red", linestyle="--", linewidth=1,
                       label=f"threshold {thresholds[metric]}")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7, ncol=4, loc="upper left")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"{cfg.table_name}: {drift_type.lower()} drift per window")
    fig.autofmt_xdate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".html":
        import base64
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        encoded = base64.b64encode(buf.getvalue()).decode()
        path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>drift: {cfg.table_name}</title>"
                        f"</head><body><h1>{cfg.table_name}</h1><img alt='drift over time' "
                        f"src='data:image/png;base64,{encoded}'></body></html>")
    else:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def log_drift_chart(ws, cfg: MonitorConfig, *, run_id: str, table: str | None = None,
                    artifact_file: str = "monitoring/drift_over_time.png",
                    thresholds: dict[str, float] | None = None) -> str | None:
    """Draw the chart from the drift table and log it to the MLflow run ``run_id``.

    The run is named explicitly (client API) so a caller's active run, such as the job's
    MLproject run, is left alone. ``table`` overrides ``cfg.drift_metrics_table`` (the gate
    may read a table that Lakehouse Monitoring wrote).

    Returns the artifact path, or None when the drift table does not exist yet.
    """
    import tempfile

    from mlflow import MlflowClient

    name = table or cfg.drift_metrics_table
    if not ws.tables.exists(name):
        return None
    drift = ws.tables.read(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = drift_chart(drift, cfg, Path(tmp) / Path(artifact_file).name, thresholds=thresholds)
        client = MlflowClient(tracking_uri=ws.tracking_uri, registry_uri=ws.registry_uri)
        client.log_artifact(run_id, str(out), artifact_path=str(Path(artifact_file).parent))
    return artifact_file


def chart_thresholds(rules) -> dict[str, float]:
    """The reference lines for the chart from gate rules over its headline metrics.

    The chart draws JS distance (categorical) and the KS statistic (numeric); a rule on
    either, or on PSI, lends its threshold. Rules on p-values or other metrics draw nothing.
    """
    names = {"js_distance": "js_distance", "ks_test.statistic": "ks_statistic",
             "population_stability_index": "population_stability_index"}
    out: dict[str, float] = {}
    for rule in rules:
        if getattr(rule, "table", "drift") == "drift" and rule.metric in names:
            out.setdefault(names[rule.metric], float(rule.threshold))
    return out
