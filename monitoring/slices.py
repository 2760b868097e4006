"""Slicing expressions: a column name, or a small boolean SQL expression over columns.

Grammar (case-insensitive keywords)::

    expr    := or
    or      := and (OR and)*
    and     := not (AND not)*
    not     := NOT not | cmp
    cmp     := operand [(= | == | != | <> | < | <= | > | >=) operand | IS [NOT] NULL | [NOT] IN (lit, ...)]
    operand := column | number | 'string' | TRUE | FALSE | ( expr )

A bare column name slices by each of its (top 100) values; an expression gives the
slices ``true`` and ``false`` (rows where it is NULL are in neither).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftgate.errors import MonitorError

__all__ = ["Slice", "parse", "slices_of", "MAX_SLICE_VALUES"]

MAX_SLICE_VALUES = 100

_TOKEN = re.compile(r"""\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op><=|>=|<>|!=|==|=|<|>|\(|\)|,)|(?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*))""")
_KEYWORDS = {"and", "or", "not", "is", "null", "in", "true", "false"}


@dataclass(frozen=True)
class Slice:
    """One slice: ``slice_key`` / ``slice_value`` and the rows (a boolean mask)."""

    key: str
    value: str
    mask: np.ndarray


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character {text[pos:].strip()[:1]!r} at position {pos}")
        out.append(m.group(m.lastgroup))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.lower() != expected):
            raise ValueError(f"expected {expected or 'more input'}, got {tok or 'end of expression'}")
        self.i += 1
        return tok

    def parse(self):
        node = self.or_()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r}")
        return node

    def or_(self):
        node = self.and_()
        while (self.peek() or "").lower() == "or":
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.not_()
        while (self.peek() or "").lower() == "and":
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self):
        if (self.peek() or "").lower() == "not":
            self.take()
            return ("not", self.not_())
        return self.cmp()

    def cmp(self):
        left = self.operand()
        tok = (self.peek() or "").lower()
        if tok in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", tok, left, self.operand())
        if tok == "is":
            self.take()
            negate = (self.peek() or "").lower() == "not"
            if negate:
                self.take()
            self.take("null")
            return ("isnull", left, negate)
        if tok in ("in", "not"):
            negate = tok == "not"
            if negate:
                self.take()
            self.take("in")
            self.take("(")
            values = [self.operand()]
            while self.peek() == ",":
                self.take()
                values.append(self.operand())
            self.take(")")
            return ("in", left, values, negate)
        return left

    def operand(self):
        tok = self.take()
        low = tok.lower()
        if tok == "(":
            node = self.or_()
            self.take(")")
            return node
        if tok.startswith("'"):
            return ("lit", tok[1:-1].replace("''", "'"))
        if low in ("true", "false"):
            return ("lit", low == "true")
        if low == "null":
            return ("lit", None)
        if re.fullmatch(r"-?\d.*", tok):
            return ("lit", float(tok) if any(c in tok for c in ".eE") else int(tok))
        if low in _KEYWORDS or tok in ("(", ")", ","):
            raise ValueError(f"unexpected {tok!r}")
        return ("col", tok.strip("`"))


def parse(text: str):
    """Parse a slicing expression into a small tree; raises ValueError naming the problem."""
    return _Parser(text).parse()


def _columns(node) -> set[str]:
    if node[0] == "col":
        return {node[1]}
    if node[0] == "lit":
        return set()
    out: set[str] = set()
    for part in node[1:]:
        if isinstance(part, tuple):
            out |= _columns(part)
        elif isinstance(part, list):
            for p in part:
                out |= _columns(p)
    return out


def _eval(node, table: pa.Table) -> Any:
    kind = node[0]
    if kind == "col":
        return table[node[1]]
    if kind == "lit":
        return pa.scalar(node[1])
    if kind == "and":
        return pc.and_kleene(_eval(node[1], table), _eval(node[2], table))
    if kind == "or":
        return pc.or_kleene(_eval(node[1], table), _eval(node[2], table))
    if kind == "not":
        return pc.invert(_eval(node[1], table))
    if kind == "isnull":
        res = pc.is_null(_eval(node[1], table))
        return pc.invert(res) if node[2] else res
    if kind == "in":
        left = _eval(node[1], table)
        values = pa.array([v[1] for v in node[2]]).cast(left.type)
        res = pc.is_in(left, value_set=values)
        return pc.invert(res) if node[3] else res
    op = {"=": "equal", "==": "equal", "!=": "not_equal", "<>": "not_equal", "<": "less",
          "<=": "less_equal", ">": "greater", ">=": "greater_equal"}[node[1]]
    return getattr(pc, op)(_eval(node[2], table), _eval(node[3], table))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def slices_of(exprs: list[str], table: pa.Table, *, where: str = "monitor.slicing_exprs") -> list[Slice]:
    """The slices of ``table`` for each expression (see the module docstring).

    Raises:
        MonitorError: an expression does not parse or names a column the table lacks.
    """
    out: list[Slice] = []
    for i, text in enumerate(exprs):
        try:
            tree = parse(text)
        except ValueError as exc:
            raise MonitorError(f"{where}[{i}]: cannot parse {text!r}: {exc}") from None
        missing = sorted(_columns(tree) - set(table.column_names))
        if missing:
            raise MonitorError(f"{where}[{i}]: {text!r} names column(s) {missing} that the table lacks "
                               f"(columns: {', '.join(table.column_names)})")
        try:
            result = _eval(tree, table)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
            raise MonitorError(f"{where}[{i}]: cannot evaluate {text!r}: {exc}") from None
        if isinstance(result, pa.ChunkedArray):
            result = result.combine_chunks()
        if tree[0] == "col" and not pa.types.is_boolean(result.type):
            values = pc.value_counts(result)
            ordered = sorted((c, v) for v, c in zip(values.field("values").to_pylist(),
                                                    values.field("counts").to_pylist()) if v is not None)
            top = sorted(ordered, key=lambda vc: -vc[0])[:MAX_SLICE_VALUES]
            for _, value in sorted(top, key=lambda vc: _text(vc[1])):
                mask = pc.fill_null(pc.equal(result, pa.scalar(value, result.type)), False)
                out.append(Slice(text, _text(value), mask.to_numpy(zero_copy_only=False)))
            continue
        if not pa.types.is_boolean(result.type):
            raise MonitorError(f"{where}[{i}]: {text!r} is not boolean (got {result.type})")
        true = pc.fill_null(result, False).to_numpy(zero_copy_only=False)
        false = pc.fill_null(pc.invert(result), False).to_numpy(zero_copy_only=False)
        out.append(Slice(text, "false", false))
        out.append(Slice(text, "true", true))
    return out
