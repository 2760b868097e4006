"""The MLflow-free reads of a local SQLite store (``workspace/mlflow_sqlite.py``) answer exactly
what MLflow's client answers, and are used only on a schema revision that was checked."""
from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from driftgate.core.errors import RegistryError
from driftgate.workspace.mlflow_sqlite import VERIFIED_REVISIONS, SqliteRegistryReader, reader_for
from driftgate.workspace.registry import MlflowRegistry

NAME = "main.scratch.model"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store written by the installed MLflow: versions 1-4 (3 deleted), aliases, tags, metrics."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    exp = client.create_experiment("e", artifact_location=str(root / "artifacts"))
    runs = []
    for i in range(4):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "val_roc_auc", 0.7 + i / 100, step=0)
        client.log_metric(run.info.run_id, "val_roc_auc", 0.8 + i / 100, step=1)  # the latest value counts
        client.log_metric(run.info.run_id, "val_log_loss", math.nan)
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)
    client.create_registered_model(NAME)
    client.create_registered_model("main.scratch.other")
    for i, run_id in enumerate(runs):
        client.create_model_version(NAME, f"runs:/{run_id}/model", run_id=run_id if i != 1 else None,
                                    tags={"stage": f"s{i}"})
    client.create_model_version("main.scratch.other", f"runs:/{runs[0]}/model", run_id=runs[0])
    client.set_registered_model_alias(NAME, "previous_champion", "1")
    client.set_registered_model_alias(NAME, "champion", "2")
    client.set_registered_model_alias(NAME, "challenger", "4")
    client.set_registered_model_alias("main.scratch.other", "champion", "1")
    client.set_model_version_tag(NAME, "2", "driftgate_decision", "promoted")
    client.set_model_version_tag(NAME, "4", "driftgate_shadow_status", "FAIL")
    client.set_registered_model_alias(NAME, "stale", "3")
    client.delete_model_version(NAME, "3")
    return uri, runs


def registries(uri):
    fast = MlflowRegistry(uri, uri)
    assert isinstance(fast._reader, SqliteRegistryReader)
    slow = MlflowRegistry(uri, uri)
    slow.__dict__["_reader"] = None  # MLflow's client for every read
    return fast, slow


def test_alias_reads_match_mlflow(store):
    uri, _ = store
    fast, slow = registries(uri)
    for model in (NAME, "main.scratch.other", "main.scratch.missing"):
        for alias in ("champion", "previous_champion", "challenger", "stale", "unset"):
            assert fast.alias_version(model, alias) == slow.alias_version(model, alias), (model, alias)
    assert fast.alias_version(NAME, "champion") == "2"
    assert fast.alias_version(NAME, "unset") is None


def test_version_reads_match_mlflow(store):
    uri, _ = store
    fast, slow = registries(uri)
    for version in ("1", "2", "4"):
        assert fast.get_version(NAME, version) == slow.get_version(NAME, version)
    assert fast.get_version(NAME, "2").tags == {"stage": "s1", "driftgate_decision": "promoted"}
    assert fast.get_version(NAME, "2").run_id is None and fast.get_version(NAME, "1").aliases == ("previous_champion",)
    for model, version in ((NAME, "3"), (NAME, "9"), ("main.scratch.missing", "1")):  # deleted, absent, no model
        with pytest.raises(RegistryError):
            slow.get_version(model, version)
        with pytest.raises(RegistryError, match=f"version {version}"):
            fast.get_version(model, version)


def test_run_metrics_match_mlflow(store):
    uri, runs = store
    fast, slow = registries(uri)
    for run_id in runs:
        got, want = fast.run_metrics(run_id), slow.run_metrics(run_id)
        assert got.keys() == want.keys() and math.isnan(got["val_log_loss"]) and math.isnan(want["val_log_loss"])
        assert got["val_roc_auc"] == want["val_roc_auc"]
    assert fast.run_metrics(runs[2])["val_roc_auc"] == pytest.approx(0.82)
    assert fast.run_metrics("0" * 32) == slow.run_metrics("0" * 32) == {}


def test_the_installed_mlflow_writes_a_verified_revision(store):
    """Fails after an MLflow upgrade that changes the schema: re-run this module, then list the revision."""
    uri, _ = store
    path = uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision in VERIFIED_REVISIONS


def test_mlflows_client_is_used_where_the_reads_were_not_verified(store, tmp_path, monkeypatch):
    uri, _ = store
    other = tmp_path / "other.db"
    Path(other).write_bytes(Path(uri.removeprefix("sqlite:///")).read_bytes())
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'abc123future'")
    assert reader_for(f"sqlite:///{other}", f"sqlite:///{other}") is None  # an unverified schema
    assert reader_for(uri, f"sqlite:///{tmp_path / 'absent.db'}") is None  # no such file
    assert reader_for("http://127.0.0.1:5000", uri) is None  # a tracking server
    assert reader_for("databricks", "databricks-uc") is None
    assert reader_for(uri + "?timeout=5", uri) is None  # options SQLAlchemy would read
    assert reader_for(uri, uri) is not None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")  # multi-workspace stores filter by workspace
    assert reader_for(uri, uri) is None


def test_the_reader_never_writes(store):
    uri, _ = store
    path = Path(uri.removeprefix("sqlite:///"))
    before = path.stat().st_mtime_ns, path.read_bytes()
    fast, _ = registries(uri)
    fast.alias_version(NAME, "champion"), fast.get_version(NAME, "1"), fast.run_metrics("x")
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_status_imports_no_mlflow(store, tmp_path):
    """``driftgate status`` on a local workspace with registered versions reads them without MLflow."""
    root = tmp_path / "ws"
    root.mkdir()
    Path(root / "mlflow.db").write_bytes(Path(store[0].removeprefix("sqlite:///")).read_bytes())
    conf = Path(__file__).resolve().parents[1] / "conf"
    code = (
        "import json, sys\nfrom driftgate.cli import app\n"
        f"sys.argv = ['driftgate', 'status', '--conf', {str(conf)!r}, '--env', 'local', '--set', "
        f"'workspace.root={root}', '--set', 'project.model_name={NAME}', '--json']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'sqlalchemy', 'alembic'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "120", "PATH": "", "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert '"version": "2"' in out.stdout and '"decision": "promoted"' in out.stdout
    assert out.stdout.splitlines()[-1] == "[]"
