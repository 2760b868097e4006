"""Adopting driftgate on a model that is not the demo, through the CLI alone:
init → log traffic → log labels → monitor → gate → run → status, on tables whose columns are
target / event_time / served_by / score / decision / rid and that have no protected column."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

import own_world as ow
from driftgate.cli import app

pytestmark = pytest.mark.slow


def _cli(conf, *args):
    out = CliRunner().invoke(app, [args[0], "--conf", str(conf), *args[1:]])
    assert out.exit_code == 0, out.output
    return out.output


def _json(conf, *args, flag: str | None = "--json"):
    text = _cli(conf, *args, *([flag] if flag else []))
    start = text.index("\n{") + 1 if not text.startswith("{") else 0
    return json.loads(text[start:text.rindex("}") + 1])


def test_own_model_from_an_empty_folder_to_a_retrain(tmp_path):
    root = tmp_path / ".driftgate"
    conf = ow.conf_dir(tmp_path, root)
    training = root / "lakehouse" / "main" / "shop" / "labelled_requests"
    training.parent.mkdir(parents=True)
    write_deltalake(str(training), ow.requests(0, 40), mode="overwrite")  # the user's own training table

    # 1. The first champion and its baseline, from the training table.
    boot = _json(conf, "init", "--train")
    assert boot["version"] == "1" and boot["trained"] and boot["champion_set"]
    assert boot["baseline_table"] == "main.shop.scored_requests_baseline" and boot["baseline_rows"] > 500

    # 2. Ten days of served requests, without predictions (scored with the champion), drift from day 43;
    #    labels arrive later, by request id, for all but the last day.
    served = ow.requests(40, 10, drift_from=43)
    served.drop(columns=["target"]).to_parquet(tmp_path / "served.parquet")
    assert "logged 1600 served row(s)" in _cli(conf, "log-traffic", str(tmp_path / "served.parquet"))
    labelled = served[served["event_time"] < ow.day(49)]
    labelled[["rid", "target"]].to_csv(tmp_path / "labels.csv", index=False)
    assert "merged labels into 1440 row(s)" in _cli(conf, "log-labels", str(tmp_path / "labels.csv"))
    write_deltalake(str(training), labelled.reset_index(drop=True), mode="append")  # theirs

    # 3. Monitor and gate, as of the end of the served days (the history is not "now").
    _cli(conf, "monitor", "--quiet")
    when = (ow.day(50) + timedelta(hours=1)).isoformat()
    decision = _json(conf, "gate", "--as-of", when, "--no-record")
    rules = {r["name"]: r for r in decision["reasons"]}
    assert decision["status"] == "EXCEEDED", decision["summary"]
    assert rules["numeric_drift_psi"]["status"] == "EXCEEDED" and "x1" in rules["numeric_drift_psi"]["fired_columns"]
    # The contract's outputs are not features, whatever they are called.
    assert not {"decision", "score", "target"} & set(rules["numeric_drift_psi"]["fired_columns"])

    # 4. The job: retrain, shadow on the champion's traffic, promote or refuse — no KeyError anywhere.
    run = _json(conf, "run", "--as-of", when, flag=None)
    assert run["decision_status"] == "EXCEEDED" and run["branch"] == "retrain", run
    assert run["challenger_version"] == "2" and run["shadow_status"] in ("PASS", "FAIL"), run
    champion = "2" if run["promoted"] else "1"
    assert run["champion_after"] == champion

    # 5. Status shows the aliases and what happened; a second run inside the cooldown does not retrain.
    status = _json(conf, "status")
    aliases = {a["alias"]: a["version"] for a in status["aliases"]}
    assert aliases["champion"] == champion
    again = _json(conf, "run", "--as-of", (ow.day(51) + timedelta(hours=1)).isoformat(), flag=None)
    assert again["branch"] in ("cooldown", "skip") and again["challenger_version"] is None, again


def test_a_contract_column_the_table_lacks_stops_the_job_before_training(tmp_path):
    root = tmp_path / ".driftgate"
    conf = ow.conf_dir(tmp_path, root, extra="")
    training = root / "lakehouse" / "main" / "shop" / "labelled_requests"
    training.parent.mkdir(parents=True)
    write_deltalake(str(training), ow.requests(0, 5), mode="overwrite")
    served = root / "lakehouse" / "main" / "shop" / "scored_requests"
    rows = ow.requests(5, 2).rename(columns={"target": "label"}).assign(served_by="1", decision=0, score=0.1)
    write_deltalake(str(served), rows, mode="overwrite")
    out = CliRunner().invoke(app, ["run", "--conf", str(conf)])
    assert out.exit_code == 1
    assert "monitor.inference_log.label_col: column 'target' is not in main.shop.scored_requests" in out.output
    assert not (root / "mlflow.db").exists() or "registered" not in out.output
