"""Fail-closed layering: partial overrides keep defaults, removals are explicit, duplicates and secrets refused."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftgate.core.errors import ConfigError
from driftgate.core.settings import effective_values, load_settings, removed_defaults_tags
from driftgate.promotion.policy import Interval, ShadowEvidence, decide

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CRITERIA = {"roc_auc", "accuracy_score", "log_loss"}


@pytest.fixture
def conf(tmp_path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(REPO / "conf", target, ignore=shutil.ignore_patterns("user"))
    return target


def load(conf: Path, *overrides: str):
    return load_settings(conf, "local", overrides)


def refusal(conf: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(conf, *overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- item 1: partial overrides keep the defaults

@pytest.mark.parametrize("override", [
    "promotion.criteria.roc_auc.min_absolute_change=0.01",
    "promotion.criteria.roc_auc.threshold=0.7",
    "promotion.criteria={}",
])
def test_a_partial_criteria_override_keeps_every_default_criterion(conf, override):
    criteria = load(conf, override).promotion.criteria
    assert set(criteria) == DEFAULT_CRITERIA
    assert criteria["roc_auc"].threshold >= 0.6 and criteria["accuracy_score"].threshold == 0.6
    assert criteria["log_loss"].threshold == 0.69


def test_the_verdict_on_the_same_evidence_stays_fail_after_a_partial_override(conf):
    # The challenger beats the champion on roc_auc by 0.05 but its accuracy is below the 0.6 floor.
    good = {"accuracy_score": 0.55, "f1_score": 0.7, "precision_score": 0.7, "recall_score": 0.7, "roc_auc": 0.85,
            "log_loss": 0.45}
    evidence = ShadowEvidence(
        n_rows=1000, n_labelled=900, challenger_metrics=good, champion_metrics={**good, "roc_auc": 0.80},
        interval=Interval("roc_auc", 0.05, 0.02, 0.08, 0.95, 1000), mcnemar_p=0.001, mcnemar_counts=(10, 40),
        challenger_gaps={"senior/selection_rate": 0.05}, champion_gaps={"senior/selection_rate": 0.04})
    cfg = load(conf, "promotion.criteria.roc_auc.min_absolute_change=0.01").promotion
    verdict = decide(cfg, evidence)
    assert verdict.status == "FAIL" and any("accuracy_score" in r for r in verdict.reasons), verdict.reasons


def test_a_yaml_layer_changing_one_criterion_field_keeps_the_rest(conf):
    (conf / "local" / "tight.yml").write_text("promotion:\n  criteria:\n    roc_auc:\n      threshold: 0.7\n")
    criteria = load(conf).promotion.criteria
    assert set(criteria) == DEFAULT_CRITERIA
    assert criteria["roc_auc"].threshold == 0.7 and criteria["roc_auc"].min_absolute_change == 0.005


@pytest.mark.parametrize("how", ["set", "yaml"])
def test_overriding_one_quality_floor_keeps_the_roc_auc_floor(conf, how):
    if how == "yaml":
        (conf / "local" / "floor.yml").write_text("training:\n  quality_floor:\n    log_loss: {threshold: 0.7}\n")
        floor = load(conf).training.quality_floor
    else:
        floor = load(conf, "training.quality_floor.log_loss={threshold: 0.7}").training.quality_floor
    assert floor["roc_auc"].threshold == 0.6 and floor["log_loss"].threshold == 0.7


def test_setting_one_search_parameter_keeps_the_estimators_other_parameters(conf):
    space = load(conf, "tuning.search_space.random_forest.max_depth.high=12").tuning.search_space["random_forest"]
    assert space["max_depth"].high == 12 and space["max_depth"].low == 3
    assert {"n_estimators", "min_samples_leaf", "max_features"} <= set(space)
    # A parameter of another kind is replaced, not merged with the old kind's fields.
    space = load(conf, "tuning.search_space.random_forest.max_features={type: categorical, choices: [sqrt]}")
    assert space.tuning.search_space["random_forest"]["max_features"].choices == ["sqrt"]


def test_removing_a_default_takes_an_explicit_null_that_is_logged_and_recorded(conf, caplog):
    with caplog.at_level(logging.WARNING, logger="driftgate.config"):
        s = load(conf, "promotion.criteria.roc_auc=null", "promotion.criteria.log_loss.threshold=null",
                 "promotion.criteria.log_loss.min_absolute_change=0.01")
    assert set(s.promotion.criteria) == {"accuracy_score", "log_loss"}
    assert s.removed_defaults == ("promotion.criteria.roc_auc", "promotion.criteria.log_loss.threshold")
    assert s.origin("promotion.criteria.roc_auc").where == "--set promotion.criteria.roc_auc"
    assert [r.getMessage() for r in caplog.records] == [
        "config: --set promotion.criteria.roc_auc removes the entry promotion.criteria.roc_auc (explicit null)",
        "config: --set promotion.criteria.log_loss.threshold removes the value of "
        "promotion.criteria.log_loss.threshold (explicit null)",
    ]
    tags = removed_defaults_tags(s)
    assert tags == {"driftgate.config.removed_defaults":
                    "promotion.criteria.roc_auc (--set promotion.criteria.roc_auc); "
                    "promotion.criteria.log_loss.threshold (--set promotion.criteria.log_loss.threshold)"}
    assert removed_defaults_tags(load(conf)) == {}


def test_settings_compare_by_value_not_by_where_values_came_from(conf):
    same = load(conf, "project.audit_schema=main.default")
    assert same == load(conf) and same.origin("project.audit_schema").layer == "--set"
    assert load(conf, "promotion.criteria.roc_auc=null") != load(conf)


def test_a_job_task_relocating_its_settings_keeps_the_recorded_removals(conf):
    from driftgate.jobtask import settings_for_task

    s = settings_for_task({"overrides": "promotion.criteria.roc_auc=null; gate.rules.roc_auc_drop.threshold=0.5",
                           "catalog": "dev", "model_name": "dev.default.other"}, conf_dir=conf, env="local")
    assert s.project.audit_schema == "dev.default" and s.project.model_name == "dev.default.other"
    assert s.removed_defaults == ("promotion.criteria.roc_auc",)
    assert s.origin("gate.rules.roc_auc_drop.threshold").layer == "--set"


def test_a_removal_in_a_file_is_recorded_with_its_line_and_a_later_layer_can_restore(conf):
    (conf / "local" / "loose.yml").write_text("training:\n  quality_floor:\n    roc_auc: null\n")
    s = load(conf)
    assert s.training.quality_floor == {} and s.removed_defaults == ("training.quality_floor.roc_auc",)
    assert s.origin("training.quality_floor.roc_auc").where == f"{conf / 'local' / 'loose.yml'}:3"
    again = load(conf, "training.quality_floor.roc_auc.threshold=0.65")
    assert again.training.quality_floor["roc_auc"].threshold == 0.65 and again.removed_defaults == ()


def test_removing_an_entry_that_does_not_exist_is_an_error(conf):
    message = refusal(conf, "promotion.criteria.rocauc=null")
    assert message == ("--set promotion.criteria.rocauc: promotion.criteria.rocauc: expected an entry to remove "
                       "(roc_auc, accuracy_score, log_loss), got None")


# ---------------------------------------------------------------- issue 14: rules by name, list items in place

def test_one_field_of_a_named_rule_changes_and_the_rest_stays(conf):
    default = load(conf).gate.rules
    rules = {r.name: r for r in load(conf, "gate.rules.roc_auc_drop.threshold=0.5").gate.rules}
    assert [r.name for r in default] == list(rules)
    f1 = next(r for r in default if r.name == "roc_auc_drop")
    assert rules["roc_auc_drop"] == f1.model_copy(update={"threshold": 0.5})
    assert rules["numeric_drift_psi"] == next(r for r in default if r.name == "numeric_drift_psi")
    nested = {r.name: r for r in load(conf, "gate.rules.roc_auc_drop.persistence.windows=5").gate.rules}
    assert nested["roc_auc_drop"].persistence.windows == 5 and nested["roc_auc_drop"].persistence.violations == 2


def test_a_rule_is_removed_only_by_name_with_null_and_the_removal_is_recorded(conf):
    s = load(conf, "gate.rules.roc_auc_drop=null")
    assert "roc_auc_drop" not in [r.name for r in s.gate.rules] and s.gate.rules
    assert s.removed_defaults == ("gate.rules.roc_auc_drop",)


def test_an_unknown_rule_name_is_an_error_listing_the_names(conf):
    names = ", ".join(r.name for r in load(conf).gate.rules)
    message = refusal(conf, "gate.rules.f1_dorp.threshold=0.5")
    assert message.startswith("--set gate.rules.f1_dorp.threshold: gate.rules: expected the name of a Rule "
                              f"({names};")
    assert message.endswith("got 'f1_dorp'")
    assert "f1_dorp" in refusal(conf, "gate.rules.f1_dorp=null")


def test_a_listed_rule_with_a_known_name_updates_it_and_a_new_name_adds_one(conf):
    (conf / "local" / "rules.yml").write_text(
        "gate:\n  rules:\n    - name: roc_auc_drop\n      threshold: 0.55\n"
        "    - name: js\n      metric: js_distance\n      threshold: 0.1\n")
    rules = {r.name: r for r in load(conf).gate.rules}
    assert rules["roc_auc_drop"].threshold == 0.55 and rules["roc_auc_drop"].metric == "roc_auc_score"
    assert rules["js"].metric == "js_distance" and list(rules) == ["roc_auc_drop", "js", "numeric_drift_psi", "categorical_drift_js"]


def test_unnamed_list_items_are_addressed_by_index(conf):
    s = load_settings(conf, "demo", ("training.feature_lookups.0.timestamp_lookup_key=event_time",))
    [lookup] = s.training.feature_lookups
    assert lookup.timestamp_lookup_key == "event_time" and lookup.features[0] == "tenure_months"
    with pytest.raises(ConfigError, match="expected an index below 1"):
        load_settings(conf, "demo", ("training.feature_lookups.3.table_name=a.b.c",))
    assert "expected an index below 0" in refusal(conf, "training.feature_lookups.0.table_name=a.b.c")


# ---------------------------------------------------------------- item 2: duplicate keys

def test_a_key_twice_in_one_file_is_refused_naming_both_lines(conf):
    bad = conf / "base" / "dup.yml"
    bad.write_text("promotion:\n  require_approval: true\npromotion:\n  dry_run: false\n")
    assert refusal(conf) == (f"{bad}:3: promotion: expected each key once per mapping (first at {bad}:1), "
                             "got it again")
    bad.write_text("promotion:\n  criteria:\n    roc_auc: {threshold: 0.7}\n    roc_auc: {min_absolute_change: 0.1}\n")
    assert refusal(conf).startswith(f"{bad}:4: promotion.criteria.roc_auc: expected each key once")


def test_two_files_of_one_layer_setting_one_key_are_refused_naming_both(conf):
    (conf / "base" / "a.yml").write_text("promotion:\n  dry_run: true\n")
    (conf / "base" / "b.yml").write_text("# b\npromotion: {dry_run: false}\n")
    message = refusal(conf)
    assert message == (f"{conf / 'base' / 'b.yml'}:2: promotion.dry_run: expected one definition per layer, "
                       f"got a second one (also set at {conf / 'base' / 'a.yml'}:2)")


def test_files_of_one_layer_may_set_different_keys_and_layers_may_override(conf):
    (conf / "base" / "0_empty.yml").write_text("# nothing yet\n")
    (conf / "base" / "1_sections.yml").write_text("promotion: {}\ngate: {}\n")
    (conf / "base" / "a.yml").write_text("promotion:\n  dry_run: true\n")
    (conf / "base" / "b.yml").write_text("promotion:\n  require_approval: true\n")
    (conf / "local" / "c.yml").write_text("promotion:\n  dry_run: false\n")
    s = load(conf)
    assert s.promotion.require_approval is True and s.promotion.dry_run is False


def test_yaml_1_1_boolean_words_stay_keys(conf):
    (conf / "local" / "notify.yml").write_text("promotion:\n  notifications:\n    on: [promotion]\n")
    assert load(conf).promotion.notifications.on == ["promotion"]


# ---------------------------------------------------------------- item 7: secrets in committed layers

@pytest.mark.parametrize("yaml_text, key, problem", [
    ("promotion:\n  notifications:\n    webhook_url: https://hooks.slack.com/services/T000/B000/XXXXXXXX\n",
     "promotion.notifications.webhook_url", "a hook URL that is itself a credential"),
    ("promotion:\n  notifications:\n    webhook_url: https://bot:hunter2@chat.example.com/hook\n",
     "promotion.notifications.webhook_url", "a URL with credentials"),
    ("promotion:\n  notifications:\n    webhook_url: https://example.com/hook?token=hunter2\n",
     "promotion.notifications.webhook_url", "a URL carrying a token"),
    ("workspace:\n  tracking_uri: https://admin:hunter2@mlflow.example.com\n", "workspace.tracking_uri",
     "a URL with credentials"),
    ("triggers:\n  plugins:\n    - name: s3\n      kind: s3\n      config: {aws_secret_access_key: hunter2}\n",
     "triggers.plugins.0.config.aws_secret_access_key", "credential-named key"),
    ("webhook:\n  launch:\n    job_parameters: {private_key: hunter2}\n", "webhook.launch.job_parameters.private_key",
     "credential-named key"),
    ("webhook:\n  launch:\n    job_parameters: {passwd: hunter2}\n", "webhook.launch.job_parameters.passwd",
     "credential-named key"),
    ("webhook:\n  launch:\n    job_parameters:\n"
     "      connection_string: DefaultEndpointsProtocol=https;AccountKey=hunter2\n",
     "webhook.launch.job_parameters.connection_string", "credential-named key"),
    ("webhook:\n  launch:\n    job_parameters:\n      store: DefaultEndpointsProtocol=https;AccountKey=hunter2\n",
     "webhook.launch.job_parameters.store", "a connection string with a key"),
    ("webhook:\n  launch:\n    job_parameters: {auth_header: Bearer hunter2}\n",
     "webhook.launch.job_parameters.auth_header", "credential-named key"),
    ("webhook:\n  secret: [hunter, 2]\n", "webhook.secret", "(list)"),
    ("webhook:\n  secret: {value: hunter2}\n", "webhook.secret", "(dict)"),
    ("webhook:\n  token: 1234.5678\n", "webhook.token", "(float)"),
    ("webhook:\n  password: hunter2\n", "webhook.password", "(str)"),
])
@pytest.mark.parametrize("layer", ["base", "databricks"])
def test_secrets_in_committed_layers_are_refused_pointing_to_the_environment(conf, yaml_text, key, problem, layer):
    bad = conf / layer / "oops.yml"
    bad.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(conf, "databricks")
    message = str(err.value)
    assert message.startswith(f"{bad}: {key}: secrets must not live in committed conf files; expected no credential "
                              "(put it in ")
    assert "environment variable" in message or "DRIFTGATE_" in message or "MLFLOW_" in message
    assert problem in message and "hunter" not in message and "\n" not in message


def test_plain_urls_and_environment_variable_names_are_not_secrets(conf):
    (conf / "base" / "ok.yml").write_text(
        "promotion:\n  notifications:\n    webhook_url: https://chat.example.com/hooks/driftgate?channel=ml\n"
        "    token_env: MY_TOKEN\nworkspace:\n  tracking_uri: databricks://prod\n")
    s = load(conf)
    assert s.promotion.notifications.token_env == "MY_TOKEN" and s.workspace.tracking_uri == "databricks://prod"


def test_notifications_read_a_credential_webhook_url_from_the_environment(monkeypatch, tmp_path):
    import types

    import httpx

    from driftgate.promotion import notify

    posted = []
    monkeypatch.setattr(httpx, "post", lambda url, **kw: posted.append(url) or httpx.Response(200))
    monkeypatch.setattr(notify, "record_event", lambda *a, **k: None)
    monkeypatch.setenv("DRIFTGATE_NOTIFY_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/x")
    ws = types.SimpleNamespace(settings=load_settings(REPO / "conf", "local"))
    assert notify.send(ws, "promotion", "v2 is champion") is True
    assert posted == ["https://hooks.slack.com/services/T/B/x"]


# ---------------------------------------------------------------- driftgate config

def _cli(*args: str):
    from driftgate.cli import app

    return CliRunner().invoke(app, ["config", *args])


def test_config_command_prints_each_value_with_the_layer_that_set_it(conf):
    (conf / "user").mkdir()
    (conf / "user" / "me.yml").write_text(
        "project:\n  experiment_name: /Users/me/exp\n"
        "promotion:\n  notifications:\n    webhook_url: https://bot:hunter2@chat.example.com/hook\n")
    result = _cli("--conf", str(conf), "--json", "--show-origin", "--set", "promotion.dry_run=true",
                  "--set", "gate.rules.roc_auc_drop=null")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["project.model_name"] == {"value": "main.default.model", "layer": "base",
                                          "source": f"{conf / 'base' / 'driftgate.yml'}:10"}
    assert data["workspace.backend"]["layer"] == "env:local"
    assert data["project.experiment_name"]["layer"] == "user"
    assert data["promotion.dry_run"] == {"value": True, "layer": "--set", "source": "--set promotion.dry_run"}
    assert data["promotion.guard.n_resamples"] == {"value": 1000, "layer": "default", "source": "default"}
    assert data["gate.rules.numeric_drift_psi.threshold"]["layer"] == "base"  # the defaults are written out in conf/base
    assert data["gate.rules.roc_auc_drop"] == {"value": None, "layer": "--set",
                                          "source": "--set gate.rules.roc_auc_drop (removed)"}
    assert data["promotion.notifications.webhook_url"]["value"] == "https://***@chat.example.com/hook"
    assert "hunter2" not in result.stdout


def test_config_command_text_and_prefix_filter(conf):
    result = _cli("--conf", str(conf), "--show-origin", "promotion.criteria")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("promotion.criteria.") for line in lines)
    assert any(line.startswith("promotion.criteria.roc_auc.threshold") and line.endswith("= 0.6  # default")
               for line in lines)
    plain = json.loads(_cli("--conf", str(conf), "--json", "demo").stdout)
    assert plain["demo.seed"] == 7


def test_config_command_reports_a_bad_layer_in_one_line(conf):
    result = _cli("--conf", str(conf), "--set", "gate.rules.nope.threshold=1")
    assert result.exit_code == 1 and "gate.rules: expected the name of a Rule" in result.output


def test_effective_values_mask_secrets_from_the_user_layer(conf):
    s = load(conf, "webhook.launch.job_parameters={api_token: abc, catalog: main}")
    values = {v.key: v.value for v in effective_values(s)}
    assert values["webhook.launch.job_parameters.api_token"] == "***"
    assert values["webhook.launch.job_parameters.catalog"] == "main"
