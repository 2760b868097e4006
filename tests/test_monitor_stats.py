"""The monitor's statistics against reference implementations on raw data."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from driftgate.monitoring import stats
from driftgate.monitoring.expressions import ExpressionError, parse


@pytest.fixture
def rng():
    return np.random.default_rng(42)


@pytest.mark.parametrize("shift, n, m", [(0.0, 300, 500), (0.3, 2000, 1500), (1.0, 40, 60), (0.0, 20_000, 30_000)])
def test_exact_ks_and_wasserstein_equal_scipy(rng, shift, n, m):
    a, b = rng.normal(size=n), rng.normal(shift, 1.3, size=m)
    got = stats.numeric_drift(a, b)
    ks = sps.ks_2samp(a, b)
    assert got.ks_statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert got.ks_pvalue == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert got.wasserstein == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-9)
    assert got.ks_error_bound == 0.0


def test_ks_with_ties_equals_scipy(rng):
    a, b = rng.integers(0, 5, 3000).astype(float), rng.integers(0, 6, 2000).astype(float)
    got = stats.numeric_drift(a, b)
    assert got.ks_statistic == pytest.approx(sps.ks_2samp(a, b).statistic, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.5, 4.0])
def test_binned_ks_within_0005_of_exact_at_150k_rows(rng, shift):
    a, b = rng.normal(size=150_000), rng.standard_t(5, size=150_000) + shift
    got = stats.numeric_drift(a, b)  # 300k values > EXACT_LIMIT: the binned path
    exact = sps.ks_2samp(a, b).statistic
    assert got.ks_error_bound > 0  # really the binned path
    assert abs(got.ks_statistic - exact) <= min(0.005, got.ks_error_bound + 1e-12)
    assert got.wasserstein == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-3, abs=1e-4)
    assert got.ks_pvalue == pytest.approx(sps.kstwo.sf(got.ks_statistic, round(150_000 / 2)), rel=1e-9)


def test_psi_is_zero_for_identical_data_and_grows_with_shift(rng):
    a = rng.normal(size=5000)
    assert stats.numeric_drift(a, a.copy()).psi == 0.0
    psis = [stats.numeric_drift(a, rng.normal(s, 1, 5000)).psi for s in (0.0, 0.5, 1.0)]
    assert psis[0] < 0.02 < psis[1] < psis[2]


def test_psi_formula_on_decile_bins(rng):
    ref, cur = rng.normal(size=1000), rng.normal(0.4, 1, size=800)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.histogram(ref, np.r_[-np.inf, edges, np.inf])[0] / 1000
    q = np.histogram(cur, np.r_[-np.inf, edges, np.inf])[0] / 800
    assert stats.numeric_drift(ref, cur).psi == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-9)


def test_categorical_drift_is_two_sample_chi2_and_exact_distances():
    ref = {"a": 50, "b": 30, "c": 20}
    cur = {"a": 20, "b": 30, "c": 40, "d": 10}  # unseen category d
    got = stats.categorical_drift(ref, cur)
    table = np.array([[50, 30, 20, 0], [20, 30, 40, 10]])
    expected = sps.chi2_contingency(table)
    assert got.chi2_statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    p, q = table[0] / 100, table[1] / 100
    assert got.js_distance == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert got.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())
    assert got.l_infinity_distance == pytest.approx(np.abs(p - q).max())
    two = stats.categorical_drift({"x": 30, "y": 20}, {"x": 25, "y": 40})  # dof 1: Yates' correction as scipy
    assert two.chi2_statistic == pytest.approx(sps.chi2_contingency([[30, 20], [25, 40]]).statistic)
    same = stats.categorical_drift(ref, ref)
    assert same.js_distance == 0.0 and same.tv_distance == 0.0 and same.chi2_pvalue == pytest.approx(1.0)
    assert stats.categorical_drift({"a": 5}, {"a": 9}).chi2_pvalue == 1.0
    assert stats.categorical_drift({}, cur) is None


def test_chi2_two_sample_keeps_false_alarm_rate_near_alpha():
    rng = np.random.default_rng(0)
    probs = 1 / np.arange(1, 21) ** 1.1
    probs /= probs.sum()
    alarms = 0
    for _ in range(200):
        a, b = rng.multinomial(1000, probs), rng.multinomial(1000, probs)
        ref = {str(i): int(v) for i, v in enumerate(a)}
        cur = {str(i): int(v) for i, v in enumerate(b)}
        alarms += stats.categorical_drift(ref, cur).chi2_pvalue < 0.05
    assert alarms / 200 < 0.12  # a goodness-of-fit test would alarm on most of them


def test_profile_column_numeric_with_nan_inf_and_nulls():
    arr = pa.array([1.0, 0.0, None, float("nan"), float("inf"), 3.0, 0.0])
    prof = stats.profile_column(arr).as_row()
    assert prof["count"] == 6 and prof["num_nulls"] == 1 and prof["num_nan"] == 1 and prof["num_zeros"] == 2
    assert prof["avg"] == pytest.approx(1.0) and prof["max"] == 3.0 and prof["min"] == 0.0
    assert prof["quantiles"][5] == prof["median"] == pytest.approx(np.quantile([1, 0, 3, 0], 0.5))
    assert prof["percent_null"] == pytest.approx(100 / 7)


def test_profile_of_all_null_column_still_has_counts():
    prof = stats.profile_column(pa.array([None, None], pa.float64())).as_row()
    assert prof["count"] == 0 and prof["num_nulls"] == 2 and prof["avg"] is None and prof["percent_null"] == 100
    assert stats.numeric_drift(np.array([]), np.array([1.0])) is None


def test_profile_column_strings():
    prof = stats.profile_column(pa.array(["a", "bb", "a", None, "ccc"])).as_row()
    assert prof["distinct_count"] == 3 and prof["frequent_items"][0] == {"item": "a", "count": 2}
    assert (prof["min_length"], prof["max_length"], prof["avg_length"]) == (1.0, 3.0, pytest.approx(7 / 4))


def test_classification_quality_matches_sklearn(rng):
    from sklearn import metrics as M

    y = rng.integers(0, 2, 500)
    proba = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    pred = (proba > 0.5).astype(int)
    got = stats.classification_quality(y, pred, proba)
    assert got["accuracy_score"] == pytest.approx(M.accuracy_score(y, pred))
    for name, fn in (("precision", M.precision_score), ("recall", M.recall_score), ("f1_score", M.f1_score)):
        for avg in ("macro", "weighted"):
            assert got[name][avg] == pytest.approx(fn(y, pred, average=avg, zero_division=0)), (name, avg)
        assert got[name]["one_vs_all"]["1"] == pytest.approx(fn(y, pred, zero_division=0))
    assert got["roc_auc_score"] == pytest.approx(M.roc_auc_score(y, proba))
    assert got["log_loss"] == pytest.approx(M.log_loss(y, proba))
    cm = M.confusion_matrix(y, pred)
    assert {(c["label"], c["prediction"]): c["count"] for c in got["confusion_matrix"]} == {
        (str(i), str(j)): cm[i, j] for i in range(2) for j in range(2) if cm[i, j]}


def test_fairness_matches_fairlearn(rng):
    from fairlearn.metrics import (MetricFrame, demographic_parity_difference, equal_opportunity_difference,
                                   false_positive_rate_difference)
    from sklearn.metrics import precision_score

    n = 2000
    senior = rng.random(n) < 0.3
    y = (rng.random(n) < 0.4 + 0.1 * senior).astype(int)
    pred = (rng.random(n) < 0.3 + 0.2 * senior + 0.3 * y).astype(int)
    got = stats.fairness(y, pred, senior)
    # driftgate keeps the sign (protected minus unprotected); Fairlearn reports |difference| for two groups
    assert abs(got["statistical_parity"]["1"]) == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=senior))
    assert abs(got["equal_opportunity"]["1"]) == pytest.approx(
        equal_opportunity_difference(y, pred, sensitive_features=senior))
    assert abs(got["predictive_equality"]["1"]) == pytest.approx(
        false_positive_rate_difference(y, pred, sensitive_features=senior))
    frame = MetricFrame(metrics=precision_score, y_true=y, y_pred=pred, sensitive_features=senior)
    assert abs(got["predictive_parity"]["1"]) == pytest.approx(frame.difference())
    assert got["statistical_parity"]["1"] == pytest.approx(pred[senior].mean() - pred[~senior].mean())
    # one-vs-all for class 0 mirrors class 1 for statistical parity
    assert got["statistical_parity"]["0"] == pytest.approx(-got["statistical_parity"]["1"])
    assert stats.fairness(y, pred, np.ones(n, bool)) == {k: {} for k in got}


def test_expressions_parse_and_evaluate_like_sql():
    t = pa.table({"age": [20, 30, None], "plan": ["a", "b", "c"], "senior": [True, False, None]})
    assert parse("age < 25").evaluate(t).to_pylist() == [True, False, None]
    assert parse("plan IN ('a', 'c') AND NOT senior").evaluate(t).to_pylist() == [False, False, None]
    assert parse("age BETWEEN 25 AND 35 OR plan = 'a'").evaluate(t).to_pylist() == [True, True, None]
    assert parse("avg(CASE WHEN {{input_column}} > 25 THEN 1 ELSE 0 END)", input_column="age").evaluate(t) == \
        pytest.approx(1 / 3)
    for bad in ("age <", "age < 25)", "frobnicate(age)", "{{nope}} > 1"):
        with pytest.raises(ExpressionError):
            parse(bad)


def test_ks_pvalue_closed_form_for_large_samples_stays_within_4e_4_of_scipy():
    from scipy import special

    n = 300_000  # n * m / (n + m) = 150,000: past the closed-form threshold
    for p in (0.5, 0.05, 1e-3):
        d = special.kolmogi(p) / np.sqrt(n / 2)
        assert stats.ks_pvalue(d, n, n) == pytest.approx(sps.kstwo.sf(d, n // 2), abs=4e-4)


def test_string_lengths_count_characters_like_arrow():
    values = ["é", "日本語", "", "naïve", "日本語", None, "a" * 40]
    prof = stats.profile_column(pa.array(values)).as_row()
    lengths = pc.utf8_length(pc.drop_null(pa.array(values)))
    assert prof["min_length"] == pc.min(lengths).as_py() == 0
    assert prof["max_length"] == pc.max(lengths).as_py() == 40
    assert prof["avg_length"] == pytest.approx(pc.mean(lengths).as_py(), rel=1e-12)
