"""Rendering of a shadow evaluation: tables, a chart and a Markdown report, logged to MLflow.

Drawn from the :class:`~driftgate.promotion.results.ShadowResult` record only, after the
decision was made; nothing here decides anything.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from driftgate.promotion.config import METRICS
from driftgate.promotion.results import ShadowResult

__all__ = ["metric_table", "fairness_table", "shadow_chart", "markdown", "log_shadow_report"]


def metric_table(result: ShadowResult) -> pd.DataFrame:
    """One row per metric: champion, challenger, delta (NaN where a model has no value)."""
    rows = []
    for m in METRICS:
        if f"challenger_{m}" not in result.metrics:
            continue
        rows.append({"metric": m, "champion": result.metrics.get(f"champion_{m}", math.nan),
                     "challenger": result.metrics[f"challenger_{m}"],
                     "delta": result.metrics.get(f"delta_{m}", math.nan)})
    return pd.DataFrame(rows, columns=["metric", "champion", "challenger", "delta"])


def fairness_table(result: ShadowResult) -> pd.DataFrame:
    """Per protected slice and model: the row count and each fairness rate."""
    return pd.DataFrame(list(result.fairness))


def shadow_chart(result: ShadowResult):
    """A matplotlib figure: metrics side by side, and the primary metric's CI of the difference."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = metric_table(result)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    if not table.empty:
        x = range(len(table))
        ax.bar([i - 0.2 for i in x], table["champion"].fillna(0), width=0.4,
               label=f"champion v{result.champion_version}")
        ax.bar([i + 0.2 for i in x], table["challenger"], width=0.4, label=f"challenger v{result.challenger_version}")
        ax.set_xticks(list(x), table["metric"], rotation=30, ha="right")
        ax.legend()
    ax.set_title(f"shadow evaluation: {result.status} ({result.n_labelled} labelled rows)")
    ax = axes[1]
    iv = result.interval
    if iv is not None and not math.isnan(iv.low):
        ax.errorbar([0], [iv.difference], yerr=[[iv.difference - iv.low], [iv.high - iv.difference]], fmt="o",
                    capsize=6)
        ax.axhline(0, color="grey", linewidth=1)
        ax.set_title(f"{iv.metric} difference, {iv.confidence:.0%} CI")
    else:
        ax.set_title("no interval")
    ax.set_xticks([])
    fig.tight_layout()
    return fig


def markdown(result: ShadowResult) -> str:
    """A short human-readable report of the decision and its evidence."""
    lines = [f"# Shadow evaluation of {result.model_name} v{result.challenger_version}",
             "", f"**Decision: {result.status}** against champion "
             f"{'v' + result.champion_version if result.champion_version else '(none)'}",
             f"Window {result.window_start} → {result.window_end}: {result.n_rows} rows, "
             f"{result.n_labelled} labelled.", "", "## Reasons", *[f"- {r}" for r in result.reasons], ""]
    table = metric_table(result)
    if not table.empty:
        lines += ["## Metrics", "", "| metric | champion | challenger | delta |", "|---|---|---|---|"]
        lines += [f"| {r.metric} | {r.champion:.4f} | {r.challenger:.4f} | {r.delta:+.4f} |" for r in table.itertuples()]
        lines.append("")
    if result.interval is not None:
        iv = result.interval
        lines += [f"Paired bootstrap ({iv.n_resamples} resamples): {iv.metric} difference {iv.difference:+.4f}, "
                  f"{iv.confidence:.0%} CI [{iv.low:+.4f}, {iv.high:+.4f}].", ""]
    fair = fairness_table(result)
    if not fair.empty:
        lines += ["## Fairness per protected slice", "", fair.to_markdown(index=False) if _has_tabulate() else
                  fair.to_string(index=False), ""]
    return "\n".join(lines)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def log_shadow_report(result: ShadowResult, cfg: Any, *, ws) -> str:
    """Log the report to an MLflow run in the project experiment; returns its run id.

    Uses the client API so an active run of the caller (the job's) is left untouched; under
    ``mlflow run -e shadow`` it is the project's own run (``workspace.context.open_stage_run``).
    """
    import matplotlib.pyplot as plt
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from driftgate.workspace.context import open_stage_run

    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    run_id = open_stage_run(ws, f"shadow v{result.challenger_version} vs "
                            f"{'v' + result.champion_version if result.champion_version else 'none'}",
                            {"driftgate.stage": "shadow", "driftgate.decision": result.status,
                             "driftgate.model": result.model_name})
    status = "FINISHED"
    try:
        params = {"champion_version": result.champion_version or "none",
                  "challenger_version": result.challenger_version, "window_start": result.window_start,
                  "window_end": result.window_end, "primary_metric": cfg.primary_metric,
                  "guard": cfg.guard.method, "min_labelled_rows": cfg.min_labelled_rows}
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, float) and not math.isnan(v)}
        metrics.update(n_rows=float(result.n_rows), n_labelled=float(result.n_labelled))
        client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()],
                         tags=[RunTag("driftgate.reasons", " | ".join(result.reasons)[:4900])])
        client.log_dict(run_id, result.as_dict(), "shadow/decision.json")
        client.log_text(run_id, markdown(result), "shadow/report.md")
        table = metric_table(result)
        if not table.empty:
            client.log_table(run_id, table, "shadow/metrics.json")
        fair = fairness_table(result)
        if not fair.empty:
            client.log_table(run_id, fair, "shadow/fairness.json")
        fig = shadow_chart(result)
        client.log_figure(run_id, fig, "shadow/chart.png")
        plt.close(fig)
        # the drift that led here, beside the evidence for the challenger
        from driftgate.gating.evaluate import attach_drift_chart

        attach_drift_chart(ws, run_id)
    except Exception:
        status = "FAILED"
        raise
    finally:
        client.set_terminated(run_id, status)
    return run_id
