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
* Unity Catalog models through MLflow's ``databricks-uc`` store: the paths the installed MLflow
  calls (``mlflow.store._unity_catalog.registry.rest_store._METHOD_TO_INFO``, service
  ``UcModelRegistryService`` in ``mlflow/protos/databricks_uc_registry_service.proto``):
  ``/api/2.0/mlflow/unity-catalog/registered-models/{get,create}``,
  ``model-versions/{get,set-tag,search}``, ``registered-models/alias`` (GET/POST/DELETE).
  Request and response fields from ``databricks_uc_registry_messages.proto`` (``registered_model``,
  ``model_version: {name, version, source, run_id, status, aliases: [{alias, version}], tags}``);
  the public UC equivalent is documented at https://docs.databricks.com/api/workspace/registeredmodels/setalias
  and https://docs.databricks.com/api/workspace/modelversions/getbyalias .
  Creating a model version (``model-versions/create`` → ``generate-temporary-credentials`` → an
  upload to cloud storage → ``finalize``) is **not** served: its upload goes to the cloud storage
  the credentials name, which cannot be faked honestly here.
* Files API (run artifacts, MLflow's ``DatabricksRunArtifactRepository`` through the SDK):
  ``PUT /api/2.0/fs/files{path}?overwrite=true`` (body: the bytes) → 204, ``GET`` → the bytes.
  https://docs.databricks.com/api/workspace/files/upload
* Jobs 2.2: ``POST jobs/run-now`` ``{job_id, job_parameters, idempotency_token, queue}`` →
  ``{run_id, number_in_job}``; ``POST jobs/runs/submit`` → ``{run_id}``; ``GET jobs/runs/get`` →
  ``{run_id, state: {life_cycle_state, result_state}}``; the same idempotency token gives the same run.
  https://docs.databricks.com/api/workspace/jobs/runnow , https://docs.databricks.com/api/workspace/jobs/submit

Every request is recorded (``requests``: method, path, JSON body or query) so tests can assert order.
"""
from __future__ import annotations

import json
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

UC = "/api/2.0/mlflow/unity-catalog"
FILES = "/api/2.0/fs/files/"


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
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ setup helpers
    def add_version(self, name: str, version: str, *, run_id: str = "", source: str = "") -> None:
        self.models.setdefault(name, {"name": name})
        self.versions[(name, version)] = {"name": name, "version": version, "run_id": run_id,
                                          "source": source or f"models:/m-{version}", "status": "READY", "tags": []}

    # ------------------------------------------------------------------ dispatch
    def __call__(self, request: Request) -> Response:
        if request.path.startswith(FILES):
            return self.file(request)
        body = request.get_json(silent=True) if request.method in ("POST", "PATCH", "DELETE") else None
        args = body if body else dict(request.args)
        self.requests.append((request.method, request.path, args))
        route = self.routes().get((request.method, request.path))
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

    def file(self, request: Request) -> Response:
        """Files API: ``PUT /api/2.0/fs/files{path}?overwrite=`` with the bytes as body → 204;
        ``GET`` → the bytes (https://docs.databricks.com/api/workspace/files/upload). MLflow's run
        artifacts go here (``DatabricksRunArtifactRepository``: /WorkspaceInternal/Mlflow/Artifacts/...)."""
        path = "/" + request.path[len(FILES):]
        self.requests.append((request.method, request.path, dict(request.args)))
        if request.method == "PUT":
            self.files[path] = request.get_data()
            return Response(status=204)
        if request.method == "GET" and path in self.files:
            return Response(self.files[path], 200, content_type="application/octet-stream")
        return _error(404, "NOT_FOUND", f"no file {path}")

    # ------------------------------------------------------------------ Unity Catalog models
    def _version_body(self, name: str, version: str) -> dict:
        mv = dict(self.versions[(name, version)])
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


def serve(httpserver, fake: FakeWorkspace) -> None:
    """Route every request of ``httpserver`` (pytest-httpserver) to ``fake``."""
    import re

    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake)
