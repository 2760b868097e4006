"""The inference-table contract, checked before a job trains or registers anything.

``monitor.inference_log`` names which column plays which role (timestamp, prediction, model
id, and the optional label, probability and request id). Every stage reads the table through
:attr:`MonitorConfig.columns`; this module checks, once, that the tables a job will touch
really have the columns the configuration names: the inference table, the baseline, the
training table, the protected (fairness) columns, plain-column slices and the model inputs
that shadow replay scores from the served rows.

:func:`contract_problems` is pure (settings + column lists in, one line per problem out);
:func:`check_inference_contract` reads the schemas and raises the first problem as a
:class:`ConfigError` naming the key and the column.
"""
from __future__ import annotations

from typing import Any

from driftgate.core.errors import ConfigError
from driftgate.monitoring.config import InferenceColumns
from driftgate.monitoring.expressions import ExpressionError, parse

__all__ = ["contract_problems", "check_inference_contract", "table_columns", "model_input_columns"]


def model_input_columns(settings) -> list[str]:
    """The model's inputs as configured: ``promotion.feature_columns``, else ``training``'s features."""
    return list(settings.promotion.feature_columns) or list(settings.training.features)


def _where(columns: list[str]) -> str:
    shown = ", ".join(columns[:25]) + (" ..." if len(columns) > 25 else "")
    return f"(columns: {shown})"


def contract_problems(settings, schemas: dict[str, list[str] | None], *, need_inference_table: bool = True,
                      need_training: bool = True) -> list[str]:
    """Every way the configured contract and the tables disagree, one line each (empty: all good).

    Args:
        settings: the validated :class:`Settings`.
        schemas: ``{table name: column names}`` for the tables that exist; a table that is
            missing maps to None (or is absent).
        need_inference_table: a missing inference table is a problem (a job start); False when
            the caller is about to create it (``init``, ``log-traffic``).
        need_training: check the training table and that the model has features.
    """
    problems: list[str] = []
    mon, project = settings.monitor, settings.project
    if mon.inference_log is None:
        return ["monitor.inference_log: the retraining loop needs an inference-log monitor "
                "(time_series / snapshot monitors have no predictions to judge)"]
    cols: InferenceColumns = mon.columns
    table = project.inference_table
    if mon.table_name != table:
        problems.append(f"monitor.table_name: must name the inference table project.inference_table ({table}), "
                        f"got {mon.table_name}")
    features = model_input_columns(settings)
    if need_training and not features:
        problems.append("training: the model has no features; set training.table_features or "
                        "training.feature_lookups[].features")
    have = schemas.get(table)
    if have is None:
        if need_inference_table:
            problems.append(f"project.inference_table: {table} does not exist; log served traffic first "
                            "(driftgate log-traffic) or bootstrap with driftgate init")
    else:
        problems += _role_problems(cols, have, table)
        for i, text in enumerate(mon.slicing_exprs):
            try:
                parse(text).check_columns(have, table)
            except ExpressionError as exc:
                problems.append(f"monitor.slicing_exprs[{i}]: {exc}")
        for column in settings.promotion.fairness.protected_columns:
            if column not in have:
                problems.append(f"promotion.fairness.protected_columns: column {column!r} is not in {table} "
                                f"{_where(have)}")
        missing = [c for c in features if c not in have]
        if missing:
            problems.append(f"training features {missing} are not columns of {table}: shadow replay scores the "
                            f"served rows with both models, so the inference table must log the model inputs "
                            f"{_where(have)}")
    baseline = mon.baseline_table_name
    if baseline and schemas.get(baseline) is not None:
        problems += [p.replace("monitor.inference_log.", "monitor.baseline_table_name: inference_log.", 1)
                     for p in _role_problems(cols, schemas[baseline], baseline, optional=False)]
    train = settings.training
    if need_training and schemas.get(train.table) is not None:
        tcols = schemas[train.table]
        wanted = {"training.label_col": train.label_col, "training.timestamp_col": train.timestamp_col}
        for i, lookup in enumerate(train.feature_lookups):
            for key in lookup.lookup_key:
                wanted[f"training.feature_lookups[{i}].lookup_key"] = key
        for key, column in wanted.items():
            if column not in tcols:
                problems.append(f"{key}: column {column!r} is not in {train.table} {_where(tcols)}")
        missing = [c for c in train.table_features if c not in tcols]
        if missing:
            problems.append(f"training.table_features: {missing} are not columns of {train.table} {_where(tcols)}")
    return problems


def _role_problems(cols: InferenceColumns, have: list[str], table: str, *, optional: bool = True) -> list[str]:
    out = []
    for key, column in cols.roles().items():
        if column not in have:
            hint = " (set it to null if the table has no such column)" if optional and key in (
                "label_col", "prediction_proba_col", "request_id_col") else ""
            out.append(f"monitor.inference_log.{key}: column {column!r} is not in {table} {_where(have)}{hint}")
    return out


def table_columns(ws, name: str | None) -> list[str] | None:
    """Column names of ``name``, or None when it does not exist (schema only, no rows read)."""
    if not name or not ws.tables.exists(name):
        return None
    schema = getattr(ws.tables, "schema", None)
    if schema is not None:
        return list(schema(name).names)
    return list(ws.tables.read(name).schema.names)


def check_inference_contract(ws, *, need_inference_table: bool = True, need_training: bool = True
                             ) -> InferenceColumns:
    """Check the configured contract against the tables; call it when a job starts.

    Returns the contract's columns. Raises :class:`ConfigError` with the first problem (and
    how many more), naming the configuration key and the missing column.
    """
    s = ws.settings
    names = {s.project.inference_table, s.monitor.baseline_table_name, s.training.table}
    schemas: dict[str, Any] = {n: table_columns(ws, n) for n in names if n}
    problems = contract_problems(s, schemas, need_inference_table=need_inference_table,
                                 need_training=need_training)
    if problems:
        more = f" (+{len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise ConfigError(f"inference-table contract: {problems[0]}{more}", key="monitor.inference_log")
    return s.monitor.columns
