"""Performance estimated before labels arrive: confidence-based performance estimation (CBPE).

For a binary classifier whose probabilities are calibrated, P(y = 1 | x) = p, so each served
row's label is a coin with bias p. The expected confusion matrix of a window then follows
from the probabilities alone (NannyML's CBPE, Rossi et al.):

* E[TP] = Σ p·ŷ, E[FP] = Σ (1 − p)·ŷ, E[FN] = Σ p·(1 − ŷ), E[TN] = Σ (1 − p)·(1 − ŷ)
  where ŷ is the served prediction;
* accuracy = (E[TP] + E[TN]) / n; F1 = 2·E[TP] / (2·E[TP] + E[FP] + E[FN]);
* ROC AUC: ranking rows by p, the expected true- and false-positive counts above each
  threshold are the running sums of p and of 1 − p; the area under that expected curve is
  the estimate (ties share a step, as in the realised AUC).

The band is the spread of the realised metric if labels were drawn from the probabilities:
``n_draws`` label vectors y ~ Bernoulli(p), the metric of each, its 2.5% and 97.5% quantiles
(seeded, so a window always gets the same band). It covers sampling noise only.

Blind spot, by construction: the estimate trusts the model's probabilities. A change in
P(y | x) with unchanged P(x) (concept drift) leaves the probabilities, and so the estimate,
where they were; only realised metrics (late labels) can see it. Miscalibration biases it.

Pure functions over NumPy arrays: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftgate.core.metric_tables import ESTIMATE_COLUMNS, ESTIMATED_METRICS as METRICS

__all__ = ["Estimate", "estimate_binary", "METRICS", "ESTIMATE_COLUMNS"]


@dataclass(frozen=True)
class Estimate:
    """One window's estimated metrics and their 95% bands (NaN where undefined)."""

    values: dict[str, float]
    lower: dict[str, float]
    upper: dict[str, float]
    rows: int

    def as_columns(self) -> dict[str, float]:
        """The ``estimated_*`` columns of the profile table."""
        out = {}
        for m in METRICS:
            out[f"estimated_{m}"] = self.values[m]
            out[f"estimated_{m}_lower"] = self.lower[m]
            out[f"estimated_{m}_upper"] = self.upper[m]
        return out


def estimate_binary(probability: np.ndarray, prediction: np.ndarray | None = None, *, n_draws: int = 200,
                    seed: int = 0) -> Estimate:
    """CBPE for one window of a binary classifier.

    Args:
        probability: P(class 1) per served row (calibrated); NaN rows are left out.
        prediction: the served class per row (0/1); default ``probability >= 0.5``.
        n_draws: label draws for the band (0: no band, NaN bounds).
        seed: seed of the draws (the caller derives it from the window, for a stable band).

    Returns:
        The estimate; every metric NaN for an empty window, ROC AUC NaN when every
        probability is 0 or 1 (no expected positives or negatives to rank).
    """
    p = np.asarray(probability, dtype=np.float64)
    keep = ~np.isnan(p)
    if prediction is None:
        yhat = (p >= 0.5).astype(np.float64)
    else:
        yhat = np.asarray(prediction, dtype=np.float64)
        keep &= ~np.isnan(yhat)
    p, yhat = np.clip(p[keep], 0.0, 1.0), yhat[keep]
    n = p.size
    nan = dict.fromkeys(METRICS, float("nan"))
    if n == 0:
        return Estimate(dict(nan), dict(nan), dict(nan), 0)
    # rows tied in (p, ŷ) are interchangeable: the band does not depend on the rows' order (Spark = embedded)
    order = np.lexsort((yhat, -p))
    p_sorted = p[order]
    values = {"roc_auc": _expected_auc(p_sorted), "accuracy": _expected_accuracy(p, yhat),
              "f1": _expected_f1(p, yhat)}
    if n_draws <= 0:
        return Estimate(values, dict(nan), dict(nan), n)
    draws = _realised(p_sorted, yhat[order], n_draws, seed)
    lower = {m: _quantile(draws[m], 0.025) for m in METRICS}
    upper = {m: _quantile(draws[m], 0.975) for m in METRICS}
    return Estimate(values, lower, upper, n)


def _expected_accuracy(p: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.where(yhat == 1, p, 1 - p)))


def _expected_f1(p: np.ndarray, yhat: np.ndarray) -> float:
    tp = float(np.sum(p * yhat))
    fp = float(np.sum((1 - p) * yhat))
    fn = float(np.sum(p * (1 - yhat)))
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom > 0 else float("nan")


def _expected_auc(p_sorted: np.ndarray) -> float:
    """Area under the expected ROC curve; rows of equal probability form one step (trapezoid)."""
    pos, neg = p_sorted, 1 - p_sorted
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    # one point per distinct probability: ties move TPR and FPR together
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    tpr = np.r_[0.0, np.cumsum(pos)[last] / total_pos]
    fpr = np.r_[0.0, np.cumsum(neg)[last] / total_neg]
    return float(np.trapezoid(tpr, fpr))


def _realised(p_sorted: np.ndarray, yhat: np.ndarray, n_draws: int, seed: int) -> dict[str, np.ndarray]:
    """Each metric under ``n_draws`` label vectors drawn from the probabilities (rows sorted by p)."""
    rng = np.random.default_rng(seed)
    n = p_sorted.size
    out = {m: np.empty(n_draws) for m in METRICS}
    # mid-ranks of the scores (ascending), shared by every draw: AUC = Mann-Whitney U / (n1 n0)
    ranks = _midranks(p_sorted)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_draws, chunk):
        stop = min(n_draws, start + chunk)
        y = rng.random((stop - start, n)) < p_sorted  # (draws, rows)
        n1 = y.sum(axis=1)
        n0 = n - n1
        rank_sum = y @ ranks
        with np.errstate(invalid="ignore", divide="ignore"):
            out["roc_auc"][start:stop] = np.where((n1 > 0) & (n0 > 0),
                                                  (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0), np.nan)
            tp = y @ yhat
            fp = yhat.sum() - tp
            fn = n1 - tp
            correct = tp + (n0 - fp)
            out["accuracy"][start:stop] = correct / n
            denom = 2 * tp + fp + fn
            out["f1"][start:stop] = np.where(denom > 0, 2 * tp / denom, np.nan)
    return out


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` with ties given their mean rank (what Mann-Whitney U uses)."""
    order = np.argsort(values, kind="stable")
    sorted_v = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(sorted_v[1:] != sorted_v[:-1]) + 1]
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _quantile(values: np.ndarray, q: float) -> float:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q)) if finite.size else float("nan")
