"""Layered configuration: YAML layers merged, then validated into typed models.

Layers, later wins (Kedro's ``conf/base`` + ``conf/local`` idea, one overlay per
bundle target):

1. ``conf/base/*.yml``      committed defaults, no secrets
2. ``conf/<env>/*.yml``     committed overlay per environment: ``local`` (default), ``databricks``, or
                            ``demo`` (local + the seeded churn world's names; what ``make demo`` uses)
3. ``conf/user/*.yml``      git-ignored personal layer (paths, experiments; still no secrets)
4. ``overrides``            ``key.path=value`` strings from the CLI (``--set``) or job parameters

Every default is defined once, in the pydantic models, and the layers merge onto
those defaults (:mod:`driftgate.core.layering`): a partial override never drops a
default; removing one takes an explicit ``null``, logged and kept in
:attr:`Settings.removed_defaults`. A bad key fails at load with one line:
``<file>: <key path>: <expected>, got <value>``. Secrets never come from committed
files: anything that looks like a credential is refused there
(:func:`driftgate.core.secrets.secret_problem`), and credentials are read from the
environment at the point of use (:func:`secret`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from driftgate.core.errors import ConfigError
from driftgate.core.layering import (LayerMerge, Origin, leaf_paths, parse_value, read_layer_file,
                                     removed_defaults_tags)
from driftgate.core.secrets import SECRET_ENV_HINTS, mask, secret, secret_problem  # noqa: F401  (secret re-exported)
from driftgate.core.types import ModelName, ProblemType, SchemaName, StrictModel, TableName, refuse_foreign
from driftgate.gating.config import GateConfig
from driftgate.monitoring.config import MonitorConfig
from driftgate.promotion.config import PromotionConfig, problem_defaults
from driftgate.training.config import TRAINING_METRICS, TUNING_METRICS, TrainingConfig, TuningConfig, default_floor, \
    default_tuning_metric
from driftgate.triggers.config import TriggersConfig
from driftgate.triggers.webhook.config import WebhookConfig
from driftgate.workspace.config import WorkspaceConfig

__all__ = ["Settings", "ProjectConfig", "DemoConfig", "load_settings", "secret", "ENVIRONMENTS", "Origin",
           "removed_defaults_tags", "EffectiveValue", "effective_values"]

ENVIRONMENTS = ("local", "databricks", "demo")
"""``demo``: the local overlay plus the seeded churn world's names, slices and windows (``make demo``)."""


class ProjectConfig(StrictModel):
    """Names shared by every stage; the same three-level names in every profile."""

    model_name: ModelName = "main.default.model"
    """Registered model, three-level as in Unity Catalog; aliases champion/challenger/previous_champion."""
    experiment_name: str = "/Shared/driftgate/model"
    """MLflow experiment every stage logs its runs to (a workspace path on Databricks)."""
    inference_table: TableName = "main.default.inference_log"
    """The table the champion's served requests, predictions and late labels land in."""
    audit_schema: SchemaName = "main.default"
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

    env: Literal["local", "databricks", "demo"] = "local"
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
        problem = _problem_type_of(data)
        if problem not in ("multiclass", "regression"):
            return data  # binary: the models' own defaults; a bad value is refused by ProjectConfig
        data = dict(data)
        for path, value in problem_type_seed(problem):
            _fill(data, path, value)
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
        refuse_foreign("training.quality_floor", self.training.quality_floor, TRAINING_METRICS[problem], problem)
        if self.tuning.metric not in TUNING_METRICS[problem]:
            raise ValueError(f"tuning.metric: {self.tuning.metric!r} is not a {problem} metric "
                             f"(project.problem_type); expected one of {list(TUNING_METRICS[problem])}")
        if problem == "regression" and self.training.estimator == "logistic_regression":
            raise ValueError("training.estimator: logistic_regression classifies and project.problem_type is "
                             "regression; use hist_gradient_boosting, random_forest or 'package.module:factory'")
        self.promotion.check_problem_type(problem)
        return self

    _origins: dict[tuple[str, ...], Origin] = PrivateAttr(default_factory=dict)
    _removed: tuple[tuple[tuple[str, ...], Origin], ...] = PrivateAttr(default=())

    @property
    def removed_defaults(self) -> tuple[str, ...]:
        """Dotted paths of the defaults (or earlier layers' values) a layer removed with an explicit
        ``null``, e.g. ``promotion.criteria.roc_auc``; empty when nothing was removed. The gate's
        and the shadow evaluation's MLflow runs record them (:func:`removed_defaults_tags`)."""
        return tuple(".".join(path) for path, _ in self._removed)

    def __eq__(self, other: object) -> bool:
        # Equal configurations are equal wherever their values came from (provenance is private).
        if not isinstance(other, Settings):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = StrictModel.__hash__

    def revalidated(self, data: dict[str, Any]) -> "Settings":
        """Settings validated from ``data`` (e.g. this one's dump with names moved) that keep this
        one's provenance: where each value came from and the explicit removals."""
        new = type(self).model_validate(data)
        new._origins, new._removed = dict(self._origins), self._removed
        return new

    def origin(self, path: str | tuple[str, ...]) -> Origin:
        """Where the value at ``path`` (dotted; named items by name: ``gate.rules.f1_drop.threshold``)
        was set: the layer and file:line, or ``default``. Removals answer with the removing layer."""
        parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
        removed = dict(self._removed)
        for n in range(len(parts), 0, -1):
            if parts[:n] in self._origins:
                return self._origins[parts[:n]]
            if parts[:n] in removed:
                return removed[parts[:n]]
        return Origin("default", "default")


def _problem_type_of(data: dict) -> str | None:
    project = data.get("project")
    return project.get("problem_type") if isinstance(project, dict) else getattr(project, "problem_type", None)


def problem_type_seed(problem: str) -> list[tuple[tuple[str, ...], Any]]:
    """``(path, default)`` of every key whose default depends on ``project.problem_type``, as plain data.

    The loader seeds the merge with them, so a layer that names one criterion or floor keeps the
    *problem type's* other defaults (not the binary ones the models declare).
    """
    defaults = problem_defaults(problem)  # type: ignore[arg-type]
    return [
        (("promotion", "metrics"), defaults["metrics"]),
        (("promotion", "primary_metric"), defaults["primary_metric"]),
        (("promotion", "criteria"), {k: c.model_dump(exclude_none=True) for k, c in defaults["criteria"].items()}),
        (("promotion", "fairness", "metrics"), defaults["fairness_metrics"]),
        (("training", "quality_floor"), {k: f.model_dump(exclude_none=True)
                                         for k, f in default_floor(problem).items()}),  # type: ignore[arg-type]
        (("tuning", "metric"), default_tuning_metric(problem)),  # type: ignore[arg-type]
    ]


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

    Layers merge onto the models' defaults (:mod:`driftgate.core.layering`): a mapping
    with defaults keeps the entries a layer does not name, a named list item is changed
    by name, and removing a default takes an explicit ``null``, which is logged and
    kept in :attr:`Settings.removed_defaults`.

    Args:
        conf_dir: folder holding ``base/``, the environment overlays and ``user/``.
        env: ``local`` or ``databricks``; default ``$DRIFTGATE_ENV`` or ``local``.
        overrides: ``key.path=value`` strings (values parsed as YAML).

    Returns:
        The validated :class:`Settings`.

    Raises:
        ConfigError: one line naming the file, the key path and what was expected.
    """
    conf = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    if env:
        env_origin = Origin("--env", "--env")
    elif os.environ.get("DRIFTGATE_ENV"):
        env_origin = Origin("$DRIFTGATE_ENV", "$DRIFTGATE_ENV")
    else:
        env_origin = Origin("default", "default")
    env = env or os.environ.get("DRIFTGATE_ENV") or "local"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"DRIFTGATE_ENV: env: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}", key="env")
    if not (conf / "base").is_dir():
        raise ConfigError(f"{conf}: <root>: expected a conf folder with a base/ layer, got none", source=str(conf))

    layers: list[tuple[dict[str, Any], str, str, dict | None]] = []
    for layer, label in (("base", "base"), (env, f"env:{env}"), ("user", "user")):
        claimed: dict[tuple[str, ...], str] = {}
        for path in sorted((conf / layer).glob("*.y*ml")):
            data, lines = read_layer_file(path)
            if layer != "user":
                _refuse_secrets(data, str(path), ())
            _claim(claimed, data, lines, str(path))
            layers.append((data, label, str(path), lines))
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set: {item}: expected key.path=value, got {item!r}", source="--set", key=item)
        source = f"--set {key}"
        node: Any = parse_value(raw, source)
        for part in reversed(key.split(".")):
            node = {part: node}
        layers.append((node, "--set", source, None))
    merge = _merged(layers)
    merge.tree["env"] = env
    merge.origins[("env",)] = env_origin
    try:
        settings = Settings.model_validate(merge.tree)
    except ValidationError as exc:
        raise _as_config_error(exc, merge) from None
    settings._origins = dict(merge.origins)
    settings._removed = tuple(merge.removals().items())
    return settings


def _merged(layers: list[tuple[dict[str, Any], str, str, dict | None]]) -> LayerMerge:
    """Merge the layers onto the defaults of the problem type they choose (``project.problem_type``)."""
    problem = None
    for data, *_ in layers:  # the last layer that names it wins, as in the merge
        if isinstance(data.get("project"), dict) and "problem_type" in data["project"]:
            problem = data["project"]["problem_type"]
    merge = LayerMerge(Settings)
    if problem in ("multiclass", "regression"):
        for path, value in problem_type_seed(problem):
            _fill(merge.tree, path, value)
    for data, label, source, lines in layers:
        merge.apply(data, label, source, lines)
    return merge


class EffectiveValue(NamedTuple):
    """One effective setting as ``driftgate config`` shows it."""

    key: str
    """Dotted path; named items by name (``gate.rules.f1_drop.threshold``), other list items by index."""
    value: Any
    """JSON-ready value, credentials masked."""
    layer: str
    """``base``, ``env:<env>``, ``user``, ``--set``, ``--env`` / ``$DRIFTGATE_ENV``, or ``default``."""
    source: str
    """``file:line``, ``--set <key>``, or ``default``."""


def effective_values(settings: Settings) -> list[EffectiveValue]:
    """Every effective setting with the layer that set it, credentials masked (pure; no I/O).

    Removed defaults are listed too, with value None and the removing layer.
    """
    out: list[EffectiveValue] = []

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                walk(sub, (*path, str(key)))
            return
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            named = all(isinstance(v.get("name"), str) for v in value)
            for i, sub in enumerate(value):
                walk(sub, (*path, sub["name"] if named else str(i)))
            return
        origin = settings.origin(path)
        out.append(EffectiveValue(".".join(path), mask(path[-1] if path else "", value), origin.layer,
                                  origin.where))

    walk(settings.model_dump(mode="json"), ())
    for path in settings.removed_defaults:
        origin = settings.origin(path)
        out.append(EffectiveValue(path, None, origin.layer, f"{origin.where} (removed)"))
    return out


def _claim(claimed: dict[tuple[str, ...], str], data: dict[str, Any], lines: dict, source: str) -> None:
    """Two files of one layer must not set the same key: the order of file names would decide silently."""
    for path in leaf_paths(data):
        here = f"{source}:{lines.get(path, '?')}"
        for other, where in claimed.items():
            if other[: len(path)] == path or path[: len(other)] == other:
                raise ConfigError(
                    f"{here}: {'.'.join(path)}: expected one definition per layer, got a second one "
                    f"(also set at {where})", source=source, key=".".join(path))
    for path in leaf_paths(data):
        claimed[path] = f"{source}:{lines.get(path, '?')}"


def _refuse_secrets(data: Any, source: str, path: tuple[str, ...]) -> None:
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        here = (*path, str(key))
        problem = secret_problem(str(key), value) if isinstance(data, dict) else secret_problem("", value)
        if problem:
            dotted = ".".join(here)
            hint = SECRET_ENV_HINTS.get(dotted, "an environment variable read where it is used")
            raise ConfigError(
                f"{source}: {dotted}: secrets must not live in committed conf files; expected no credential "
                f"(put it in {hint}), got {problem}",
                source=source,
                key=dotted,
            )
        _refuse_secrets(value, source, here)


def _as_config_error(exc: ValidationError, merge: LayerMerge) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    # Discriminated unions add the tag to the location; drop what isn't a key.
    keys = tuple(p for p in loc if not p.startswith("function-"))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if not keys and (named := re.match(r"^([A-Za-z_][\w.]*): (.*)$", msg)):
        # a cross-section check (Settings validator) names its key at the start of the message
        keys = tuple(named.group(1).split("."))
        err = {**err, "msg": named.group(2), "input": None}
    canon = _canonical(keys, merge.tree)
    origin = next((merge.origins[canon[:n]] for n in range(len(canon), 0, -1) if canon[:n] in merge.origins), None)
    if origin is None:  # a section-level check: blame the last layer that set something in it
        under = [o for p, o in merge.origins.items() if p[: len(canon)] == canon and canon]
        origin = under[-1] if under else None
    source = origin.source if origin is not None else "defaults"
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


def _canonical(keys: tuple[str, ...], tree: dict[str, Any]) -> tuple[str, ...]:
    """A validation location with list indices of named items replaced by their names."""
    out, node = [], tree
    for part in keys:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            named = isinstance(node, dict) and isinstance(node.get("name"), str)
            out.append(node["name"] if named else part)
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


def _fmt(part: str) -> str:
    return f"[{part}]" if part.isdigit() else part
