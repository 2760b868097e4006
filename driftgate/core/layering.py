"""How configuration layers combine: strict YAML reading and a schema-aware merge.

Reading (:func:`read_layer_file`): a YAML file is read with a loader that refuses a
key defined twice in one mapping (naming both lines) and keeps every key as the text
written (``on:`` stays ``"on"``, YAML 1.1 would make it ``True``). It also returns the
line of every key, so errors can name ``file:line``.

Merging (:class:`LayerMerge`): layers are applied in order onto one tree, guided by
the typed models, so a layer never has to restate what it does not change:

* a section (model) merges field by field; missing fields keep the model's defaults;
* a mapping with defaults (``promotion.criteria``, ``training.quality_floor``,
  ``tuning.search_space`` ...) is seeded with its defaults the first time a layer
  touches it, then merged entry by entry and field by field;
* a list of named items (``gate.rules``, ``monitor.custom_metrics``,
  ``triggers.plugins``) is merged by ``name``: a layer's list updates the items it
  names and appends new ones; a mapping ``{<name>: {<field>: value}}`` (what
  ``--set gate.rules.<name>.<field>=value`` builds) changes fields of existing items,
  and an unknown name is an error listing the names;
* a list of unnamed items accepts ``<field>.<index>.<key>`` addressing, or is replaced;
* a tagged union (``{type: float ...}`` search parameters) is replaced when its tag changes.

Removing a default is explicit: ``null`` for an entry of a mapping or a named item
(``promotion.criteria.roc_auc: null``, ``gate.rules.f1_drop: null``), or for a field
inside one. Each removal is logged as a warning and recorded (:attr:`LayerMerge.removed`).
"""
from __future__ import annotations

import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from driftgate.core.errors import ConfigError

__all__ = ["Origin", "LayerMerge", "read_layer_file", "parse_value", "leaf_paths", "removed_defaults_tags", "dotted"]

_log = logging.getLogger("driftgate.config")
_MERGE_TAG = "tag:yaml.org,2002:merge"

Path_ = tuple[str, ...]


class Origin(NamedTuple):
    """Where a value came from: the layer (``base``, ``env:local``, ``user``, ``--set``) and the place."""

    layer: str
    source: str
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def dotted(path: Path_) -> str:
    return ".".join(path) or "<root>"


def removed_defaults_tags(settings: Any) -> dict[str, str]:
    """MLflow tags recording the explicit removals this run's settings carry (none: no tag).

    ``driftgate.config.removed_defaults`` = ``promotion.criteria.roc_auc (--set promotion.criteria.roc_auc); ...``,
    so a decision taken without a default safety check says so in its run.
    """
    if not settings.removed_defaults:
        return {}
    text = "; ".join(f"{path} ({settings.origin(path).where})" for path in settings.removed_defaults)
    return {"driftgate.config.removed_defaults": text[:4900]}


# --------------------------------------------------------------------------- reading


class _ConfLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, keeps keys as written, and records key lines."""

    def __init__(self, stream: str, name: str):
        super().__init__(stream)
        self.name = name
        self.lines: dict[Path_, int] = {}

    def construct_document(self, node):
        self._index(node, ())
        return super().construct_document(node)

    def _index(self, node, path: Path_) -> None:
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                here = (*path, key)
                if key in first:
                    raise ConfigError(
                        f"{self.name}:{line}: {dotted(here)}: expected each key once per mapping "
                        f"(first at {self.name}:{first[key]}), got it again",
                        source=self.name, key=dotted(here))
                first[key] = line
                self.lines[here] = line
                self._index(value_node, here)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[(*path, str(i))] = item.start_mark.line + 1
                self._index(item, (*path, str(i)))

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else self.construct_object(key_node, deep=deep)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping



def _load(text: str, name: str) -> tuple[Any, dict[Path_, int]]:
    loader = _ConfLoader(text, name)
    try:
        return loader.get_single_data(), loader.lines
    finally:
        loader.dispose()


def read_layer_file(path: Path) -> tuple[dict[str, Any], dict[Path_, int]]:
    """Read one conf file: its mapping and the line of each key path.

    Raises:
        ConfigError: invalid YAML, a duplicate key, or a top level that is not a mapping.
    """
    try:
        data, lines = _load(path.read_text(), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})", source=str(path)) from None
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: <root>: expected a mapping at the top level, got {type(data).__name__}",
                          source=str(path))
    return data, lines


def parse_value(raw: str, source: str) -> Any:
    """A ``--set`` value: YAML (same loader as the files), empty text as the empty string."""
    if raw == "":
        return ""
    try:
        return _load(raw, source)[0]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: expected a YAML value, got {raw!r} ({getattr(exc, 'problem', exc)})",
                          source=source) from None


def leaf_paths(data: Any, path: Path_ = ()) -> typing.Iterator[Path_]:
    """Paths of the values a layer sets (a list counts as one value; an empty mapping sets nothing)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaf_paths(value, (*path, str(key)))
    else:
        yield path


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class _Kind:
    kind: Literal["leaf", "model", "map", "named", "indexed", "tagged"]
    model: type[BaseModel] | None = None
    value: Any = None  # map: the value annotation
    tag: str | None = None  # tagged: the discriminator key


_LEAF = _Kind("leaf")


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _kind(ann: Any) -> _Kind:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        tag = next((m.discriminator for m in args[1:] if isinstance(m, FieldInfo) and m.discriminator), None)
        return _Kind("tagged", tag=tag) if isinstance(tag, str) else _kind(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _kind(rest[0]) if len(rest) == 1 else _LEAF
    if _is_model(ann):
        return _Kind("model", model=ann)
    if origin is dict and len(args) == 2:
        return _Kind("map", value=args[1])
    if origin is list and args and _is_model(args[0]):
        return _Kind("named" if "name" in args[0].model_fields else "indexed", model=args[0])
    return _LEAF


def _accepts_none(ann: Any) -> bool:
    if ann is Any:
        return True
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _accepts_none(args[0])
    return origin in (typing.Union, types.UnionType) and type(None) in args


def _field_kind(model: type[BaseModel] | None, key: str) -> tuple[_Kind, FieldInfo | None]:
    info = model.model_fields.get(key) if model is not None else None
    return (_kind(info.annotation) if info is not None else _LEAF), info


def _seed(kind: _Kind, info: FieldInfo | None) -> Any:
    """What a collection or section holds before any layer: its defaults (as plain data)."""
    default = info.get_default(call_default_factory=True) if info is not None and not info.is_required() else None
    if kind.kind in ("map", "named", "indexed"):
        if not default:
            return {} if kind.kind == "map" else []
        return TypeAdapter(info.annotation).dump_python(default)
    if isinstance(default, BaseModel):
        # Only what the default instance sets explicitly; the model fills the rest.
        return default.model_dump(exclude_unset=True)
    return {}


# --------------------------------------------------------------------------- merging


@dataclass
class LayerMerge:
    """Apply layers in order onto one tree shaped for ``model`` (see the module docstring)."""

    model: type[BaseModel]
    tree: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path_, Origin] = field(default_factory=dict)
    """Canonical path (named items by name) -> where the value was last set."""
    removed: dict[Path_, Origin] = field(default_factory=dict)
    """Explicit removals of something that existed (a default or an earlier layer's value)."""

    def apply(self, data: dict[str, Any], layer: str, source: str, lines: dict[Path_, int] | None = None) -> None:
        """Merge one layer's mapping (a file's content, or one ``--set`` as a nested mapping)."""
        self._layer, self._source, self._lines = layer, source, lines or {}
        self._merge_model(self.tree, data, _Kind("model", model=self.model), (), (), False)

    def removals(self) -> dict[Path_, Origin]:
        """Removals still in effect after every layer (a later layer may have set the value again)."""
        return {p: o for p, o in self.removed.items() if self._lookup(p) is None}

    # -- helpers

    def _origin(self, raw: Path_) -> Origin:
        return Origin(self._layer, self._source, self._lines.get(raw))

    def _set_origin(self, canon: Path_, raw: Path_) -> None:
        for p in [p for p in self.origins if p[: len(canon)] == canon]:
            del self.origins[p]
        self.origins[canon] = self._origin(raw)

    def _remove(self, canon: Path_, raw: Path_, what: str) -> None:
        origin = self._origin(raw)
        self.removed[canon] = origin
        for p in [p for p in self.origins if p[: len(canon)] == canon]:
            del self.origins[p]
        _log.warning("config: %s removes %s %s (explicit null)", origin.where, what, dotted(canon))

    def _fail(self, raw: Path_, canon: Path_, expected: str, got: Any) -> ConfigError:
        where = self._origin(raw).where
        return ConfigError(f"{where}: {dotted(canon)}: expected {expected}, got {got!r}", source=self._source,
                           key=dotted(canon))

    def _lookup(self, canon: Path_) -> Any:
        node: Any = self.tree
        for part in canon:
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list):
                node = _named(node).get(part) if node and _named(node) else (
                    node[int(part)] if part.isdigit() and int(part) < len(node) else None)
            else:
                return None
            if node is None:
                return None
        return node

    # -- the merge

    def _merge_model(self, node: dict, data: dict, kind: _Kind, canon: Path_, raw: Path_, inside: bool) -> None:
        for key, value in data.items():
            key = str(key)
            child_kind, info = _field_kind(kind.model, key)
            self._assign(node, key, value, child_kind, info, (*canon, key), (*raw, key), inside)

    def _merge_map(self, node: dict, data: dict, kind: _Kind, canon: Path_, raw: Path_) -> None:
        entry_kind = _kind(kind.value)
        for key, value in data.items():
            key = str(key)
            here, at = (*canon, key), (*raw, key)
            if value is None and not _accepts_none(kind.value):
                if node.get(key) is not None:
                    del node[key]
                    self._remove(here, at, "the entry")
                elif here not in self.removed:
                    raise self._fail(at, here, f"an entry to remove ({', '.join(node) or 'none defined'})", None)
                continue
            self._assign(node, key, value, entry_kind, None, here, at, True)

    def _assign(self, node: dict, key: str, value: Any, kind: _Kind, info: FieldInfo | None,
                canon: Path_, raw: Path_, inside: bool) -> None:
        existing = node.get(key)
        if isinstance(value, dict) and kind.kind != "leaf":
            if kind.kind == "tagged" and isinstance(existing, dict) and kind.tag in value \
                    and existing.get(kind.tag) != value.get(kind.tag):
                existing = None  # another kind of value: nothing of the old one applies
                self._set_origin(canon, raw)
            if not isinstance(existing, dict | list):
                # First touch: the defaults; over an explicit null or a shorthand: a fresh value.
                existing = _seed(kind, info) if key not in node else (
                    [] if kind.kind in ("named", "indexed") else {})
            node[key] = existing
            if kind.kind == "map" and isinstance(existing, dict):
                self._merge_map(existing, value, kind, canon, raw)
            elif kind.kind in ("named", "indexed") and isinstance(existing, list):
                self._address(existing, value, kind, canon, raw)
            elif kind.kind in ("model",) and isinstance(existing, dict):
                self._merge_model(existing, value, kind, canon, raw, inside)
            else:  # tagged: merge the fields of the same kind of value
                self._merge_model(existing, value, _Kind("model"), canon, raw, inside)
            return
        if isinstance(value, list) and kind.kind == "named":
            if not isinstance(existing, list):
                existing = _seed(kind, info)
            node[key] = existing
            self._declare(existing, value, kind, canon, raw)
            return
        if value is None and inside and existing is not None:
            self._remove(canon, raw, "the value of")
            node[key] = None
            return
        node[key] = value
        self._set_origin(canon, raw)

    def _address(self, items: list, data: dict, kind: _Kind, canon: Path_, raw: Path_) -> None:
        """``{<name or index>: {field: value} | null}`` onto a list of items."""
        if kind.kind == "named":
            by_name = _named(items)
            for name, value in data.items():
                name = str(name)
                here, at = (*canon, name), (*raw, name)
                if name not in by_name:
                    if value is None and here in self.removed:
                        continue
                    names = ", ".join(by_name) or "none defined"
                    raise self._fail(at, canon, f"the name of a {kind.model.__name__} ({names}; "
                                     "to add one, list it with its name)", name)
                if value is None:
                    items.remove(by_name.pop(name))
                    self._remove(here, at, "the item")
                    continue
                if not isinstance(value, dict):
                    raise self._fail(at, here, "a mapping of fields (or null to remove it)", value)
                if "name" in value and str(value["name"]) != name:
                    raise self._fail((*at, "name"), (*here, "name"), f"the item's own name {name!r}", value["name"])
                self._merge_model(by_name[name], value, _Kind("model", model=kind.model), here, at, True)
            return
        for index, value in data.items():
            index = str(index)
            if not index.isdigit() or int(index) >= len(items):
                raise self._fail((*raw, index), canon, f"an index below {len(items)}", index)
            if not isinstance(value, dict) or not isinstance(items[int(index)], dict):
                raise self._fail((*raw, index), (*canon, index), "a mapping of fields", value)
            self._merge_model(items[int(index)], value, _Kind("model", model=kind.model), (*canon, index),
                              (*raw, index), True)

    def _declare(self, items: list, data: list, kind: _Kind, canon: Path_, raw: Path_) -> None:
        """A layer's list of named items: update the ones it names (in its order), add the new ones,
        and keep the items it does not name after them (removing one takes ``<name>: null``)."""
        by_name = _named(items)
        ordered: list = []
        for i, value in enumerate(data):
            at = (*raw, str(i))
            name = value.get("name") if isinstance(value, dict) else None
            if not isinstance(name, str):
                ordered.append(value)  # the model says what is wrong with it
                self._set_origin((*canon, str(len(ordered) - 1)), at)
                continue
            target = by_name.pop(name, None)
            if target is None:
                target = {}
            ordered.append(target)
            self._merge_model(target, value, _Kind("model", model=kind.model), (*canon, name), at, True)
        kept = [item for item in items if not isinstance(item, dict) or str(item.get("name")) in by_name]
        items[:] = ordered + kept


def _named(items: list) -> dict[str, dict]:
    return {str(item["name"]): item for item in items if isinstance(item, dict) and "name" in item}
