"""The promotion stage end to end on a tiny registered world: shadow → promote → rollback → status.

One module-scoped workspace holds four registered sklearn models (see promotion_world);
each test sets the aliases it needs first.
"""
from __future__ import annotations

import json

import pandas as pd

import pytest

from driftgate import promotion
from driftgate.workspace.audit import read_events
from driftgate.core.errors import PromotionRefused
from promotion_world import build, reset_aliases, served, fit, with_settings

NAME = "main.driftgate_demo.churn_model"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("promotion") / ".driftgate"
    # 200 bootstrap resamples instead of 1000: the same code path, a fifth of the time.
    ws = open_workspace(load_settings(REPO / "conf", "demo", (f"workspace.root={root}",
                                                                "promotion.guard.n_resamples=200")))
    return build(ws)


def test_shadow_passes_a_better_challenger_and_writes_the_shadow_table(world):
    ws = world.ws
    reset_aliases(ws, champion=world.v1)
    promotion.set_challenger(ws, world.v2)
    result = promotion.shadow(ws)
    assert result.status == "PASS", result.reasons
    assert (result.champion_version, result.challenger_version) == (world.v1, world.v2)
    assert result.n_rows == 7 * 150 and result.n_labelled == 6 * 150
    assert result.metrics["delta_roc_auc"] > 0.1 and result.interval.low > 0
    assert {"accuracy_score", "f1_score", "precision_score", "recall_score", "roc_auc", "log_loss"} == {
        k.removeprefix("challenger_") for k in result.metrics if k.startswith("challenger_")}
    slices = {(r["model"], r["slice"]) for r in result.fairness}
    assert slices == {(m, s) for m in ("champion", "challenger") for s in ("False", "True")}

    shadow_rows = ws.tables.read(promotion.shadow_table_name(ws)).to_pandas()
    assert set(shadow_rows["model_id"]) == {world.v2} and len(shadow_rows) == result.n_rows
    assert list(shadow_rows.columns) == ws.tables.read(ws.settings.project.inference_table).column_names
    # Replaying the same window again replaces the challenger's rows, never duplicates them.
    promotion.shadow(ws)
    assert ws.tables.read(promotion.shadow_table_name(ws)).num_rows == result.n_rows


def test_shadow_report_is_logged_to_mlflow_with_the_decision(world):
    from mlflow import MlflowClient

    from driftgate.gating.testing import drift_rows

    ws = world.ws
    # the drift that led to this challenger: its chart goes beside the shadow evidence
    ws.tables.write(ws.settings.monitor.drift_metrics_table,
                    drift_rows(5, ["tenure_months", "plan"], lambda d, c: 0.1 * d), mode="overwrite")
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    result = promotion.shadow(ws)
    client = MlflowClient(ws.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.tags["driftgate.decision"] == "PASS"
    assert [f.path for f in client.list_artifacts(result.run_id, "monitoring")] == ["monitoring/drift_over_time.png"]
    assert run.data.metrics["challenger_roc_auc"] == pytest.approx(result.metrics["challenger_roc_auc"])
    files = {f.path for f in client.list_artifacts(result.run_id, "shadow")}
    assert {"shadow/chart.png", "shadow/report.md", "shadow/decision.json", "shadow/metrics.json",
            "shadow/fairness.json"} <= files
    decision = json.loads(open(client.download_artifacts(result.run_id, "shadow/decision.json")).read())
    assert decision["status"] == "PASS" and decision["interval"]["metric"] == "roc_auc"
    assert ws.registry.get_version(NAME, world.v2).tags["driftgate_shadow_status"] == "PASS"
    assert "driftgate.config.removed_defaults" not in run.data.tags


def test_a_shadow_run_without_a_default_criterion_records_the_removal(world):
    import dataclasses

    from mlflow import MlflowClient

    from driftgate.core.settings import load_settings
    from tests.conftest import REPO

    settings = load_settings(REPO / "conf", "demo", (f"workspace.root={world.ws.root}",
                                                       "promotion.guard.n_resamples=200",
                                                       "promotion.criteria.log_loss=null"))
    ws = dataclasses.replace(world.ws, settings=settings)
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    result = promotion.shadow(ws)
    tags = MlflowClient(ws.tracking_uri).get_run(result.run_id).data.tags
    assert tags["driftgate.config.removed_defaults"] == (
        "promotion.criteria.log_loss (--set promotion.criteria.log_loss)")


def test_promote_then_rollback(world):
    ws = world.ws
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    shadow = promotion.shadow(ws)
    result = promotion.promote(ws, shadow)
    assert result.promoted and result.champion_version == world.v2
    assert promotion.aliases(ws) == {"champion": world.v2, "previous_champion": world.v1, "challenger": None}
    tags = ws.registry.get_version(NAME, world.v2).tags
    assert tags["driftgate_decision"] == "promoted" and tags["driftgate_shadow_run_id"] == shadow.run_id
    assert tags["driftgate_train_run_id"] == ws.registry.get_version(NAME, world.v2).run_id
    assert read_events(ws, ["promotion"], 1)[0]["status"] == "promoted"
    from mlflow import MlflowClient

    assert MlflowClient(ws.tracking_uri).get_run(shadow.run_id).data.tags["driftgate.promotion"] == "promoted"

    back = promotion.rollback(ws, reason="latency regression in serving")
    assert back.promoted and back.champion_version == world.v1
    assert promotion.aliases(ws) == {"champion": world.v1, "previous_champion": None, "challenger": None}
    assert read_events(ws, ["rollback"], 1)[0]["details"]["reason"] == "latency regression in serving"


def test_a_challenger_no_better_than_the_champion_is_refused(world):
    ws = world.ws
    reset_aliases(ws, champion=world.v1, challenger=world.v3)
    result = promotion.shadow(ws)
    assert result.status == "FAIL"
    assert any("minimum absolute change" in r for r in result.reasons)
    assert any("not beyond noise" in r for r in result.reasons)
    outcome = promotion.promote(ws, result)
    assert not outcome.promoted and promotion.aliases(ws)["champion"] == world.v1
    assert read_events(ws, ["refusal"], 1)[0]["subject"] == f"{NAME}@{world.v3}"


def test_signature_mismatch_is_a_recorded_refusal(world):
    ws = world.ws
    reset_aliases(ws, champion=world.v1, challenger=world.v4)
    result = promotion.shadow(ws)
    assert result.status == "FAIL" and "missing inputs ['usage_gb']" in result.reasons[0]
    assert not promotion.promote(ws, result).promoted
    assert promotion.aliases(ws)["champion"] == world.v1
    assert "signature" in read_events(ws, ["refusal"], 1)[0]["details"]["reason"]


def test_no_labels_reports_agreement_and_waits(world):
    ws = with_settings(world.ws, project={"inference_table": "main.driftgate_demo.unlabelled_log"})
    m1, _ = fit("old", 1)
    ws.tables.write("main.driftgate_demo.unlabelled_log",
                    served(m1, world.v1, days=2, per_day=100, seed=5, unlabelled_days=2), mode="overwrite")
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    result = promotion.shadow(ws)
    assert result.status == "NO_LABELS" and result.n_labelled == 0 and result.n_rows == 200
    assert 0 <= result.metrics["agreement_rate"] < 1 and result.metrics["probability_js_distance"] > 0
    assert not promotion.promote(ws, result).promoted


def test_a_missing_protected_column_is_named(world):
    ws = with_settings(world.ws, promotion={"fairness": world.ws.settings.promotion.fairness.model_copy(
        update={"protected_columns": ["senior", "gender"]})})
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    result = promotion.shadow(ws)
    assert result.status == "FAIL"
    assert result.reasons == ("protected column 'gender' (promotion.fairness.protected_columns) "
                              "is not in the inference table",)


def test_without_a_champion_a_challenger_passing_the_floors_becomes_champion(world):
    ws = world.ws
    reset_aliases(ws, challenger=world.v2)
    result = promotion.shadow(ws)
    assert result.status == "PASS" and result.champion_version is None
    assert "absolute floors" in result.reasons[0]
    outcome = promotion.promote(ws, result)
    assert outcome.promoted and promotion.aliases(ws) == {"champion": world.v2, "previous_champion": None,
                                                          "challenger": None}


def test_a_deleted_challenger_version_is_refused(world):
    ws = world.ws
    reset_aliases(ws, champion=world.v1)
    with pytest.raises(PromotionRefused, match="does not exist"):
        promotion.shadow(ws, challenger_version="99")
    with pytest.raises(PromotionRefused, match="does not exist"):
        promotion.set_challenger(ws, "99")
    assert read_events(ws, ["refusal"], 1)[0]["subject"] == f"{NAME}@99"


def test_status_shows_aliases_metrics_and_the_audit_trail(world):
    from driftgate.workspace.audit import record_event
    from driftgate.commands.promotion import collect_status

    ws = world.ws
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    promotion.shadow(ws)
    record_event(ws, "gate_decision", subject="drift", status="EXCEEDED", details={"summary": "psi on usage_gb"})
    record_event(ws, "trigger_fired", subject="table_update", status="fired", details={"run_key": "delta:t@v3"})
    data = collect_status(ws)
    rows = {r["alias"]: r for r in data["aliases"]}
    assert rows["champion"]["version"] == world.v1 and rows["challenger"]["version"] == world.v2
    assert rows["challenger"]["decision"] == "PASS" and "roc_auc" in rows["challenger"]["metrics"]
    assert data["gate"][0]["status"] == "EXCEEDED" and data["runs"][0]["kind"] == "trigger_fired"
    assert data["promotion"][0]["kind"] == "shadow"


def test_cli_shadow_and_promote(world):
    from typer.testing import CliRunner

    from driftgate.cli import app
    from tests.conftest import REPO

    ws = world.ws
    reset_aliases(ws, champion=world.v1)
    sets = ["--conf", str(REPO / "conf"), "--env", "demo", "--set", f"workspace.root={ws.root}"]
    runner = CliRunner()
    out = runner.invoke(app, ["shadow", *sets, "--version", world.v3, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["status"] == "FAIL"
    out = runner.invoke(app, ["promote", *sets])  # promotes what `shadow` published, as the job's task
    assert out.exit_code == 3 and "refused" in out.output and "not beyond noise" in out.output
    out = runner.invoke(app, ["shadow", *sets, "--version", "99"])
    assert out.exit_code == 1 and "does not exist" in out.output
    assert promotion.aliases(ws)["champion"] == world.v1


def test_cli_status_and_rollback(world):
    from typer.testing import CliRunner

    from driftgate.cli import app
    from tests.conftest import REPO

    ws = world.ws
    reset_aliases(ws, champion=world.v2, previous=world.v1)
    sets = ["--conf", str(REPO / "conf"), "--env", "demo", "--set", f"workspace.root={ws.root}"]
    runner = CliRunner()
    out = runner.invoke(app, ["status", *sets])
    assert out.exit_code == 0, out.output
    assert "champion" in out.output and "last gate" in out.output  # the table wraps in narrow terminals
    out = runner.invoke(app, ["status", *sets, "--json"])
    data = json.loads(out.stdout)
    assert {r["alias"]: r["version"] for r in data["aliases"]} == {
        "champion": world.v2, "previous_champion": world.v1, "challenger": None}
    out = runner.invoke(app, ["rollback", *sets, "--reason", "cli test"])
    assert out.exit_code == 0, out.output
    assert "rolled_back" in out.output and promotion.aliases(ws)["champion"] == world.v1
    out = runner.invoke(app, ["rollback", *sets, "--reason", "again"])
    assert out.exit_code == 3 and "no previous_champion" in out.output  # refused: an outcome, not an error


def test_mlflow_registry_fault_restores_real_aliases(world):
    """The fault-injection guarantee against MLflow's own registry (SQLite), not only the fake."""
    from mlflow.exceptions import MlflowException

    from driftgate.core.errors import PromotionRefused
    from driftgate.promotion import ShadowResult

    ws = world.ws
    reg = ws.registry
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    before = promotion.aliases(ws)

    class FlakyClient:
        """Fails the first alias deletion (the challenger's removal, after champion moved)."""

        def __init__(self, client):
            self.client, self.failed = client, False

        def __getattr__(self, attr):
            return getattr(self.client, attr)

        def delete_registered_model_alias(self, name, alias):
            if not self.failed:
                self.failed = True
                raise MlflowException("injected: registry unavailable")
            return self.client.delete_registered_model_alias(name, alias)

    shadow = ShadowResult(status="PASS", model_name=NAME, champion_version=world.v1,
                          challenger_version=world.v2, metrics={}, reasons=("ok",))
    real = reg.client
    reg.client = FlakyClient(real)
    try:
        with pytest.raises(PromotionRefused, match="aliases restored"):
            promotion.promote(ws, shadow)
    finally:
        reg.client = real
    assert promotion.aliases(ws) == before == {"champion": world.v1, "previous_champion": None,
                                               "challenger": world.v2}


def test_the_shadow_window_skips_rows_the_challenger_was_fitted_on(world):
    """Retraining appends served rows to the training data: those must not judge the challenger."""
    from driftgate.training.trainer import TRAINED_BEFORE_TAG

    ws = world.ws
    name = ws.settings.project.model_name
    reset_aliases(ws, champion=world.v1, challenger=world.v2)
    whole = promotion.shadow(ws)
    served = ws.tables.read(ws.settings.project.inference_table).to_pandas()
    cut = served["timestamp"].min() + pd.Timedelta(days=4)
    ws.registry.client.set_model_version_tag(name, world.v2, TRAINED_BEFORE_TAG, cut.isoformat())
    try:
        clipped = promotion.shadow(ws)
    finally:
        ws.registry.client.delete_model_version_tag(name, world.v2, TRAINED_BEFORE_TAG)
    assert pd.Timestamp(clipped.window_start) == cut and clipped.window_end == whole.window_end
    assert clipped.n_rows == int((served["timestamp"] >= cut).sum()) < whole.n_rows


def test_the_shadow_window_is_read_through_a_filtered_read_and_capped(world, caplog):
    """Only the window reaches the driver: the newest time from the timestamp column alone, then a
    read filtered to the window; promotion.shadow_max_rows keeps the newest rows of it."""
    import dataclasses

    ws = world.ws
    table = ws.settings.project.inference_table
    reads: list[tuple] = []

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def read(self, name, columns=None, filters=None, version=None):
            out = self.inner.read(name, columns=columns, filters=filters, version=version)
            if name == table:
                reads.append((columns, filters, out.num_rows, out.num_columns))
            return out

    reset_aliases(ws, champion=world.v1)
    recording = dataclasses.replace(ws, tables=Recording(ws.tables))
    whole = ws.tables.read(table)
    three_days = promotion.shadow(with_settings(recording, promotion={"shadow_days": 3}), challenger_version=world.v2)
    assert 2 * 150 < three_days.n_rows < 4 * 150
    assert [r[0] for r in reads] == [["timestamp"], None]
    assert reads[0][3] == 1 and reads[1][2] == three_days.n_rows < whole.num_rows  # never the whole table
    reads.clear()
    capped = promotion.shadow(with_settings(recording, promotion={"shadow_days": 3, "shadow_max_rows": 200}),
                              challenger_version=world.v2)
    assert capped.n_rows == 200 and capped.window_end == three_days.window_end
    assert pd.Timestamp(capped.window_start) > pd.Timestamp(three_days.window_start)
    assert any("promotion.shadow_max_rows" in r.getMessage() for r in caplog.records)
