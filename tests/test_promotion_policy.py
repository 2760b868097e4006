"""The promotion policy without I/O: statistics, MLflow criteria, the guard, fairness, the verdict."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from driftgate.core.settings import load_settings
from driftgate.core.errors import ConfigError
from driftgate.promotion.config import MetricCriterion, PromotionConfig
from driftgate.promotion.policy import (ShadowEvidence, agreement, classification_metrics, decide, fairness_gaps, mcnemar,
                              paired_bootstrap, slice_rates)

RNG = np.random.default_rng(0)


def _model(y, skill, rng):
    """Probabilities with ``skill`` (0: noise, larger: better) on labels ``y``."""
    z = skill * (2 * y - 1) + rng.normal(0, 1, len(y))
    proba = 1 / (1 + np.exp(-z))
    return (proba >= 0.5).astype(int), proba


def test_metrics_match_scikit_learn():
    y = RNG.integers(0, 2, 500)
    pred, proba = _model(y, 1.0, RNG)
    proba[:50] = 0.5  # ties, as real scores have
    got = classification_metrics(y, pred, proba, ["accuracy_score", "f1_score", "precision_score", "recall_score",
                                                  "roc_auc", "log_loss"])
    assert got["accuracy_score"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_score"] == pytest.approx(skm.f1_score(y, pred))
    assert got["precision_score"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall_score"] == pytest.approx(skm.recall_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))


def test_roc_auc_of_a_single_class_is_undefined_not_a_number_that_passes():
    assert math.isnan(classification_metrics(np.ones(10), np.ones(10), np.full(10, 0.7), ["roc_auc"])["roc_auc"])


def test_identical_models_have_an_interval_around_zero_and_a_better_one_excludes_it():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 800)
    a = _model(y, 0.8, rng)
    same = paired_bootstrap(y, a, a, metric="roc_auc", n_resamples=300, confidence=0.95, seed=0)
    assert same.low == same.high == same.difference == 0
    b = _model(y, 1.6, rng)
    better = paired_bootstrap(y, a, b, metric="roc_auc", n_resamples=300, confidence=0.95, seed=0)
    assert better.low > 0 and better.low < better.difference < better.high
    ll = paired_bootstrap(y, a, b, metric="log_loss", n_resamples=300, confidence=0.95, seed=0)
    assert ll.high < 0  # lower is better: the better model's interval lies below zero


def test_equally_good_models_are_mostly_within_noise():
    """Coverage: for two models of equal skill the 95% interval holds 0 in most trials (not only one seed)."""
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        y = rng.integers(0, 2, 400)
        a, b = _model(y, 0.8, rng), _model(y, 0.8, rng)
        iv = paired_bootstrap(y, a, b, metric="roc_auc", n_resamples=200, confidence=0.95, seed=seed)
        covered += iv.low <= 0 <= iv.high
    assert covered >= 34, covered


def test_mcnemar_counts_discordant_pairs():
    y = np.array([1] * 100)
    champ = np.array([1] * 50 + [0] * 50)
    chal = np.array([1] * 90 + [0] * 10)
    p, (b, c) = mcnemar(y, champ, chal)
    assert (b, c) == (0, 40) and p < 1e-10
    assert mcnemar(y, champ, champ)[0] == 1.0


def test_fairness_gaps_skip_small_slices():
    y = np.array([1, 0] * 50 + [1] * 4)
    pred = np.array([1, 0] * 50 + [0] * 4)
    groups = np.array([False] * 100 + [True] * 4, dtype=object)
    rows = slice_rates(y, pred, groups, ["selection_rate", "true_positive_rate"])
    assert [r["n"] for r in rows] == [100, 4]
    assert math.isnan(fairness_gaps(rows, ["selection_rate"], min_rows=30)["selection_rate"])
    assert fairness_gaps(rows, ["true_positive_rate"], min_rows=1)["true_positive_rate"] == pytest.approx(1.0)


def test_agreement_without_labels():
    p = np.array([0, 1, 1, 0])
    q = np.array([0.1, 0.9, 0.8, 0.2])
    same = agreement((p, q), (p, q))
    assert same["agreement_rate"] == 1 and same["probability_js_distance"] == pytest.approx(0, abs=1e-6)
    other = agreement((p, q), (1 - p, np.full(4, 0.55)))
    assert other["agreement_rate"] == 0 and other["probability_js_distance"] > 0.9


CFG = PromotionConfig(min_labelled_rows=100)
GOOD = {"accuracy_score": 0.80, "f1_score": 0.7, "precision_score": 0.7, "recall_score": 0.7, "roc_auc": 0.85,
        "log_loss": 0.45}
BASE = {**GOOD, "accuracy_score": 0.75, "roc_auc": 0.80, "log_loss": 0.50}


def _iv(low, high, metric="roc_auc"):
    from driftgate.promotion.policy import Interval

    return Interval(metric, (low + high) / 2, low, high, 0.95, 1000)


def _ev(**kw):
    base = dict(n_rows=1000, n_labelled=900, challenger_metrics=GOOD, champion_metrics=BASE, interval=_iv(0.02, 0.08),
                mcnemar_p=0.001, mcnemar_counts=(10, 40), challenger_gaps={"senior/selection_rate": 0.05},
                champion_gaps={"senior/selection_rate": 0.04})
    base.update(kw)
    return ShadowEvidence(**base)


@pytest.mark.parametrize("evidence, cfg, status, reason", [
    (_ev(), CFG, "PASS", "met the floors and changes"),
    (_ev(n_labelled=0), CFG, "NO_LABELS", "waiting for labels"),
    (_ev(n_rows=0, n_labelled=0), CFG, "INSUFFICIENT_DATA", "served no rows"),
    (_ev(n_labelled=99), CFG, "INSUFFICIENT_DATA", "need at least 100"),
    (_ev(challenger_metrics={**GOOD, "roc_auc": math.nan}), CFG, "INSUFFICIENT_DATA", "undefined"),
    (_ev(problems=("signature differs",)), CFG, "FAIL", "signature differs"),
    (_ev(challenger_metrics={**GOOD, "roc_auc": 0.803}), CFG, "FAIL", "roc_auc minimum absolute change"),
    (_ev(challenger_metrics={**GOOD, "log_loss": 0.9}), CFG, "FAIL", "log_loss value threshold"),
    (_ev(interval=_iv(-0.01, 0.08)), CFG, "FAIL", "not beyond noise"),
    (_ev(challenger_gaps={"senior/selection_rate": 0.20}), CFG, "FAIL", "fairness regressed"),
    (_ev(mcnemar_p=0.2), CFG.model_copy(update={"guard": CFG.guard.model_copy(update={"method": "mcnemar"})}),
     "FAIL", "McNemar p=0.2"),
    (_ev(interval=_iv(-0.01, 0.08)), CFG.model_copy(update={"guard": CFG.guard.model_copy(update={"method": "mcnemar"})}),
     "PASS", "McNemar"),
    (_ev(challenger_metrics={**GOOD, "roc_auc": 0.81}),
     CFG.model_copy(update={"criteria": {"roc_auc": MetricCriterion(min_relative_change=0.05)}}),
     "FAIL", "minimum relative change"),
    (_ev(champion_metrics=None, interval=None, champion_gaps={}), CFG, "PASS", "absolute floors (no champion yet)"),
    (_ev(champion_metrics=None, interval=None, challenger_metrics={**GOOD, "roc_auc": 0.55}), CFG, "FAIL",
     "roc_auc value threshold"),
])
def test_decision_truth_table(evidence, cfg, status, reason):
    verdict = decide(cfg, evidence)
    assert verdict.status == status, verdict.reasons
    assert verdict.reasons and any(reason in r for r in verdict.reasons), verdict.reasons


def test_each_failed_metric_criterion_is_its_own_reason():
    verdict = decide(CFG, _ev(challenger_metrics={**GOOD, "roc_auc": 0.5, "accuracy_score": 0.5}))
    assert verdict.status == "FAIL"
    assert sum(r.startswith("Metric roc_auc") for r in verdict.reasons) == 2  # floor and change
    assert sum(r.startswith("Metric accuracy_score") for r in verdict.reasons) == 1


@pytest.mark.parametrize("override, message", [
    ("promotion.criteria.f1_score={}", "must set at least one of threshold"),
    ("promotion.criteria.brier=0.1", "promotion.criteria.brier"),
    ("promotion.criteria.roc_auc.min_relative_change=2", "less than or equal to 1"),
    ("promotion.metrics=[accuracy_score]", "criteria name metrics that are not computed"),
    ("promotion.guard.method=vibes", "promotion.guard.method"),
])
def test_bad_policy_config_fails_at_load_in_one_line(override, message, tmp_path):
    from tests.conftest import REPO

    with pytest.raises(ConfigError) as err:
        load_settings(REPO / "conf", "demo", (override,))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_defaults_compare_against_the_champion_and_never_dry_run():
    cfg = PromotionConfig()
    assert cfg.dry_run is False and cfg.criteria["roc_auc"].min_absolute_change
    assert cfg.guard.method == "bootstrap" and cfg.fairness.protected_columns == []
