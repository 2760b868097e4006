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
           "DEFAULT_THRESHOLDS", "ChartPanel", "rule_panels", "panel_data", "rules_chart"]

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
    mask = pc.and_(mask, pc.invert(pc.starts_with(drift.column("column_name"), ":")))  # ':table', ':importance_weighted'
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
    return _save(fig, path, cfg)


@dataclass(frozen=True)
class ChartPanel:
    """One panel of the gate's chart: a rule's metric over windows, with its threshold."""

    rule: str
    table: str
    """``drift`` or ``profile``."""
    metric: str
    """A metric path: ``population_stability_index``, ``ks_test.statistic``, ``f1_score.macro``."""
    op: str
    threshold: float
    drift_type: str | None = "BASELINE"
    columns: tuple[str, ...] | None = None
    """None: every column but ``:table`` (and ``exclude``); profile panels default to ``:table``."""
    exclude: tuple[str, ...] = ()
    relative_to_baseline: bool = False
    change: str = "difference"

    @property
    def title(self) -> str:
        if self.relative_to_baseline:
            rel = "relative change" if self.change == "relative" else "change"
            return f"{self.rule}: {self.metric} {rel} from baseline {self.op} {self.threshold:g}"
        return f"{self.rule}: {self.metric} {self.op} {self.threshold:g}"


def rule_panels(rules, exclude: tuple[str, ...] = ()) -> list[ChartPanel]:
    """One panel per gate rule, drawn from what the rule reads (the whole-table rows, all models).

    ``exclude`` holds the model's output columns, which drift rules over ``all`` leave out.
    """
    out = []
    for r in rules:
        cols = r.columns if r.columns != "all" else None
        out.append(ChartPanel(
            rule=r.name, table=r.table, metric=r.metric, op=r.op, threshold=float(r.threshold),
            drift_type=r.drift_type, columns=tuple(cols) if cols is not None else None,
            exclude=tuple(r.filters.exclude_columns) + (tuple(exclude) if cols is None else ()),
            relative_to_baseline=getattr(r, "relative_to", None) == "baseline",
            change=getattr(r, "change", "difference")))
    return out


def _path_value(row: dict, metric: str) -> float | None:
    import math
    import re

    m = re.match(r"^(\w+)(?:\.(\w+)|\[\s*['\"]?([^\]'\"]+)['\"]?\s*\])?$", metric.strip())
    if not m:
        return None
    value = row.get(m[1])
    if m[2] is not None:
        value = value.get(m[2]) if isinstance(value, dict) else None
    elif m[3] is not None:
        items = value.items() if isinstance(value, dict) else (value or [])
        value = next((v for k, v in items if str(k) == m[3]), None)
    if value is None or isinstance(value, str | dict | list):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _panel_series(panel: ChartPanel, rows: list[dict]) -> tuple[dict[str, list[tuple]], float | None]:
    """Per column, (window start, value) points; and the baseline value when the rule is relative."""
    wanted = panel.columns if panel.columns is not None else ((":table",) if panel.table == "profile" else None)
    series: dict[str, list[tuple]] = {}
    baseline = None
    for row in rows:
        col = row.get("column_name")
        if wanted is not None and col not in wanted:
            continue
        if wanted is None and (str(col).startswith(":") or col in panel.exclude):
            continue
        value = _path_value(row, panel.metric)
        if value is None:
            continue
        if panel.table == "profile" and row.get("log_type") == "BASELINE":
            baseline = value
            continue
        series.setdefault(col, []).append((row["window"]["start"], value))
    return series, baseline


def panel_data(panel: ChartPanel, drift: pa.Table | None, profile: pa.Table | None, cfg: MonitorConfig, *,
               granularity: str | None = None) -> tuple[dict[str, list[tuple]], float | None, float | None]:
    """What a rule's panel shows: per column the sorted (window start, value) points, the baseline's
    value (rules relative to the baseline, else None) and the line the rule compares against (its
    threshold; ``baseline + threshold`` for a relative rule, None when that baseline is unknown).
    The chart here and ``driftgate dashboard`` both draw from it."""
    source = drift if panel.table == "drift" else profile
    rows: list[dict] = []
    if source is not None and source.num_rows:
        if panel.table == "drift":
            rows = _whole_table_rows(source, cfg, panel.drift_type or "BASELINE", granularity).to_pylist()
        else:
            rows = _profile_rows(source, cfg, granularity).to_pylist()
    series, baseline = _panel_series(panel, rows)
    for points in series.values():
        points.sort()
    line: float | None = panel.threshold
    if panel.relative_to_baseline:
        line = None if baseline is None else \
            baseline + panel.threshold * (abs(baseline) if panel.change == "relative" else 1.0)
    return series, (baseline if panel.relative_to_baseline else None), line


def rules_chart(drift: pa.Table | None, profile: pa.Table | None, cfg: MonitorConfig, panels: list[ChartPanel],
                path: str | Path, *, granularity: str | None = None) -> Path:
    """Draw each rule's metric over windows with the line the rule compares against.

    Drift panels draw the rule's metric per column (BASELINE or CONSECUTIVE rows, as the rule reads
    them) with its threshold; profile panels draw the metric on ``:table`` (or the rule's columns),
    and for a rule relative to the baseline, the baseline's value and ``baseline + threshold``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels or []
    fig, axes = plt.subplots(max(1, len(panels)), 1, figsize=(10, 3.0 * max(1, len(panels))), squeeze=False,
                             sharex=True)
    for ax, panel in zip(axes[:, 0], panels):
        series, baseline, line = panel_data(panel, drift, profile, cfg, granularity=granularity)
        for col, points in sorted(series.items()):
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=col)
        if baseline is not None:
            ax.axhline(baseline, color="grey", linestyle=":", linewidth=1, label=f"baseline {baseline:.3g}")
        if line is not None:
            ax.axhline(line, color="red", linestyle="--", linewidth=1, label=f"threshold {line:.3g}")
        if not series:
            ax.text(0.5, 0.5, "no values yet", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.set_title(panel.title, fontsize=9, loc="left")
        ax.set_ylabel(panel.metric, fontsize=8)
        ax.legend(fontsize=7, ncol=4, loc="upper left")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{cfg.table_name}: what the gate's rules read, per window", fontsize=10)
    fig.autofmt_xdate()
    return _save(fig, path, cfg)


def _profile_rows(profile: pa.Table, cfg: MonitorConfig, granularity: str | None) -> pa.Table:
    mask = pc.is_null(profile.column("slice_key"))
    if cfg.model_id_col and cfg.model_id_col in profile.column_names:
        mask = pc.and_(mask, pc.equal(profile.column(cfg.model_id_col), "*"))
    if granularity:
        mask = pc.and_(mask, pc.equal(profile.column("granularity"), granularity))
    return profile.filter(pc.fill_null(mask, False))


def _save(fig, path: str | Path, cfg: MonitorConfig) -> Path:
    import matplotlib.pyplot as plt

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
                    thresholds: dict[str, float] | None = None, panels: list[ChartPanel] | None = None,
                    profile_table: str | None = None) -> str | None:
    """Draw the chart from the drift table and log it to the MLflow run ``run_id``.

    The run is named explicitly (client API) so a caller's active run, such as the job's
    MLproject run, is left alone. ``table`` overrides ``cfg.drift_metrics_table`` (the gate
    may read a table that Lakehouse Monitoring wrote).

    With ``panels`` (the gate's rules, :func:`rule_panels`), the chart draws each rule's own
    metric and threshold (:func:`rules_chart`), reading the profile table too.

    Returns the artifact path, or None when the drift table does not exist yet.
    """
    import tempfile

    from mlflow import MlflowClient

    name = table or cfg.drift_metrics_table
    if not ws.tables.exists(name):
        return None
    drift = ws.tables.read(name)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(artifact_file).name
        if panels is not None:
            pname = profile_table or cfg.profile_metrics_table
            profile = ws.tables.read(pname) if any(p.table == "profile" for p in panels) and \
                ws.tables.exists(pname) else None
            out = rules_chart(drift, profile, cfg, panels, target)
        else:
            out = drift_chart(drift, cfg, target, thresholds=thresholds)
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
