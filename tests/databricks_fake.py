"""An offline Databricks workspace: a real local HTTP server (werkzeug, via pytest-httpserver)
speaking the documented REST shapes of the endpoints driftgate's tasks touch. The real clients
talk to it: ``databricks-sdk``'s ``WorkspaceClient`` and MLflow's ``databricks`` tracking and
``databricks-uc`` registry stores (``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` in the environment).

Shapes transcribed from the documentation, not from driftgate's adapters:

* Workspace: ``POST /api/2.0/workspace/mkdirs`` ``{path}`` → ``{}`` (creates parents, succeeds on an
  existing directory); ``GET /api/2.0/workspace/get-status?path=`` → ``{object_type, path, object_id}``
  or 404 ``RESOURCE_DOES_NOT_EXIST``.
  https://docs.databricks.com/api/workspace-objects/v1/mkdirs.md ,
  https://docs.databricks.com/api/workspace/workspace/getstatus
* MLflow experiments and runs (Databricks-hosted MLflow, API 2.0):
  ``GET experiments/get-by-name?experiment_name=`` → ``{experiment: {experiment_id, name,
  artifact_location, lifecycle_stage, tags: [{key, value}]}}`` or 404 ``RESOURCE_DOES_NOT_EXIST``;
  ``GET experiments/get?experiment_id=`` → ``{experiment}``; ``POST experiments/create`` ``{name, artifact_location, tags}`` → ``{experiment_id}`` (400
  ``RESOURCE_DOES_NOT_EXIST`` here when the parent folder is missing, as the workspace refuses an
  experiment path whose parent does not exist); ``experiments/set-experiment-tag``;
  ``runs/create`` → ``{run: {info, data}}``; ``runs/update`` → ``{run_info}``; ``runs/log-batch``,
  ``runs/set-tag`` → ``{}``; ``runs/get`` → ``{run}``.
  https://docs.databricks.com/api/experiments/v1/create-experiment.md ,
  https://docs.databricks.com/api/experiments/v1/get-experiment-by-name.md ,
  https://mlflow.org/docs/latest/rest-api.html
* MLflow 3 logged models (what ``mlflow.<flavor>.log_model`` makes on Databricks MLflow):
  ``POST logged-models`` ``{experiment_id, name, source_run_id, params, tags}`` → ``{model: {info:
  {model_id, experiment_id, name, artifact_uri, status: LOGGED_MODEL_PENDING, source_run_id, tags},
  data}}``; ``GET|PATCH logged-models/{model_id}`` (PATCH ``{status: LOGGED_MODEL_READY}`` finalizes);
  ``PATCH logged-models/{model_id}/tags``; ``POST logged-models/search`` (``key = 'value'`` filters);
  ``runs/outputs`` ``{run_id, models: [{model_id, step}]}``; ``runs/log-inputs``; ``metrics/get-history``.
  The artifacts go through the Files API under ``/WorkspaceInternal/Mlflow/Artifacts/<exp>/LoggedModels/<id>``
  (MLflow's ``DatabricksLoggedModelArtifactRepository``).
  https://docs.databricks.com/api/experiments/v1/logged-model.md ,
  https://docs.databricks.com/api/experiments/v1/get-logged-model.md ,
  https://docs.databricks.com/api/experiments/v1/log-outputs.md
* Unity Catalog models through MLflow's ``databricks-uc`` store: the paths the installed MLflow
  calls (``mlflow.store._unity_catalog.registry.rest_store._METHOD_TO_INFO``, service
  ``UcModelRegistryService`` in ``mlflow/protos/databricks_uc_registry_service.proto``):
  ``/api/2.0/mlflow/unity-catalog/registered-models/{get,create}``,
  ``model-versions/{get,set-tag,search}``, ``registered-models/alias`` (GET/POST/DELETE).
  Request and response fields from ``databricks_uc_registry_messages.proto`` (``registered_model``,
  ``model_version: {name, version, source, run_id, model_id, run_tracking_server_id, status,
  storage_location, aliases: [{alias, version}], tags}``); the public UC equivalent is documented at
  https://docs.databricks.com/api/workspace/registeredmodels/setalias
  and https://docs.databricks.com/api/workspace/modelversions/getbyalias .
  Every response carries the ``x-databricks-org-id`` header (the workspace id), which the store reads
  from ``runs/get`` as the version's ``run_tracking_server_id``.
* Creating a UC model version, as ``RestStore._create_and_finalize_model_version`` and
  ``_get_artifact_repo`` (MLflow 3.0.1 to 3.17) do it, with the proto messages
  ``CreateModelVersionRequest`` (``{name, source, run_id, description, tags, run_tracking_server_id,
  feature_deps, model_version_dependencies, model_id}`` → ``{model_version}``, status
  ``PENDING_REGISTRATION``), ``IsDatabricksSdkModelsArtifactRepositoryEnabledRequest``
  (``GET registered-models:is-databricks-sdk-models-artifact-repository-enabled`` →
  ``{is_databricks_sdk_models_artifact_repository_enabled}``),
  ``GenerateTemporaryModelVersionCredentialsRequest`` (``{name, version, operation:
  MODEL_VERSION_OPERATION_READ_WRITE|READ}`` → ``{credentials: {storage_mode:
  DEFAULT_STORAGE|CUSTOMER_HOSTED, expiration_time, aws_temp_credentials: {access_key_id,
  secret_access_key, session_token}}}``), ``FinalizeModelVersionRequest`` (``{name, version}`` →
  ``{model_version}``, ``READY``; a version not pending is refused), ``GetModelVersionDownloadUriRequest``
  (``{artifact_uri}``) and ``EmitModelVersionLineageRequest``. (The public Unity Catalog API has the
  same credential call as ``POST /api/2.1/unity-catalog/temporary-model-version-credentials``,
  ``GenerateTemporaryModelVersionCredential`` in the unitycatalog project's API docs; the
  ``/api/2.0/mlflow/unity-catalog`` paths MLflow uses are not in Databricks' public reference.)
  The upload goes where the workspace's answers send MLflow; :attr:`FakeWorkspace.storage` picks one
  of the three (:data:`STORAGE_MODES`):

  - ``default_storage``: ``storage_mode: DEFAULT_STORAGE`` → ``PresignedUrlArtifactRepository``:
    ``POST /api/2.0/fs/create-upload-url`` / ``create-download-url`` ``{path: /Models/<c>/<s>/<m>/<v>/<file>}``
    → ``{url, headers: [{name, value}]}`` (``CreateUploadUrlRequest`` in MLflow's
    ``databricks_filesystem_service.proto``; not in the public reference), then a plain ``PUT``/``GET``
    of the bytes on that URL. The fake plays the storage behind the URL: it accepts a request only
    with the URL's signature and the returned header, and refuses one carrying the workspace token.
    Listing: ``GET /api/2.0/fs/directories{path}``.
  - ``files_api``: the workspace enables the SDK repository (what egress-restricted workspaces do) →
    ``DatabricksSDKModelsArtifactRepository``: ``PUT``/``GET /api/2.0/fs/files/Models/...`` and the
    directories endpoints (https://docs.databricks.com/api/workspace/files/listdirectorycontents ,
    .../getdirectorymetadata); the fake then vends no scoped credentials (403).
  - ``s3``: ``CUSTOMER_HOSTED`` with ``aws_temp_credentials`` and ``storage_location``
    ``s3://<bucket>/models/<uuid>/versions/<uuid>`` → ``OptimizedS3ArtifactRepository`` (boto3,
    presigned S3 PUTs). The bucket is a real S3 implementation the test starts (moto's server, found
    by ``MLFLOW_S3_ENDPOINT_URL``); moto does not check the vended credentials.

  Not served: Azure (``azure_user_delegation_sas``), GCS (``gcp_oauth_token``) and R2 credentials.
* Files API (run and logged-model artifacts, MLflow's ``DatabricksRunArtifactRepository`` and
  ``DatabricksLoggedModelArtifactRepository`` through the SDK): ``PUT /api/2.0/fs/files{path}?overwrite=true``
  (body: the bytes) → 204, ``GET`` → the bytes, ``HEAD`` → metadata; ``GET|HEAD /api/2.0/fs/directories{path}``.
  (The SDK first asks ``create-download-url`` for these paths; the fake refuses, 403, and the SDK
  falls back to the direct download.) https://docs.databricks.com/api/workspace/files/upload
  MLflow 3.0.1 logs run artifacts through ``POST /api/2.0/mlflow/artifacts/credentials-for-write``
  (``GetCredentialsForWrite``, MLflow's ``databricks_artifacts.proto``) and a presigned ``PUT`` instead;
  the fake signs those on its storage (as for default storage above) and keeps the bytes at the same paths.
* Jobs 2.2: ``POST jobs/run-now`` ``{job_id, job_parameters, idempotency_token, queue}`` →
  ``{run_id, number_in_job}``; ``POST jobs/runs/submit`` → ``{run_id}``; ``GET jobs/runs/get`` →
  ``{run_id, state: {life_cycle_state, result_state}}``; the same idempotency token gives the same run.
  https://docs.databricks.com/api/workspace/jobs/runnow , https://docs.databricks.com/api/workspace/jobs/submit

Every request is recorded (``requests``: method, path, JSON body or query) so tests can assert order.
"""
from __future__ import annotations

import json
import posixpath
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug import Request, Response

UC = "/api/2.0/mlflow/unity-catalog"
FILES = "/api/2.0/fs/files/"
DIRECTORIES = "/api/2.0/fs/directories/"
LOGGED_MODELS = "/api/2.0/mlflow/logged-models"
PRESIGNED = "/presigned/"
"""The fake's stand-in for cloud storage behind presigned URLs (another origin in a real workspace)."""
SIGNATURE_HEADER = "x-fake-storage-signature"
"""The header a presigned URL is only valid with (as S3 SSE or Azure ``x-ms-blob-type`` headers are):
create-upload-url / create-download-url return it, and the client must send it back."""

STORAGE_MODES = ("default_storage", "files_api", "s3")
"""How the fake stores a model version's files. ``default_storage``: ``storage_mode: DEFAULT_STORAGE``
and presigned URLs (MLflow's ``PresignedUrlArtifactRepository``); ``files_api``: the workspace says
the Databricks-SDK repository is enabled (``DatabricksSDKModelsArtifactRepository``, Files API under
``/Models/...``); ``s3``: ``CUSTOMER_HOSTED`` with ``aws_temp_credentials`` on an S3 bucket (MLflow's
``OptimizedS3ArtifactRepository`` through boto3; the test serves the bucket with moto)."""


def _error(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error_code": code, "message": message}), status, content_type="application/json")


def _ok(body: dict | None = None) -> Response:
    return Response(json.dumps(body or {}), 200, content_type="application/json")


@dataclass
class FakeWorkspace:
    folders: set[str] = field(default_factory=lambda: {"/", "/Shared", "/Users"})
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    versions: dict[tuple[str, str], dict] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    job_runs: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    logged_models: dict[str, dict] = field(default_factory=dict)
    workspace_id: str = "6051921418418893"
    storage: str = "default_storage"
    """One of :data:`STORAGE_MODES`: where ``model-versions/create`` puts a version's files."""
    s3_bucket: str = "uc-metastore-bucket"
    credentials: list[dict] = field(default_factory=list)
    """Every ``generate-temporary-credentials`` request (name, version, operation)."""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    _signatures: dict[str, str] = field(default_factory=dict)
    _base: str = ""

    # ------------------------------------------------------------------ setup helpers
    def add_version(self, name: str, version: str, *, run_id: str = "", source: str = "") -> None:
        self.models.setdefault(name, {"name": name})
        self.versions[(name, version)] = {"name": name, "version": version, "run_id": run_id,
                                          "source": source or f"models:/m-{version}", "status": "READY", "tags": []}

    def version_files(self, name: str, version: str) -> dict[str, bytes]:
        """The files a model version's upload left in the workspace's storage (``default_storage`` and
        ``files_api`` modes), by path relative to the version's root ``/Models/<catalog>/<schema>/<model>/<v>``."""
        root = f"/Models/{name.replace('.', '/')}/{version}/"
        return {p[len(root):]: b for p, b in self.files.items() if p.startswith(root)}

    # ------------------------------------------------------------------ dispatch
    def __call__(self, request: Request) -> Response:
        response = self._dispatch(request)
        # Databricks answers every API call with the workspace id; MLflow's databricks-uc store reads it
        # from the runs/get response as the version's run_tracking_server_id (lineage/constants.py).
        # (Not the storage behind presigned URLs: that is another service.)
        if not request.path.startswith(PRESIGNED):
            response.headers["x-databricks-org-id"] = self.workspace_id
        return response

    def _dispatch(self, request: Request) -> Response:
        self._base = request.host_url
        for prefix, handler in ((FILES, self.file), (DIRECTORIES, self.directory), (PRESIGNED, self.presigned)):
            if request.path.startswith(prefix):
                self.requests.append((request.method, request.path, dict(request.args)))
                return handler(request, "/" + request.path[len(prefix):])
        body = request.get_json(silent=True) if request.method in ("POST", "PATCH", "DELETE") else None
        args = body if body else dict(request.args)
        self.requests.append((request.method, request.path, args))
        route = self.routes().get((request.method, request.path))
        if route is None and request.path.startswith(LOGGED_MODELS + "/"):
            return self.logged_model(request.method, request.path[len(LOGGED_MODELS) + 1:], args or {})
        if route is None:
            return _error(404, "ENDPOINT_NOT_FOUND", f"no fake for {request.method} {request.path}")
        return route(args or {})

    def routes(self):
        return {
            ("POST", "/api/2.0/workspace/mkdirs"): self.mkdirs,
            ("GET", "/api/2.0/workspace/get-status"): self.get_status,
            ("GET", "/api/2.0/mlflow/experiments/get-by-name"): self.experiment_by_name,
            ("POST", "/api/2.0/mlflow/experiments/create"): self.create_experiment,
            ("GET", "/api/2.0/mlflow/experiments/get"): self.get_experiment,
            ("POST", "/api/2.0/mlflow/experiments/set-experiment-tag"): self.set_experiment_tag,
            ("POST", "/api/2.0/mlflow/runs/create"): self.create_run,
            ("POST", "/api/2.0/mlflow/runs/update"): self.update_run,
            ("POST", "/api/2.0/mlflow/runs/log-batch"): self.log_batch,
            ("POST", "/api/2.0/mlflow/runs/set-tag"): self.set_run_tag,
            ("GET", "/api/2.0/mlflow/runs/get"): self.get_run,
            ("GET", "/api/2.0/mlflow/metrics/get-history"): self.metric_history,
            ("POST", "/api/2.0/mlflow/runs/log-inputs"): self.log_inputs,
            ("POST", "/api/2.0/mlflow/runs/outputs"): self.log_outputs,
            ("POST", LOGGED_MODELS): self.create_logged_model,
            ("POST", f"{LOGGED_MODELS}/search"): self.search_logged_models,
            ("POST", f"{UC}/model-versions/create"): self.create_version,
            ("POST", f"{UC}/model-versions/generate-temporary-credentials"): self.temporary_credentials,
            ("POST", f"{UC}/model-versions/finalize"): self.finalize_version,
            ("GET", f"{UC}/model-versions/get-download-uri"): self.download_uri,
            ("POST", f"{UC}/model-versions/emit-lineage"): self.emit_lineage,
            ("GET", f"{UC}/registered-models:is-databricks-sdk-models-artifact-repository-enabled"):
                self.sdk_repository_enabled,
            ("POST", "/api/2.0/mlflow/artifacts/credentials-for-write"): self.run_artifact_credentials,
            ("POST", "/api/2.0/mlflow/artifacts/credentials-for-read"): self.run_artifact_credentials,
            ("POST", "/api/2.0/fs/create-upload-url"): self.create_upload_url,
            ("POST", "/api/2.0/fs/create-download-url"): self.create_download_url,
            ("GET", f"{UC}/registered-models/get"): self.get_model,
            ("POST", f"{UC}/registered-models/create"): self.create_model,
            ("GET", f"{UC}/model-versions/get"): self.get_version,
            ("POST", f"{UC}/model-versions/set-tag"): self.set_version_tag,
            ("GET", f"{UC}/registered-models/alias"): self.get_by_alias,
            ("POST", f"{UC}/registered-models/alias"): self.set_alias,
            ("DELETE", f"{UC}/registered-models/alias"): self.delete_alias,
            ("POST", "/api/2.2/jobs/run-now"): self.run_now,
            ("POST", "/api/2.2/jobs/runs/submit"): self.submit,
            ("GET", "/api/2.2/jobs/runs/get"): self.get_job_run,
        }

    # ------------------------------------------------------------------ workspace
    def mkdirs(self, a):
        path = posixpath.normpath(a["path"])
        while path not in self.folders:
            self.folders.add(path)
            path = posixpath.dirname(path)
        return _ok()

    def get_status(self, a):
        if a["path"] not in self.folders:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({a['path']}) doesn't exist.")
        return _ok({"object_type": "DIRECTORY", "path": a["path"], "object_id": abs(hash(a["path"])) % 10**9})

    # ------------------------------------------------------------------ experiments and runs
    def experiment_by_name(self, a):
        exp = self.experiments.get(a["experiment_name"])
        if exp is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Node named '{a['experiment_name']}' does not exist.")
        return _ok({"experiment": exp})

    def get_experiment(self, a):
        for exp in self.experiments.values():
            if exp["experiment_id"] == a["experiment_id"]:
                return _ok({"experiment": exp})
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"No experiment with id {a['experiment_id']}")

    def create_experiment(self, a):
        name = a["name"]
        if name in self.experiments:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Node named '{name}' already exists")
        if posixpath.dirname(name) not in self.folders:
            return _error(400, "RESOURCE_DOES_NOT_EXIST", f"Parent directory {posixpath.dirname(name)} does not exist.")
        exp_id = str(1000 + len(self.experiments))
        self.experiments[name] = {"experiment_id": exp_id, "name": name, "lifecycle_stage": "active",
                                  "artifact_location": f"dbfs:/databricks/mlflow-tracking/{exp_id}",
                                  "tags": list(a.get("tags") or [])}
        return _ok({"experiment_id": exp_id})

    def set_experiment_tag(self, a):
        for exp in self.experiments.values():
            if exp["experiment_id"] == a["experiment_id"]:
                exp["tags"] = [t for t in exp["tags"] if t["key"] != a["key"]] + [{"key": a["key"], "value": a["value"]}]
        return _ok()

    def create_run(self, a):
        run_id = f"run{len(self.runs) + 1:04d}"
        info = {"run_id": run_id, "run_uuid": run_id, "experiment_id": a["experiment_id"],
                "run_name": a.get("run_name", ""), "status": "RUNNING", "start_time": a.get("start_time", 0),
                "lifecycle_stage": "active",
                "artifact_uri": f"dbfs:/databricks/mlflow-tracking/{a['experiment_id']}/{run_id}/artifacts"}
        self.runs[run_id] = {"info": info, "data": {"tags": list(a.get("tags") or []), "metrics": [], "params": []}}
        return _ok({"run": self.runs[run_id]})

    def update_run(self, a):
        info = self.runs[a["run_id"]]["info"]
        info.update({k: a[k] for k in ("status", "end_time", "run_name") if k in a})
        return _ok({"run_info": info})

    def log_batch(self, a):
        data = self.runs[a["run_id"]]["data"]
        for kind in ("metrics", "params", "tags"):
            data[kind].extend(a.get(kind) or [])
        return _ok()

    def set_run_tag(self, a):
        self.runs[a["run_id"]]["data"]["tags"].append({"key": a["key"], "value": a["value"]})
        return _ok()

    def get_run(self, a):
        return _ok({"run": self.runs[a["run_id"]]})

    def metric_history(self, a):
        """``metrics/get-history?run_id=&metric_key=`` → ``{metrics: [{key, value, timestamp, step}]}``."""
        metrics = [m for m in self.runs[a["run_id"]]["data"]["metrics"] if m["key"] == a["metric_key"]]
        return _ok({"metrics": [{k: m[k] for k in ("key", "value", "timestamp", "step") if k in m} for m in metrics]})

    def log_inputs(self, a):
        self.runs[a["run_id"]].setdefault("inputs", {"dataset_inputs": []})["dataset_inputs"].extend(
            a.get("datasets") or [])
        return _ok()

    def log_outputs(self, a):
        self.runs[a["run_id"]].setdefault("outputs", {"model_outputs": []})["model_outputs"].extend(
            a.get("models") or [])
        return _ok()

    # ------------------------------------------------------------------ logged models (MLflow 3)
    def create_logged_model(self, a):
        model_id = f"m-{uuid.uuid4().hex}"
        exp_id = a["experiment_id"]
        now = int(time.time() * 1000)
        self.logged_models[model_id] = {
            "info": {"model_id": model_id, "experiment_id": exp_id, "name": a.get("name", ""),
                     "source_run_id": a.get("source_run_id", ""), "model_type": a.get("model_type", ""),
                     "artifact_uri": f"dbfs:/databricks/mlflow-tracking/{exp_id}/logged_models/{model_id}/artifacts",
                     "status": "LOGGED_MODEL_PENDING", "creation_timestamp_ms": now,
                     "last_updated_timestamp_ms": now, "tags": list(a.get("tags") or [])},
            "data": {"params": list(a.get("params") or []), "metrics": []}}
        return _ok({"model": self.logged_models[model_id]})

    def search_logged_models(self, a):
        """``logged-models/search`` ``{experiment_ids, filter, max_results, order_by, page_token}`` →
        ``{models, next_page_token}``. Filters of ``key = 'value'`` clauses joined by AND on the info's
        string fields (what MLflow's runs:/ resolution sends: ``name = '<artifact path>'``); others are refused."""
        clauses = [c.strip() for c in re.split(r"\s+AND\s+", a.get("filter") or "", flags=re.I) if c.strip()]
        wanted = {}
        for clause in clauses:
            match = re.fullmatch(r"(\w+)\s*=\s*'([^']*)'", clause)
            if match is None:
                return _error(400, "INVALID_PARAMETER_VALUE", f"unsupported filter clause: {clause}")
            wanted[match[1]] = match[2]
        models = [m for m in self.logged_models.values() if m["info"]["experiment_id"] in a.get("experiment_ids", [])
                  and all(m["info"].get(k) == v for k, v in wanted.items())]
        return _ok({"models": models})

    def logged_model(self, method: str, rest: str, a) -> Response:
        """``GET|PATCH logged-models/{model_id}``, ``PATCH .../{model_id}/tags``, ``POST .../{model_id}/params``."""
        model_id, _, sub = rest.partition("/")
        model = self.logged_models.get(model_id)
        if model is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.")
        info = model["info"]
        if (method, sub) == ("PATCH", ""):
            info["status"] = a["status"]
        elif (method, sub) == ("PATCH", "tags"):
            keys = {t["key"] for t in a.get("tags") or []}
            info["tags"] = [t for t in info["tags"] if t["key"] not in keys] + list(a.get("tags") or [])
        elif (method, sub) == ("POST", "params"):
            model["data"]["params"].extend(a.get("params") or [])
            return _ok()
        elif (method, sub) != ("GET", ""):
            return _error(404, "ENDPOINT_NOT_FOUND", f"no fake for {method} {LOGGED_MODELS}/{rest}")
        return _ok({"model": model})

    # ------------------------------------------------------------------ Files API and storage
    def file(self, request: Request, path: str) -> Response:
        """Files API: ``PUT /api/2.0/fs/files{path}?overwrite=`` with the bytes as body → 204;
        ``GET`` → the bytes, ``HEAD`` → the metadata headers (https://docs.databricks.com/api/workspace/files/upload,
        .../files/download, .../files/getmetadata). MLflow's run and logged-model artifacts go here
        (``/WorkspaceInternal/Mlflow/Artifacts/...``), and UC model versions in ``files_api`` mode (``/Models/...``)."""
        if request.method == "PUT":
            if path in self.files and request.args.get("overwrite", "false").lower() != "true":
                return _error(409, "ALREADY_EXISTS", f"file {path} exists")
            self.files[path] = request.get_data()
            return Response(status=204)
        if request.method in ("GET", "HEAD") and path in self.files:
            body = self.files[path]
            return Response(body if request.method == "GET" else b"", 200, content_type="application/octet-stream",
                            headers={"content-length": str(len(body)),
                                     "last-modified": "Mon, 30 Nov 2026 12:00:00 GMT"})
        return _error(404, "NOT_FOUND", f"no file {path}")

    def directory(self, request: Request, path: str) -> Response:
        """Files API directories: ``GET /api/2.0/fs/directories{path}`` → ``{contents: [{path, is_directory,
        file_size, last_modified, name}], next_page_token}``; ``HEAD`` → 200, or 404 when nothing is there
        (https://docs.databricks.com/api/workspace/files/listdirectorycontents , .../getdirectorymetadata).
        Directories exist implicitly, as the parents of files."""
        root = path.rstrip("/") + "/"
        below = [p for p in self.files if p.startswith(root)]
        if not below:
            return _error(404, "NOT_FOUND", f"The directory {path} does not exist")
        if request.method == "HEAD":
            return Response(status=200)
        entries = {}
        for p in sorted(below):
            head, _, tail = p[len(root):].partition("/")
            entries[head] = ({"path": root + head, "is_directory": True, "name": head} if tail else
                             {"path": p, "is_directory": False, "name": head, "file_size": len(self.files[p]),
                              "last_modified": 1796040000000})
        return _ok({"contents": list(entries.values())})

    def _presigned(self, a) -> Response:
        """``create-upload-url`` / ``create-download-url`` ``{path}`` → ``{url, headers: [{name, value}]}``
        (MLflow's ``databricks_filesystem_service.proto``, ``FilesystemService``): a short-lived URL on
        the storage service and the headers that must accompany it. Only for ``/Models/...`` of a
        version stored in Databricks default storage."""
        path = a["path"]
        parts = path.strip("/").split("/")
        key = (".".join(parts[1:4]), parts[4]) if len(parts) > 5 and parts[0] == "Models" else None
        if key not in self.versions or self.versions[key].get("storage_mode") != "DEFAULT_STORAGE":
            return _error(403, "PERMISSION_DENIED", f"no presigned URL for {path}")
        url, headers = self._sign(path)
        return _ok({"url": url, "headers": headers})

    def _sign(self, path: str) -> tuple[str, list[dict]]:
        """A presigned URL on the fake's storage for ``path``, and the headers it is valid with."""
        token = uuid.uuid4().hex
        self._signatures[token] = path
        return f"{self._base}{PRESIGNED.strip('/')}{path}?sig={token}", [{"name": SIGNATURE_HEADER, "value": token}]

    def run_artifact_credentials(self, a):
        """``artifacts/credentials-for-write`` / ``credentials-for-read`` ``{run_id, path: [...], page_token}``
        → ``{credential_infos: [{run_id, path, signed_uri, headers, type: AWS_PRESIGNED_URL}]}``
        (``GetCredentialsForWrite`` in MLflow's ``databricks_artifacts.proto``: the run-artifact path
        of MLflow 3.0.1's ``DatabricksArtifactRepository``). The bytes land where the Files API path
        of later MLflow versions puts them, ``/WorkspaceInternal/Mlflow/Artifacts/<exp>/Runs/<run>/artifacts``."""
        run = self.runs.get(a["run_id"])
        if run is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{a['run_id']}' not found.")
        root = f"/WorkspaceInternal/Mlflow/Artifacts/{run['info']['experiment_id']}/Runs/{a['run_id']}/artifacts"
        infos = []
        for rel in a.get("path") or []:
            url, headers = self._sign(posixpath.join(root, rel))
            infos.append({"run_id": a["run_id"], "path": rel, "signed_uri": url, "headers": headers,
                          "type": "AWS_PRESIGNED_URL"})
        return _ok({"credential_infos": infos})

    create_upload_url = create_download_url = _presigned

    def presigned(self, request: Request, path: str) -> Response:
        """The storage behind a presigned URL: ``PUT`` stores the body, ``GET`` returns it, only with the
        URL's signature in the query and in its header, and without the workspace token (cloud
        storage never sees it)."""
        token = request.args.get("sig", "")
        if self._signatures.get(token) != path or request.headers.get(SIGNATURE_HEADER) != token:
            return Response("SignatureDoesNotMatch", 403)
        if "Authorization" in request.headers:
            return Response("the workspace token was sent to cloud storage", 400)
        if request.method == "PUT":
            self.files[path] = request.get_data()
            return Response(status=200)
        if request.method == "GET" and path in self.files:
            return Response(self.files[path], 200, content_type="application/octet-stream")
        return Response("NoSuchKey", 404)

    # ------------------------------------------------------------------ Unity Catalog models
    def _version_body(self, name: str, version: str) -> dict:
        mv = {k: v for k, v in self.versions[(name, version)].items() if k != "storage_mode"}
        mv["aliases"] = [{"alias": al, "version": v} for (n, al), v in self.aliases.items() if n == name and v == version]
        return mv

    def get_model(self, a):
        if a["name"] not in self.models:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model '{a['name']}' does not exist.")
        return _ok({"registered_model": self.models[a["name"]]})

    def create_model(self, a):
        self.models.setdefault(a["name"], {"name": a["name"]})
        return _ok({"registered_model": self.models[a["name"]]})

    def get_version(self, a):
        if (a["name"], str(a["version"])) not in self.versions:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Model version {a['name']}/{a['version']} does not exist.")
        return _ok({"model_version": self._version_body(a["name"], str(a["version"]))})

    def create_version(self, a):
        """``model-versions/create`` ``{name, source, run_id, description, tags, run_tracking_server_id,
        feature_deps, model_version_dependencies, model_id}`` → ``{model_version}`` with status
        ``PENDING_REGISTRATION`` and the ``storage_location`` its files go to."""
        name = a["name"]
        if name not in self.models:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model '{name}' does not exist.")
        version = str(1 + sum(1 for n, _ in self.versions if n == name))
        location = {"s3": f"s3://{self.s3_bucket}/models/{uuid.uuid4()}/versions/{uuid.uuid4()}"}.get(self.storage, "")
        now = int(time.time() * 1000)
        self.versions[(name, version)] = {
            "name": name, "version": version, "source": a.get("source", ""), "run_id": a.get("run_id", ""),
            "model_id": a.get("model_id", ""), "description": a.get("description", ""),
            "run_tracking_server_id": a.get("run_tracking_server_id", ""), "feature_deps": a.get("feature_deps", ""),
            "tags": list(a.get("tags") or []), "status": "PENDING_REGISTRATION", "storage_location": location,
            "creation_timestamp": now, "last_updated_timestamp": now,
            "storage_mode": "DEFAULT_STORAGE" if self.storage == "default_storage" else "CUSTOMER_HOSTED"}
        return _ok({"model_version": self._version_body(name, version)})

    def sdk_repository_enabled(self, a):
        """``registered-models:is-databricks-sdk-models-artifact-repository-enabled`` →
        ``{is_databricks_sdk_models_artifact_repository_enabled}``: true in ``files_api`` mode."""
        return _ok({"is_databricks_sdk_models_artifact_repository_enabled": self.storage == "files_api"})

    def temporary_credentials(self, a):
        """``generate-temporary-credentials`` ``{name, version, operation}`` → ``{credentials:
        TemporaryCredentials}``: ``storage_mode`` and, for customer-hosted storage, one of the cloud
        credentials (here ``aws_temp_credentials``). In ``files_api`` mode the workspace vends none
        (an egress-restricted workspace: the client must take the Files API)."""
        key = (a["name"], str(a["version"]))
        if key not in self.versions:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Model version {key[0]}/{key[1]} does not exist.")
        self.credentials.append({"name": a["name"], "version": str(a["version"]), "operation": a.get("operation")})
        if self.storage == "files_api":
            return _error(403, "PERMISSION_DENIED", "scoped storage credentials are disabled in this workspace")
        credentials = {"storage_mode": self.versions[key]["storage_mode"],
                       "expiration_time": int(time.time() * 1000) + 3_600_000}
        if self.storage == "s3":
            credentials["aws_temp_credentials"] = {"access_key_id": "ASIAFAKEUCMODELWRITE",
                                                   "secret_access_key": "fake-secret", "session_token": "fake-session"}
        return _ok({"credentials": credentials})

    def finalize_version(self, a):
        """``model-versions/finalize`` ``{name, version}`` → ``{model_version}``: ``PENDING_REGISTRATION``
        becomes ``READY``; a version that is not pending cannot be finalized again."""
        key = (a["name"], str(a["version"]))
        if key not in self.versions:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Model version {key[0]}/{key[1]} does not exist.")
        mv = self.versions[key]
        if mv["status"] != "PENDING_REGISTRATION":
            return _error(400, "INVALID_PARAMETER_VALUE", f"Model version {key[0]}/{key[1]} is {mv['status']}.")
        mv.update(status="READY", last_updated_timestamp=int(time.time() * 1000))
        return _ok({"model_version": self._version_body(*key)})

    def emit_lineage(self, a):
        """``model-versions/emit-lineage`` ``{name, version, model_version_lineage_info, securable}`` → ``{}``
        (what a reader through the Files API reports instead of asking for credentials)."""
        return _ok()

    def download_uri(self, a):
        """``model-versions/get-download-uri`` ``{name, version}`` → ``{artifact_uri}`` (the storage location)."""
        return _ok({"artifact_uri": self.versions[(a["name"], str(a["version"]))]["storage_location"]})

    def set_version_tag(self, a):
        tags = self.versions[(a["name"], str(a["version"]))]["tags"]
        tags[:] = [t for t in tags if t["key"] != a["key"]] + [{"key": a["key"], "value": a["value"]}]
        return _ok()

    def get_by_alias(self, a):
        version = self.aliases.get((a["name"], a["alias"]))
        if version is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Alias {a['alias']} not found on {a['name']}.")
        return _ok({"model_version": self._version_body(a["name"], version)})

    def set_alias(self, a):
        if (a["name"], str(a["version"])) not in self.versions:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Model version {a['name']}/{a['version']} does not exist.")
        self.aliases[(a["name"], a["alias"])] = str(a["version"])
        return _ok()

    def delete_alias(self, a):
        self.aliases.pop((a["name"], a["alias"]), None)
        return _ok()

    # ------------------------------------------------------------------ jobs
    def _start(self, a, job_id) -> Response:
        token = a.get("idempotency_token")
        for run_id, run in self.job_runs.items():
            if token and run["idempotency_token"] == token:
                return _ok({"run_id": int(run_id), "number_in_job": int(run_id)})
        run_id = str(100 + len(self.job_runs))
        self.job_runs[run_id] = {"job_id": job_id, "idempotency_token": token, "request": a,
                                 "start_time": int(time.time() * 1000)}
        return _ok({"run_id": int(run_id), "number_in_job": int(run_id)})

    def run_now(self, a):
        return self._start(a, a["job_id"])

    def submit(self, a):
        return self._start(a, None)

    def get_job_run(self, a):
        run = self.job_runs[str(a["run_id"])]
        return _ok({"run_id": int(a["run_id"]), "job_id": run["job_id"],
                    "state": {"life_cycle_state": "RUNNING", "result_state": None}})


@pytest.fixture
def dbx(httpserver, monkeypatch) -> FakeWorkspace:
    """A fake workspace on a local HTTP server, and the environment the real clients find it by."""
    fake = FakeWorkspace()
    serve(httpserver, fake)
    for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_USE_DATABRICKS_SDK_MODEL_ARTIFACTS_REPO_FOR_UC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-offline-test")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    return fake


def on_databricks(ws, *, model_name: str, experiment: str = "/Shared/driftgate/prod/retraining"):
    """``ws`` with Databricks' MLflow: tracking ``databricks``, registry ``databricks-uc`` (the fake's)."""
    import dataclasses

    from driftgate.workspace.registry import MlflowRegistry

    project = ws.settings.project.model_copy(update={"experiment_name": experiment, "model_name": model_name})
    settings = ws.settings.model_copy(update={"project": project})
    return dataclasses.replace(ws, settings=settings, tracking_uri="databricks", registry_uri="databricks-uc",
                               registry=MlflowRegistry("databricks", "databricks-uc"), root=None)


def serve(httpserver, fake: FakeWorkspace) -> None:
    """Route every request of ``httpserver`` (pytest-httpserver) to ``fake``."""
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake)
