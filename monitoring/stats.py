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

__all__ = [
    "QUANTILES", "EXACT_LIMIT", "GRID_BINS", "PSI_EPSILON", "FREQUENT_ITEMS",
    "ColumnProfile", "profile_column", "numeric_values", "category_counts",
    "numeric_drift", "categorical_drift", "psi", "classification_quality", "mean_absolute_percentage_error", "fairness",
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
        return categorical_summary(arr)[0]
    if not is_numeric(arr.type):
        return ColumnProfile(count=count, num_nulls=num_nulls, data_type=dtype)
    return numeric_summary(arr, categorical=categorical)[0]


def categorical_summary(arr: pa.Array | pa.ChunkedArray) -> tuple[ColumnProfile, dict[str, int]]:
    """Profile of a string / boolean column plus its value counts (what drift needs)."""
    num_nulls = int(arr.null_count)
    count = len(arr) - num_nulls
    dtype = spark_type(arr.type)
    counts = category_counts(arr)
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FREQUENT_ITEMS]
    extra: dict = {}
    if count and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        # lengths from the distinct values and their counts: one pass over a few values
        # instead of over every row (the keys are the strings themselves)
        lengths = np.fromiter((len(k) for k in counts), dtype=np.float64, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        extra = dict(min_length=float(lengths.min()), max_length=float(lengths.max()),
                     avg_length=float(np.dot(lengths, weights) / weights.sum()))
    return ColumnProfile(
        count=count, num_nulls=num_nulls, data_type=dtype, distinct_count=len(counts),
        frequent_items=[{"item": k, "count": int(v)} for k, v in items], **extra,
    ), counts


def sorted_quantiles(sorted_values: np.ndarray, probs=QUANTILES) -> list[float]:
    """Quantiles of an already sorted array, linear interpolation (NumPy's default method)."""
    n = sorted_values.size
    pos = np.asarray(probs, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    a, b = sorted_values[lo], sorted_values[hi]
    return (a + (b - a) * frac).tolist()


def numeric_summary(arr: pa.Array | pa.ChunkedArray, *, categorical: bool = False) -> tuple[ColumnProfile, np.ndarray]:
    """Profile of a numeric column plus its finite values, sorted (what drift needs).

    One sort serves quantiles, min, max, the distinct count and both drift engines;
    ``distinct_count`` counts NaN, +inf and -inf once each when present.
    """
    raw = arr
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
    num_nulls = int(raw.null_count)
    count = len(raw) - num_nulls
    dtype = spark_type(raw.type)
    nonnull = pc.drop_null(raw) if num_nulls else raw
    everything = nonnull.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    finite = np.isfinite(everything)
    all_finite = bool(finite.all())
    values = np.sort(everything if all_finite else everything[finite])
    num_nan = 0 if all_finite else int(np.isnan(everything).sum())
    special_distinct = 0 if all_finite else int(num_nan > 0) + int(np.isposinf(everything).any()) + int(
        np.isneginf(everything).any())
    num_zeros = int(np.count_nonzero(values == 0.0))
    distinct = (int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0) + special_distinct
    frequent = None
    if categorical:
        counts = category_counts(nonnull)
        frequent = [{"item": k, "count": int(v)} for k, v in
                    sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FREQUENT_ITEMS]]
    if values.size == 0:
        return ColumnProfile(count=count, num_nulls=num_nulls, data_type=dtype, num_zeros=num_zeros,
                             num_nan=num_nan, distinct_count=distinct, frequent_items=frequent), values
    quantiles = sorted_quantiles(values)
    mean = float(values.sum() / values.size)
    centred = values - mean
    stddev = float(np.sqrt(np.dot(centred, centred) / (values.size - 1))) if values.size > 1 else None
    prof = ColumnProfile(
        count=count, num_nulls=num_nulls, data_type=dtype, avg=mean, stddev=stddev,
        min=float(values[0]), max=float(values[-1]), quantiles=[float(q) for q in quantiles],
        median=float(quantiles[QUANTILES.index(0.5)]), num_zeros=num_zeros, num_nan=num_nan,
        distinct_count=distinct, frequent_items=frequent,
    )
    return prof, values


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


def numeric_drift(ref: np.ndarray, cur: np.ndarray, *, psi_bins: int = 10, exact_limit: int = EXACT_LIMIT,
                  presorted: bool = False) -> NumericDrift | None:
    """KS, Wasserstein-1 and PSI of ``cur`` against ``ref`` (finite values only).

    Pass ``presorted=True`` when both arrays are already sorted (the engines keep them
    sorted from profiling). Returns None when either sample is empty.
    """
    n, m = ref.size, cur.size
    if n == 0 or m == 0:
        return None
    ref_sorted = ref if presorted else np.sort(ref)
    cur_sorted = cur if presorted else np.sort(cur)
    edges = np.unique(sorted_quantiles(ref_sorted, np.arange(1, psi_bins) / psi_bins))
    # bins are (e[i-1], e[i]]: counts from the positions of the edges in both sorted samples
    ref_psi = np.diff(np.searchsorted(ref_sorted, edges, side="right"), prepend=0, append=n)
    cur_psi = np.diff(np.searchsorted(cur_sorted, edges, side="right"), prepend=0, append=m)
    psi_value = psi(ref_psi.astype(float), cur_psi.astype(float))
    if n + m <= exact_limit:
        statistic, pvalue, wasserstein = _exact_pair(ref_sorted, cur_sorted)
        return NumericDrift(statistic, pvalue, wasserstein, psi_value, 0.0)
    return _binned_numeric(ref_sorted, cur_sorted, psi_value)


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
    from scipy import special, stats as sps  # scipy loads where drift is computed, not with the settings

    en = float(n) * float(m) / (n + m)
    if en > _KS_CLOSED_FORM_N:
        # scipy's finite-n distribution costs seconds per call here (1.7 s at n = 500,000);
        # Stephens' corrected Kolmogorov limit is within 4e-4 of it above this size.
        root = math.sqrt(en)
        return float(np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic), 0.0, 1.0))
    return float(np.clip(sps.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))


_KS_MAX_EXACT_N = 10_000  # scipy's MAX_AUTO_N
_KS_CLOSED_FORM_N = 100_000


def _merged_cdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a and b (both sorted) and F_a - F_b at each of them (one merge, no search)."""
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")  # two sorted runs: timsort merges them in linear time
    values = both[order]
    from_a = order < a.size
    diff = np.cumsum(from_a) / a.size - np.cumsum(~from_a) / b.size
    last = np.empty(values.size, dtype=bool)
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    return values[last], diff[last]


def _ks_exact(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    _, diff = _merged_cdfs(a, b)
    statistic = float(max(diff.max(), np.clip(-diff.min(), 0, 1)))
    return statistic, ks_pvalue(statistic, a.size, b.size)


def _wasserstein_exact(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = integral of |F_a - F_b| over the merged support (both inputs sorted)."""
    values, diff = _merged_cdfs(a, b)
    return float(np.sum(np.abs(diff[:-1]) * np.diff(values)))


def _exact_pair(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    values, diff = _merged_cdfs(a, b)
    statistic = float(max(diff.max(), np.clip(-diff.min(), 0, 1)))
    return statistic, ks_pvalue(statistic, a.size, b.size), float(np.sum(np.abs(diff[:-1]) * np.diff(values)))


def _binned_numeric(ref_sorted: np.ndarray, cur_sorted: np.ndarray, psi_value: float) -> NumericDrift:
    """KS and Wasserstein from quantile bins of the comparison sample.

    Bins are right-closed ``(e[i-1], e[i]]`` over the comparison sample's quantiles
    (first edge its minimum, last its maximum), plus an open bin on each side. CDFs are
    exact at every edge, so KS is exact up to ``max_i min(a_i, b_i)`` where a_i, b_i are the
    masses strictly inside bin i; Wasserstein integrates F_ref - F_cur exactly per bin
    (from per-bin sums) and is exact wherever the sign does not change inside a bin.
    """
    n, m = ref_sorted.size, cur_sorted.size
    edges = np.unique(sorted_quantiles(ref_sorted, np.linspace(0.0, 1.0, GRID_BINS + 1)))
    # bin 0 = (-inf, e0], bin k = (e[k-1], e[k]], last = (e[-1], inf); e0 / e[-1] are ref's min / max
    ref_pos = np.searchsorted(ref_sorted, edges, side="right")  # values <= edge
    cur_pos = np.searchsorted(cur_sorted, edges, side="right")
    bounds_ref = np.concatenate(([0], ref_pos, [n]))
    bounds_cur = np.concatenate(([0], cur_pos, [m]))
    ref_cnt = np.diff(bounds_ref).astype(np.float64)
    cur_cnt = np.diff(bounds_cur).astype(np.float64)
    ref_sum = _bin_sums(ref_sorted, bounds_ref)
    cur_sum = _bin_sums(cur_sorted, bounds_cur)
    f_ref = ref_pos / n
    f_cur = cur_pos / m
    statistic = float(np.abs(f_ref - f_cur).max())
    # error bound: min(ref mass strictly inside, cur mass) over bounded bins (the bin's
    # right edge is where the CDFs are evaluated, so a point mass there adds no error)
    ref_eq = ref_pos - np.searchsorted(ref_sorted, edges, side="left")
    inner_ref = ref_cnt[1:-1] - ref_eq[1:]
    bound = float(np.max(np.minimum(inner_ref / n, cur_cnt[1:-1] / m), initial=0.0))
    pvalue = ks_pvalue(statistic, n, m)
    # Wasserstein: integral of F_ref - F_cur per bounded bin (e[k-1], e[k]]:
    # int F = F(e[k-1]) * width + sum_{x in bin} (e[k] - x) / N, exact for each CDF
    width = np.diff(edges)
    int_ref = f_ref[:-1] * width + (ref_cnt[1:-1] * edges[1:] - ref_sum[1:-1]) / n
    int_cur = f_cur[:-1] * width + (cur_cnt[1:-1] * edges[1:] - cur_sum[1:-1]) / m
    wass = float(np.abs(int_ref - int_cur).sum())
    # tails: below e0 the comparison CDF is 0, above e[-1] it is 1; the current CDF is exact there
    k_below = int(np.searchsorted(cur_sorted, edges[0], side="left"))
    k_above = int(np.searchsorted(cur_sorted, edges[-1], side="right"))
    wass += (edges[0] * k_below - cur_sorted[:k_below].sum()) / m
    wass += (cur_sorted[k_above:].sum() - edges[-1] * (m - k_above)) / m
    return NumericDrift(statistic, pvalue, float(wass), psi_value, bound)


def _bin_sums(sorted_values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of the values in each bin [bounds[i], bounds[i+1]) of a sorted array."""
    starts = bounds[:-1]
    counts = np.diff(bounds)
    sums = np.add.reduceat(sorted_values, np.minimum(starts, sorted_values.size - 1))
    return np.where(counts > 0, sums, 0.0)


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
    from scipy import special

    return statistic, float(special.chdtrc(dof, statistic))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance with base-2 logarithms (in [0, 1]), as scipy's ``jensenshannon(base=2)``."""
    from scipy import special

    mid = (p + q) / 2.0
    div = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / 2.0
    return float(np.sqrt(max(div, 0.0) / np.log(2.0)))


# --------------------------------------------------------------------------- model quality


def _labels_str(values: np.ndarray) -> np.ndarray:
    """Class labels as strings (booleans as ``true`` / ``false``), vectorised."""
    if values.dtype == np.bool_:
        return np.where(values, "true", "false").astype(object)
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        # format each distinct class once, not every row (a few classes, many rows)
        classes, index = np.unique(values.astype(np.int64), return_inverse=True)
        return classes.astype(str).astype(object)[index.reshape(-1)]
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

    yi = np.searchsorted(np.array(classes, dtype=object), y)
    pi = np.searchsorted(np.array(classes, dtype=object), yhat)
    cells = np.bincount(pi * len(classes) + yi, minlength=len(classes) ** 2).reshape(len(classes), len(classes))
    pairs = {(classes[a], classes[b]): int(cells[a, b]) for a, b in zip(*np.nonzero(cells))}
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


def mean_absolute_percentage_error(label: np.ndarray, prediction: np.ndarray) -> float:
    """mean(|label - prediction| / max(|label|, eps)), eps = machine epsilon: scikit-learn's
    ``mean_absolute_percentage_error`` (a fraction, not a percentage)."""
    y = np.asarray(label, dtype=float)
    err = np.abs(np.asarray(prediction, dtype=float) - y)
    return float(np.mean(err / np.maximum(np.abs(y), np.finfo(np.float64).eps)))


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
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
