"""The promotion policy: pure functions from replayed predictions and config to a verdict.

Nothing here reads a table or calls a registry. :func:`decide` takes a frozen
:class:`ShadowEvidence` (metrics of both models, the statistical guard's numbers,
fairness gaps, row counts) and returns a :class:`Verdict`. The metric criteria are
checked by MLflow itself (``MetricThreshold`` + ``mlflow.validate_evaluation_results``)
so their semantics are exactly MLflow's; the guard and the fairness rule are ours.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

from driftgate.core.records import ShadowStatus
from driftgate.promotion.config import GREATER_IS_BETTER, PromotionConfig

__all__ = [
    "STATUSES", "Interval", "Check", "Verdict", "ShadowEvidence", "model_metrics", "classification_metrics",
    "paired_bootstrap", "mcnemar", "slice_rates", "fairness_gaps", "agreement", "thresholds_for", "decide",
]

STATUSES = tuple(ShadowStatus)
_EPS = 1e-15
_SENTENCE = re.compile(r"(?<=\.)\s+(?=Metric |Model comparison)")


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap confidence interval of ``challenger - champion`` for one metric."""

    metric: str
    difference: float
    low: float
    high: float
    confidence: float
    n_resamples: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Check:
    """One criterion and whether the challenger met it."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    status: ShadowStatus
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ShadowStatus(self.status))  # refuses an unknown status


@dataclass(frozen=True)
class ShadowEvidence:
    """Everything the policy looks at, computed from one shadow window.

    ``champion_metrics`` is None when there is no champion yet: then only the
    absolute floors apply. ``fairness_gaps`` maps ``column/metric`` to the largest
    gap between judged slices, per model.
    """

    n_rows: int
    n_labelled: int
    challenger_metrics: Mapping[str, float]
    champion_metrics: Mapping[str, float] | None = None
    interval: Interval | None = None
    mcnemar_p: float | None = None
    mcnemar_counts: tuple[int, int] | None = None
    """(champion right & challenger wrong, champion wrong & challenger right)."""
    challenger_gaps: Mapping[str, float] = field(default_factory=dict)
    champion_gaps: Mapping[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Refusals found before any metric (signature mismatch, unscorable rows)."""


# --------------------------------------------------------------------------- statistics


def _weighted_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, w: np.ndarray,
                      names: Sequence[str], problem_type: str = "binary") -> dict[str, np.ndarray]:
    """Metrics for each row of weights ``w`` (shape ``(B, n)``); a row of ones is the plain metric.

    Weighted by resample counts, so a paired bootstrap is one matrix product per
    metric instead of B calls into scikit-learn. ``proba``: binary P(positive class),
    multiclass the probability given to the true label, regression unused.
    """
    if problem_type == "regression":
        return _weighted_regression(np.asarray(y, dtype=float), np.asarray(pred, dtype=float), w, names)
    if problem_type == "multiclass":
        return _weighted_multiclass(np.asarray(y), np.asarray(pred), proba, w, names)
    y = y.astype(float)
    pred = pred.astype(float)
    total = w.sum(axis=1)
    tp = w @ (y * pred)
    fp = w @ ((1 - y) * pred)
    fn = w @ (y * (1 - pred))
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if "accuracy_score" in names:
            out["accuracy_score"] = (w @ (y == pred).astype(float)) / total
        out.update(_precision_recall_f1(tp, fp, fn, names))
        if "log_loss" in names:
            p = np.clip(proba, _EPS, 1 - _EPS)
            out["log_loss"] = (w @ -(y * np.log(p) + (1 - y) * np.log(1 - p))) / total
        if "roc_auc" in names:
            out["roc_auc"] = _weighted_auc(y, proba, w)
    return out


def _precision_recall_f1(tp, fp, fn, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Precision, recall and F1 from (weighted) counts; 0 where undefined, as scikit-learn's zero_division=0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), 0.0)
        recall = np.where(tp + fn > 0, tp / np.where(tp + fn > 0, tp + fn, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0,
                                                                                 precision + recall, 1), 0.0)
    found = {"precision_score": precision, "recall_score": recall, "f1_score": f1}
    return {k: v for k, v in found.items() if k in names}


def _weighted_multiclass(y: np.ndarray, pred: np.ndarray, p_true: np.ndarray | None, w: np.ndarray,
                         names: Sequence[str]) -> dict[str, np.ndarray]:
    """Accuracy, macro precision / recall / F1 over the labels seen in ``y`` or ``pred``, log loss of P(true label)."""
    import pandas as pd

    total = w.sum(axis=1)
    right = (y == pred).astype(float)
    out: dict[str, np.ndarray] = {}
    if "accuracy_score" in names:
        out["accuracy_score"] = (w @ right) / total
    if {"precision_score", "recall_score", "f1_score"} & set(names):
        per_class = []
        for label in pd.unique(np.concatenate([y, pred])):
            is_y, is_p = (y == label), (pred == label)
            per_class.append(_precision_recall_f1(w @ (is_y & is_p).astype(float), w @ (~is_y & is_p).astype(float),
                                                  w @ (is_y & ~is_p).astype(float), names))
        for name in per_class[0]:
            out[name] = np.mean([c[name] for c in per_class], axis=0)
    if "log_loss" in names:
        out["log_loss"] = (w @ -np.log(np.clip(p_true, _EPS, 1))) / total
    return out


def _weighted_regression(y: np.ndarray, pred: np.ndarray, w: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """MSE, RMSE, MAE and R2 (1 - SSE / total sum of squares about the weighted mean)."""
    total = w.sum(axis=1)
    err = pred - y
    mse = (w @ err ** 2) / total
    mean = (w @ y) / total
    sst = w @ y ** 2 - total * mean ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        found = {"mean_squared_error": mse, "root_mean_squared_error": np.sqrt(mse),
                 "mean_absolute_error": (w @ np.abs(err)) / total,
                 "r2_score": np.where(sst > 1e-12 * np.maximum(total, 1), 1 - (w @ err ** 2) / np.where(sst > 0, sst, 1),
                                      np.nan)}
    return {k: v for k, v in found.items() if k in names}


def _weighted_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with row weights; ties count one half (as ``roc_auc_score``)."""
    order = np.argsort(score, kind="mergesort")
    s, yy, ww = score[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(ww * yy, starts, axis=1)
    neg = np.add.reduceat(ww * (1 - yy), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def model_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, names: Sequence[str],
                  problem_type: str = "binary") -> dict[str, float]:
    """The named metrics of one model on labelled rows (MLflow's metric names).

    ``proba``: binary P(positive class); multiclass the probability given to each row's true
    label (:meth:`driftgate.promotion.scoring.Scored.metric_inputs`); regression None.
    ROC AUC is NaN when the labels hold a single class: it is undefined, not 0.5; so is R2
    when the labels do not vary.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    proba = None if proba is None else np.asarray(proba, dtype=float)
    if len(y) == 0:
        return {n: math.nan for n in names}
    values = _weighted_metrics(y, pred, proba, np.ones((1, len(y))), names, problem_type)
    return {n: float(values[n][0]) for n in names}


def classification_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray,
                           names: Sequence[str]) -> dict[str, float]:
    """Binary :func:`model_metrics`."""
    return model_metrics(y, pred, proba, names, "binary")


def paired_bootstrap(y, champion: tuple[np.ndarray, np.ndarray], challenger: tuple[np.ndarray, np.ndarray], *,
                     metric: str, n_resamples: int, confidence: float, seed: int,
                     problem_type: str = "binary") -> Interval:
    """Percentile CI of ``metric(challenger) - metric(champion)`` over paired resamples of the rows.

    Both models are scored on the same resampled rows each time, which removes the
    row-sampling noise they share: the interval reflects their difference only.

    Args:
        y: labels (0/1 for binary, class labels, or values for regression).
        champion: ``(prediction, probability)`` of the champion on the same rows (see :func:`model_metrics`).
        challenger: ``(prediction, probability)`` of the challenger.
        metric: one of :data:`driftgate.promotion.config.METRICS`.
        n_resamples: bootstrap resamples.
        confidence: two-sided level, e.g. 0.95.
        seed: makes the interval reproducible.
        problem_type: ``binary``, ``multiclass`` or ``regression``.
    """
    y = np.asarray(y)
    n = len(y)
    rng = np.random.default_rng(seed)
    left = n_resamples
    # Chunked so memory stays around 16 MB whatever the window size.
    step = max(1, int(2_000_000 // max(n, 1)))
    diffs = []
    while left > 0:
        b = min(step, left)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(float)
        a = _weighted_metrics(y, champion[0], champion[1], w, [metric], problem_type)[metric]
        c = _weighted_metrics(y, challenger[0], challenger[1], w, [metric], problem_type)[metric]
        diffs.append(c - a)
        left -= b
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    point = (model_metrics(y, *challenger, [metric], problem_type)[metric]
             - model_metrics(y, *champion, [metric], problem_type)[metric])
    alpha = 1 - confidence
    if len(d) == 0:
        return Interval(metric, point, math.nan, math.nan, confidence, n_resamples)
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return Interval(metric, float(point), float(low), float(high), confidence, n_resamples)


def mcnemar(y, champion_pred, challenger_pred) -> tuple[float, tuple[int, int]]:
    """Exact one-sided McNemar test that the challenger is right more often than the champion.

    Returns:
        ``(p_value, (b, c))`` with b = champion right & challenger wrong and
        c = champion wrong & challenger right; p = P(X >= c), X ~ Binomial(b + c, 1/2).
    """
    from scipy.stats import binomtest

    y = np.asarray(y)
    a_ok = np.asarray(champion_pred) == y
    c_ok = np.asarray(challenger_pred) == y
    b = int(np.sum(a_ok & ~c_ok))
    c = int(np.sum(~a_ok & c_ok))
    if b + c == 0:
        return 1.0, (b, c)
    return float(binomtest(c, b + c, 0.5, alternative="greater").pvalue), (b, c)


def _rate(name: str, yy: np.ndarray, pp: np.ndarray) -> float:
    pos, neg = yy == 1, yy == 0
    if name == "selection_rate":
        return float(pp.mean()) if len(pp) else math.nan
    if name == "true_positive_rate":
        return float(pp[pos].mean()) if pos.any() else math.nan
    if name == "false_positive_rate":
        return float(pp[neg].mean()) if neg.any() else math.nan
    if name == "mean_absolute_error":
        return float(np.abs(pp.astype(float) - yy.astype(float)).mean()) if len(pp) else math.nan
    return float((pp == yy).mean()) if len(pp) else math.nan  # accuracy_score


def slice_rates(y, pred, groups, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per-slice rates of one model (selection rate, TPR, FPR, accuracy, MAE), with the slice's row count."""
    y, pred, groups = np.asarray(y), np.asarray(pred), np.asarray(groups, dtype=object)
    rows = []
    for value in sorted({g for g in groups if g is not None}, key=str):
        m = groups == value
        rows.append({"slice": str(value), "n": int(m.sum()), **{k: _rate(k, y[m], pred[m]) for k in metrics}})
    return rows


def fairness_gaps(rows: list[dict[str, Any]], metrics: Sequence[str], min_rows: int) -> dict[str, float]:
    """Largest difference of each rate between slices with at least ``min_rows`` rows (NaN if < 2 slices)."""
    judged = [r for r in rows if r["n"] >= min_rows]
    gaps = {}
    for metric in metrics:
        values = [r[metric] for r in judged if not math.isnan(r[metric])]
        gaps[metric] = float(max(values) - min(values)) if len(values) >= 2 else math.nan
    return gaps


def agreement(champion: tuple[np.ndarray, np.ndarray], challenger: tuple[np.ndarray, np.ndarray],
              bins: int = 10, problem_type: str = "binary") -> dict[str, float]:
    """How the two models differ without labels: agreement rate and prediction-distribution drift.

    ``probability_js_distance`` is the Jensen-Shannon distance (base 2, in [0, 1]) between
    the two models' probability histograms on the same rows (binary). Multiclass: the
    agreement rate; regression: the mean absolute difference of the predictions.
    """
    from scipy.spatial.distance import jensenshannon

    pa_, pb_ = np.asarray(champion[0]), np.asarray(challenger[0])
    if problem_type == "regression":
        diff = float(np.abs(pa_.astype(float) - pb_.astype(float)).mean()) if len(pa_) else math.nan
        return {"prediction_mean_absolute_difference": diff}
    if problem_type == "multiclass" or champion[1] is None or challenger[1] is None:
        return {"agreement_rate": float((pa_ == pb_).mean()) if len(pa_) else math.nan}
    if len(pa_) == 0:
        return {"agreement_rate": math.nan, "positive_rate_champion": math.nan,
                "positive_rate_challenger": math.nan, "probability_js_distance": math.nan}
    edges = np.linspace(0, 1, bins + 1)
    ha = np.histogram(np.clip(champion[1], 0, 1), edges)[0] + 1e-9
    hb = np.histogram(np.clip(challenger[1], 0, 1), edges)[0] + 1e-9
    return {
        "agreement_rate": float((pa_ == pb_).mean()),
        "positive_rate_champion": float(pa_.mean()),
        "positive_rate_challenger": float(pb_.mean()),
        "probability_js_distance": float(jensenshannon(ha, hb, base=2)),
    }


# --------------------------------------------------------------------------- the decision


def thresholds_for(cfg: PromotionConfig, *, with_baseline: bool) -> dict:
    """The configured criteria as MLflow ``MetricThreshold`` objects.

    Without a baseline (no champion yet) only the absolute floors apply: MLflow would
    fail a change criterion whose baseline metric is missing.
    """
    from mlflow.models import MetricThreshold

    out = {}
    for metric, c in cfg.criteria.items():
        kwargs = {"threshold": c.threshold}
        if with_baseline:
            kwargs.update(min_absolute_change=c.min_absolute_change, min_relative_change=c.min_relative_change)
        if all(v is None for v in kwargs.values()):
            continue
        out[metric] = MetricThreshold(greater_is_better=GREATER_IS_BETTER[metric], **{
            k: (float(v) if v is not None else None) for k, v in kwargs.items()})
    return out


def _mlflow_check(cfg: PromotionConfig, ev: ShadowEvidence) -> Check:
    import mlflow
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    with_baseline = ev.champion_metrics is not None
    thresholds = thresholds_for(cfg, with_baseline=with_baseline)
    if not thresholds:
        return Check("criteria", True, "no criteria configured")
    candidate = EvaluationResult(metrics=dict(ev.challenger_metrics), artifacts={})
    baseline = EvaluationResult(metrics=dict(ev.champion_metrics), artifacts={}) if with_baseline else None
    # MLflow logs "validating..." at INFO on every call; the verdict is ours to report.
    logger = logging.getLogger("mlflow.models.evaluation.validation")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        mlflow.validate_evaluation_results(thresholds, candidate, baseline)
    except ModelValidationFailedException as exc:
        lines = [line.strip() for line in str(exc.message).splitlines() if line.strip()]
        return Check("criteria", False, " ".join(lines))
    finally:
        logger.setLevel(level)
    what = "floors and changes against the champion" if with_baseline else "absolute floors (no champion yet)"
    return Check("criteria", True, f"{', '.join(thresholds)} met the {what}")


def _guard_checks(cfg: PromotionConfig, ev: ShadowEvidence) -> list[Check]:
    checks = []
    guard = cfg.guard
    if guard.method in ("bootstrap", "both"):
        iv = ev.interval
        if iv is None or math.isnan(iv.low):
            checks.append(Check("bootstrap", False, "no bootstrap interval could be computed"))
        else:
            better = iv.low > 0 if GREATER_IS_BETTER[iv.metric] else iv.high < 0
            checks.append(Check(
                "bootstrap", bool(better),
                f"{iv.metric} difference {iv.difference:+.4f}, {iv.confidence:.0%} CI [{iv.low:+.4f}, {iv.high:+.4f}]"
                + ("" if better else " includes no improvement: not beyond noise")))
    if guard.method in ("mcnemar", "both"):
        alpha = 1 - guard.confidence
        p = ev.mcnemar_p
        ok = p is not None and p < alpha
        counts = f" (discordant: champion-only right {ev.mcnemar_counts[0]}, challenger-only right " \
                 f"{ev.mcnemar_counts[1]})" if ev.mcnemar_counts else ""
        checks.append(Check("mcnemar", bool(ok), f"McNemar p={p if p is not None else float('nan'):.4g} "
                            f"vs alpha {alpha:.3g}{counts}"))
    return checks


def _fairness_checks(cfg: PromotionConfig, ev: ShadowEvidence) -> list[Check]:
    checks = []
    tol = cfg.fairness.tolerance
    for key, new_gap in ev.challenger_gaps.items():
        old_gap = ev.champion_gaps.get(key, math.nan)
        if math.isnan(new_gap) or math.isnan(old_gap):
            checks.append(Check(f"fairness:{key}", True, f"{key}: fewer than two judged slices, not compared"))
            continue
        ok = new_gap - old_gap <= tol
        checks.append(Check(f"fairness:{key}", ok,
                            f"{key} gap {old_gap:.4f} -> {new_gap:.4f} (tolerance +{tol:g})"
                            + ("" if ok else ": fairness regressed")))
    return checks


def decide(cfg: PromotionConfig, ev: ShadowEvidence) -> Verdict:
    """PASS, FAIL, INSUFFICIENT_DATA or NO_LABELS for one shadow evaluation.

    Order matters and is fail-closed: refusals found before scoring fail; no labels
    waits; too few labels or an undefined criterion metric is INSUFFICIENT_DATA; only
    then are the MLflow criteria, the statistical guard (skipped when there is no
    champion to compare with) and fairness non-regression checked, and all must pass.
    """
    if ev.problems:
        return Verdict("FAIL", tuple(ev.problems), tuple(Check("preconditions", False, p) for p in ev.problems))
    if ev.n_rows == 0:
        return Verdict("INSUFFICIENT_DATA", ("the champion served no rows in the inference table; nothing to replay",))
    if ev.n_labelled == 0:
        return Verdict("NO_LABELS", (f"none of the {ev.n_rows} rows in the shadow window has a label yet; "
                                     "waiting for labels (agreement and prediction drift reported)",))
    if ev.n_labelled < cfg.min_labelled_rows:
        return Verdict("INSUFFICIENT_DATA", (f"{ev.n_labelled} labelled rows in the shadow window, "
                                             f"need at least {cfg.min_labelled_rows} (promotion.min_labelled_rows)",))
    needed = set(cfg.criteria) | ({cfg.primary_metric} if ev.champion_metrics is not None else set())
    undefined = sorted(m for m in needed
                       if math.isnan(ev.challenger_metrics.get(m, math.nan))
                       or (ev.champion_metrics is not None and math.isnan(ev.champion_metrics.get(m, math.nan))))
    if undefined:
        return Verdict("INSUFFICIENT_DATA", (f"metrics {undefined} are undefined on the window "
                                             "(labels of a single class?)",))
    checks = [_mlflow_check(cfg, ev)]
    if ev.champion_metrics is not None:
        checks += _guard_checks(cfg, ev)
        checks += _fairness_checks(cfg, ev)
    failed = [c for c in checks if not c.passed]
    if failed:
        reasons = []
        for c in failed:
            # MLflow joins one sentence per failed metric; keep one reason per failed criterion.
            reasons += _SENTENCE.split(c.detail) if c.name == "criteria" else [c.detail]
        return Verdict("FAIL", tuple(reasons), tuple(checks))
    return Verdict("PASS", tuple(c.detail for c in checks), tuple(checks))
