"""The metric tables are defined once (driftgate.core.metric_tables): the engine writes that
schema, the gate's rule vocabulary and test rows come from it, and docs/tables.md lists it."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from driftgate.core import metric_tables
from driftgate.gating import testing
from driftgate.gating.config import DRIFT_TABLE_COLUMNS, PROFILE_TABLE_COLUMNS, Rule
from driftgate.monitoring import engine, stats
from driftgate.monitoring.config import CustomMetric
from tests.conftest import REPO
from tests.monitor_data import inference_log


def _computed(cfg):
    plan = engine.plan_for(cfg, inference_log(1).schema)
    return engine.compute(plan, inference_log(2, rows_per_day=80, seed=1), inference_log(1, rows_per_day=80, seed=2))


@pytest.mark.parametrize("problem_type", ["classification", "regression"])
def test_the_engine_writes_exactly_the_defined_schemas(settings, problem_type):
    mon = settings.monitor
    log = mon.inference_log.model_copy(update={"problem_type": problem_type})
    custom = [CustomMetric(type="aggregate", name="avg_age", input_columns=[":table"], definition="avg(age)"),
              CustomMetric(type="drift", name="age_shift", input_columns=[":table"],
                           definition="{{current_df}}.avg_age - {{base_df}}.avg_age")]
    cfg = mon.model_copy(update={"inference_log": log, "custom_metrics": custom})
    profile, drift = _computed(cfg)
    assert profile.num_rows > 0 and drift.num_rows > 0
    assert profile.schema.equals(metric_tables.profile_schema(cfg.model_id_col, problem_type, ["avg_age"]))
    assert drift.schema.equals(metric_tables.drift_schema(cfg.model_id_col, ["age_shift"]))


def test_gate_vocabulary_and_fixtures_come_from_the_definition():
    assert PROFILE_TABLE_COLUMNS == metric_tables.metric_columns("profile")
    assert DRIFT_TABLE_COLUMNS == metric_tables.metric_columns("drift")
    assert PROFILE_TABLE_COLUMNS["f1_score"] == ("macro", "weighted")  # one_vs_all is a map: not a number
    assert DRIFT_TABLE_COLUMNS["ks_test"] == ("statistic", "pvalue")
    assert testing.PROFILE_SCHEMA.equals(metric_tables.profile_schema("model_id", "classification"))
    assert testing.DRIFT_SCHEMA.equals(metric_tables.drift_schema("model_id"))
    assert testing.profile_rows(2).schema.equals(testing.PROFILE_SCHEMA)


@pytest.mark.parametrize("metric,table", [("quantiles", "profile"), ("frequent_items", "profile"),
                                          ("granularity", "drift"), ("monitor_version", "drift")])
def test_columns_a_rule_cannot_compare_are_refused(metric, table):
    with pytest.raises(ValueError, match=metric):
        Rule(name="r", table=table, metric=metric, op=">", threshold=1)


def _documented(section: str) -> set[str]:
    """Backticked names in the first cell of the markdown tables of one ``## `` section."""
    text = (REPO / "docs" / "tables.md").read_text()
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize("section,schemas", [
    ("Profile metrics table", [metric_tables.profile_schema("<model_id_col>", "classification"),
                               metric_tables.profile_schema("<model_id_col>", "regression")]),
    ("Drift metrics table", [metric_tables.drift_schema("<model_id_col>")]),
])
def test_docs_list_every_column(section, schemas):
    documented = _documented(section)
    assert len(documented) > 20
    missing = sorted({name for schema in schemas for name in schema.names} - documented)
    assert not missing, f"docs/tables.md ({section}) does not describe {missing}"


def test_mean_absolute_percentage_error_is_scikit_learns():
    from sklearn.metrics import mean_absolute_percentage_error

    y = np.array([3.0, 0.0, -2.0, 10.0])
    yhat = np.array([2.5, 0.1, -2.0, 12.0])
    assert stats.mean_absolute_percentage_error(y, yhat) == pytest.approx(mean_absolute_percentage_error(y, yhat))
    assert pa.types.is_floating(metric_tables.profile_schema(None, "regression").field(
        "mean_absolute_percentage_error").type)
