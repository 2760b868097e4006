"""The gate's rule language: what to read from the metric tables and when it means "retrain".

A rule names a table (``drift`` or ``profile``), a metric path, a comparison, filters,
an aggregation across columns, persistence over windows, a minimum row count and a
staleness limit. Rules combine with ``any`` or ``all``. Everything is checked when the
configuration loads: a metric the documented table schema lacks fails there, naming the
rule's path (``gate.rules[2].metric``). Layers address rules by name: a layer's ``rules`` list
updates the rules it names and adds new ones, the others stay; ``--set gate.rules.<name>.<field>=v``
changes one field and ``gate.rules.<name>: null`` removes a rule (logged and recorded).

Example (``conf/base/driftgate.yml``)::

    gate:
      combine: any
      rules:
        - name: feature_psi
          table: drift
          metric: population_stability_index
          op: ">"
          threshold: 0.2
          filters: {drift_type: BASELINE, columns: all, exclude_columns: [prediction, label]}
          aggregate: {how: share, at_least: 0.3}
          persistence: {windows: 3, violations: 2}
        - name: f1_drop
          table: profile
          metric: f1_score.macro
          op: "<"
          threshold: 0.6
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from driftgate.core.metric_tables import ROLES, Role, metric_columns
from driftgate.core.types import StrictModel, TableName

__all__ = [
    "GateConfig", "Rule", "RuleFilters", "SliceFilter", "Aggregation", "Persistence",
    "MetricPath", "parse_metric_path", "DRIFT_TABLE_COLUMNS", "PROFILE_TABLE_COLUMNS",
]

# The documented columns of the monitor's output tables, from their one definition
# (driftgate.core.metric_tables). Values: "number", a struct's readable fields, "map" (fairness
# metrics keyed by predicted class), or "string" / "list" / "timestamp" (not readable by a rule).
DRIFT_TABLE_COLUMNS: dict[str, Any] = metric_columns("drift")
PROFILE_TABLE_COLUMNS: dict[str, Any] = metric_columns("profile")

_TABLE_COLUMNS = {"drift": DRIFT_TABLE_COLUMNS, "profile": PROFILE_TABLE_COLUMNS}
_NOT_METRICS = {name for name, role in ROLES.items() if role is not Role.METRIC}

_PATH = re.compile(r"""^(?P<col>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)|\[\s*(?P<q>['"]?)(?P<key>[^\]'"]+)(?P=q)\s*\])?$""")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MetricPath(StrictModel):
    """A parsed metric path: ``column``, ``column.field`` (struct) or ``column['key']`` (map)."""

    column: str
    field: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.field is not None:
            return f"{self.column}.{self.field}"
        if self.key is not None:
            return f"{self.column}['{self.key}']"
        return self.column


def parse_metric_path(text: str) -> MetricPath:
    """Parse ``js_distance``, ``ks_test.pvalue``, ``statistical_parity['1']``.

    Raises:
        ValueError: the text is not a metric path.
    """
    m = _PATH.match(text.strip())
    if not m:
        raise ValueError(
            f"must be a metric path like 'js_distance', 'ks_test.pvalue' or \"statistical_parity['1']\", got {text!r}"
        )
    return MetricPath(column=m["col"], field=m["field"], key=m["key"])


def _duration(value: Any) -> Any:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m[1]) * _UNITS[m[2][0].lower()])
        if re.match(r"^-?P", value.strip()):  # ISO 8601 ("P2D"), as model_dump(mode="json") writes it
            return value
    raise ValueError(f"must be a duration such as '36 hours', '2 days' or seconds, got {value!r}")


Duration = Annotated[timedelta | None, BeforeValidator(_duration)]


class SliceFilter(StrictModel):
    """One slice of the monitored table: ``slice_key = key AND slice_value = value``."""

    key: str
    value: str

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        # Slice values are stored as strings ("true"/"false"); YAML would read true as a bool.
        return str(v).lower() if isinstance(v, bool) else (str(v) if isinstance(v, int | float) else v)


class RuleFilters(StrictModel):
    """Which metric rows a rule reads."""

    model_id: str | None = "*"
    """Value of the monitor's model-id column; ``*`` is the all-models aggregate, None means no filter."""
    columns: list[str] | Literal["all"] | None = None
    """Monitored columns; ``all`` = every column except ``:table``. Default: ``all`` on the drift
    table, ``[":table"]`` on the profile table (where model quality and fairness live)."""
    exclude_columns: list[str] = Field(default_factory=list)
    slice: SliceFilter | None = None
    """None = the whole table (``slice_key IS NULL``)."""
    drift_type: Literal["BASELINE", "CONSECUTIVE"] | None = None
    """Drift table only; default BASELINE."""
    granularity: str = "1 day"
    log_type: Literal["INPUT", "BASELINE"] | None = None
    """Profile table only; default INPUT."""


class Aggregation(StrictModel):
    """How per-column verdicts of one window become the window's verdict.

    ``any``: at least one column violates; ``all``: every evaluated column does;
    ``share``: the (weighted) share of violating columns is at least ``at_least`` (0-1];
    ``count``: the (weighted) number of violating columns is at least ``at_least``.
    Columns missing from ``weights`` weigh 1; weight 0 ignores a column.
    """

    how: Literal["any", "all", "share", "count"] = "any"
    at_least: float | None = None
    weights: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"how": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> "Aggregation":
        if self.how in ("share", "count") and self.at_least is None:
            raise ValueError(f"at_least must be set when how is {self.how!r}")
        if self.how == "share" and not (0 < self.at_least <= 1):
            raise ValueError(f"at_least must be in (0, 1] for how 'share', got {self.at_least}")
        if self.how == "count" and self.at_least <= 0:
            raise ValueError(f"at_least must be > 0 for how 'count', got {self.at_least}")
        if self.how in ("any", "all") and self.at_least is not None:
            raise ValueError(f"at_least only applies to 'share' and 'count', got how {self.how!r}")
        bad = {k: w for k, w in self.weights.items() if w < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return self


class Persistence(StrictModel):
    """At least ``violations`` of the last ``windows`` windows violate (and the latest one must)."""

    windows: int = Field(1, ge=1, le=60)
    violations: int = Field(1, ge=1)
    latest_must_violate: bool = True

    @model_validator(mode="after")
    def _check(self) -> "Persistence":
        if self.violations > self.windows:
            raise ValueError(f"violations must be <= windows ({self.windows}), got {self.violations}")
        return self


class Rule(StrictModel):
    """One rule over the drift or profile metrics table."""

    name: str = Field(min_length=1)
    table: Literal["drift", "profile"] = "drift"
    custom: bool = False
    """The metric is a custom metric column (``MonitorMetric.name``), not a documented one."""
    metric: str = "population_stability_index"
    """A column, struct field or map entry: ``js_distance``, ``ks_test.pvalue``, ``f1_score.macro``,
    ``statistical_parity['1']``."""
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = 0.2
    abs: bool = False
    """Compare ``|value|`` (fairness differences are signed)."""
    filters: RuleFilters = RuleFilters()
    aggregate: Aggregation = Aggregation()
    persistence: Persistence = Persistence()
    min_rows: int = Field(100, ge=0)
    """Minimum rows in a window (the profile table's ``count`` on ``:table``); 0 disables."""
    max_staleness: Duration = timedelta(days=2)
    """The latest complete window must have ended at most this long before ``now``; None disables."""
    latest: Literal["complete", "usable"] = "complete"
    """Which window is "the latest": the newest complete one, or (``usable``, for quality metrics
    whose labels arrive late) the newest one with usable values, skipping up to ``persistence.windows``
    newer windows that have none."""
    correction: Literal["bonferroni", "bh", "none"] | None = None
    """Multiple-testing correction across columns; p-value metrics only (default ``bh`` for them)."""
    relative_to: Literal["baseline"] | None = None
    """Profile rules: judge the change from the baseline instead of the value itself. The value
    compared is ``window - baseline`` (``change: difference``) or ``(window - baseline) / |baseline|``
    (``change: relative``), where baseline is the same metric in the monitor's BASELINE profile rows
    (the champion's scored held-out rows). E.g. ``roc_auc_score``, ``relative_to: baseline``,
    ``op: "<"``, ``threshold: -0.05``: ROC AUC fell more than 0.05 below the baseline's."""
    change: Literal["difference", "relative"] = "difference"
    """How ``relative_to`` compares: ``difference`` (metric units) or ``relative`` (a fraction)."""

    @field_validator("metric")
    @classmethod
    def _metric_exists(cls, v: str, info: ValidationInfo) -> str:
        path = parse_metric_path(v)
        if info.data.get("custom"):
            return v
        table = info.data.get("table", "drift")
        known = _TABLE_COLUMNS[table]
        name = info.data.get("name", "?")
        if path.column not in known or path.column in _NOT_METRICS:
            near = [c for c in known if c not in _NOT_METRICS]
            raise ValueError(
                f"rule {name!r}: {path.column!r} is not a metric column of the {table} metrics table "
                f"(documented: {', '.join(near)}); set custom: true for a custom metric"
            )
        kind = known[path.column]
        if isinstance(kind, tuple):
            if path.field is None or path.field not in kind:
                raise ValueError(
                    f"rule {name!r}: {path.column!r} is a struct; name one of its fields "
                    f"({', '.join(f'{path.column}.{f}' for f in kind)}), got {v!r}"
                )
        elif kind == "map":
            if path.key is None:
                raise ValueError(
                    f"rule {name!r}: {path.column!r} is a map keyed by predicted class; "
                    f"name an entry like \"{path.column}['1']\", got {v!r}"
                )
        elif kind != "number":
            raise ValueError(f"rule {name!r}: {path.column!r} holds {kind} values, not a number a rule can "
                             f"compare, got {v!r}")
        elif path.field is not None or path.key is not None:
            raise ValueError(f"rule {name!r}: {path.column!r} is a plain number, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        f = self.filters
        if self.table == "profile" and f.drift_type is not None:
            raise ValueError(f"rule {self.name!r}: filters.drift_type applies to the drift table only")
        if self.table == "drift" and f.log_type is not None:
            raise ValueError(f"rule {self.name!r}: filters.log_type applies to the profile table only")
        if self.correction not in (None, "none") and not self.is_pvalue:
            raise ValueError(
                f"rule {self.name!r}: correction applies to p-value metrics (e.g. ks_test.pvalue), got {self.metric!r}"
            )
        if self.is_pvalue and self.op not in ("<", "<="):
            raise ValueError(f"rule {self.name!r}: a p-value rule must use '<' or '<=' (p below alpha), got {self.op!r}")
        if self.relative_to is not None and self.table != "profile":
            raise ValueError(f"rule {self.name!r}: relative_to applies to profile rules (drift rows already compare "
                             f"two windows), got table {self.table!r}")
        if self.relative_to is not None and f.log_type == "BASELINE":
            raise ValueError(f"rule {self.name!r}: relative_to compares INPUT windows with the baseline; "
                             "filters.log_type must not be BASELINE")
        if self.is_pvalue and not (0 < self.threshold < 1):
            raise ValueError(f"rule {self.name!r}: a p-value threshold (alpha) must be in (0, 1), got {self.threshold}")
        return self

    @property
    def path(self) -> MetricPath:
        return parse_metric_path(self.metric)

    @property
    def is_pvalue(self) -> bool:
        return self.path.field == "pvalue"

    @property
    def effective_correction(self) -> str:
        if not self.is_pvalue:
            return "none"
        return self.correction or "bh"

    @property
    def drift_type(self) -> str | None:
        return (self.filters.drift_type or "BASELINE") if self.table == "drift" else None

    @property
    def log_type(self) -> str | None:
        return (self.filters.log_type or "INPUT") if self.table == "profile" else None

    @property
    def columns(self) -> list[str] | Literal["all"]:
        if self.filters.columns is not None:
            return self.filters.columns
        return "all" if self.table == "drift" else [":table"]


def _default_rules() -> list[Rule]:
    """Effect sizes, not p-values, and quality judged against the baseline (README, "Default rules").

    P-values shrink with the number of rows, so at production volumes a KS or chi-squared test
    flags differences too small to matter; PSI and Jensen-Shannon distance measure how much the
    distribution moved, whatever the sample size. Quality is the champion's ROC AUC against its
    own baseline (its scored held-out rows), not an absolute number that daily noise crosses.
    """
    drift = dict(table="drift", op=">", filters=RuleFilters(columns="all", drift_type="BASELINE"),
                 aggregate=Aggregation(how="share", at_least=0.3), persistence=Persistence(windows=3, violations=2))
    return [
        Rule(name="numeric_drift_psi", metric="population_stability_index", threshold=0.2, **drift),
        Rule(name="categorical_drift_js", metric="js_distance", threshold=0.2, **drift),
        Rule(
            name="roc_auc_drop",
            table="profile",
            metric="roc_auc_score",
            relative_to="baseline",
            op="<",
            threshold=-0.05,
            persistence=Persistence(windows=3, violations=2),
            latest="usable",
            max_staleness=timedelta(days=3),
        ),
    ]


class GateConfig(StrictModel):
    """The gate: rules combined with ``any`` (default) or ``all``.

    ``mode`` swaps the rule gate for a do-nothing one: ``always`` (every decision is
    EXCEEDED, for drills) or ``never`` (retraining disabled, e.g. without labels).
    ``profiles`` are named threshold sets (``strict: {feature_drift_psi: 0.1}``) picked with
    ``profile``, so a job parameter can switch thresholds without editing rules.
    """

    mode: Literal["rules", "always", "never"] = "rules"
    combine: Literal["any", "all"] = "any"
    rules: list[Rule] = Field(default_factory=_default_rules)
    drift_table: TableName | None = None
    """Default: the monitor's ``drift_metrics_table``."""
    profile_table: TableName | None = None
    """Default: the monitor's ``profile_metrics_table``."""
    model_id_col: str | None = None
    """Default: the monitor's ``inference_log.model_id_col``."""
    profile: str = "default"
    profiles: dict[str, dict[str, float]] = Field(default_factory=dict)
    retrain_cooldown: Duration = timedelta(days=3)
    """After a job run retrained, later runs within this time skip retraining even when the gate
    says EXCEEDED (recorded as a ``job_cooldown`` event): one drift episode, seen again by every
    daily run until a retrained model is promoted, retrains once, not daily. The trade-off: a
    second, different drift inside the cooldown waits for it to end. None: no cooldown. Times are
    the decisions' ``as of`` times, so replaying history respects it."""
    log_chart: bool = True
    """Attach the drift-over-time chart (``monitoring/drift_over_time.png``) to each decision's
    MLflow run; it adds about 0.35 s per decision (0.11 s → 0.46 s for 30 days × 6 columns)."""

    @model_validator(mode="after")
    def _check(self) -> "GateConfig":
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique, got duplicates {dupes}")
        if self.mode == "rules" and not self.rules:
            raise ValueError("rules must not be empty when mode is 'rules' (use mode: never to disable the gate)")
        for pname, overrides in self.profiles.items():
            unknown = sorted(set(overrides) - set(names))
            if unknown:
                raise ValueError(f"profiles.{pname}: names unknown rules {unknown}; rules are {names}")
        if self.profile != "default" and self.profile not in self.profiles:
            raise ValueError(f"profile must be 'default' or one of {sorted(self.profiles)}, got {self.profile!r}")
        return self

    def effective_rules(self) -> list[Rule]:
        """The rules with the selected threshold profile applied."""
        overrides = self.profiles.get(self.profile, {})
        # Re-validate so a profile cannot smuggle in, say, a p-value alpha above 1.
        return [Rule.model_validate({**r.model_dump(), "threshold": overrides[r.name]}) if r.name in overrides else r
                for r in self.rules]
