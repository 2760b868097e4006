"""Primitive config types shared by every section model.

Kept apart from :mod:`driftgate.core.settings` so that each package's own config
module can use them without importing the whole settings tree.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["StrictModel", "TableName", "ModelName", "SchemaName", "split_name", "ProblemType", "PROBLEM_TYPES",
           "refuse_foreign"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_\-]*"
_THREE = re.compile(rf"^{_IDENT}\.{_IDENT}\.{_IDENT}$")
_TWO = re.compile(rf"^{_IDENT}\.{_IDENT}$")

ProblemType = Literal["binary", "multiclass", "regression"]
"""What the model predicts: one of two classes, one of several, or a number (``project.problem_type``)."""
PROBLEM_TYPES: tuple[str, ...] = ("binary", "multiclass", "regression")


def refuse_foreign(key: str, names, allowed, problem: str, what: str = "metrics") -> None:
    """Refuse the ``names`` at config ``key`` that ``problem`` does not have (``allowed``).

    Raises:
        ValueError: ``<key>: [...] are not <problem> <what> (project.problem_type); expected some of [...]``.
    """
    wrong = [n for n in names if n not in allowed]
    if wrong:
        raise ValueError(f"{key}: {wrong} are not {problem} {what} (project.problem_type); "
                         f"expected some of {list(allowed)}")


class StrictModel(BaseModel):
    """Base of every config model: unknown keys fail, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, use_attribute_docstrings=True)


def _three_level(value: str) -> str:
    if not _THREE.match(value):
        raise ValueError(f"must be a Unity Catalog name 'catalog.schema.name', got {value!r}")
    return value


def _two_level(value: str) -> str:
    if not _TWO.match(value):
        raise ValueError(f"must be a schema name 'catalog.schema', got {value!r}")
    return value


TableName = Annotated[str, AfterValidator(_three_level)]
"""A Unity-Catalog-style table name ``catalog.schema.table`` (same in every profile)."""

ModelName = Annotated[str, AfterValidator(_three_level)]
"""A three-level registered model name ``catalog.schema.model``."""

SchemaName = Annotated[str, AfterValidator(_two_level)]
"""A two-level schema name ``catalog.schema`` (e.g. a monitor's ``output_schema_name``)."""


def split_name(name: str) -> tuple[str, str, str]:
    """Split ``catalog.schema.table`` into its three parts (validated)."""
    catalog, schema, table = _three_level(name).split(".")
    return catalog, schema, table
