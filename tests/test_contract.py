"""The inference-table contract: one set of column names from conf, checked before a job trains,
and a base layer / built-in defaults that name nothing of the demo world."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftgate.core.errors import ConfigError
from driftgate.core.settings import Settings, load_settings
from driftgate.monitoring.contract import contract_problems

REPO = Path(__file__).resolve().parents[1]

# Every name of the churn demo world: its columns, tables, model and slices.
DEMO_NAMES = ("senior", "churn", "churn_model", "monthly_charges", "tenure_months", "support_calls", "usage_gb", "customer_id",
              "customer_features", "driftgate_demo", "plan", "region", "age")


def _mentions(text: str) -> list[str]:
    return sorted({n for n in DEMO_NAMES if re.search(rf"(?<![A-Za-z0-9_]){n}(?![A-Za-z0-9_])", text)})


def test_base_layer_names_nothing_of_the_demo_world():
    text = "\n".join(p.read_text() for p in (REPO / "conf" / "base").glob("*.y*ml"))
    assert _mentions(text) == []


@pytest.mark.parametrize("env", ["local", "databricks"])
def test_built_in_defaults_and_the_neutral_environments_name_no_demo_name(env):
    assert _mentions(Settings().model_dump_json()) == []
    dumped = load_settings(REPO / "conf", env).model_copy(update={"demo": None}).model_dump_json()
    assert _mentions(dumped) == []


def test_the_grep_finds_a_demo_name_when_there_is_one():
    assert _mentions('slicing_exprs: ["senior"]') == ["senior"]
    assert _mentions("main.x.churn_model") == ["churn_model"] and _mentions("seniority") == []
    assert _mentions("promotion: {protected_columns: [age]}") == ["age"]


def test_the_demo_layer_keeps_the_churn_world():
    s = load_settings(REPO / "conf", "demo")
    assert s.monitor.slicing_exprs == ["senior"] and s.promotion.fairness.protected_columns == ["senior"]
    assert s.training.window_days == 14 and s.project.model_name == "main.driftgate_demo.churn_model"
    base = load_settings(REPO / "conf", "local")
    assert base.training.window_days == 45 and base.training.validation_fraction == 0.15


# ----------------------------------------------------------------------------- the pure check


def _settings(*overrides: str) -> Settings:
    return load_settings(REPO / "conf", "local", ("training.table_features=[x1, x2]", *overrides))


LOG = ["timestamp", "model_id", "prediction", "probability", "label", "request_id", "x1", "x2"]


def _problems(settings, log=LOG, **more):
    schemas = {settings.project.inference_table: log, **more}
    return contract_problems(settings, schemas)


def test_a_complete_table_has_no_problems():
    assert _problems(_settings()) == []


def test_each_missing_role_is_named_by_its_key_and_column():
    s = _settings("monitor.inference_log.label_col=target")
    [problem] = _problems(s)
    assert problem.startswith("monitor.inference_log.label_col: column 'target' is not in main.default.inference_log")
    assert "set it to null" in problem


def test_optional_roles_set_to_null_are_not_required():
    s = _settings("monitor.inference_log.label_col=null", "monitor.inference_log.prediction_proba_col=null",
                  "monitor.inference_log.request_id_col=null")
    assert _problems(s, ["timestamp", "model_id", "prediction", "x1", "x2"]) == []
    # ... but the required ones always are.
    [problem] = _problems(s, ["timestamp", "prediction", "x1", "x2"])
    assert "monitor.inference_log.model_id_col: column 'model_id'" in problem


def test_fairness_slices_and_features_must_be_columns_of_the_table():
    s = _settings("promotion.fairness.protected_columns=[gender]", "monitor.slicing_exprs=['country = \"fr\"']",
                  "training.table_features=[x1, x3]")
    problems = _problems(s)
    assert any(p.startswith("promotion.fairness.protected_columns: column 'gender'") for p in problems)
    assert any(p.startswith("monitor.slicing_exprs[0]:") and "country" in p for p in problems)
    assert any(p.startswith("training features ['x3']") for p in problems)


def test_a_missing_inference_table_and_a_featureless_model_are_problems_at_job_start():
    s = load_settings(REPO / "conf", "local")
    problems = contract_problems(s, {})
    assert any(p.startswith("training: the model has no features") for p in problems)
    assert any(p.startswith("project.inference_table: main.default.inference_log does not exist") for p in problems)
    assert not any("does not exist" in p for p in contract_problems(s, {}, need_inference_table=False))


def test_monitor_and_project_must_name_the_same_inference_table():
    s = _settings("monitor.table_name=main.default.other")
    assert any(p.startswith("monitor.table_name: must name the inference table") for p in _problems(s))


def test_baseline_and_training_tables_are_checked_too():
    s = _settings()
    problems = _problems(s, **{"main.default.inference_baseline": ["timestamp", "prediction", "x1"],
                               "main.default.training_set": ["ts", "label", "x1"]})
    assert any(p.startswith("monitor.baseline_table_name: inference_log.model_id_col") for p in problems)
    assert "training.timestamp_col: column 'timestamp' is not in main.default.training_set" in " ".join(problems)
    assert any(p.startswith("training.table_features: ['x2']") for p in problems)


def test_check_raises_one_line_before_anything_is_trained(ws):
    import pyarrow as pa

    from driftgate.monitoring.contract import check_inference_contract
    from driftgate.pipeline import run_retraining_job

    cols = ws.settings.monitor.columns
    ws.tables.write(ws.settings.project.inference_table, pa.table({cols.timestamp: pa.array([0], pa.int64())}))
    with pytest.raises(ConfigError, match=r"^inference-table contract: monitor.inference_log.prediction_col"):
        check_inference_contract(ws)
    with pytest.raises(ConfigError):
        run_retraining_job(ws, trigger="manual")
    from driftgate import tasks

    with pytest.raises(ConfigError, match="prediction_col"):  # the Databricks job's train task checks too
        tasks.train(ws)
    assert ws.registry.alias_version(ws.settings.project.model_name, "champion") is None
    assert not ws.tables.exists(f"{ws.settings.project.audit_schema}.driftgate_decisions")


def test_base_layer_writes_out_the_built_in_gate_rules():
    """conf/base shows the defaults a deployment gets; they must be the models' own."""
    from driftgate.gating.config import GateConfig

    assert load_settings(REPO / "conf", "local").gate.rules == GateConfig().rules
    readme = (REPO / "README.md").read_text()
    for rule in GateConfig().rules:
        assert f"name: {rule.name}" in readme
