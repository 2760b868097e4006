"""Pure statistics of the monitor: column profiles, two-sample drift, model quality, fairness.

Every function takes NumPy / Arrow values and returns plain Python values; no I/O.
Both engines call these functions (the Spark engine inside ``applyInPandas``), so
the two produce the same rows by construction. Formulas are documented in
``docs/tables.md``.

Two-sample statistics are exact (through SciPy) when both samples together hold at
most :data:`EXACT_LIMIT` values. Above that they are computed from a grid of
:data:`GRID_BINS` quantile bins of the comparison sample (one sort of the comparison
sample, one ``searchsorted`` pass over the current one); the error bounds are derived
in ``docs/tables.md`` and checked in ``tests/test_monitor_stats.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats as sps
from scipy import special

__all__ = [
    "QUANTILES", "EXACT_LIMIT", "GRID_BINS", "PSI_EPSILON", "FREQUENT_ITEMS",
    "ColumnProfile", "profile_column", "numeric_values", "category_counts",
    "numeric_drift", "categorical_drift", "psi", "classification_quality", "fairness",
]

QUANTILES: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
"""Probabilities of the ``quantiles`` array in the profile table (linear interpolation)."""
EXACT_LIMIT = 200_000
"""Up to this many values (both samples together) KS and Wasserstein are exact."""
GRID_BINS = 2000
"""Quantile bins of the comparison sample used above :data:`EXACT_LIMIT`."""
PSI_EPSILON = 1e-4
"""Proportion given to an empty PSI bin (both sides), so the log stays finite."""
FREQUENT_ITEMS = 10
"""Entries kept in ``frequent_items`` (largest counts, ties broken by item)."""


@dataclass(frozen=True)
class ColumnProfile:
    """One column's profile statistics in one group of rows."""

    count: int
    num_nulls: int
    data_type: str
    avg: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: list[float] | None = None
    median: float | None = None
    num_zeros: int | None = None
    num_nan: int | None = None
    distinct_count: int | None = None
    frequent_items: list[dict] | None = None
    min_length: float | None = None
    max_length: float | None = None
    avg_length: float | None = None

    def as_row(self) -> dict:
        total = self.count + self.num_nulls
        row = {k: getattr(self, k) for k in self.__dataclass_fields__}
        row["percent_null"] = 100.0 * self.num_nulls / total if total else None
        row["percent_nan"] = (100.0 * self.num_nan / self.count) if self.count and self.num_nan is not None else None
        row["percent_zeros"] = (
            100.0 * self.num_zeros / self.count if self.count and self.num_zeros is not None else None
        )
        row["percent_distinct"] = (
            100.0 * self.distinct_count / self.count if self.count and self.distinct_count is not None else None
        )
        return row


def spark_type(arrow_type: pa.DataType) -> str:
    """The Spark SQL name of an Arrow type (what ``data_type`` holds)."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_int32(arrow_type):
        return "int"
    if pa.types.is_int16(arrow_type):
        return "smallint"
    if pa.types.is_int8(arrow_type):
        return "tinyint"
    if pa.types.is_float64(arrow_type):
        return "double"
    if pa.types.is_float32(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_dictionary(arrow_type):
        return spark_type(arrow_type.value_type)
    return str(arrow_type)


def is_numeric(arrow_type: pa.DataType) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


def numeric_values(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Finite non-null values as float64 (NULL, NaN and ±inf dropped)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.null_count:
        arr = pc.drop_null(arr)
    values = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if pa.types.is_floating(arr.type):
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
    return values


def category_counts(arr: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Counts of each non-null value, keyed by its string form (booleans as ``true``/``false``)."""
    if arr.null_count:
        arr = pc.drop_null(arr)
    if len(arr) == 0:
        return {}
    counted = pc.value_counts(arr)
    values = counted.field("values")
    if pa.types.is_boolean(values.type):
        keys = ["true" if v else "false" for v in values.to_pylist()]
    else:
        keys = [str(v) for v in pc.cast(values, pa.string()).to_pylist()]
    return dict(zip(keys, counted.field("counts").to_pylist()))


def profile_column(arr: pa.Array | pa.ChunkedArray, *, categorical: bool = False) -> ColumnProfile:
    """Profile statistics of one column over one group of rows.

    ``count`` is the number of non-null values (Spark's ``count(col)``); NaN and ±inf
    count as values but are left out of avg, stddev, min, max and quantiles.
    """
    num_nulls = int(arr.null_count)
    count = len(arr) - num_nulls
    dtype = spark_type(arr.type)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_boolean(arr.type) \
            or (categorical and not is_numeric(arr.type)):
        counts = category_counts(arr)
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FREQUENT_ITEMS]
        extra: dict = {}
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            lengths = pc.utf8_length(pc.drop_null(arr)) if count else None
            if count:
                extra = dict(
                    min_length=float(pc.min(lengths).as_py()),
                    max_length=float(pc.max(lengths).as_py()),
                    avg_length=float(pc.mean(lengths).as_py()),
                )
        return ColumnProfile(
            count=count, num_nulls=num_nulls, data_type=dtype, distinct_count=len(counts),
            frequent_items=[{"item": k, "count": int(v)} for k, v in items], **extra,
        )
    if not is_numeric(arr.type):
        return ColumnProfile(count=count, num_nulls=num_nulls, data_type=dtype)
    raw = arr
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    nonnull = pc.drop_null(raw) if num_nulls else raw
    num_nan = int(pc.sum(pc.is_nan(nonnull)).as_py() or 0) if pa.types.is_floating(raw.type) else 0
    values = numeric_values(nonnull)
    num_zeros = int(np.count_nonzero(values == 0.0))
    distinct = int(pc.count_distinct(nonnull).as_py()) if count else 0
    frequent = None
    if categorical:
        counts = category_counts(nonnull)
        frequent = [{"item": k, "count": int(v)} for k, v in
                    sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FREQUENT_ITEMS]]
    if values.size == 0:
        return ColumnProfile(count=count, num_nulls=num_nulls, data_type=dtype, num_zeros=num_zeros,
                             num_nan=num_nan, distinct_count=distinct, frequent_items=frequent)
    quantiles = np.quantile(values, QUANTILES).tolist()
    mean = float(values.mean())
    stddev = float(values.std(ddof=1)) if values.size > 1 else None
    return ColumnProfile(
        count=count, num_nulls=num_nulls, data_type=dtype, avg=mean, stddev=stddev,
        min=float(quantiles[0]), max=float(quantiles[-1]), quantiles=[float(q) for q in quantiles],
        median=float(quantiles[QUANTILES.index(0.5)]), num_zeros=num_zeros, num_nan=num_nan,
        distinct_count=distinct, frequent_items=frequent,
    )


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class NumericDrift:
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float
    psi: float
    ks_error_bound: float
    """0 when exact; else the largest possible |D - D_exact| (see docs/tables.md)."""


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum (p_cur - p_ref) * ln(p_cur / p_ref) with empty bins set to ``epsilon``."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    p = np.where(p > 0, p, epsilon)
    q = np.where(q > 0, q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def _psi_edges(ref_sorted: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges of ``bins`` quantile bins of the comparison sample (ties merged)."""
    idx = np.arange(1, bins) / bins
    return np.unique(np.quantile(ref_sorted, idx))


def numeric_drift(ref: np.ndarray, cur: np.ndarray, *, psi_bins: int = 10,
                  exact_limit: int = EXACT_LIMIT) -> NumericDrift | None:
    """KS, Wasserstein-1 and PSI of ``cur`` against ``ref`` (finite values only).

    Returns None when either sample is empty.
    """
    n, m = ref.size, cur.size
    if n == 0 or m == 0:
        return None
    ref_sorted = np.sort(ref)
    edges = _psi_edges(ref_sorted, psi_bins)
    ref_psi = np.diff(np.searchsorted(ref_sorted, edges, side="right"), prepend=0, append=n)
    cur_psi = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1)
    psi_value = psi(ref_psi.astype(float), cur_psi.astype(float))
    if n + m <= exact_limit:
        cur_sorted = np.sort(cur)
        statistic, pvalue = _ks_exact(ref_sorted, cur_sorted)
        return NumericDrift(statistic, pvalue, _wasserstein_exact(ref_sorted, cur_sorted), psi_value, 0.0)
    return _binned_numeric(ref_sorted, cur, psi_value)


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided two-sample KS p-value as ``scipy.stats.ks_2samp(method="auto")`` computes it."""
    if max(n, m) <= _KS_MAX_EXACT_N:
        g = math.gcd(n, m)
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            ok, _, prob = _attempt_exact_2kssamp(n, m, g, statistic, "two-sided")
            if ok:
                return float(np.clip(prob, 0.0, 1.0))
        except ImportError:  # private helper moved: fall back to the asymptotic formula
            pass
    en = float(n) * float(m) / (n + m)
    return float(np.clip(sps.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


_KS_MAX_EXACT_N = 10_000  # scipy's MAX_AUTO_N


def _ks_exact(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    both = np.concatenate([a, b])
    diff = np.searchsorted(a, both, side="right") / a.size - np.searchsorted(b, both, side="right") / b.size
    statistic = float(max(diff.max(), np.clip(-diff.min(), 0, 1)))
    return statistic, ks_pvalue(statistic, a.size, b.size)


def _wasserstein_exact(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = integral of |F_a - F_b| over the merged support (both inputs sorted)."""
    both = np.concatenate([a, b])
    both.sort(kind="mergesort")
    deltas = np.diff(both)
    fa = np.searchsorted(a, both[:-1], side="right") / a.size
    fb = np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * deltas))


def _binned_numeric(ref_sorted: np.ndarray, cur: np.ndarray, psi_value: float) -> NumericDrift:
    """KS and Wasserstein from quantile bins of the comparison sample.

    Bins are right-closed ``(e[i-1], e[i]]`` over the comparison sample's quantiles
    (first edge its minimum, last its maximum), plus an open bin on each side. CDFs are
    exact at every edge, so KS is exact up to ``max_i min(a_i, b_i)`` where a_i, b_i are the
    masses strictly inside bin i; Wasserstein integrates F_ref - F_cur exactly per bin
    (from per-bin sums) and is exact wherever the sign does not change inside a bin.
    """
    n, m = ref_sorted.size, cur.size
    edges = np.unique(np.quantile(ref_sorted, np.linspace(0.0, 1.0, GRID_BINS + 1)))
    # bin index = number of edges strictly below x: bin 0 = (-inf, e0], bin k = (e[k-1], e[k]], last = (e[-1], inf)
    nb = edges.size + 1
    cur_bin = np.searchsorted(edges, cur, side="left")
    cur_cnt = np.bincount(cur_bin, minlength=nb).astype(np.float64)
    cur_sum = np.bincount(cur_bin, weights=cur, minlength=nb)
    ref_pos = np.searchsorted(ref_sorted, edges, side="right")  # values <= edge
    ref_cnt = np.diff(ref_pos, prepend=0, append=n).astype(np.float64)
    ref_csum = np.concatenate(([0.0], np.cumsum(ref_sorted)))
    ref_sum = np.diff(ref_csum[np.concatenate(([0], ref_pos, [n]))])
    f_ref = ref_pos / n
    f_cur = np.cumsum(cur_cnt)[:-1] / m
    d_edges = np.abs(f_ref - f_cur)
    statistic = float(d_edges.max())
    # error bound: min(ref mass strictly inside, cur mass) over bounded bins (the bin's
    # right edge is where the CDFs are evaluated, so a point mass there adds no error)
    ref_eq = np.searchsorted(ref_sorted, edges, side="right") - np.searchsorted(ref_sorted, edges, side="left")
    inner_ref = ref_cnt[1:-1] - ref_eq[1:]
    bound = float(np.max(np.minimum(inner_ref / n, cur_cnt[1:-1] / m), initial=0.0))
    pvalue = ks_pvalue(statistic, n, m)
    # Wasserstein: integral over each bin of (F_ref - F_cur)
    # inside bounded bin k (e[k-1], e[k]]: int F = F(e[k-1]) * w + sum_{x in bin}(e[k] - x)/N
    width = np.diff(edges)
    left_ref, left_cur = f_ref[:-1], f_cur[:-1]
    int_ref = left_ref * width + (ref_cnt[1:-1] * edges[1:] - ref_sum[1:-1]) / n
    int_cur = left_cur * width + (cur_cnt[1:-1] * edges[1:] - cur_sum[1:-1]) / m
    wass = float(np.abs(int_ref - int_cur).sum())
    # tails: below e0 the comparison CDF is 0 (e0 is its minimum); above e[-1] it is 1
    below = cur[cur < edges[0]]
    above = cur[cur > edges[-1]]
    wass += float((edges[0] - below).sum() / m) + float((above - edges[-1]).sum() / m)
    # the comparison's own mass at e0 (its minimum) is a point mass, handled by f_ref at e0
    return NumericDrift(statistic, pvalue, wass, psi_value, bound)


@dataclass(frozen=True)
class CategoricalDrift:
    chi2_statistic: float
    chi2_pvalue: float
    js_distance: float
    tv_distance: float
    l_infinity_distance: float


def categorical_drift(ref: dict[str, int], cur: dict[str, int]) -> CategoricalDrift | None:
    """Two-sample chi-squared (contingency), JS (base 2), TV and L-infinity distances.

    Categories seen on one side only count as 0 on the other. None if a side is empty.
    """
    n, m = sum(ref.values()), sum(cur.values())
    if n == 0 or m == 0:
        return None
    keys = sorted(set(ref) | set(cur))
    a = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([cur.get(k, 0) for k in keys], dtype=np.float64)
    p, q = a / n, b / m
    chi_stat, chi_p = chi2_two_sample(a, b)
    js = js_distance(p, q)
    diff = np.abs(p - q)
    return CategoricalDrift(chi_stat, chi_p, js, float(0.5 * diff.sum()), float(diff.max()))


def chi2_two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson chi-squared test of independence on the 2 x k table [a; b].

    Same as ``scipy.stats.chi2_contingency`` (Yates' correction when dof = 1);
    categories empty on both sides are dropped; fewer than two left gives (0, 1).
    """
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    if a.size < 2:
        return 0.0, 1.0
    observed = np.vstack([a, b]).astype(np.float64)
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    dof = a.size - 1
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(dof, statistic))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance with base-2 logarithms (in [0, 1]), as scipy's ``jensenshannon(base=2)``."""
    mid = (p + q) / 2.0
    div = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / 2.0
    return float(np.sqrt(max(div, 0.0) / np.log(2.0)))


# --------------------------------------------------------------------------- model quality


def _labels_str(values: np.ndarray) -> np.ndarray:
    return np.array([("true" if v else "false") if isinstance(v, (bool, np.bool_)) else str(v) for v in values],
                    dtype=object)


def classification_quality(label: np.ndarray, prediction: np.ndarray,
                           proba: np.ndarray | None = None) -> dict:
    """Accuracy, precision / recall / F1 (one-vs-all, macro, weighted), confusion matrix, ROC AUC, log loss.

    Inputs are the rows with a non-null label and prediction. Classes are the union of
    labels and predictions, as strings. ROC AUC and log loss need ``proba`` = P(class "1")
    for a binary problem with both classes among the labels; otherwise they are None.
    """
    if label.size == 0:
        return {}
    y, yhat = _labels_str(label), _labels_str(prediction)
    classes = sorted(set(y) | set(yhat))
    tp = np.array([np.sum((yhat == c) & (y == c)) for c in classes], dtype=np.float64)
    pred_pos = np.array([np.sum(yhat == c) for c in classes], dtype=np.float64)
    support = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # zero_division = 0, as sklearn's precision_recall_fscore_support(zero_division=0)
        prec = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        rec = np.where(support > 0, tp / support, 0.0)
        denom = pred_pos + support
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    total = support.sum()
    present = support > 0

    def block(values: np.ndarray) -> dict:
        # macro averages over the classes that occur among the labels
        macro = float(np.mean(values[present])) if present.any() else None
        weighted = float(np.sum(values * support) / total) if total else None
        return {"one_vs_all": {c: float(v) for c, v in zip(classes, values)}, "macro": macro,
                "weighted": weighted}

    pairs: dict[tuple[str, str], int] = {}
    for p_, l_ in zip(yhat, y):
        pairs[(p_, l_)] = pairs.get((p_, l_), 0) + 1
    out = {
        "accuracy_score": float(np.mean(y == yhat)),
        "precision": block(prec), "recall": block(rec), "f1_score": block(f1),
        "confusion_matrix": [{"prediction": k[0], "label": k[1], "count": v} for k, v in sorted(pairs.items())],
        "roc_auc_score": None, "log_loss": None,
    }
    if proba is not None and set(y) <= {"0", "1"} and len(set(y)) == 2:
        probs = proba.astype(np.float64)
        if np.all(np.isfinite(probs)):
            ytrue = y == "1"
            out["roc_auc_score"] = _roc_auc(ytrue, probs)
            eps = np.finfo(np.float64).eps
            clipped = np.clip(probs, eps, 1 - eps)
            out["log_loss"] = float(-np.mean(np.where(ytrue, np.log(clipped), np.log1p(-clipped))))
    return out


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    ranks = sps.rankdata(score)
    n_pos = float(positive.sum())
    n_neg = float(positive.size - n_pos)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _rates(y: np.ndarray, yhat: np.ndarray, cls: str) -> tuple[float | None, float | None, float | None, float | None]:
    """(precision, false positive rate, true positive rate, positive prediction rate) for one class."""
    pos_pred = yhat == cls
    pos = y == cls
    tp = float(np.sum(pos_pred & pos))
    fp = float(np.sum(pos_pred & ~pos))
    n_neg = float(np.sum(~pos))
    n_pos = float(np.sum(pos))
    precision = tp / (tp + fp) if tp + fp else None
    fpr = fp / n_neg if n_neg else None
    tpr = tp / n_pos if n_pos else None
    ppr = float(np.mean(pos_pred)) if y.size else None
    return precision, fpr, tpr, ppr


def fairness(label: np.ndarray, prediction: np.ndarray, protected: np.ndarray) -> dict[str, dict[str, float]]:
    """Fairness maps for a boolean slice, keyed by predicted class (one-vs-all).

    Each value is ``rate(protected group) - rate(unprotected group)``: precision
    (predictive_parity), false positive rate (predictive_equality), true positive rate
    (equal_opportunity), positive prediction rate (statistical_parity). A class whose
    rate is undefined in either group is left out of that map.
    """
    y, yhat = _labels_str(label), _labels_str(prediction)
    prot = protected.astype(bool)
    classes = sorted(set(y) | set(yhat))
    names = ("predictive_parity", "predictive_equality", "equal_opportunity", "statistical_parity")
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    if prot.all() or (~prot).all():
        return out
    for cls in classes:
        a = _rates(y[prot], yhat[prot], cls)
        b = _rates(y[~prot], yhat[~prot], cls)
        for name, ra, rb in zip(names, a, b):
            if ra is not None and rb is not None:
                out[name][cls] = ra - rb
    return out
