"""A small SQL expression language for slicing expressions and custom aggregate metrics.

The embedded engine has no SQL engine, so slicing expressions (``age < 25``,
``plan = 'premium' AND senior``) and custom aggregate metric definitions
(``avg(CASE WHEN {{input_column}} > 100 THEN 1 ELSE 0 END)``) are parsed here and
evaluated on Arrow arrays. The Spark engine hands the same text to Spark SQL; the
grammar is a subset of Spark SQL so both read it the same way:

- literals: numbers, ``'strings'``, TRUE, FALSE, NULL; identifiers, optionally in backticks
- arithmetic ``+ - * / %``, comparisons ``= == != <> < <= > >=``, ``AND OR NOT``,
  ``IS [NOT] NULL``, ``[NOT] IN (...)``, ``[NOT] BETWEEN a AND b``,
  ``CASE WHEN ... THEN ... [ELSE ...] END``
- scalar functions ``abs ln exp sqrt coalesce``; aggregates ``avg mean sum count min max
  stddev stddev_samp`` (``count(*)`` counts rows)

A text that does not parse raises :class:`ExpressionError` naming the position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ExpressionError", "Expression", "parse"]

AGGREGATES = {"avg", "mean", "sum", "count", "min", "max", "stddev", "stddev_samp"}
SCALARS = {"abs", "ln", "exp", "sqrt", "coalesce"}
_KEYWORDS = {"and", "or", "not", "is", "null", "in", "between", "true", "false", "case", "when", "then",
             "else", "end"}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<str>'(?:[^']|'')*')|(?P<bq>`[^`]+`)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|<>|!=|==|[=<>+\-*/%(),]))"
)


class ExpressionError(ValueError):
    """An expression does not parse or refers to something unknown."""


@dataclass(frozen=True)
class Node:
    kind: str
    value: Any = None
    args: tuple = ()


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse {text!r} at position {pos}: unexpected {text[pos:pos + 10]!r}")
        kind = m.lastgroup
        value, start = m.group(kind), m.start(kind)
        if kind == "id" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self, kind=None, value=None):
        if self.i >= len(self.tokens):
            return None
        tok = self.tokens[self.i]
        if kind and tok[0] != kind:
            return None
        if value is not None and tok[1].lower() != value:
            return None
        return tok

    def take(self, kind=None, value=None):
        tok = self.peek(kind, value)
        if tok is None:
            where = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
            want = value or kind or "a token"
            raise ExpressionError(f"cannot parse {self.text!r} at position {where}: expected {want}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_()
        if self.i != len(self.tokens):
            raise ExpressionError(
                f"cannot parse {self.text!r} at position {self.tokens[self.i][2]}: unexpected {self.tokens[self.i][1]!r}"
            )
        return node

    def or_(self):
        node = self.and_()
        while self.peek("kw", "or"):
            self.i += 1
            node = Node("or", args=(node, self.and_()))
        return node

    def and_(self):
        node = self.not_()
        while self.peek("kw", "and"):
            self.i += 1
            node = Node("and", args=(node, self.not_()))
        return node

    def not_(self):
        if self.peek("kw", "not"):
            self.i += 1
            return Node("not", args=(self.not_(),))
        return self.cmp()

    def cmp(self):
        left = self.add()
        tok = self.peek("op")
        if tok and tok[1] in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(tok[1], tok[1])
            return Node("cmp", op, (left, self.add()))
        if self.peek("kw", "is"):
            self.i += 1
            negate = bool(self.peek("kw", "not")) and bool(self.take("kw", "not"))
            self.take("kw", "null")
            node = Node("isnull", args=(left,))
            return Node("not", args=(node,)) if negate else node
        negate = False
        if self.peek("kw", "not") and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1].lower() in (
                "in", "between"):
            self.i += 1
            negate = True
        if self.peek("kw", "in"):
            self.i += 1
            self.take("op", "(")
            items = [self.add()]
            while self.peek("op", ","):
                self.i += 1
                items.append(self.add())
            self.take("op", ")")
            node = Node("in", args=(left, *items))
            return Node("not", args=(node,)) if negate else node
        if self.peek("kw", "between"):
            self.i += 1
            low = self.add()
            self.take("kw", "and")
            high = self.add()
            node = Node("and", args=(Node("cmp", ">=", (left, low)), Node("cmp", "<=", (left, high))))
            return Node("not", args=(node,)) if negate else node
        if negate:
            raise ExpressionError(f"cannot parse {self.text!r}: NOT must be followed by IN or BETWEEN here")
        return left

    def add(self):
        node = self.mul()
        while (tok := self.peek("op")) and tok[1] in ("+", "-"):
            self.i += 1
            node = Node("arith", tok[1], (node, self.mul()))
        return node

    def mul(self):
        node = self.unary()
        while (tok := self.peek("op")) and tok[1] in ("*", "/", "%"):
            self.i += 1
            node = Node("arith", tok[1], (node, self.unary()))
        return node

    def unary(self):
        if self.peek("op", "-"):
            self.i += 1
            return Node("neg", args=(self.unary(),))
        return self.primary()

    def primary(self):
        tok = self.peek()
        if tok is None:
            raise ExpressionError(f"cannot parse {self.text!r}: ends too early")
        kind, value, _ = tok
        if kind == "num":
            self.i += 1
            return Node("lit", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "str":
            self.i += 1
            return Node("lit", value[1:-1].replace("''", "'"))
        if kind == "kw" and value in ("true", "false"):
            self.i += 1
            return Node("lit", value == "true")
        if kind == "kw" and value == "null":
            self.i += 1
            return Node("lit", None)
        if kind == "kw" and value == "case":
            self.i += 1
            whens = []
            while self.peek("kw", "when"):
                self.i += 1
                cond = self.or_()
                self.take("kw", "then")
                whens.append((cond, self.or_()))
            if not whens:
                raise ExpressionError(f"cannot parse {self.text!r}: CASE needs at least one WHEN")
            other = Node("lit", None)
            if self.peek("kw", "else"):
                self.i += 1
                other = self.or_()
            self.take("kw", "end")
            return Node("case", whens, (other,))
        if kind == "op" and value == "(":
            self.i += 1
            node = self.or_()
            self.take("op", ")")
            return node
        if kind == "bq":
            self.i += 1
            return Node("col", value[1:-1])
        if kind == "id":
            self.i += 1
            if self.peek("op", "("):
                self.i += 1
                name = value.lower()
                if name not in AGGREGATES | SCALARS:
                    raise ExpressionError(f"cannot parse {self.text!r}: unknown function {value!r}")
                args = []
                if name == "count" and self.peek("op", "*"):
                    self.i += 1
                    args.append(Node("star"))
                elif not self.peek("op", ")"):
                    args.append(self.or_())
                    while self.peek("op", ","):
                        self.i += 1
                        args.append(self.or_())
                self.take("op", ")")
                return Node("agg" if name in AGGREGATES else "fn", name, tuple(args))
            return Node("col", value)
        raise ExpressionError(f"cannot parse {self.text!r} at position {tok[2]}: unexpected {value!r}")


def _walk(node: Node):
    yield node
    if node.kind == "case":
        for cond, val in node.value:
            yield from _walk(cond)
            yield from _walk(val)
    for arg in node.args:
        if isinstance(arg, Node):
            yield from _walk(arg)


@dataclass(frozen=True)
class Expression:
    """A parsed expression: :meth:`columns` it reads, :meth:`evaluate` on an Arrow table."""

    text: str
    root: Node

    @property
    def is_aggregate(self) -> bool:
        return any(n.kind == "agg" for n in _walk(self.root))

    @property
    def is_column(self) -> bool:
        return self.root.kind == "col"

    def columns(self) -> set[str]:
        return {n.value for n in _walk(self.root) if n.kind == "col"}

    def check_columns(self, available: list[str], where: str) -> None:
        missing = sorted(self.columns() - set(available))
        if missing:
            raise ExpressionError(f"{where}: {self.text!r} refers to unknown column(s) {', '.join(missing)}")

    def evaluate(self, table: pa.Table):
        """Evaluate over ``table``: an array for row expressions, a Python scalar for aggregates."""
        result = _eval(self.root, table)
        if isinstance(result, pa.Scalar):
            return result.as_py()
        return result


def parse(text: str, **template: str) -> Expression:
    """Parse ``text`` after replacing ``{{name}}`` placeholders from ``template``."""
    for key, value in template.items():
        text = text.replace("{{" + key + "}}", f"`{value}`").replace("{{ " + key + " }}", f"`{value}`")
    if "{{" in text:
        raise ExpressionError(f"unknown template variable in {text!r} (known: {', '.join(sorted(template))})")
    return Expression(text, _Parser(text).parse())


_CMP = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
        ">=": pc.greater_equal}


def _numeric(value):
    if isinstance(value, (pa.Array, pa.ChunkedArray)) and (pa.types.is_integer(value.type)
                                                            or pa.types.is_boolean(value.type)):
        return pc.cast(value, pa.float64())
    if isinstance(value, bool):
        return float(value)
    return value


def _eval(node: Node, table: pa.Table):
    kind = node.kind
    if kind == "lit":
        return pa.scalar(node.value)
    if kind == "col":
        if node.value not in table.column_names:
            raise ExpressionError(f"unknown column {node.value!r}")
        return table.column(node.value)
    if kind == "star":
        return pa.scalar(True)
    args = [_eval(a, table) for a in node.args] if kind not in ("case", "agg") else None
    if kind == "or":
        return pc.or_kleene(*args)
    if kind == "and":
        return pc.and_kleene(*args)
    if kind == "not":
        return pc.invert(args[0])
    if kind == "isnull":
        return pc.is_null(args[0])
    if kind == "in":
        found = pc.is_in(args[0], value_set=pa.array([a.as_py() for a in args[1:]]))
        return pc.if_else(pc.is_null(args[0]), pa.scalar(None, pa.bool_()), found)  # SQL: NULL IN (...) is NULL
    if kind == "cmp":
        return _CMP[node.value](*args)
    if kind == "neg":
        return pc.negate(args[0])
    if kind == "arith":
        a, b = args
        if node.value == "/":
            return pc.divide(_numeric(a), _numeric(b))
        if node.value == "%":
            return pc.subtract(a, pc.multiply(pc.floor(pc.divide(_numeric(a), _numeric(b))), b))
        return {"+": pc.add, "-": pc.subtract, "*": pc.multiply}[node.value](a, b)
    if kind == "fn":
        name = node.value
        if name == "coalesce":
            return pc.coalesce(*args)
        return {"abs": pc.abs, "ln": pc.ln, "exp": pc.exp, "sqrt": pc.sqrt}[name](_numeric(args[0]))
    if kind == "case":
        other = _eval(node.args[0], table)
        result = other
        for cond, val in reversed(node.value):
            c = _eval(cond, table)
            v = _eval(val, table)
            result = pc.if_else(pc.fill_null(c, False), v, result) if not (
                isinstance(c, pa.Scalar) and isinstance(v, pa.Scalar) and isinstance(result, pa.Scalar)) else (
                v if c.as_py() else result)
        return result
    if kind == "agg":
        name = node.value
        if node.args and node.args[0].kind == "star":
            return pa.scalar(table.num_rows)
        value = _eval(node.args[0], table)
        if isinstance(value, pa.Scalar):
            value = pa.array([value.as_py()] * table.num_rows)
        if name == "count":
            return pc.count(value)
        if name in ("avg", "mean"):
            return pc.mean(_numeric(value))
        if name in ("stddev", "stddev_samp"):
            return pc.stddev(_numeric(value), ddof=1)
        return {"sum": pc.sum, "min": pc.min, "max": pc.max}[name](value)
    raise ExpressionError(f"cannot evaluate node {kind}")
