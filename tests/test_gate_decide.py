"""The pure gate: truth tables of windows against expected decisions, no I/O."""
from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from driftgate.gating import GateConfig, Rule, decide
from driftgate.gating.config import Aggregation, Persistence, RuleFilters, SliceFilter
from driftgate.gating.decision import Decision
from driftgate.gating.testing import day, drift_rows, profile_rows

FEATURES = ["tenure_months", "monthly_charges", "usage_gb", "age", "plan", "region"]
NOW = day(10) + timedelta(hours=6)  # windows of days 0..9 are complete, day 10 still open


def psi_rule(**kw) -> Rule:
    base = dict(name="psi", metric="population_stability_index", op=">", threshold=0.2)
    base.update(kw)
    return Rule(**base)


def gate(*rules: Rule, combine="any") -> GateConfig:
    return GateConfig(rules=list(rules), combine=combine)


def frames(drift_values, days=10, profile=None, **kw):
    return {"drift": drift_rows(days, FEATURES, drift_values, **kw),
            "profile": profile if profile is not None else profile_rows(days + 1)}


def shifted_from(first_day, cols=("tenure_months", "usage_gb")):
    return lambda d, c: 0.5 if d >= first_day and c in cols else 0.05


@pytest.mark.parametrize(
    ("values", "persistence", "expected"),
    [
        (lambda d, c: 0.05, Persistence(), "OK"),  # identical-ish data never drifts
        (shifted_from(9), Persistence(), "EXCEEDED"),
        (shifted_from(9), Persistence(windows=3, violations=2), "OK"),  # one window is not persistent
        (shifted_from(8), Persistence(windows=3, violations=2), "EXCEEDED"),
        # violated two days ago and three days ago, but not in the latest window
        (lambda d, c: 0.5 if d in (7, 8) else 0.05, Persistence(windows=3, violations=2), "OK"),
        (lambda d, c: 0.5 if d in (7, 8) else 0.05,
         Persistence(windows=3, violations=2, latest_must_violate=False), "EXCEEDED"),
    ],
)
def test_persistence_truth_table(values, persistence, expected):
    d = decide(frames(values), gate(psi_rule(persistence=persistence)), now=NOW)
    assert d.status == expected
    assert d.drift_exceeded is (expected == "EXCEEDED")
    r = d.reasons[0]
    assert r.windows and r.windows[0].start == day(9)  # the open day-10 window is never judged
    if expected == "EXCEEDED" and persistence.latest_must_violate:
        assert r.fired_columns == ["tenure_months", "usage_gb"]
        assert r.windows[0].values["tenure_months"] == 0.5


@pytest.mark.parametrize(
    ("aggregate", "fired_cols", "expected"),
    [
        (Aggregation(how="any"), 1, "EXCEEDED"),
        (Aggregation(how="all"), 5, "OK"),
        (Aggregation(how="all"), 6, "EXCEEDED"),
        (Aggregation(how="share", at_least=0.5), 2, "OK"),
        (Aggregation(how="share", at_least=0.5), 3, "EXCEEDED"),
        (Aggregation(how="count", at_least=3), 2, "OK"),
        (Aggregation(how="count", at_least=3), 3, "EXCEEDED"),
        # a heavy column counts for more: weight 3 on tenure_months alone reaches 3
        (Aggregation(how="count", at_least=3, weights={"tenure_months": 3}), 1, "EXCEEDED"),
        # weight 0 ignores a column entirely
        (Aggregation(how="any", weights={"tenure_months": 0}), 1, "OK"),
    ],
)
def test_aggregation_truth_table(aggregate, fired_cols, expected):
    hot = FEATURES[:fired_cols]
    d = decide(frames(lambda d, c: 0.9 if c in hot else 0.01), gate(psi_rule(aggregate=aggregate)), now=NOW)
    assert d.status == expected, d.reasons[0].reason


def test_null_and_nan_values_are_missing_not_ok():
    d = decide(frames(lambda d, c: None if d == 9 else 0.01), gate(psi_rule()), now=NOW)
    assert d.status == "INSUFFICIENT_DATA"
    assert "NULL or NaN" in d.reasons[0].reason
    d = decide(frames(lambda d, c: math.nan), gate(psi_rule()), now=NOW)
    assert d.status == "INSUFFICIENT_DATA"
    # some columns missing: judged on those present, and the missing ones are reported
    d = decide(frames(lambda d, c: None if c == "age" else (0.9 if c == "plan" else 0.01)), gate(psi_rule()), now=NOW)
    assert d.status == "EXCEEDED" and d.reasons[0].windows[0].missing == ["age"]


def test_no_rows_for_the_model_is_insufficient():
    f = frames(shifted_from(0), model_id="3", profile=profile_rows(11, model_id="3"))
    d = decide(f, gate(psi_rule()), now=NOW)
    assert d.status == "INSUFFICIENT_DATA" and "no rows match" in d.reasons[0].reason
    d = decide(f, gate(psi_rule(filters=RuleFilters(model_id="3"))), now=NOW)
    assert d.status == "EXCEEDED"
    assert decide({"drift": None}, gate(psi_rule()), now=NOW).status == "INSUFFICIENT_DATA"


def test_open_window_only_is_insufficient_and_old_windows_are_stale():
    f = frames(shifted_from(0), days=1)  # only day 0
    d = decide(f, gate(psi_rule()), now=day(0) + timedelta(hours=12))
    assert d.status == "INSUFFICIENT_DATA" and "still open" in d.reasons[0].reason
    d = decide(f, gate(psi_rule()), now=day(5))
    assert d.status == "STALE" and "limit 2.0 days" in d.reasons[0].reason
    d = decide(f, gate(psi_rule(max_staleness=None)), now=day(30))
    assert d.status == "EXCEEDED"


def test_min_rows_from_the_profile_table():
    prof = profile_rows(11, count=lambda d: 40 if d == 9 else 600)
    d = decide(frames(shifted_from(0), profile=prof), gate(psi_rule()), now=NOW)
    assert d.status == "INSUFFICIENT_DATA" and "40 rows < min_rows 100" in d.reasons[0].reason
    assert decide(frames(shifted_from(0), profile=prof), gate(psi_rule(min_rows=30)), now=NOW).status == "EXCEEDED"
    # without a profile table the row count is unknown: not usable unless min_rows is 0
    f = {"drift": drift_rows(10, FEATURES, shifted_from(0))}
    assert decide(f, gate(psi_rule()), now=NOW).status == "INSUFFICIENT_DATA"
    assert decide(f, gate(psi_rule(min_rows=0)), now=NOW).status == "EXCEEDED"


def test_persistence_with_missing_windows_is_insufficient_not_ok():
    # only 2 complete windows exist; 3-of-5 cannot be decided yet though both violate
    f = {"drift": drift_rows([8, 9], FEATURES, shifted_from(0)), "profile": profile_rows(11)}
    d = decide(f, gate(psi_rule(persistence=Persistence(windows=5, violations=3))), now=NOW)
    assert d.status == "INSUFFICIENT_DATA" and "could decide it" in d.reasons[0].reason


def _pvalues(d, c):
    # 6 columns; one tiny p-value, others near alpha: raw p < 0.05 for three columns
    return {"ks_test": {"statistic": 0.1, "pvalue": {"tenure_months": 0.001, "usage_gb": 0.02,
                                                      "age": 0.04}.get(c, 0.5)}}


@pytest.mark.parametrize(("correction", "fired"), [
    ("none", ["age", "tenure_months", "usage_gb"]),
    ("bonferroni", ["tenure_months"]),  # 0.02 * 6 = 0.12
    ("bh", ["tenure_months"]),  # BH: 0.001*6/1=0.006, 0.02*6/2=0.06, 0.04*6/3=0.08
])
def test_multiple_testing_correction(correction, fired):
    rule = Rule(name="ks", metric="ks_test.pvalue", op="<", threshold=0.05, correction=correction)
    d = decide(frames(_pvalues), gate(rule), now=NOW)
    assert d.status == "EXCEEDED"
    assert d.reasons[0].fired_columns == fired
    assert d.reasons[0].correction == correction


def test_pvalue_rules_default_to_bh():
    rule = Rule(name="ks", metric="ks_test.pvalue", op="<", threshold=0.05)
    assert rule.effective_correction == "bh"
    d = decide(frames(_pvalues), gate(rule), now=NOW)
    assert d.reasons[0].windows[0].values["usage_gb"] == pytest.approx(0.06)


def test_quality_rule_on_the_profile_table():
    prof = profile_rows(11, f1=lambda d: 0.45 if d >= 8 else 0.8)
    rule = Rule(name="f1", table="profile", metric="f1_score.macro", op="<", threshold=0.6,
                persistence=Persistence(windows=3, violations=2))
    d = decide({"profile": prof}, gate(rule), now=NOW)
    assert d.status == "EXCEEDED" and d.reasons[0].fired_columns == [":table"]
    assert "f1_score.macro" in d.reasons[0].reason
    # labels not arrived yet: f1 NULL in the latest window
    prof = profile_rows(11, f1=lambda d: None if d >= 9 else 0.45)
    assert decide({"profile": prof}, gate(rule), now=NOW).status == "INSUFFICIENT_DATA"


def test_fairness_map_entry_on_a_slice():
    def fair(d):
        return {"statistical_parity": {"1": -0.3 if d >= 9 else 0.02, "0": 0.0}}

    prof = profile_rows(11, slice_key="senior", slice_value="true", extra=fair)
    counts = profile_rows(11)
    import pyarrow as pa

    rows = pa.concat_tables([prof, counts])
    rule = Rule(name="parity", table="profile", metric="statistical_parity['1']", op=">", threshold=0.2,
                abs=True, filters=RuleFilters(slice=SliceFilter(key="senior", value=True)))
    d = decide({"profile": rows}, gate(rule), now=NOW)
    assert d.status == "EXCEEDED", d.reasons[0].reason
    assert d.reasons[0].windows[0].values == {":table": -0.3}
    assert d.reasons[0].filters["slice"] == "senior=true"


def test_filters_pick_drift_type_granularity_and_columns():
    import pyarrow as pa

    rows = pa.concat_tables([
        drift_rows(10, FEATURES, lambda d, c: 0.01),
        drift_rows(10, FEATURES, lambda d, c: 0.9, drift_type="CONSECUTIVE"),
        drift_rows(10, FEATURES, lambda d, c: 0.9, granularity="1 hour"),
        drift_rows(10, ["prediction"], lambda d, c: 0.9),
    ])
    f = {"drift": rows, "profile": profile_rows(11)}
    assert decide(f, gate(psi_rule(filters=RuleFilters(exclude_columns=["prediction"]))), now=NOW).status == "OK"
    assert decide(f, gate(psi_rule()), now=NOW).status == "EXCEEDED"  # "all" includes prediction
    assert decide(f, gate(psi_rule(filters=RuleFilters(drift_type="CONSECUTIVE"))), now=NOW).status == "EXCEEDED"
    assert decide(f, gate(psi_rule(filters=RuleFilters(columns=["age"]))), now=NOW).status == "OK"
    missing_col = decide(f, gate(psi_rule(filters=RuleFilters(columns=["nope"]))), now=NOW)
    assert missing_col.status == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(("statuses", "combine", "expected"), [
    (("EXCEEDED", "OK"), "any", "EXCEEDED"),
    (("EXCEEDED", "INSUFFICIENT_DATA"), "any", "EXCEEDED"),
    (("OK", "INSUFFICIENT_DATA"), "any", "INSUFFICIENT_DATA"),
    (("OK", "STALE", "INSUFFICIENT_DATA"), "any", "STALE"),
    (("OK", "OK"), "any", "OK"),
    (("EXCEEDED", "OK"), "all", "OK"),
    (("EXCEEDED", "EXCEEDED"), "all", "EXCEEDED"),
    (("EXCEEDED", "INSUFFICIENT_DATA"), "all", "INSUFFICIENT_DATA"),
    (("EXCEEDED", "ERROR", "STALE"), "all", "ERROR"),
])
def test_combination(statuses, combine, expected):
    from driftgate.gating.gate import combine as combine_fn

    assert combine_fn(list(statuses), combine) == expected


def test_two_rules_all_and_pandas_input():
    drift = drift_rows(10, FEATURES, shifted_from(0)).to_pandas()
    prof = profile_rows(11, f1=0.8).to_pandas()
    f1 = Rule(name="f1", table="profile", metric="f1_score.macro", op="<", threshold=0.6)
    assert decide({"drift": drift, "profile": prof}, gate(psi_rule(), f1, combine="all"), now=NOW).status == "OK"
    assert decide({"drift": drift, "profile": prof}, gate(psi_rule(), f1, combine="any"), now=NOW).status == "EXCEEDED"


def test_a_table_lacking_the_metric_column_is_error_not_ok():
    rows = drift_rows(10, FEATURES, shifted_from(0)).drop_columns(["population_stability_index"])
    d = decide({"drift": rows, "profile": profile_rows(11)}, gate(psi_rule()), now=NOW)
    assert d.status == "ERROR" and "population_stability_index" in d.reasons[0].reason


def test_always_and_never_gates():
    assert decide({}, GateConfig(mode="always"), now=NOW).status == "EXCEEDED"
    d = decide({}, GateConfig(mode="never"), now=NOW)
    assert d.status == "OK" and not d.drift_exceeded and "never" in d.reasons[0].reason


def test_threshold_profiles():
    cfg = GateConfig(rules=[psi_rule(threshold=0.6)], profiles={"strict": {"psi": 0.4}}, profile="strict")
    d = decide(frames(shifted_from(0)), cfg, now=NOW)
    assert d.status == "EXCEEDED" and d.reasons[0].threshold == 0.4 and d.profile == "strict"
    assert decide(frames(shifted_from(0)), cfg.model_copy(update={"profile": "default"}), now=NOW).status == "OK"


def test_decision_json_roundtrip_and_size_limit():
    many = [f"f{i:03d}" for i in range(400)]
    rows = drift_rows(10, many, lambda d, c: 0.9)
    rules = [psi_rule(name=f"r{i}", persistence=Persistence(windows=10, violations=1)) for i in range(8)]
    d = decide({"drift": rows, "profile": profile_rows(11)}, gate(*rules), now=NOW, trigger="table_update")
    text = d.to_json()
    assert len(text.encode()) <= 48 * 1024
    back = Decision.from_json(text)
    assert back.status == "EXCEEDED" and back.trigger == "table_update" and back.decision_id == d.decision_id
    assert len(back.reasons) == 8 and back.reasons[0].status == "EXCEEDED"
    assert json.loads(text)["drift_exceeded"] is True
    # small decisions keep every detail
    small = decide(frames(shifted_from(0)), gate(psi_rule()), now=NOW)
    assert Decision.from_json(small.to_json()) == small and not small.truncated


def test_decide_is_pure():
    f = frames(shifted_from(5))
    a = decide(f, gate(psi_rule()), now=NOW)
    b = decide(f, gate(psi_rule()), now=NOW)
    assert a.model_copy(update={"decision_id": "x"}) == b.model_copy(update={"decision_id": "x"})


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402


@hsettings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.lists(st.floats(0, 1), min_size=6, max_size=6), min_size=4, max_size=4),
    bump=st.floats(0, 0.5),
    how=st.sampled_from(["any", "all", "share", "count"]),
)
def test_more_drift_never_turns_exceeded_into_ok(values, bump, how):
    """Monotonicity: raising every PSI value cannot make an EXCEEDED rule pass."""
    at_least = {"share": 0.5, "count": 2}.get(how)
    rule = psi_rule(aggregate=Aggregation(how=how, at_least=at_least),
                    persistence=Persistence(windows=3, violations=2))

    def rows(extra):
        return {"drift": drift_rows(range(6, 10), FEATURES, lambda d, c: values[d - 6][FEATURES.index(c)] + extra),
                "profile": profile_rows(11)}

    before = decide(rows(0.0), gate(rule), now=NOW).status
    after = decide(rows(bump), gate(rule), now=NOW).status
    assert before in ("OK", "EXCEEDED") and after in ("OK", "EXCEEDED")
    if before == "EXCEEDED":
        assert after == "EXCEEDED"


def test_late_labels_latest_usable_window():
    """Labels arrive a day late: the newest window has no F1 yet."""
    prof = profile_rows(11, f1=lambda d: None if d >= 9 else (0.45 if d >= 7 else 0.8))
    strict = Rule(name="f1", table="profile", metric="f1_score.macro", op="<", threshold=0.6,
                  persistence=Persistence(windows=3, violations=2))
    assert decide({"profile": prof}, gate(strict), now=NOW).status == "INSUFFICIENT_DATA"
    usable = strict.model_copy(update={"latest": "usable"})
    d = decide({"profile": prof}, gate(usable), now=NOW)
    assert d.status == "EXCEEDED" and "skipped 1 newer window" in d.reasons[0].reason
    assert d.reasons[0].windows[0].start == day(8)
    # the usable window must still be recent enough
    old = profile_rows(11, f1=lambda d: None if d >= 5 else 0.45)
    d = decide({"profile": old}, gate(usable.model_copy(update={"persistence": Persistence(windows=5, violations=2)})),
               now=NOW)
    assert d.status == "STALE" and "latest usable window" in d.reasons[0].reason


# --------------------------------------------------------------------------- relative to the baseline


def _quality(days: int, auc, base_auc):
    """INPUT rows with roc_auc_score per day, and one BASELINE profile row."""
    import pyarrow as pa

    from driftgate.gating.testing import profile_rows

    inputs = profile_rows(days, extra=lambda d: {"roc_auc_score": auc(d)})
    base = profile_rows([0], log_type="BASELINE", extra=lambda d: {"roc_auc_score": base_auc})
    return pa.concat_tables([inputs, base])


def _auc_rule(**kw):
    from driftgate.gating.config import GateConfig

    rule = {"name": "auc", "table": "profile", "metric": "roc_auc_score", "relative_to": "baseline", "op": "<",
            "threshold": -0.05, "max_staleness": None, **kw}
    return GateConfig(rules=[rule])


@pytest.mark.parametrize("auc, base_auc, change, expected", [
    (0.80, 0.82, "difference", "OK"),         # -0.02: within the margin
    (0.76, 0.82, "difference", "EXCEEDED"),   # -0.06: beyond it
    (0.60, 0.62, "difference", "OK"),         # a low model that holds its level is not a drop
    (0.76, 0.82, "relative", "EXCEEDED"),     # -7.3%
    (0.80, 0.82, "relative", "OK"),           # -2.4%
    (0.76, None, "difference", "INSUFFICIENT_DATA"),  # no baseline value: never a silent OK
])
def test_quality_relative_to_the_baseline(auc, base_auc, change, expected):
    from driftgate.gating import decide
    from driftgate.gating.testing import day

    d = decide({"profile": _quality(5, lambda _: auc, base_auc)}, _auc_rule(change=change), now=day(5))
    assert d.status == expected, d.summary
    if expected == "EXCEEDED":
        assert "baseline 0.82" in d.reasons[0].reason


def test_relative_rule_follows_persistence():
    from driftgate.gating import decide
    from driftgate.gating.config import Persistence
    from driftgate.gating.testing import day

    aucs = {0: 0.82, 1: 0.82, 2: 0.70, 3: 0.81, 4: 0.70}
    rule = _auc_rule(persistence=Persistence(windows=3, violations=2).model_dump())
    assert decide({"profile": _quality(5, aucs.get, 0.82)}, rule, now=day(5)).status == "EXCEEDED"
    aucs[2] = 0.81
    assert decide({"profile": _quality(5, aucs.get, 0.82)}, rule, now=day(5)).status == "OK"


def test_relative_to_is_refused_on_drift_rules():
    from pydantic import ValidationError

    from driftgate.gating.config import GateConfig

    with pytest.raises(ValidationError, match="relative_to applies to profile rules"):
        GateConfig(rules=[{"name": "x", "metric": "js_distance", "relative_to": "baseline"}])


def test_drift_rules_over_all_columns_leave_the_model_outputs_out():
    from driftgate.gating import decide
    from driftgate.gating.config import GateConfig
    from driftgate.gating.testing import day, drift_rows

    rows = drift_rows(3, ["x1", "x2", "predicted", "score"], lambda d, c: 0.9 if c in ("predicted", "score") else 0.01)
    gate = GateConfig(rules=[{"name": "psi", "metric": "population_stability_index", "threshold": 0.2,
                              "min_rows": 0, "max_staleness": None}])
    assert decide({"drift": rows}, gate, now=day(3)).status == "EXCEEDED"
    d = decide({"drift": rows}, gate, now=day(3), output_columns=("predicted", "score"))
    assert d.status == "OK" and d.reasons[0].latest.n_columns == 2


def test_a_drift_metric_no_column_carries_is_nothing_to_judge_but_a_missing_window_is():
    from driftgate.gating import decide
    from driftgate.gating.config import GateConfig
    from driftgate.gating.testing import day, drift_rows

    gate = GateConfig(rules=[{"name": "js", "metric": "js_distance", "threshold": 0.2, "min_rows": 0,
                              "max_staleness": None}])
    numeric_only = drift_rows(3, ["x1", "x2"], lambda d, c: 0.5)  # PSI values only, no JS anywhere
    d = decide({"drift": numeric_only}, gate, now=day(3))
    assert d.status == "OK" and "nothing to judge" in d.reasons[0].reason
    some = drift_rows(3, ["plan"], lambda d, c: {"js_distance": 0.05} if d < 2 else {"js_distance": None})
    assert decide({"drift": some}, gate, now=day(3)).status == "INSUFFICIENT_DATA"
