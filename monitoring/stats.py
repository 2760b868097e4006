"""The statistics of the metric tables, as pure NumPy/SciPy functions of raw arrays.

Both engines call these, so a row means the same whoever computed it. Definitions
(also in ``docs/tables.md``):

* KS: two-sample Kolmogorov-Smirnov, exact statistic, p-value from the Kolmogorov
  distribution with Stephens' correction (see :func:`ks_test`).
* Wasserstein-1 between the empirical distributions (``scipy.stats.wasserstein_distance``).
* PSI: ``sum((p - q) * ln(p / q))`` over ``PSI_BINS`` quantile bins of the *comparison*
  sample (baseline or previous window); a bin share of 0 is replaced by ``PSI_EPSILON``
  on either side. Identical samples give exactly 0.
* Chi-squared: two-sample test of homogeneity, ``scipy.stats.chi2_contingency`` on the
  2 x k table of category counts (never goodness of fit against the comparison's shares).
* JS distance base 2 (in [0, 1]), TV = ½Σ|p−q|, L∞ = max|p−q| over category shares.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special
from scipy import stats as sps

__all__ = ["PSI_BINS", "PSI_EPSILON", "QUANTILE_LEVELS", "numeric_profile", "categorical_profile",
           "numeric_drift", "categorical_drift", "psi", "ks_test", "wasserstein", "chi_squared", "classification_quality", "fairness"]

PSI_BINS = 10
"""Quantile bins of the comparison sample for PSI (deciles; ties merge bins)."""
PSI_EPSILON = 1e-4
"""Share used in place of an empty bin's 0 share, on either side."""
QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
"""Levels of the ``quantiles`` array in the profile table (linear interpolation)."""
FREQUENT_ITEMS = 10


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def numeric_profile(values: np.ndarray, nulls: np.ndarray) -> dict[str, Any]:
    """Profile statistics of one numeric column in one window.

    ``values`` are floats (anything at null positions); ``nulls`` marks NULLs. NaN is
    counted in ``num_nan``; avg, stddev, min, max, quantiles use the finite values only.
    """
    count = int(values.shape[0])
    present = values[~nulls]
    num_nulls = count - int(present.shape[0])
    nan = np.isnan(present)
    num_nan = int(nan.sum())
    finite = present[np.isfinite(present)]
    out: dict[str, Any] = {
        "count": count, "num_nulls": num_nulls, "num_nan": num_nan,
        "percent_null": _pct(num_nulls, count), "percent_nan": _pct(num_nan, count),
    }
    nonnull = present.shape[0]
    zeros = int((present == 0).sum())
    out["num_zeros"] = zeros
    out["percent_zeros"] = _pct(zeros, count)
    distinct = int(np.unique(present[~nan]).shape[0]) + (1 if num_nan else 0)
    out["distinct_count"] = distinct
    out["percent_distinct"] = _pct(distinct, nonnull)
    if finite.shape[0]:
        out["avg"] = float(finite.mean())
        out["stddev"] = float(finite.std(ddof=1)) if finite.shape[0] > 1 else None
        q = np.quantile(finite, QUANTILE_LEVELS)
        out["quantiles"] = [float(x) for x in q]
        out["min"], out["max"], out["median"] = float(q[0]), float(q[-1]), float(q[5])
    return out


def categorical_profile(codes: np.ndarray, categories: list[str]) -> dict[str, Any]:
    """Profile statistics of one categorical column (codes into ``categories``, -1 = NULL)."""
    count = int(codes.shape[0])
    present = codes[codes >= 0]
    num_nulls = count - int(present.shape[0])
    counts = np.bincount(present, minlength=len(categories)) if present.shape[0] else np.zeros(len(categories), int)
    seen = np.flatnonzero(counts)
    top = seen[np.argsort(-counts[seen], kind="stable")][:FREQUENT_ITEMS]
    out: dict[str, Any] = {
        "count": count, "num_nulls": num_nulls, "num_nan": 0, "num_zeros": 0,
        "percent_null": _pct(num_nulls, count), "percent_nan": _pct(0, count), "percent_zeros": _pct(0, count),
        "distinct_count": int(seen.shape[0]), "percent_distinct": _pct(int(seen.shape[0]), present.shape[0]),
        "frequent_items": [{"item": categories[i], "count": int(counts[i])} for i in top],
    }
    if seen.shape[0]:
        lengths = np.array([len(categories[i]) for i in seen], dtype=float)
        weights = counts[seen]
        out["min_length"], out["max_length"] = float(lengths.min()), float(lengths.max())
        out["avg_length"] = float((lengths * weights).sum() / weights.sum())
    return out


def psi(current: np.ndarray, comparison: np.ndarray, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON) -> float:
    """PSI over quantile bins of ``comparison`` (finite values only)."""
    edges = np.unique(np.quantile(comparison, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.shape[0] + 1) / current.shape[0]
    q = np.bincount(np.searchsorted(edges, comparison, side="right"), minlength=edges.shape[0] + 1) / comparison.shape[0]
    p = np.where(p == 0, epsilon, p)
    q = np.where(q == 0, epsilon, q)
    return float(np.sum((p - q) * np.log(p / q)))


def ks_test(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sample KS on sorted samples: D exactly; the p-value from the Kolmogorov
    distribution with Stephens' small-sample correction, ``Q((√n + 0.12 + 0.11/√n) D)``
    with ``n = n_a n_b / (n_a + n_b)`` (within 0.02 of ``scipy.stats.ks_2samp`` from 50 rows,
    and a closed form, where scipy's finite-n distribution costs milliseconds per call)."""
    both = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, both, side="right") / a.shape[0]
                            - np.searchsorted(b, both, side="right") / b.shape[0])))
    en = np.sqrt(a.shape[0] * b.shape[0] / (a.shape[0] + b.shape[0]))
    pvalue = float(np.clip(special.kolmogorov((en + 0.12 + 0.11 / en) * d), 0.0, 1.0))
    return {"statistic": d, "pvalue": pvalue}


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 between the empirical distributions of two sorted samples."""
    both = np.sort(np.concatenate([a, b]))
    deltas = np.diff(both)
    fa = np.searchsorted(a, both[:-1], side="right") / a.shape[0]
    fb = np.searchsorted(b, both[:-1], side="right") / b.shape[0]
    return float(np.sum(np.abs(fa - fb) * deltas))


def numeric_drift(current: np.ndarray, comparison: np.ndarray) -> dict[str, Any]:
    """KS, Wasserstein-1 and PSI between two samples (finite values are used; NULL if either is empty)."""
    cur = np.sort(current[np.isfinite(current)])
    cmp_ = np.sort(comparison[np.isfinite(comparison)])
    if not cur.shape[0] or not cmp_.shape[0]:
        return {}
    return {
        "ks_test": ks_test(cur, cmp_),
        "wasserstein_distance": wasserstein(cur, cmp_),
        "population_stability_index": psi(cur, cmp_),
    }


def chi_squared(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sample chi-squared test of homogeneity on category counts ``a`` and ``b``: as
    ``scipy.stats.chi2_contingency`` (Yates' correction when there are two categories)."""
    observed = np.vstack([a, b]).astype(float)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    dof = observed.shape[1] - 1
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return {"statistic": stat, "pvalue": float(special.chdtrc(dof, stat))}


def _js(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max(0.0, (kp + kq) / 2)))


def categorical_drift(current: np.ndarray, comparison: np.ndarray, n_categories: int) -> dict[str, Any]:
    """Chi-squared (two-sample), JS (base 2), TV and L∞ between two samples of category codes."""
    cur = current[current >= 0]
    cmp_ = comparison[comparison >= 0]
    if not cur.shape[0] or not cmp_.shape[0]:
        return {}
    a = np.bincount(cur, minlength=n_categories)
    b = np.bincount(cmp_, minlength=n_categories)
    used = (a + b) > 0
    a, b = a[used], b[used]
    p, q = a / a.sum(), b / b.sum()
    # One category on both sides: no evidence of any difference.
    chi = chi_squared(a, b) if a.shape[0] > 1 else {"statistic": 0.0, "pvalue": 1.0}
    return {
        "chi_squared_test": chi,
        "js_distance": _js(p, q),
        "tv_distance": float(0.5 * np.abs(p - q).sum()),
        "l_infinity_distance": float(np.abs(p - q).max()),
    }


def _rates(label: np.ndarray, pred: np.ndarray, classes: np.ndarray):
    tp = np.array([np.sum((pred == c) & (label == c)) for c in classes], dtype=float)
    npred = np.array([np.sum(pred == c) for c in classes], dtype=float)
    ntrue = np.array([np.sum(label == c) for c in classes], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(npred > 0, tp / np.maximum(npred, 1), 0.0)
        recall = np.where(ntrue > 0, tp / np.maximum(ntrue, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0,
                                                                                   precision + recall, 1), 0.0)
    return precision, recall, f1, ntrue


def classification_quality(label: np.ndarray, pred: np.ndarray, names: list[str],
                           proba: np.ndarray | None = None, positive: int | None = None) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro, weighted, one-vs-all), confusion matrix, ROC AUC, log loss.

    ``label`` and ``pred`` are codes into ``names`` over labelled rows only (as
    scikit-learn: classes are those in labels or predictions; 0/0 rates are 0).
    ROC AUC and log loss need ``proba`` (P(class ``positive``)) and both classes in the labels.
    """
    n = int(label.shape[0])
    if n == 0:
        return {}
    classes = np.union1d(np.unique(label), np.unique(pred))
    precision, recall, f1, support = _rates(label, pred, classes)
    total = support.sum()

    def agg(x: np.ndarray) -> dict[str, Any]:
        return {"macro": float(x.mean()), "weighted": float((x * support).sum() / total),
                "one_vs_all": [(names[c], float(v)) for c, v in zip(classes, x)]}

    pairs, counts = np.unique(np.stack([pred, label]), axis=1, return_counts=True)
    out: dict[str, Any] = {
        "accuracy_score": float(np.mean(label == pred)),
        "precision": agg(precision), "recall": agg(recall), "f1_score": agg(f1),
        "confusion_matrix": [{"prediction": names[p], "label": names[t], "count": int(c)}
                             for (p, t), c in zip(pairs.T, counts)],
    }
    if proba is not None and positive is not None:
        ok = np.isfinite(proba)
        y = (label[ok] == positive)
        p = proba[ok]
        n_pos = int(y.sum())
        n_neg = int(y.shape[0] - n_pos)
        if n_pos and n_neg:
            ranks = sps.rankdata(p)
            out["roc_auc"] = float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
            eps = np.finfo(float).eps
            pc = np.clip(p, eps, 1 - eps)
            out["log_loss"] = float(-np.mean(np.where(y, np.log(pc), np.log1p(-pc))))
    return out


def fairness(label: np.ndarray, pred: np.ndarray, protected: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Fairness maps keyed by predicted class: protected-group rate minus unprotected-group rate.

    For each class c (one-vs-all): ``statistical_parity`` = P(ŷ=c | A) − P(ŷ=c | ¬A);
    ``predictive_parity`` = precision difference; ``predictive_equality`` = false positive
    rate difference; ``equal_opportunity`` = true positive rate (recall) difference.
    ``label`` may hold -1 for unlabelled rows (used by statistical parity only).
    """
    if not protected.any() or protected.all():
        return {}
    classes = np.unique(pred[pred >= 0])
    out: dict[str, list] = {"statistical_parity": [], "predictive_parity": [], "predictive_equality": [],
                            "equal_opportunity": []}

    def rate(num: np.ndarray, den: np.ndarray) -> float | None:
        d = den.sum()
        return float((num & den).sum() / d) if d else None

    def diff(a, b):
        return None if a is None or b is None else a - b

    labelled = label >= 0
    for c in classes:
        key = names[c]
        yhat = pred == c
        y = label == c
        groups = [protected, ~protected]
        sp = [rate(yhat, g) for g in groups]
        pp = [rate(y, yhat & g & labelled) for g in groups]
        pe = [rate(yhat, ~y & g & labelled) for g in groups]
        eo = [rate(yhat, y & g & labelled) for g in groups]
        for name, (a, b) in (("statistical_parity", sp), ("predictive_parity", pp),
                             ("predictive_equality", pe), ("equal_opportunity", eo)):
            value = diff(a, b)
            if value is not None:
                out[name].append((key, value))
    return {k: v for k, v in out.items() if v}
