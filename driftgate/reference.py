"""Render the configuration reference from the typed models (the one source of truth).

``python -m driftgate.reference > docs/configuration.md``; a test fails when the
committed file is stale, so the reference can never drift from the code.
"""
from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from driftgate.core.settings import Settings

__all__ = ["render_reference"]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list, tuple, set):
        return f"list[{', '.join(_type_name(a) for a in args)}]"
    if origin is dict:
        return f"map[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} item(s)"
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) < 80 else f"`{text[:76]}...`"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _walk(model: type[BaseModel], prefix: str, rows: list[tuple[str, str, str, str]], seen: set) -> None:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        doc = (field.description or "").replace("\n", " ").replace("|", "\\|")
        rows.append((key, _type_name(field.annotation), _default(field), doc))
        for sub in _models_in(field.annotation):
            is_list = typing.get_origin(field.annotation) is list or any(
                typing.get_origin(a) is list for a in typing.get_args(field.annotation))
            if (sub, key) not in seen:
                seen.add((sub, key))
                _walk(sub, f"{key}[].", rows, seen) if is_list else _walk(sub, f"{key}.", rows, seen)


def render_reference() -> str:
    rows: list[tuple[str, str, str, str]] = []
    _walk(Settings, "", rows, set())
    out = [
        "# Configuration reference",
        "",
        "Generated from the typed models by `python -m driftgate.reference`; do not edit by hand.",
        "Layers (later wins): `conf/base/*.yml`, `conf/<env>/*.yml` (`local` or `databricks`),",
        "git-ignored `conf/user/*.yml`, then `--set key.path=value`. Unknown keys are errors.",
        "Layers merge onto these defaults: a section field by field, a mapping entry by entry (a `map[...]`",
        "default keeps the entries a layer does not name), a list of named items (`gate.rules`,",
        "`monitor.custom_metrics`, `triggers.plugins`) by `name` (`gate.rules.<name>.<field>`). Removing a",
        "default takes an explicit `null` (`promotion.criteria.roc_auc: null`), which is logged and recorded.",
        "`driftgate config --show-origin` prints every effective value and the layer that set it.",
        "Secrets never go here: they are read from environment variables (see the README).",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    out += [f"| `{k}` | {t} | {d} | {doc} |" for k, t, d, doc in rows]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
