"""The metric-table statistics against reference implementations on raw data (scipy, scikit-learn, Fairlearn)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from monitoring import stats
from monitoring.stats import NumericSample


def _sample(x):
    return NumericSample(np.asarray(x, dtype=float))


@pytest.mark.parametrize("n_a,n_b,shift", [(50, 60, 0.0), (200, 1000, 0.2), (1000, 1000, 0.1), (3000, 20000, 0.05)])
def test_ks_matches_scipy(n_a, n_b, shift):
    rng = np.random.default_rng(n_a)
    a, b = rng.normal(shift, 1, n_a), rng.normal(0, 1, n_b)
    got = stats.numeric_drift(_sample(a), _sample(b))["ks_test"]
    ref = sps.ks_2samp(a, b)
    assert got["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert got["pvalue"] == pytest.approx(ref.pvalue, abs=0.02)


def test_ks_with_ties_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.poisson(2, 700).astype(float), rng.poisson(2.3, 900).astype(float)
    got = stats.numeric_drift(_sample(a), _sample(b))["ks_test"]["statistic"]
    assert got == pytest.approx(sps.ks_2samp(a, b).statistic, abs=1e-12)


def test_wasserstein_matches_scipy():
    rng = np.random.default_rng(2)
    for a, b in ((rng.normal(0, 1, 500), rng.lognormal(0, 1, 800)), (rng.poisson(3, 300) * 1.0, rng.poisson(4, 40) * 1.0)):
        got = stats.numeric_drift(_sample(a), _sample(b))["wasserstein_distance"]
        assert got == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-9)


def test_psi_is_zero_for_identical_data_and_matches_a_direct_decile_psi():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 5000)
    assert stats.numeric_drift(_sample(ref), _sample(ref.copy()))["population_stability_index"] == 0.0
    discrete = rng.poisson(1, 3000).astype(float)  # ties merge decile bins
    assert stats.numeric_drift(_sample(discrete), _sample(discrete))["population_stability_index"] == 0.0
    cur = rng.normal(0.5, 1.2, 3000)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.histogram(np.digitize(cur, edges), bins=np.arange(11))[0] / cur.size
    q = np.histogram(np.digitize(ref, edges), bins=np.arange(11))[0] / ref.size
    expected = np.sum((p - q) * np.log(p / q))
    assert stats.numeric_drift(_sample(cur), _sample(ref))["population_stability_index"] == pytest.approx(expected)
    # An empty bin is smoothed with PSI_EPSILON, not dropped or infinite.
    far = stats.numeric_drift(_sample(ref + 100), _sample(ref))["population_stability_index"]
    assert np.isfinite(far) and far > 5


@pytest.mark.parametrize("k", [2, 5, 20])
def test_chi_squared_is_the_two_sample_contingency_test(k):
    rng = np.random.default_rng(k)
    a = np.bincount(rng.integers(0, k, 400), minlength=k)
    b = np.bincount(rng.integers(0, k, 900), minlength=k)
    got = stats.categorical_drift(a, b)["chi_squared_test"]
    ref = sps.chi2_contingency(np.vstack([a, b]))
    assert got["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert got["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_chi_squared_holds_its_level_without_drift():
    """A goodness-of-fit test against the reference shares fires on ~74% of undrifted windows; this must not."""
    rng = np.random.default_rng(7)
    weights = 1 / np.arange(1, 21)
    weights /= weights.sum()
    fired = 0
    for _ in range(200):
        a = np.bincount(rng.choice(20, 1000, p=weights), minlength=20)
        b = np.bincount(rng.choice(20, 1000, p=weights), minlength=20)
        fired += stats.categorical_drift(a, b)["chi_squared_test"]["pvalue"] < 0.05
    assert fired / 200 < 0.1


def test_categorical_distances_exact():
    a = np.array([10, 0, 30, 60])
    b = np.array([25, 25, 25, 0])
    got = stats.categorical_drift(a, b)
    p, q = a / a.sum(), b / b.sum()
    assert got["js_distance"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert got["tv_distance"] == pytest.approx(0.5 * np.abs(p - q).sum())
    assert got["l_infinity_distance"] == pytest.approx(np.abs(p - q).max())
    same = stats.categorical_drift(a, a * 3)
    assert same["js_distance"] == 0.0 and same["tv_distance"] == 0.0 and same["chi_squared_test"]["pvalue"] == 1.0
    assert stats.categorical_drift(np.array([0, 4]), np.array([0, 9]))["chi_squared_test"] == {"statistic": 0.0,
                                                                                               "pvalue": 1.0}


def test_drift_of_an_empty_side_is_null():
    assert stats.numeric_drift(_sample([]), _sample([1.0, 2.0])) == {}
    assert stats.numeric_drift(_sample([np.nan, np.inf]), _sample([1.0, 2.0])) == {}
    assert stats.categorical_drift(np.array([0, 0]), np.array([3, 1])) == {}


def test_numeric_profile_handles_nulls_nan_and_inf():
    values = np.array([1.0, 2.0, np.nan, np.inf, 0.0, 5.0, -1.0, 0.0])
    nulls = np.array([False, False, False, False, False, False, True, False])
    prof, sample = stats.numeric_profile(values, nulls)
    finite = np.array([1.0, 2.0, 0.0, 5.0, 0.0])
    assert prof["count"] == 8 and prof["num_nulls"] == 1 and prof["num_nan"] == 1 and prof["num_zeros"] == 2
    assert prof["avg"] == pytest.approx(finite.mean()) and prof["stddev"] == pytest.approx(finite.std(ddof=1))
    assert prof["quantiles"] == pytest.approx(np.quantile(finite, stats.QUANTILE_LEVELS).tolist())
    assert prof["distinct_count"] == 6  # 0, 1, 2, 5 and NaN and inf, which count as values
    assert prof["percent_null"] == pytest.approx(12.5)
    empty, _ = stats.numeric_profile(np.zeros(3), np.ones(3, bool))  # an all-NULL column
    assert empty["count"] == 3 and empty["num_nulls"] == 3 and "avg" not in empty and empty["percent_null"] == 100.0


def test_classification_quality_matches_scikit_learn():
    from sklearn.metrics import (accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support,
                                 roc_auc_score)

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 400)
    yhat = np.where(rng.random(400) < 0.7, y, rng.integers(0, 3, 400))
    got = stats.classification_quality(y, yhat, ["a", "b", "c"])
    assert got["accuracy_score"] == pytest.approx(accuracy_score(y, yhat))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, yhat, average=avg)
        assert (got["precision"][avg], got["recall"][avg], got["f1_score"][avg]) == pytest.approx((p, r, f))
    p, r, f, _ = precision_recall_fscore_support(y, yhat)
    assert [v for _, v in got["f1_score"]["one_vs_all"]] == pytest.approx(f)
    cm = confusion_matrix(y, yhat)
    assert {(c["label"], c["prediction"]): c["count"] for c in got["confusion_matrix"]} == {
        ("abc"[i], "abc"[j]): int(cm[i, j]) for i in range(3) for j in range(3) if cm[i, j]}
    yb = rng.integers(0, 2, 300)
    proba = np.clip(yb * 0.3 + rng.random(300) * 0.7, 0, 1)
    got = stats.classification_quality(yb, (proba > 0.5).astype(int), ["0", "1"], proba, positive=1)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(yb, proba), rel=1e-12)
    assert got["log_loss"] == pytest.approx(log_loss(yb, proba), rel=1e-9)


def test_fairness_is_the_protected_minus_unprotected_rate_difference_as_fairlearn():
    from fairlearn.metrics import (MetricFrame, demographic_parity_difference, equal_opportunity_difference,
                                   false_positive_rate, selection_rate, true_positive_rate)
    from sklearn.metrics import precision_score

    rng = np.random.default_rng(11)
    n = 2000
    protected = rng.random(n) < 0.3
    y = (rng.random(n) < np.where(protected, 0.4, 0.3)).astype(int)
    yhat = np.where(rng.random(n) < np.where(protected, 0.65, 0.8), y, 1 - y)
    got = stats.fairness(y, yhat, protected, ["0", "1"])
    frame = MetricFrame(metrics={"sp": selection_rate, "pp": precision_score, "pe": false_positive_rate,
                                 "eo": true_positive_rate},
                        y_true=y, y_pred=yhat, sensitive_features=protected)
    by = frame.by_group
    for ours, theirs in (("statistical_parity", "sp"), ("predictive_parity", "pp"),
                         ("predictive_equality", "pe"), ("equal_opportunity", "eo")):
        assert dict(got[ours])["1"] == pytest.approx(by.loc[True, theirs] - by.loc[False, theirs], rel=1e-12)
    assert abs(dict(got["statistical_parity"])["1"]) == pytest.approx(
        demographic_parity_difference(y, yhat, sensitive_features=protected))
    assert abs(dict(got["equal_opportunity"])["1"]) == pytest.approx(
        equal_opportunity_difference(y, yhat, sensitive_features=protected))
    # Class "0" one-vs-all: the same definitions with 0 as the positive class.
    flipped = MetricFrame(metrics=selection_rate, y_true=1 - y, y_pred=1 - yhat, sensitive_features=protected).by_group
    assert dict(got["statistical_parity"])["0"] == pytest.approx(flipped[True] - flipped[False])
    assert stats.fairness(y, yhat, np.ones(n, bool), ["0", "1"]) == {}  # one group only: nothing to compare
