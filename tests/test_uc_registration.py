"""The challenger registered on Unity Catalog end to end: driftgate's train task against the offline
workspace (tests/databricks_fake.py) through MLflow's real ``databricks-uc`` store, which creates
the version (PENDING_REGISTRATION), gets storage credentials, uploads the model's files to the
storage they name, and finalizes it (READY); then the model is loaded back by its alias.

Each storage a workspace can have is exercised, as the installed MLflow chooses it from the
workspace's answers (``mlflow/store/_unity_catalog/registry/rest_store.py``, ``_get_artifact_repo``):
Databricks default storage (presigned URLs), the Files API (the SDK repository), and an S3 bucket
with temporary AWS credentials (boto3 against a local moto S3 server).
"""
from __future__ import annotations

import posixpath

import numpy as np
import pytest
import yaml

import training_world as tw
from tests.databricks_fake import STORAGE_MODES, UC, dbx, on_databricks  # noqa: F401  (fixture)
from training_world import mlflow_template, tws  # noqa: F401  (fixtures)

MODEL = "main.driftgate.churn_model"


@pytest.fixture
def s3_files(dbx, monkeypatch):
    """A local S3 (moto's server) holding the fake metastore's bucket; returns a reader of a
    version's files from its ``storage_location``."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)  # MLflow's S3 client: this endpoint
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2",
                      aws_access_key_id="admin", aws_secret_access_key="admin")
    s3.create_bucket(Bucket=dbx.s3_bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})

    def read(name: str, version: str) -> dict[str, bytes]:
        location = dbx.versions[(name, version)]["storage_location"]
        prefix = location.split(f"s3://{dbx.s3_bucket}/", 1)[1] + "/"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=dbx.s3_bucket, Prefix=prefix).get("Contents", [])]
        return {k[len(prefix):]: s3.get_object(Bucket=dbx.s3_bucket, Key=k)["Body"].read() for k in keys}

    yield read
    server.stop()


@pytest.fixture(params=STORAGE_MODES)
def stored(request, dbx):
    """The fake workspace in one storage mode; returns the reader of a version's stored files."""
    dbx.storage = request.param
    return request.getfixturevalue("s3_files") if request.param == "s3" else dbx.version_files


def _paths(fake):
    return [p for _, p, _ in fake.requests]


def _experiment_id(fake) -> str:
    [exp] = fake.experiments.values()
    return exp["experiment_id"]


def test_the_train_task_registers_the_challenger_with_its_lineage_and_files(tws, dbx, stored):
    import mlflow

    from driftgate import tasks
    from driftgate.training.model import model_input

    ws = on_databricks(tws, model_name=MODEL)
    tw.world(ws, days=30, rows_per_day=40)
    result = tasks.train(ws)
    assert result.registered and result.version == "1"

    # lineage: the training run, the logged model (MLflow 3) and the workspace it was tracked in
    [model_id] = dbx.logged_models
    assert result.model_uri == f"models:/{model_id}"
    [(_, _, created)] = [r for r in dbx.requests if r[1] == f"{UC}/model-versions/create"]
    assert (created["name"], created["source"]) == (MODEL, result.model_uri)
    assert (created.get("run_id"), created.get("model_id")) == (result.run_id, model_id)
    assert created["run_tracking_server_id"] == dbx.workspace_id
    tags = {t["key"]: t["value"] for t in created["tags"]}
    assert tags["driftgate.run_id"] == result.run_id and tags["driftgate.trained_before"]
    assert tags["driftgate.data_versions"] == f"{tw.TRAINING}@v0,{tw.FEATURES}@v0"
    info = ws.registry.get_version(MODEL, result.version)
    assert (info.run_id, info.model_id, info.source) == (result.run_id, model_id, result.model_uri)
    assert info.aliases == ("challenger",) and dbx.aliases[(MODEL, "challenger")] == "1"
    linked = {t["key"]: t["value"] for t in dbx.logged_models[model_id]["info"]["tags"]}
    assert yaml.safe_load(linked["mlflow.modelVersions"]) == [{"name": MODEL, "version": "1"}]

    # created PENDING_REGISTRATION, files uploaded, then finalized READY (once)
    paths = _paths(dbx)
    assert paths.count(f"{UC}/model-versions/finalize") == 1
    assert paths.index(f"{UC}/model-versions/create") < paths.index(f"{UC}/model-versions/finalize")
    assert dbx.versions[(MODEL, "1")]["status"] == "READY"
    files = stored(MODEL, "1")
    mlmodel = yaml.safe_load(files["MLmodel"])
    assert mlmodel["model_id"] == model_id and mlmodel["run_id"] == result.run_id
    pickled = mlmodel["flavors"]["sklearn"]["pickled_model"]
    logged = f"/WorkspaceInternal/Mlflow/Artifacts/{_experiment_id(dbx)}/LoggedModels/{model_id}/artifacts"
    assert files[pickled] == dbx.files[posixpath.join(logged, pickled)]  # the trained model's own bytes
    # the storage the workspace named, and no other: presigned URLs, the Files API, or the S3 bucket
    root = "/Models/main/driftgate/churn_model/1/"
    puts = {p.split(root)[0] for m, p, _ in dbx.requests if m == "PUT" and root in p}
    assert puts == {"default_storage": {"/presigned"}, "files_api": {"/api/2.0/fs/files"}, "s3": set()}[dbx.storage]
    writes = [c for c in dbx.credentials if c["operation"] == "MODEL_VERSION_OPERATION_READ_WRITE"]
    assert writes == ([] if dbx.storage == "files_api" else [{"name": MODEL, "version": "1",
                                                             "operation": "MODEL_VERSION_OPERATION_READ_WRITE"}])

    # and the challenger loads back from Unity Catalog by its alias, scoring probabilities
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@challenger")
    proba = model.predict(model_input(tw.events(days=1, rows_per_day=10, seed=5), tw.NUMERIC + tw.CATEGORICAL,
                                      tw.CATEGORICAL))
    proba = np.asarray(proba)
    assert proba.shape == (10, 2) and ((proba > 0) & (proba < 1)).all()
    if dbx.storage != "files_api":  # read with read-only credentials
        assert dbx.credentials[-1]["operation"] == "MODEL_VERSION_OPERATION_READ"


def test_a_run_artifact_model_is_registered_with_its_run(tws, dbx):
    """A ``runs:/<run>/model`` source (what the Feature Engineering source falls back to when
    ``fe.log_model`` returns no URI) carries no logged-model id: the run is the only lineage, and
    MLflow cannot infer it, so driftgate must pass it on."""
    from driftgate import tasks

    ws = on_databricks(tws, model_name=MODEL)
    tw.world(ws, days=30, rows_per_day=40)
    run_id = tasks.train(ws).run_id
    info = ws.registry.register(f"runs:/{run_id}/model", MODEL, tags={"driftgate.run_id": run_id})
    created = [a for _, p, a in dbx.requests if p == f"{UC}/model-versions/create"][-1]
    assert (created["source"], created.get("run_id"), created.get("model_id")) == (f"runs:/{run_id}/model", run_id, None)
    assert (info.version, info.run_id, info.model_id) == ("2", run_id, None)
    assert yaml.safe_load(dbx.version_files(MODEL, "2")["MLmodel"])["run_id"] == run_id


def test_a_failed_upload_leaves_no_challenger(tws, dbx, monkeypatch):
    """Storage refusing the upload: the version is never finalized (it stays PENDING_REGISTRATION,
    as UC keeps it), the registration fails with the model named, the training run ends FAILED and
    no alias moves."""
    from werkzeug import Response

    from driftgate import tasks
    from driftgate.core.errors import RegistryError

    monkeypatch.setattr(dbx, "presigned", lambda request, path: Response("AccessDenied", 403))
    ws = on_databricks(tws, model_name=MODEL)
    tw.world(ws, days=30, rows_per_day=40)
    with pytest.raises(RegistryError, match=MODEL):
        tasks.train(ws)
    assert dbx.versions[(MODEL, "1")]["status"] == "PENDING_REGISTRATION"
    assert f"{UC}/model-versions/finalize" not in _paths(dbx)
    assert dbx.aliases == {} and dbx.version_files(MODEL, "1") == {}
    [run] = dbx.runs.values()
    assert run["info"]["status"] == "FAILED"
