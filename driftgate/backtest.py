"""Backtest rule sets on history: what would each have done on this inference table?

``run_backtest`` replays a date range of an existing inference table window by window, once per
*policy*, each in a scratch workspace of its own (Delta tables, MLflow store and registry under
``<output>/workspaces/<policy>/``; the user's workspace is only read, and receives one MLflow
run per rule set with the report):

* one policy per **rule set** (a YAML layer or ``key.path=value`` overrides over the user's
  configuration): per window the champion of that policy serves the window's rows (scored again,
  so the monitor sees that policy's predictions), the window's labelled rows join the training
  tables, then monitor → gate → retrain → shadow → promote run as of the window's end
  (:func:`driftgate.pipeline.run_retraining_job`, the job's own task graph, cooldown included);
* **never**: the first champion, never retrained (scored in memory, no workspace);
* **every N days**: the job with ``gate.mode: always`` every N days (the same shadow criteria
  decide promotions), no cooldown.

Every policy starts from the same first champion, trained (``promotion.bootstrap``) on the
training tables' rows before the range. The loop of one window is :func:`replay_step`, which
``examples/nycflights.py`` uses too.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from driftgate.core.errors import ConfigError

__all__ = ["RuleSet", "parse_rule_set", "WindowRecord", "PolicySummary", "BacktestResult", "StepRecord",
           "replay_step", "run_backtest", "served_as", "summarise", "NEVER", "every_name"]

log = logging.getLogger("driftgate.backtest")

NEVER = "never"
_FORBIDDEN = ("workspace", "project")
"""Sections a rule set may not change: they would point the replay at other tables or stores."""


def every_name(days: int) -> str:
    return f"every_{days}d"


# --------------------------------------------------------------------------- rule sets


@dataclass(frozen=True)
class RuleSet:
    """One set of rules to replay: overrides layered over the user's configuration."""

    name: str
    overrides: tuple[str, ...]
    """``key.path=value`` strings, merged like ``--set`` (named list items by name, removals by null)."""
    source: str
    """The file it came from, or ``--rules``."""
    values: dict[str, Any] = field(default_factory=dict)
    """The rule set as given (for the MLflow run's parameters)."""


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(value, default=str) if not isinstance(value, str) else value}


def parse_rule_set(spec: str) -> RuleSet:
    """A rule set from ``--rules``: a YAML file (a conf layer), or ``[name:]key=value;key=value``.

    Raises:
        ConfigError: unreadable YAML, a non-mapping file, a malformed override, or a key under
            ``workspace`` / ``project`` (a backtest replays the user's tables into its own stores).
    """
    from driftgate.core.layering import parse_value, read_layer_file

    path = Path(spec)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"--rules {spec}: expected a YAML file, got no such file", source=spec)
        data, _ = read_layer_file(path)
        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{spec}: <root>: expected a mapping of settings (e.g. gate: {{rules: [...]}}), "
                              f"got {type(data).__name__}", source=spec)
        name, source, values = path.stem, str(path), data
        overrides = tuple(f"{k}={json.dumps(v, default=str)}" for k, v in data.items())
    else:
        name, sep, body = spec.partition(":")
        if not sep or "=" in name:
            name, body = "", spec
        items = [s.strip() for s in body.split(";") if s.strip()]
        bad = [s for s in items if "=" not in s or not s.partition("=")[0].strip()]
        if not items or bad:
            raise ConfigError(f"--rules {spec}: expected a YAML file or [name:]key.path=value;key.path=value, "
                              f"got {bad[0] if bad else spec!r}", source="--rules")
        overrides = tuple(items)
        values = {}
        for item in items:
            key, _, raw = item.partition("=")
            values[key.strip()] = parse_value(raw, f"--rules {key.strip()}")
        name = name.strip() or "+".join(k.rsplit(".", 1)[-1] for k in values)
        source = "--rules"
    for key in (o.partition("=")[0].strip() for o in overrides):
        if key.split(".")[0] in _FORBIDDEN:
            raise ConfigError(f"{source}: {key}: a rule set may not change {key.split('.')[0]}.* "
                              "(a backtest replays your tables into scratch stores of its own)", source=source,
                              key=key)
    return RuleSet(name=name, overrides=overrides, source=source, values=values)


# --------------------------------------------------------------------------- records


@dataclass
class StepRecord:
    """What one replayed window did in one workspace."""

    served_version: str | None
    served: pd.DataFrame
    """The window's rows as served (the inference-table contract's columns, scored by the champion)."""
    job: Any = None
    """The :class:`~driftgate.tasks.JobRunResult`, when the job ran."""
    seconds: float = 0.0
    train_seconds: float = 0.0


@dataclass
class WindowRecord:
    """One policy in one window (one row of the backtest's table)."""

    policy: str
    window: int
    start: str
    end: str
    as_of: str
    served_version: str | None
    rows: int
    labelled_rows: int
    roc_auc: float
    accuracy: float
    gate_status: str | None = None
    fired: bool = False
    cooldown_skip: bool = False
    retrained: bool = False
    challenger_version: str | None = None
    shadow_status: str | None = None
    promoted: bool = False
    champion_after: str | None = None
    seconds: float = 0.0
    train_seconds: float = 0.0


@dataclass
class PolicySummary:
    """A policy's totals over the range."""

    policy: str
    kind: str
    """``rules``, ``never`` or ``every``."""
    windows: int
    gate_firings: int
    cooldown_skips: int
    retrains: int
    promotions: int
    mean_roc_auc: float
    mean_accuracy: float
    roc_auc_vs_never: float
    detection_delay_days: float | None
    promotion_delay_days: float | None
    rows_to_promotion: int | None
    seconds: float
    train_seconds: float
    setup_seconds: float


@dataclass
class BacktestResult:
    windows: list[WindowRecord]
    summaries: list[PolicySummary]
    output: Path
    files: dict[str, Path]
    run_ids: dict[str, str]


# --------------------------------------------------------------------------- one window


def _quality(served: pd.DataFrame, cols, proba: np.ndarray | None = None, threshold: float = 0.5
             ) -> tuple[int, float, float]:
    """(labelled rows, ROC AUC, accuracy) of the served rows (``proba`` instead of the served probability)."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    if not cols.label or cols.label not in served:
        return 0, math.nan, math.nan
    mask = served[cols.label].notna().to_numpy()
    y = served[cols.label].to_numpy()[mask].astype(int)
    if proba is None:
        p = served[cols.probability].to_numpy(dtype=float)[mask] if cols.probability else None
        pred = served[cols.prediction].to_numpy()[mask].astype(int)
    else:
        p = np.asarray(proba, dtype=float)[mask]
        pred = (p >= threshold).astype(int)
    if len(y) == 0:
        return 0, math.nan, math.nan
    auc = float(roc_auc_score(y, p)) if p is not None and len(np.unique(y)) == 2 else math.nan
    return int(len(y)), auc, float(accuracy_score(y, pred))


class Scorers:
    """Scoring functions of registered versions, loaded once per workspace and version."""

    def __init__(self, ws):
        self.ws = ws
        self._cache: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {}

    def __call__(self, version: str) -> Callable[[pd.DataFrame], np.ndarray]:
        if version not in self._cache:
            from driftgate.monitoring.contract import model_input_columns
            from driftgate.promotion.replay import load_scorer, model_inputs

            self.ws.activate_mlflow()
            uri = f"models:/{self.ws.settings.project.model_name}/{version}"
            columns = [c for c, _ in (model_inputs(uri) or [])] or model_input_columns(self.ws.settings)
            self._cache[version] = load_scorer(uri, columns).probability
        return self._cache[version]


def served_as(ws, frame: pd.DataFrame, version: str, score: Callable[[pd.DataFrame], np.ndarray]) -> pd.DataFrame:
    """``frame``'s rows as ``version`` would have served them: any prediction, probability or model id
    they carry replaced by that version's (labels, request ids and timestamps kept)."""
    from driftgate.monitoring.traffic import served_rows

    cols = ws.settings.monitor.columns
    own = [c for c in (cols.prediction, cols.probability, cols.model_id) if c and c in frame]
    return served_rows(frame.drop(columns=own), cols, model_id=version, score=score,
                       threshold=ws.settings.promotion.decision_threshold)


def _train_seconds(ws, job) -> float:
    train = getattr(job, "train", None) if job is not None else None
    if train is None or not getattr(train, "run_id", None):
        return 0.0
    from mlflow import MlflowClient

    info = MlflowClient(ws.tracking_uri, ws.registry_uri).get_run(train.run_id).info
    return max(0.0, ((info.end_time or info.start_time) - info.start_time) / 1000.0)


def replay_step(ws, *, served: pd.DataFrame, as_of: datetime,
                training: dict[str, pd.DataFrame | pa.Table] | None = None,
                monitor: bool = True, job: bool = True, scorers: Scorers | None = None,
                trigger: str = "backtest") -> StepRecord:
    """One window of history in ``ws``: the champion serves ``served``, the rows in ``training``
    (table name → rows) are appended, then (``monitor``) the monitor refreshes and (``job``) the
    retraining job runs, both as of ``as_of``.

    ``served`` carries the request's inputs (and label, when known); any prediction, probability
    or model id it carries is replaced by the champion's.
    """
    from driftgate import tasks
    from driftgate.monitoring.traffic import log_traffic
    from driftgate.pipeline import run_retraining_job

    began = time.perf_counter()
    ws.activate_mlflow()
    scorers = scorers or Scorers(ws)
    version = ws.registry.alias_version(ws.settings.project.model_name, "champion")
    if version is None:
        raise ConfigError(f"{ws.settings.project.model_name}: no champion to serve with (driftgate init --train)")
    rows = served_as(ws, served, version, scorers(version)) if len(served) else served  # a quiet window
    if len(rows):
        log_traffic(ws, rows, model_version=version)
    for name, data in (training or {}).items():
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        if table.num_rows:
            ws.tables.write(name, table, mode="append")
    if monitor:
        tasks.monitor(ws, now=as_of)
    result = run_retraining_job(ws, trigger=trigger, now=as_of) if job else None
    return StepRecord(version, rows, result, time.perf_counter() - began, _train_seconds(ws, result))


# --------------------------------------------------------------------------- the source


class _Source:
    """The user's tables, read window by window (never written)."""

    def __init__(self, ws):
        self.ws = ws
        s = ws.settings
        self.cols = s.monitor.columns
        self.training: list[tuple[str, str | None]] = [(s.training.table, s.training.timestamp_col)]
        self.training += [(lk.table_name, lk.timestamp_lookup_key) for lk in s.training.feature_lookups]

    def _read(self, name: str, ts: str | None, start: datetime | None, end: datetime) -> pa.Table:
        filters = [] if ts is None else [(ts, "<", end)] + ([(ts, ">=", start)] if start is not None else [])
        return self.ws.tables.read(name, filters=filters or None)

    def inference(self, start: datetime, end: datetime) -> pd.DataFrame:
        return self._read(self.ws.settings.project.inference_table, self.cols.timestamp, start, end).to_pandas()

    def training_rows(self, start: datetime | None, end: datetime) -> dict[str, pa.Table]:
        """Rows of the training tables timestamped in [start, end); static feature tables only when start is None."""
        out = {}
        for name, ts in self.training:
            if ts is None and start is not None:
                continue
            out[name] = self._read(name, ts, start, end)
        return out


# --------------------------------------------------------------------------- the backtest


@dataclass
class _Policy:
    name: str
    kind: str
    ws: Any = None
    scorers: Any = None
    rule_set: RuleSet | None = None
    setup_seconds: float = 0.0


def _scratch_settings(load: Callable[[tuple[str, ...]], Any], overrides: tuple[str, ...], root: Path):
    """The user's settings with ``overrides``, pointed at a scratch local workspace, notifications off."""
    settings = load(overrides)
    data = settings.model_dump(mode="json")
    data["workspace"] = {**data["workspace"], "backend": "local", "root": str(root), "tracking_uri": None,
                         "registry_uri": None}
    data["promotion"]["notifications"] = {**data["promotion"]["notifications"], "webhook_url": None, "on": []}
    return settings.revalidated(data)


def _open_policy(policy: _Policy, load, overrides: tuple[str, ...], root: Path, history: dict[str, pa.Table],
                 baseline: pd.DataFrame | None) -> None:
    """Its scratch workspace, the training history written, the first champion bootstrapped; the
    user's baseline rows (when there are) scored by that champion become its baseline."""
    from driftgate.promotion.bootstrap import bootstrap
    from driftgate.workspace import open_workspace

    began = time.perf_counter()
    ws = open_workspace(_scratch_settings(load, overrides, root))
    for name, table in history.items():
        ws.tables.write(name, table, mode="overwrite")
    first = bootstrap(ws)
    policy.ws, policy.scorers = ws, Scorers(ws)
    if baseline is not None and ws.settings.monitor.baseline_table_name:
        rows = served_as(ws, baseline, first.version, policy.scorers(first.version))
        ws.tables.write(ws.settings.monitor.baseline_table_name, pa.Table.from_pandas(rows, preserve_index=False),
                        mode="overwrite")
    policy.setup_seconds = time.perf_counter() - began


def _record(policy: str, i: int, start: datetime, end: datetime, step: StepRecord, cols) -> WindowRecord:
    labelled, auc, acc = _quality(step.served, cols)
    rec = WindowRecord(policy, i, start.isoformat(), end.isoformat(), end.isoformat(), step.served_version,
                       len(step.served), labelled, auc, acc, seconds=step.seconds, train_seconds=step.train_seconds,
                       champion_after=step.served_version)
    job = step.job
    if job is not None:
        rec.gate_status = job.decision_status
        rec.fired = job.decision_status == "EXCEEDED"
        rec.retrained = job.branch == "retrain"
        rec.cooldown_skip = rec.fired and not rec.retrained
        rec.challenger_version = job.challenger_version
        rec.shadow_status = job.shadow_status
        rec.promoted = bool(job.promoted)
        rec.champion_after = job.champion_after
    return rec


def windows_of(start: datetime, end: datetime, window: timedelta) -> list[tuple[datetime, datetime]]:
    if end <= start:
        raise ConfigError(f"--to: must be after --from, got {start.isoformat()} .. {end.isoformat()}", key="--to")
    out, t = [], start
    while t < end:
        out.append((t, min(t + window, end)))
        t += window
    return out


def _first_after(records: list[WindowRecord], change_at: datetime | None, what: str) -> WindowRecord | None:
    if change_at is None:
        return None
    for r in records:
        if getattr(r, what) and datetime.fromisoformat(r.as_of) > change_at:
            return r
    return None


def summarise(records: list[WindowRecord], kinds: dict[str, str], setup: dict[str, float],
              change_at: datetime | None) -> list[PolicySummary]:
    """Each policy's totals (pure)."""
    by: dict[str, list[WindowRecord]] = {}
    for r in records:
        by.setdefault(r.policy, []).append(r)
    never = {r.window: r.roc_auc for r in by.get(NEVER, [])}

    def mean(values):
        values = [v for v in values if v is not None and not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    out = []
    for name, recs in by.items():
        fired = _first_after(recs, change_at, "fired" if kinds[name] == "rules" else "retrained")
        promoted = _first_after(recs, change_at, "promoted")
        delay = (lambda r: None if r is None else (datetime.fromisoformat(r.as_of) - change_at).total_seconds() / 86400)
        rows_to = None
        if promoted is not None:
            rows_to = sum(r.rows for r in recs if datetime.fromisoformat(r.end) > change_at
                          and r.window <= promoted.window)
        out.append(PolicySummary(
            policy=name, kind=kinds[name], windows=len(recs), gate_firings=sum(r.fired for r in recs),
            cooldown_skips=sum(r.cooldown_skip for r in recs), retrains=sum(r.retrained for r in recs),
            promotions=sum(r.promoted for r in recs), mean_roc_auc=mean(r.roc_auc for r in recs),
            mean_accuracy=mean(r.accuracy for r in recs),
            roc_auc_vs_never=mean(r.roc_auc - never[r.window] for r in recs if r.window in never),
            detection_delay_days=delay(fired), promotion_delay_days=delay(promoted), rows_to_promotion=rows_to,
            seconds=setup.get(name, 0.0) + sum(r.seconds for r in recs),
            train_seconds=sum(r.train_seconds for r in recs), setup_seconds=setup.get(name, 0.0)))
    return out


def run_backtest(load: Callable[[tuple[str, ...]], Any], *, start: datetime, end: datetime,
                 rule_sets: list[RuleSet], every_days: int | None = 7, change_at: datetime | None = None,
                 output: Path, window_days: int = 1, experiment: str | None = None, log_runs: bool = True,
                 say: Callable[[str], None] = lambda _: None) -> BacktestResult:
    """Replay [start, end) window by window for each rule set and the two baselines (module docstring).

    Args:
        load: the user's settings with extra overrides (``load(()`` is the user's configuration).
        rule_sets: the rule sets (at least one; ``RuleSet("configured", (), ...)`` is the conf as is).
        every_days: the scheduled baseline retrains every this many days (None or 0: no such baseline).
        change_at: a known change time: detection and promotion delays are measured from it.
        output: folder for the workspaces, the tables (CSV, JSON) and the chart; emptied first.
        experiment: MLflow experiment of the report runs (default: the project's).
        log_runs: log one MLflow run per rule set into the user's tracking store.
    """
    from driftgate.workspace import open_workspace

    if not rule_sets:
        raise ConfigError("--rules: give at least one rule set", key="--rules")
    names = [r.name for r in rule_sets]
    if len(set(names)) != len(names) or {NEVER, every_name(every_days or 0)} & set(names):
        raise ConfigError(f"--rules: rule set names must be distinct and not {NEVER!r} / "
                          f"{every_name(every_days or 0)!r}, got {names}", key="--rules")
    if every_days and every_days % window_days:
        raise ConfigError(f"--every: must be a multiple of --window-days ({window_days}), got {every_days}",
                          key="--every")
    user = open_workspace(load(()))
    source = _Source(user)
    cols = user.settings.monitor.columns
    spans = windows_of(start, end, timedelta(days=window_days))
    output = Path(output).resolve()
    shutil.rmtree(output / "workspaces", ignore_errors=True)
    output.mkdir(parents=True, exist_ok=True)

    history = source.training_rows(None, start)
    baseline_name = user.settings.monitor.baseline_table_name
    baseline = user.tables.read(baseline_name).to_pandas() if baseline_name and user.tables.exists(baseline_name) \
        else None
    policies = [_Policy(r.name, "rules", rule_set=r) for r in rule_sets]
    if every_days:
        policies.append(_Policy(every_name(every_days), "every"))
    for p in policies:
        overrides = p.rule_set.overrides if p.rule_set else ("gate.mode=always", "gate.retrain_cooldown=null")
        say(f"{p.name}: bootstrapping the first champion in {output / 'workspaces' / p.name}")
        _open_policy(p, load, overrides, output / "workspaces" / p.name / ".driftgate", history, baseline)
    first = policies[0]
    first_version = first.ws.registry.alias_version(first.ws.settings.project.model_name, "champion")
    never_scorer = first.scorers(first_version)

    records: list[WindowRecord] = []
    for i, (t0, t1) in enumerate(spans):
        served = source.inference(t0, t1)
        training = source.training_rows(t0, t1)
        began = time.perf_counter()
        first.ws.activate_mlflow()
        proba = never_scorer(served) if len(served) else np.array([])
        labelled, auc, acc = _quality(served, cols, proba, user.settings.promotion.decision_threshold)
        records.append(WindowRecord(NEVER, i, t0.isoformat(), t1.isoformat(), t1.isoformat(), first_version,
                                    len(served), labelled, auc, acc, champion_after=first_version,
                                    seconds=time.perf_counter() - began))
        for p in policies:
            due = p.kind == "rules" or (i + 1) % (every_days // window_days) == 0
            step = replay_step(p.ws, served=served, as_of=t1, training=training, monitor=p.kind == "rules",
                               job=due, scorers=p.scorers)
            records.append(_record(p.name, i, t0, t1, step, cols))
        say(f"window {i + 1}/{len(spans)} {t0:%Y-%m-%d}: " + ", ".join(
            f"{r.policy} {r.gate_status or '-'}{' promoted' if r.promoted else ''}" for r in records[-len(policies):]))

    kinds = {NEVER: "never", **{p.name: p.kind for p in policies}}
    summaries = summarise(records, kinds, {p.name: p.setup_seconds for p in policies}, change_at)
    files = write_report(records, summaries, output, change_at)
    run_ids = log_report_runs(user, rule_sets, summaries, files, experiment,
                              {"from": start.isoformat(), "to": end.isoformat(), "window_days": window_days,
                               "every_days": every_days or 0, "change_at": change_at.isoformat() if change_at else ""}
                              ) if log_runs else {}
    return BacktestResult(records, summaries, output, files, run_ids)


# --------------------------------------------------------------------------- report


def write_report(records: list[WindowRecord], summaries: list[PolicySummary], output: Path,
                 change_at: datetime | None) -> dict[str, Path]:
    """``windows.csv``, ``summary.csv``, ``backtest.json`` and ``backtest.png`` in ``output``."""
    files = {"windows": output / "windows.csv", "summary": output / "summary.csv", "json": output / "backtest.json",
             "chart": output / "backtest.png"}
    pd.DataFrame([asdict(r) for r in records]).to_csv(files["windows"], index=False)
    pd.DataFrame([asdict(s) for s in summaries]).to_csv(files["summary"], index=False)
    files["json"].write_text(json.dumps({"summary": [asdict(s) for s in summaries],
                                         "windows": [asdict(r) for r in records],
                                         "change_at": change_at.isoformat() if change_at else None},
                                        default=str, indent=1).replace("NaN", "null"))
    draw_chart(records, files["chart"], change_at)
    return files


def draw_chart(records: list[WindowRecord], path: Path, change_at: datetime | None) -> None:
    """Served ROC AUC per window and policy; gate firings (x) and promotions (star) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame([asdict(r) for r in records])
    frame["start"] = pd.to_datetime(frame["start"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for policy, part in frame.groupby("policy", sort=False):
        line, = ax.plot(part["start"], part["roc_auc"], marker=".", label=policy,
                        linestyle="--" if policy == NEVER else "-")
        fired = part[part["fired"]]
        ax.scatter(fired["start"], fired["roc_auc"], marker="x", color=line.get_color(), s=40)
        promoted = part[part["promoted"]]
        ax.scatter(promoted["start"], promoted["roc_auc"], marker="*", color=line.get_color(), s=160,
                   edgecolors="black", zorder=3)
    if change_at is not None:
        ax.axvline(pd.Timestamp(change_at), color="grey", linestyle=":", label="change")
    ax.set_ylabel("served ROC AUC (labelled rows)")
    ax.set_title("backtest: x = gate fired, * = promoted (takes effect the next window)")
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_report_runs(user_ws, rule_sets: list[RuleSet], summaries: list[PolicySummary], files: dict[str, Path],
                    experiment: str | None, params: dict[str, Any]) -> dict[str, str]:
    """One MLflow run per rule set in the user's tracking store: params = the rule set and the backtest's
    settings, metrics = its totals and the baselines', artifacts = the tables and the chart."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    exp_id = user_ws.experiment_id(experiment)
    client = MlflowClient(user_ws.tracking_uri, user_ws.registry_uri)
    by = {s.policy: s for s in summaries}
    numeric = [k for k, v in asdict(summaries[0]).items() if k not in ("policy", "kind")]
    ids = {}
    for rule_set in rule_sets:
        run = client.create_run(exp_id, run_name=f"backtest {rule_set.name}",
                                tags={"driftgate.stage": "backtest", "driftgate.backtest.rule_set": rule_set.name,
                                      "driftgate.backtest.source": rule_set.source})
        run_id = run.info.run_id
        flat = {**{f"backtest.{k}": str(v) for k, v in params.items()},
                **{f"rules.{k}"[:250]: v[:6000] for k, v in _flatten(rule_set.values).items()}}
        metrics = []
        for policy, summary in by.items():
            prefix = "" if policy == rule_set.name else (f"{summary.kind}." if summary.kind != "rules" else None)
            if prefix is None:
                continue
            for key in numeric:
                value = getattr(summary, key)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    metrics.append(Metric(f"{prefix}{key}", float(value), 0, 0))
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in flat.items()],
                         tags=[RunTag("driftgate.backtest.output", str(files["json"].parent))])
        for path in files.values():
            client.log_artifact(run_id, str(path), "backtest")
        client.set_terminated(run_id, "FINISHED")
        ids[rule_set.name] = run_id
    return ids
