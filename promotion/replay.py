"""Shadow evaluation: replay the traffic the champion served through both models.

I/O lives here (inference table, model loading, the shadow table, MLflow, the audit
trail); every judgement is made by :func:`driftgate.promotion.policy.decide`.
"""
from __future__ import annotations

import logging
import math
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:  # pandas loads where frames are built, not with the settings
    import pandas as pd

from driftgate.workspace.audit import record_event
from driftgate.core.errors import PromotionRefused, RegistryError, TableError
from driftgate.monitoring.contract import model_input_columns
from driftgate.promotion import policy
from driftgate.promotion.results import ShadowResult
from driftgate.promotion.scoring import NEEDS_PROBABILITY, Scored, load_scorer

__all__ = ["set_challenger", "shadow", "shadow_table_name", "load_scorer", "model_inputs"]

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"

log = logging.getLogger("driftgate.promotion")


def shadow_table_name(ws) -> str:
    """``<inference_table><shadow_table_suffix>``: same schema, the challenger's version as model id."""
    return f"{ws.settings.project.inference_table}{ws.settings.promotion.shadow_table_suffix}"


def set_challenger(ws, version: str) -> None:
    """Point the ``challenger`` alias at ``version`` (a registered candidate).

    Raises:
        PromotionRefused: the version does not exist or already is the champion.
    """
    name = ws.settings.project.model_name
    version = str(version)
    try:
        ws.registry.get_version(name, version)
    except RegistryError as exc:
        _refuse(ws, version, f"cannot make {name} version {version} the challenger: it does not exist ({exc})")
    if ws.registry.alias_version(name, CHAMPION) == version:
        _refuse(ws, version, f"{name} version {version} is the champion already; it cannot also be the challenger")
    before = ws.registry.alias_version(name, CHALLENGER)
    ws.registry.set_alias(name, CHALLENGER, version)
    record_event(ws, "promotion", subject=f"{name}@{version}", status="challenger_set",
                 details={"version": version, "replaced_challenger": before})


def _refuse(ws, version: str | None, message: str) -> None:
    name = ws.settings.project.model_name
    record_event(ws, "refusal", subject=f"{name}@{version}", status="refused", details={"reason": message})
    from driftgate.promotion import notify

    notify.send(ws, "refusal", message, {"model": name, "version": version})
    raise PromotionRefused(message, model=name, version=version)


# --------------------------------------------------------------------------- models


def model_inputs(uri: str) -> list[tuple[str, str]] | None:
    """``[(column, type)]`` of the model's input signature, or None without a signature."""
    import mlflow

    info = mlflow.models.get_model_info(uri)
    sig = info.signature
    if sig is None or sig.inputs is None:
        return None
    out = []
    for spec in sig.inputs.to_dict():
        out.append((str(spec.get("name")), str(spec.get("type"))))
    return out


# --------------------------------------------------------------------------- the window


def _window(ws, champion: str | None, unseen_from: pd.Timestamp | None = None, as_of=None
            ) -> tuple[pd.DataFrame, Any, Any, pa.Schema]:
    """Rows the champion served in the last ``shadow_days`` days of its traffic, and the table schema.

    ``unseen_from`` (the challenger's ``driftgate.trained_before`` tag) clips the window so the
    challenger is never judged on rows it was fitted on: retraining appends served, labelled
    rows to the training data, and scoring them again would flatter the challenger.
    Column roles come from the inference-table contract (``monitor.inference_log``); ``as_of``
    leaves out rows served after it (replaying history).

    Bounded: the newest served time is found from the timestamp column alone, then only the
    window's rows are read (a filtered store read, pushed into the scan: Delta file skipping
    locally, a Spark filter on Databricks), and at most ``promotion.shadow_max_rows`` of them,
    the newest, are kept (the window's start then moves to the oldest row kept).
    """
    import pandas as pd
    import pyarrow.compute as pc

    table = ws.settings.project.inference_table
    cols = ws.settings.monitor.columns
    if not ws.tables.exists(table):
        raise TableError(f"{table}: the inference table does not exist; nothing to replay (a model's first "
                         "champion and baseline come from `driftgate init --train` or `driftgate init --version V "
                         "--holdout ROWS`; served traffic from `driftgate log-traffic`)", table=table)
    ts = cols.timestamp
    schema = ws.tables.schema(table)
    aware = getattr(schema.field(ts).type, "tz", None) is not None

    def stamp(value) -> pd.Timestamp:
        """``value`` as the column stores times: UTC, tz-aware or naive."""
        t = pd.Timestamp(value)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        return t if aware else t.tz_localize(None)

    served = [(cols.model_id, "=", champion)] if champion is not None else []
    if as_of is not None:
        served.append((ts, "<=", stamp(as_of).to_pydatetime()))
    newest = pc.max(ws.tables.read(table, columns=[ts], filters=served or None).column(ts)).as_py()
    if newest is None:
        return schema.empty_table().to_pandas(), None, None, schema
    end = stamp(newest)
    start, op = end - timedelta(days=ws.settings.promotion.shadow_days), ">"
    if unseen_from is not None and stamp(unseen_from) > start:
        start, op = stamp(unseen_from), ">="
    arrow = ws.tables.read(table, filters=[*served, (ts, op, start.to_pydatetime()), (ts, "<=", end.to_pydatetime())])
    frame = arrow.to_pandas()
    cap = ws.settings.promotion.shadow_max_rows
    if len(frame) > cap:
        log.warning("shadow window of %s: %d rows served since %s; scoring the newest %d "
                    "(promotion.shadow_max_rows)", table, len(frame), start, cap)
        frame = frame.sort_values(ts, kind="mergesort").tail(cap)
        start = frame[ts].iloc[0]
    return frame.reset_index(drop=True), start, end, arrow.schema


def _trained_before(info) -> pd.Timestamp | None:
    import pandas as pd
    from driftgate.training.trainer import TRAINED_BEFORE_TAG

    text = (info.tags or {}).get(TRAINED_BEFORE_TAG)
    if not text:
        return None  # registered outside driftgate's training: nothing known, no clipping
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _write_shadow_rows(ws, frame: pd.DataFrame, version: str, scored: Scored, schema: pa.Schema) -> None:
    """Replace this challenger's rows for these requests (by request id, else by time) in one Delta commit."""
    import pandas as pd

    name = shadow_table_name(ws)
    cols = ws.settings.monitor.columns
    out = frame.copy()
    out[cols.model_id] = version
    out[cols.prediction] = scored.prediction
    if cols.probability:  # P(positive class): binary only, else null
        binary = scored.probability is not None and scored.probability.ndim == 1
        out[cols.probability] = scored.probability if binary else None
    new = pa.Table.from_pandas(out[[f.name for f in schema]], schema=schema, preserve_index=False)
    if not ws.tables.exists(name):
        ws.tables.write(name, new, mode="append")
        return
    old = ws.tables.read(name, filters=[(cols.model_id, "=", version)])
    if old.num_rows:
        if cols.request_id:
            replaced = pd.Series(old.column(cols.request_id).to_pylist()).isin(set(out[cols.request_id]))
        else:
            stamps = pd.Series(old.column(cols.timestamp).to_pandas())
            replaced = stamps.between(out[cols.timestamp].min(), out[cols.timestamp].max())
        keep = ~replaced.to_numpy()
        old = old.filter(pa.array(keep)).cast(new.schema) if keep.any() else old.slice(0, 0).cast(new.schema)
        new = pa.concat_tables([old, new])
    ws.tables.write(name, new, replace_where=f"{cols.model_id} = '{version}'")


# --------------------------------------------------------------------------- the stage


def shadow(ws, *, challenger_version: str | None = None, as_of=None) -> ShadowResult:
    """Shadow-evaluate the challenger against the champion on the champion's recent traffic.

    Replays the last ``promotion.shadow_days`` days of rows the champion served
    (``model_id`` = champion version) through both models, writes the challenger's
    predictions to the shadow table, judges them with :func:`driftgate.promotion.policy.decide`,
    logs the report to MLflow and records a ``shadow`` event.

    Args:
        ws: the open workspace.
        challenger_version: the version to evaluate (default: the ``challenger`` alias).
        as_of: replay as of this time: rows served after it are left out of the window.

    Returns:
        A :class:`ShadowResult`; only PASS lets :func:`driftgate.promotion.promote` move aliases.

    Raises:
        PromotionRefused: there is no challenger, or its version no longer exists (recorded).
        TableError: the inference table is missing.
    """
    import mlflow

    cfg = ws.settings.promotion
    name = ws.settings.project.model_name
    registry = ws.registry
    challenger = str(challenger_version) if challenger_version else registry.alias_version(name, CHALLENGER)
    if challenger is None:
        _refuse(ws, None, f"{name}: no challenger to evaluate; set one with promotion.set_challenger or "
                          "pass challenger_version")
    try:
        challenger_info = registry.get_version(name, challenger)
    except RegistryError as exc:
        _refuse(ws, challenger, f"{name} version {challenger}: cannot shadow-test a version that does not exist ({exc})")
    champion = registry.alias_version(name, CHAMPION)
    ws.activate_mlflow()

    problems: list[str] = []
    if champion == challenger:
        problems.append(f"version {challenger} is the champion already; nothing to compare")
    frame, start, end, schema = _window(ws, champion, _trained_before(challenger_info), as_of)

    chal_uri = f"models:/{name}/{challenger}"
    champ_uri = f"models:/{name}/{champion}" if champion else None
    chal_inputs = model_inputs(chal_uri)
    champ_inputs = model_inputs(champ_uri) if champ_uri else None
    if chal_inputs is not None and champ_inputs is not None and chal_inputs != champ_inputs:
        problems.append(_signature_diff(champion, challenger, champ_inputs, chal_inputs))
    columns = [c for c, _ in (chal_inputs or champ_inputs or [])] or model_input_columns(ws.settings)
    missing = [c for c in columns if c not in frame.columns] if not frame.empty else []
    if missing:
        problems.append(f"the inference table lacks the model inputs {missing}")

    scored_a = scored_c = None
    if not frame.empty and not problems:
        scored_c, scored_a = _score_both(ws, frame, (chal_uri, columns), (champ_uri, [c for c, _ in (
            champ_inputs or [])] or columns), problems)

    evidence, extra = _evidence(cfg, frame, champion, scored_a, scored_c, problems, ws.settings.project.problem_type,
                                ws.settings.monitor.columns.label)
    verdict = policy.decide(cfg, evidence)
    if not frame.empty and not problems:
        _write_shadow_rows(ws, frame, challenger, scored_c, schema)

    result = ShadowResult(
        status=verdict.status, model_name=name, champion_version=champion, challenger_version=challenger,
        metrics=extra["metrics"], reasons=verdict.reasons, checks=verdict.checks, interval=evidence.interval,
        mcnemar_p=evidence.mcnemar_p, fairness=tuple(extra["fairness"]), gaps=extra["gaps"],
        n_rows=evidence.n_rows, n_labelled=evidence.n_labelled,
        window_start=str(start) if start is not None else None, window_end=str(end) if end is not None else None,
        shadow_table=shadow_table_name(ws) if not frame.empty and not problems else None,
        shadow_id=uuid.uuid4().hex[:12],
    )
    from driftgate.promotion import report

    run_id = report.log_shadow_report(result, cfg, ws=ws)
    result = _with(result, run_id=run_id)
    record_event(ws, "shadow", subject=f"{name}@{challenger}", status=result.status, details={
        "champion": champion, "challenger": challenger, "run_id": run_id, "reasons": list(result.reasons),
        "n_rows": result.n_rows, "n_labelled": result.n_labelled, "shadow_id": result.shadow_id,
        **{k: v for k, v in result.metrics.items() if not (isinstance(v, float) and math.isnan(v))},
    })
    try:
        for key, value in _shadow_tags(result).items():
            registry.set_tag(name, challenger, key, value)
    except RegistryError:
        pass  # tags annotate; the decision is in the audit trail and the MLflow run
    return result


def _with(result: ShadowResult, **changes) -> ShadowResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def _shadow_tags(result: ShadowResult) -> dict[str, str]:
    tags = {"driftgate_shadow_status": result.status, "driftgate_shadow_run_id": result.run_id or "",
            "driftgate_shadow_champion": result.champion_version or "none"}
    primary = result.interval.metric if result.interval else "roc_auc"
    for key in dict.fromkeys(("challenger_roc_auc", "challenger_accuracy_score", "delta_roc_auc",
                              f"challenger_{primary}", f"delta_{primary}")):
        if key in result.metrics and not math.isnan(result.metrics[key]):
            tags[f"driftgate_{key}"] = f"{result.metrics[key]:.4f}"
    return tags


def _signature_diff(champion, challenger, champ_inputs, chal_inputs) -> str:
    a, c = dict(champ_inputs), dict(chal_inputs)
    missing = sorted(set(a) - set(c))
    extra = sorted(set(c) - set(a))
    changed = sorted(k for k in set(a) & set(c) if a[k] != c[k])
    parts = []
    if missing:
        parts.append(f"missing inputs {missing}")
    if extra:
        parts.append(f"unexpected inputs {extra}")
    if changed:
        parts.append("changed types " + ", ".join(f"{k}: {a[k]} -> {c[k]}" for k in changed))
    if not parts:
        parts.append("input order differs")
    return (f"challenger v{challenger}'s input signature does not match champion v{champion}'s: "
            + "; ".join(parts))


def _score_both(ws, frame: pd.DataFrame, challenger: tuple[str, list[str]], champion: tuple[str | None, list[str]],
                problems: list[str]) -> tuple[Scored | None, Scored | None]:
    """Both models' :class:`Scored` on the window; a model that cannot score it becomes a problem."""
    cfg = ws.settings.promotion
    problem_type = ws.settings.project.problem_type
    out: list[Scored | None] = []
    for role, (uri, columns) in (("challenger", challenger), ("champion", champion)):
        if uri is None:
            out.append(None)
            continue
        try:
            scored = load_scorer(uri, columns, problem_type, threshold=cfg.decision_threshold).score(frame)
        except Exception as exc:  # a model that cannot score the served rows must not be promoted
            problems.append(f"scoring the shadow window failed: {type(exc).__name__}: {exc}")
            return None, None
        needs = sorted(NEEDS_PROBABILITY & set(cfg.metrics))
        if problem_type != "regression" and scored.probability is None and needs:
            problems.append(f"the {role} {uri} returns classes only, so {needs} (promotion.metrics) cannot be "
                            "computed; log it with probabilities (pyfunc_predict_fn='predict_proba')")
        out.append(scored)
    return out[0], out[1]


def _labels(frame: pd.DataFrame, mask: np.ndarray, problem_type: str, label: str) -> np.ndarray:
    import pandas as pd

    y = frame.loc[mask, label]
    if problem_type == "regression":
        return y.astype("float64").to_numpy()
    return y.astype("int64").to_numpy() if pd.api.types.is_numeric_dtype(y) else y.to_numpy(dtype=object)


def _evidence(cfg, frame: pd.DataFrame, champion: str | None, scored_a: Scored | None, scored_c: Scored | None,
              problems: list[str], problem_type: str = "binary", label: str | None = "label"
              ) -> tuple[policy.ShadowEvidence, dict[str, Any]]:
    n_rows = len(frame)
    extra: dict[str, Any] = {"metrics": {}, "fairness": [], "gaps": {}}
    if problems or n_rows == 0:
        return policy.ShadowEvidence(n_rows, 0, {}, problems=tuple(problems)), extra
    metrics: dict[str, float] = {}
    if champion:
        metrics.update(policy.agreement((scored_a.prediction, scored_a.probability),
                                        (scored_c.prediction, scored_c.probability), problem_type=problem_type))
    labelled = frame[label].notna().to_numpy() if label else np.zeros(n_rows, dtype=bool)
    n_lab = int(labelled.sum())
    if n_lab == 0:
        extra["metrics"] = metrics
        return policy.ShadowEvidence(n_rows, 0, {}), extra
    y = _labels(frame, labelled, problem_type, label)
    pc, qc = scored_c.take(labelled).metric_inputs(y)
    chal_m = policy.model_metrics(y, pc, qc, cfg.metrics, problem_type)
    champ_m = None
    interval = p = counts = None
    gaps: dict[str, dict[str, float]] = {"challenger": {}, "champion": {}}
    models = [("challenger", pc)]
    if champion:
        pa_, qa = scored_a.take(labelled).metric_inputs(y)
        champ_m = policy.model_metrics(y, pa_, qa, cfg.metrics, problem_type)
        models.append(("champion", pa_))
        if n_lab >= cfg.min_labelled_rows:
            interval = policy.paired_bootstrap(y, (pa_, qa), (pc, qc), metric=cfg.primary_metric,
                                               n_resamples=cfg.guard.n_resamples, confidence=cfg.guard.confidence,
                                               seed=cfg.guard.seed, problem_type=problem_type)
        if problem_type != "regression":
            p, counts = policy.mcnemar(y, pa_, pc)
    fair = cfg.fairness
    for column in fair.protected_columns:
        if column not in frame.columns:
            problems.append(f"protected column {column!r} (promotion.fairness.protected_columns) "
                            "is not in the inference table")
            continue
        groups = frame.loc[labelled, column].to_numpy(dtype=object)
        for role, pred in models:
            rows = policy.slice_rates(y, pred, groups, fair.metrics)
            for r in rows:
                extra["fairness"].append({"column": column, "model": role, **r})
            for metric, gap in policy.fairness_gaps(rows, fair.metrics, fair.min_slice_rows).items():
                gaps[role][f"{column}/{metric}"] = gap
    for m, v in chal_m.items():
        metrics[f"challenger_{m}"] = v
        if champ_m is not None:
            metrics[f"champion_{m}"] = champ_m[m]
            metrics[f"delta_{m}"] = v - champ_m[m]
    if interval is not None:
        metrics.update({f"ci_low_{interval.metric}": interval.low, f"ci_high_{interval.metric}": interval.high})
    if p is not None:
        metrics["mcnemar_p"] = p
    extra.update(metrics=metrics, gaps=gaps if champion else {"challenger": gaps["challenger"]})
    ev = policy.ShadowEvidence(
        n_rows=n_rows, n_labelled=n_lab, challenger_metrics=chal_m, champion_metrics=champ_m, interval=interval,
        mcnemar_p=p, mcnemar_counts=counts, challenger_gaps=gaps["challenger"], champion_gaps=gaps["champion"],
        problems=tuple(problems),
    )
    return ev, extra
