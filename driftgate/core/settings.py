"""Layered configuration: YAML layers merged, then validated into typed models.

Layers, later wins (Kedro's ``conf/base`` + ``conf/local`` idea, one overlay per
bundle target):

1. ``conf/base/*.yml``      committed defaults, no secrets
2. ``conf/<env>/*.yml``     committed overlay per environment: ``local`` (default) or ``databricks``
3. ``conf/user/*.yml``      git-ignored personal layer (paths, experiments; still no secrets)
4. ``overrides``            ``key.path=value`` strings from the CLI (``--set``) or job parameters

Every default is defined once, in the pydantic models. A bad key fails at load
with one line: ``<file>: <key path>: <expected>, got <value>``. Secrets never come
from these files: keys that look like credentials are refused, and credentials
are read from the environment at the point of use (:func:`secret`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from driftgate.core.errors import ConfigError
from driftgate.core.secrets import secret  # noqa: F401  (re-exported)
from driftgate.core.types import ModelName, ProblemType, SchemaName, StrictModel, TableName
from driftgate.gating.config import GateConfig
from driftgate.monitoring.config import MonitorConfig
from driftgate.promotion.config import PromotionConfig, problem_defaults
from driftgate.training.config import TRAINING_METRICS, TUNING_METRICS, TrainingConfig, TuningConfig, default_floor, \
    default_tuning_metric
from driftgate.triggers.config import TriggersConfig
from driftgate.triggers.webhook.config import WebhookConfig
from driftgate.workspace.config import WorkspaceConfig

__all__ = ["Settings", "ProjectConfig", "DemoConfig", "load_settings", "secret", "ENVIRONMENTS"]

ENVIRONMENTS = ("local", "databricks")
_SECRET_KEY = re.compile(r"(password|secret|token|api_key|apikey|credential)s?$", re.I)


class ProjectConfig(StrictModel):
    """Names shared by every stage; the same three-level names in every profile."""

    model_name: ModelName = "main.driftgate_demo.churn_model"
    """Registered model, three-level as in Unity Catalog; aliases champion/challenger/previous_champion."""
    experiment_name: str = "/Shared/driftgate/churn_model"
    """MLflow experiment every stage logs its runs to (a workspace path on Databricks)."""
    inference_table: TableName = "main.driftgate_demo.inference_log"
    """The table the champion's served requests, predictions and late labels land in."""
    audit_schema: SchemaName = "main.driftgate_demo"
    """Where the audit trail tables live (``<audit_schema>.driftgate_decisions`` ...)."""
    problem_type: ProblemType = "binary"
    """What the model predicts, the one source of truth for every stage: ``binary`` or ``multiclass``
    classification, or ``regression``. It picks the estimator kind, the metrics computed in training, tuning and
    the shadow test, and the defaults of training.quality_floor, tuning.metric and promotion.metrics /
    primary_metric / criteria / fairness.metrics. ``monitor.inference_log.problem_type`` follows it
    (classification or regression); setting that one to disagree is refused."""


class DemoConfig(StrictModel):
    """The seeded demo world written by ``driftgate demo`` / ``make demo``."""

    seed: int = 7
    """Seed of the generator: the same seed gives the same world."""
    customers: int = Field(4000, ge=200)
    """Distinct customers making requests."""
    history_days: int = Field(60, ge=14, description="days of labelled history before the champion ships")
    served_days: int = Field(21, ge=4, description="days the champion serves before the gate runs")
    rows_per_day: int = Field(600, ge=50)
    """Mean requests per day (Poisson)."""
    drift_onset_day: int = Field(6, ge=1, description="served day on which covariate + concept drift begins")
    drift_strength: float = Field(1.0, ge=0.0, le=3.0)
    """Scale of the covariate shift and the change in P(y|x); 0 means no drift at all."""
    start_date: str | None = None
    """ISO date of the first simulated day; default: so that serving ends today."""


class Settings(StrictModel):
    """The whole, validated configuration of one driftgate deployment."""

    env: Literal["local", "databricks"] = "local"
    """Set by the loader from --env / $DRIFTGATE_ENV; selects the conf overlay."""
    workspace: WorkspaceConfig = WorkspaceConfig()
    project: ProjectConfig = ProjectConfig()
    demo: DemoConfig = DemoConfig()
    monitor: MonitorConfig = MonitorConfig()
    gate: GateConfig = GateConfig()
    training: TrainingConfig = TrainingConfig()
    tuning: TuningConfig = TuningConfig()
    promotion: PromotionConfig = PromotionConfig()
    triggers: TriggersConfig = TriggersConfig()
    webhook: WebhookConfig = WebhookConfig()

    @model_validator(mode="before")
    @classmethod
    def _problem_type_defaults(cls, data):
        """Keys whose default depends on ``project.problem_type`` get that default unless conf sets them."""
        if not isinstance(data, dict):
            return data
        project = data.get("project")
        problem = (project.get("problem_type") if isinstance(project, dict) else getattr(project, "problem_type", None))
        if problem not in ("multiclass", "regression"):
            return data  # binary: the models' own defaults; a bad value is refused by ProjectConfig
        data = dict(data)
        defaults = problem_defaults(problem)
        _fill(data, ("promotion", "metrics"), defaults["metrics"])
        _fill(data, ("promotion", "primary_metric"), defaults["primary_metric"])
        _fill(data, ("promotion", "criteria"), {k: c.model_dump(exclude_none=True)
                                                for k, c in defaults["criteria"].items()})
        _fill(data, ("promotion", "fairness", "metrics"), defaults["fairness_metrics"])
        _fill(data, ("training", "quality_floor"), {k: f.model_dump(exclude_none=True)
                                                    for k, f in default_floor(problem).items()})
        _fill(data, ("tuning", "metric"), default_tuning_metric(problem))
        monitor = data.get("monitor")
        if monitor is None or (isinstance(monitor, dict) and monitor.get("inference_log", {}) is not None
                               and monitor.get("time_series") is None and monitor.get("snapshot") is None):
            _fill(data, ("monitor", "inference_log", "problem_type"),
                  "regression" if problem == "regression" else "classification")
        return data

    @model_validator(mode="after")
    def _problem_type_consistent(self) -> "Settings":
        problem = self.project.problem_type
        log = self.monitor.inference_log
        expected = "regression" if problem == "regression" else "classification"
        if log is not None and log.problem_type != expected:
            raise ValueError(f"monitor.inference_log.problem_type: project.problem_type is {problem}, so the monitor "
                             f"must analyse {expected}, got {log.problem_type!r}")
        wrong = [m for m in self.training.quality_floor if m not in TRAINING_METRICS[problem]]
        if wrong:
            raise ValueError(f"training.quality_floor: {wrong} are not {problem} metrics (project.problem_type); "
                             f"expected some of {list(TRAINING_METRICS[problem])}")
        if self.tuning.metric not in TUNING_METRICS[problem]:
            raise ValueError(f"tuning.metric: {self.tuning.metric!r} is not a {problem} metric "
                             f"(project.problem_type); expected one of {list(TUNING_METRICS[problem])}")
        if problem == "regression" and self.training.estimator == "logistic_regression":
            raise ValueError("training.estimator: logistic_regression classifies and project.problem_type is "
                             "regression; use hist_gradient_boosting, random_forest or 'package.module:factory'")
        self.promotion.check_problem_type(problem)
        return self


def _fill(data: dict, path: tuple[str, ...], value) -> None:
    """Set ``data[path]`` to ``value`` unless a layer set it (copying the dicts on the way, never mutating input)."""
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            return  # a section given as a model instance: its own values stand (and are checked after)
        node[key] = child = dict(child)
        node = child
    node.setdefault(path[-1], value)


def default_conf_dir() -> Path:
    """``$DRIFTGATE_CONF_DIR``, else ``./conf`` if present, else the repo's ``conf/``."""
    if env := os.environ.get("DRIFTGATE_CONF_DIR"):
        return Path(env)
    here = Path.cwd() / "conf"
    if (here / "base").is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "conf"


def load_settings(
    conf_dir: str | Path | None = None,
    env: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Settings:
    """Load, merge and validate the configuration layers.

    Args:
        conf_dir: folder holding ``base/``, the environment overlays and ``user/``.
        env: ``local`` or ``databricks``; default ``$DRIFTGATE_ENV`` or ``local``.
        overrides: ``key.path=value`` strings (values parsed as YAML scalars).

    Returns:
        The validated :class:`Settings`.

    Raises:
        ConfigError: one line naming the file, the key path and what was expected.
    """
    conf = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    env = env or os.environ.get("DRIFTGATE_ENV") or "local"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"DRIFTGATE_ENV: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}", key="env")
    if not (conf / "base").is_dir():
        raise ConfigError(f"{conf}: expected a conf folder with a base/ layer", source=str(conf))

    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for layer in ("base", env, "user"):
        for path in sorted((conf / layer).glob("*.y*ml")):
            data = _read_yaml(path)
            if layer != "user":
                _refuse_secrets(data, str(path), ())
            _merge(merged, data, origin, str(path), ())
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key.path=value", source="--set", key=item)
        node: dict[str, Any] = {}
        cursor = node
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
        _merge(merged, node, origin, f"--set {key.strip()}", ())
    merged["env"] = env
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise _as_config_error(exc, origin) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})", source=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}", source=str(path))
    return data


def _refuse_secrets(data: Any, source: str, path: tuple[str, ...]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if _SECRET_KEY.search(str(key)) and isinstance(value, str | int) and value not in ("", None):
                dotted = ".".join((*path, str(key)))
                raise ConfigError(
                    f"{source}: {dotted}: secrets must not live in committed conf files; "
                    "put the value in an environment variable",
                    source=source,
                    key=dotted,
                )
            _refuse_secrets(value, source, (*path, str(key)))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            _refuse_secrets(item, source, (*path, str(i)))


def _merge(into: dict[str, Any], data: dict[str, Any], origin: dict, source: str, path: tuple[str, ...]) -> None:
    for key, value in data.items():
        here = (*path, str(key))
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, here)
        else:
            into[key] = value
            origin[here] = source
        origin.setdefault(here, source)
        if isinstance(value, dict):
            for sub in _paths(value, here):
                origin[sub] = source


def _paths(data: Any, path: tuple[str, ...]):
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*path, str(key))
            yield here
            yield from _paths(value, here)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            here = (*path, str(i))
            yield here
            yield from _paths(item, here)


def _as_config_error(exc: ValidationError, origin: dict[tuple[str, ...], str]) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    # Discriminated unions add the tag to the location; drop what isn't a key.
    keys = tuple(p for p in loc if not p.startswith("function-"))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if not keys and (named := re.match(r"^([A-Za-z_][\w.]*): (.*)$", msg)):
        # a cross-section check (Settings validator) names its key at the start of the message
        keys = tuple(named.group(1).split("."))
        err = {**err, "msg": named.group(2), "input": None}
    source = "defaults"
    for n in range(len(keys), 0, -1):
        if keys[:n] in origin:
            source = origin[keys[:n]]
            break
    dotted = ".".join(_fmt(p) for p in keys) or "<root>"
    dotted = dotted.replace(".[", "[")
    kind = err["type"]
    if kind == "extra_forbidden":
        what = "unknown key (check the spelling against the configuration reference)"
    elif kind == "missing":
        what = "required key is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        what = msg if "got " in msg or err.get("input") is None else f"{msg}, got {err.get('input')!r}"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{source}: {dotted}: {what}{more}", source=source, key=dotted)


def _fmt(part: str) -> str:
    return f"[{part}]" if part.isdigit() else part
