"""CBPE: performance estimated from calibrated probabilities, checked against realised labels."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from driftgate.monitoring.estimate import ESTIMATE_COLUMNS, _midranks, estimate_binary


def calibrated_window(n: int, rng, shift: float = 0.0, concept: float = 0.0):
    """Rows whose labels are drawn from the model's own probabilities (perfect calibration), or, with
    ``concept``, from a changed P(y|x) the model does not know about."""
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(1.5 * x - 0.3)))
    p_true = 1 / (1 + np.exp(-(1.5 * (1 - concept) * x - 0.3 + concept)))
    y = (rng.random(n) < p_true).astype(int)
    return p, (p >= 0.5).astype(int), y


def test_expected_metrics_equal_the_mean_over_label_draws():
    rng = np.random.default_rng(0)
    p, yhat, _ = calibrated_window(1500, rng)
    est = estimate_binary(p, yhat, n_draws=0)
    draws = rng.random((400, p.size)) < p
    acc = np.mean([accuracy_score(y, yhat) for y in draws])
    auc = np.mean([roc_auc_score(y, p) for y in draws])
    f1 = np.mean([f1_score(y, yhat) for y in draws])
    assert est.values["accuracy"] == pytest.approx(acc, abs=0.003)
    assert est.values["roc_auc"] == pytest.approx(auc, abs=0.004)
    assert est.values["f1"] == pytest.approx(f1, abs=0.004)


def test_band_draws_compute_the_realised_metrics_exactly():
    """The vectorised draws (Mann-Whitney with mid-ranks, confusion counts) agree with scikit-learn."""
    from driftgate.monitoring import estimate

    rng = np.random.default_rng(1)
    p = np.round(rng.random(400), 2)  # ties on purpose
    p_sorted = np.sort(p)[::-1]
    yhat = (p_sorted >= 0.5).astype(float)
    draws = estimate._realised(p_sorted, yhat, 5, seed=3)
    y = np.random.default_rng(3).random((5, p.size)) < p_sorted
    for k in range(5):
        assert draws["roc_auc"][k] == pytest.approx(roc_auc_score(y[k], p_sorted), abs=1e-12)
        assert draws["accuracy"][k] == pytest.approx(accuracy_score(y[k], yhat), abs=1e-12)
        assert draws["f1"][k] == pytest.approx(f1_score(y[k], yhat), abs=1e-12)
    assert np.array_equal(_midranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])


def test_band_covers_realised_performance_on_covariate_shift():
    """Windows under covariate shift only (P(x) moves, P(y|x) stays): the estimate follows the realised
    metric, and the 95% band holds it in about 95% of windows."""
    rng = np.random.default_rng(2)
    hits = {m: 0 for m in ("roc_auc", "accuracy", "f1")}
    errors = {m: [] for m in hits}
    windows = 120
    for w in range(windows):
        p, yhat, y = calibrated_window(600, rng, shift=-1.5 + 3 * w / windows)
        est = estimate_binary(p, yhat, seed=w)
        realised = {"roc_auc": roc_auc_score(y, p), "accuracy": accuracy_score(y, yhat), "f1": f1_score(y, yhat)}
        for m in hits:
            hits[m] += est.lower[m] <= realised[m] <= est.upper[m]
            errors[m].append(abs(est.values[m] - realised[m]))
    for m in hits:
        assert 0.88 <= hits[m] / windows <= 1.0, (m, hits[m])
        assert np.mean(errors[m]) < 0.03, (m, np.mean(errors[m]))


def test_concept_drift_is_the_blind_spot():
    """P(y|x) changes, P(x) does not: the realised AUC falls, the estimate does not move."""
    rng = np.random.default_rng(4)
    p0, yhat0, y0 = calibrated_window(4000, rng)
    p1, yhat1, y1 = calibrated_window(4000, rng, concept=0.9)
    before, after = estimate_binary(p0, yhat0), estimate_binary(p1, yhat1)
    assert roc_auc_score(y0, p0) - roc_auc_score(y1, p1) > 0.15  # the model really got worse
    assert abs(before.values["roc_auc"] - after.values["roc_auc"]) < 0.02  # and the estimate cannot see it


def test_edge_windows():
    empty = estimate_binary(np.array([]))
    assert empty.rows == 0 and all(np.isnan(v) for v in empty.as_columns().values())
    certain = estimate_binary(np.array([1.0, 1.0, 1.0]))
    assert np.isnan(certain.values["roc_auc"]) and certain.values["accuracy"] == 1.0
    with_nan = estimate_binary(np.array([0.9, np.nan, 0.2]), np.array([1, 1, 0]), n_draws=0)
    assert with_nan.rows == 2
    assert list(estimate_binary(np.array([0.2, 0.8]), n_draws=10).as_columns()) == list(ESTIMATE_COLUMNS)
    same = [estimate_binary(np.linspace(0.05, 0.95, 50), seed=9).lower["roc_auc"] for _ in range(2)]
    assert same[0] == same[1]  # seeded: a window always gets the same band


def test_the_band_does_not_depend_on_row_order():
    """Spark hands a window's rows over in any order: the same rows give the same band."""
    rng = np.random.default_rng(11)
    p = np.round(rng.random(300), 2)  # ties, some with different served predictions
    yhat = (p >= 0.5).astype(int)
    yhat[p == 0.5] = rng.integers(0, 2, (p == 0.5).sum())
    perm = rng.permutation(p.size)
    a, b = estimate_binary(p, yhat, seed=5), estimate_binary(p[perm], yhat[perm], seed=5)
    assert a.as_columns() == b.as_columns()
