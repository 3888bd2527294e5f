"""Read the IR text form (see ``ember.ir.printer``) back into a ``Graph``.

``parse(print_graph(g))`` rebuilds ``g`` and printing it again gives the same text.
A hand-written recursive-descent parser: every error is a ``ParseError`` naming the
line and column, never another exception, and nesting is bounded so hostile input
cannot exhaust the stack.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Optional

import numpy as np

from .graph import ROLE_BUFFER, ROLE_INPUT, ROLE_PARAM, ROLE_STATE, Graph, Node, Provenance, Value
from .printer import MissingConstant, Opaque
from .registry import PRIMITIVES
from .types import ALL_DTYPES, DType, TensorType

ROLES = (ROLE_INPUT, ROLE_PARAM, ROLE_BUFFER, ROLE_STATE)
_DTYPES = {d.short: d for d in ALL_DTYPES}
MAX_DEPTH = 64

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_NUMBER_RE = re.compile(r"-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf)")
_DIM_RE = re.compile(r"[A-Za-z0-9_+\-*/]+")
_HEX_RE = re.compile(r"[0-9a-f]+")


class ParseError(ValueError):
    """Malformed IR text; the message names the line and column."""


class _Parser:
    def __init__(self, text: str, constants: Optional[dict]) -> None:
        self.s = text
        self.i = 0
        self.constants = constants or {}
        self.depth = 0

    # ------------------------------------------------------------ low level
    def error(self, msg: str, at: Optional[int] = None) -> ParseError:
        at = self.i if at is None else at
        line = self.s.count("\n", 0, at) + 1
        col = at - (self.s.rfind("\n", 0, at) + 1) + 1
        text = self.s.splitlines()[line - 1] if self.s.splitlines()[line - 1:line] else ""
        return ParseError(f"line {line}, column {col}: {msg}" + (f"\n  {text.strip()[:200]}" if text.strip() else ""))

    def ws(self, newlines: bool = True) -> None:
        s, n = self.s, len(self.s)
        while self.i < n and (s[self.i] in " \t\r" or (newlines and s[self.i] == "\n")):
            self.i += 1

    def peek(self, lit: str) -> bool:
        self.ws()
        return self.s.startswith(lit, self.i)

    def accept(self, lit: str) -> bool:
        if self.peek(lit):
            self.i += len(lit)
            return True
        return False

    def expect(self, lit: str, what: str = "") -> None:
        if not self.accept(lit):
            found = self.s[self.i:self.i + 12].split("\n")[0] or "end of text"
            raise self.error(f"expected {what or repr(lit)}, found {found!r}")

    def match(self, rx: re.Pattern, what: str) -> str:
        self.ws()
        m = rx.match(self.s, self.i)
        if not m:
            found = self.s[self.i:self.i + 12].split("\n")[0] or "end of text"
            raise self.error(f"expected {what}, found {found!r}")
        self.i = m.end()
        return m.group(0)

    def string(self) -> str:
        tok = self.match(_STRING_RE, "a string")
        try:
            return json.loads(tok)
        except ValueError:
            raise self.error(f"bad string literal {tok[:40]}") from None

    def ident(self, what: str = "a name") -> str:
        return self.match(_IDENT_RE, what)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH}")

    # ------------------------------------------------------------ atoms
    def value_name(self) -> str:
        self.expect("%", "a value (%name)")
        if self.s.startswith('"', self.i):
            return self.string()
        m = _NAME_RE.match(self.s, self.i)
        if not m:
            raise self.error("expected a value name after %")
        self.i = m.end()
        return m.group(0)

    def dtype(self) -> DType:
        at = self.i
        word = self.ident("a dtype (f32, i64, ...)")
        if word not in _DTYPES:
            raise self.error(f"unknown dtype {word!r}; known: {', '.join(_DTYPES)}", at)
        return _DTYPES[word]

    def dim(self):
        self.ws()
        if self.s.startswith('"', self.i):
            return self.string()
        tok = self.match(_DIM_RE, "a dimension (an int or a symbol)")
        if tok.isdigit():
            return self.to_int(tok)
        return tok

    def to_int(self, tok: str) -> int:
        if len(tok) > 40:
            raise self.error(f"integer {tok[:20]}... is too long")
        return int(tok)

    def shape(self) -> tuple:
        self.expect("[")
        dims = []
        if not self.accept("]"):
            while True:
                dims.append(self.dim())
                if self.accept("]"):
                    break
                self.expect(",", "',' or ']'")
        return tuple(dims)

    def type_(self) -> TensorType:
        dt = self.dtype()
        return TensorType(dt, self.shape())

    # ------------------------------------------------------------ attributes
    def attr_value(self) -> Any:
        self.enter()
        try:
            return self._attr_value()
        finally:
            self.depth -= 1

    def _attr_value(self) -> Any:
        self.ws()
        s, i = self.s, self.i
        c = s[i:i + 1]
        if c == "(":
            self.i += 1
            items: list = []
            if self.accept(")"):
                return ()
            while True:
                items.append(self.attr_value())
                if self.accept(")"):
                    return tuple(items)
                self.expect(",", "',' or ')'")
                if self.accept(")"):
                    if len(items) != 1:
                        raise self.error("a trailing comma is only written in a 1-tuple")
                    return tuple(items)
        if c == "[":
            self.i += 1
            items = []
            if self.accept("]"):
                return items
            while True:
                items.append(self.attr_value())
                if self.accept("]"):
                    return items
                self.expect(",", "',' or ']'")
        if c == "{":
            self.i += 1
            out: dict = {}
            if self.accept("}"):
                return out
            while True:
                key = self.string()
                self.expect(":")
                if key in out:
                    raise self.error(f"duplicate key {key!r}")
                out[key] = self.attr_value()
                if self.accept("}"):
                    return out
                self.expect(",", "',' or '}'")
        if c == '"':
            return self.string()
        if c == "-" or c.isdigit():
            return self.number()
        if s.startswith("tensor<", i):
            return self.tensor_literal()
        if s.startswith("opaque<", i):
            self.i += len("opaque<")
            name = self.string()
            self.expect(">")
            return Opaque(name)
        word = self.ident("an attribute value")
        if word in ("true", "false"):
            return word == "true"
        if word == "none":
            return None
        if word == "nan":
            return math.nan
        if word == "inf":
            return math.inf
        if word in _DTYPES:
            return _DTYPES[word]
        return word

    def number(self):
        at = self.i
        tok = self.match(_NUMBER_RE, "a number")
        if tok in ("inf", "-inf"):
            return float(tok)
        if tok == "-":
            raise self.error("expected a number", at)
        if any(ch in tok for ch in ".eE"):
            return float(tok)
        return self.to_int(tok)

    def tensor_literal(self) -> np.ndarray:
        at = self.i
        self.expect("tensor<")
        dt = self.dtype()
        shape = self.shape()
        if any(not isinstance(d, int) for d in shape):
            raise self.error("a tensor literal needs a static shape", at)
        if self.accept("sha1:"):
            digest = self.match(_HEX_RE, "a hex digest")
            self.expect(">")
            data = self.constants.get(digest)
            if data is None:
                return MissingConstant.make(dt, shape, digest)
            if data.dtype != dt.np or tuple(data.shape) != shape:
                raise self.error(f"constant sha1:{digest} has type {data.dtype}{list(data.shape)}, "
                                 f"the text says {dt.short}{list(shape)}", at)
            return data
        self.expect(">")
        self.expect("[")
        elems: list = []
        if not self.accept("]"):
            while True:
                v = self.attr_value()
                if not isinstance(v, (bool, int, float)):
                    raise self.error("tensor literal elements must be numbers or booleans")
                elems.append(v)
                if self.accept("]"):
                    break
                self.expect(",", "',' or ']'")
        n = 1
        for d in shape:
            n *= d
        if len(elems) != n:
            raise self.error(f"tensor<{dt.short}{list(shape)}> needs {n} elements, got {len(elems)}", at)
        try:
            return np.array(elems, dtype=dt.np).reshape(shape)
        except (ValueError, OverflowError, TypeError) as err:
            raise self.error(f"bad tensor literal: {err}", at) from None

    def attrs(self) -> dict:
        out: dict = {}
        self.expect("{")
        if self.accept("}"):
            return out
        while True:
            at = self.i
            key = self.ident("an attribute name")
            if key in out:
                raise self.error(f"duplicate attribute {key!r}", at)
            self.expect("=")
            out[key] = self.attr_value()
            if self.accept("}"):
                return out
            self.expect(",", "',' or '}'")

    def provenance(self) -> Provenance:
        self.ws(newlines=False)
        if not self.s.startswith("#", self.i):
            return Provenance()
        end = self.s.find("\n", self.i)
        end = len(self.s) if end < 0 else end
        text = self.s[self.i + 1:end].strip()
        self.i = end
        module, loc = text, ""
        if text.startswith('"'):  # a quoted module path (it contains " @ " or looks like FILE:LINE)
            m = _STRING_RE.match(text)
            if not m:
                raise self.error("bad quoted module path in provenance")
            try:
                module = json.loads(m.group(0))
            except ValueError:
                raise self.error("bad quoted module path in provenance") from None
            rest = text[m.end():]
            if rest and not rest.startswith(" @ "):
                raise self.error("expected ' @ FILE:LINE' after the quoted module path")
            loc = rest[3:]
        elif text.startswith("@ "):
            module, loc = "", text[2:]
        elif " @ " in text:
            module, loc = text.rsplit(" @ ", 1)
        if not loc:
            return Provenance(module=module)
        file, _, line = loc.rpartition(":")
        if not line.isdigit() or len(line) > 12:
            raise self.error(f"provenance location {loc[:60]!r} is not FILE:LINE")
        return Provenance(module=module, file=file, line=int(line))

    # ------------------------------------------------------------ graphs
    def graph(self) -> Graph:
        self.enter()
        self.expect("graph", "'graph'")
        self.ws()
        name = self.string() if self.s.startswith('"', self.i) else self.ident("a graph name")
        g = Graph(name=name)
        defined: dict[str, Value] = {}
        self.expect("(")
        if not self.accept(")"):
            while True:
                at = self.i
                role = ROLE_INPUT
                self.ws()
                if not self.s.startswith("%", self.i):
                    role = self.ident("an input role or %name")
                    if role not in ROLES:
                        raise self.error(f"unknown input role {role!r}; roles: {', '.join(ROLES)}", at)
                vname = self.value_name()
                self.expect(":")
                v = Value(vname, self.type_())
                if vname in defined:
                    raise self.error(f"input %{vname} declared twice", at)
                defined[vname] = v
                g.inputs.append(v)
                g.input_roles[vname] = role
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        self.expect("->")
        self.expect("(")
        outs: list[tuple[str, TensorType, int]] = []
        if not self.accept(")"):
            while True:
                at = self.i
                oname = self.value_name()
                self.expect(":")
                outs.append((oname, self.type_(), at))
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        self.expect("{")
        if self.accept("meta"):
            g.meta.update(self.attrs())
        while not self.accept("}"):
            if self.i >= len(self.s):
                raise self.error("unexpected end of text: missing '}'")
            self.node(g, defined)
        for oname, otype, at in outs:
            v = defined.get(oname)
            if v is None:
                raise self.error(f"output %{oname} is never defined", at)
            if v.type != otype:
                raise self.error(f"output %{oname} is declared {_t(otype)} but defined as {_t(v.type)}", at)
            g.outputs.append(v)
        g._names = set(defined)
        self.depth -= 1
        return g

    def node(self, g: Graph, defined: dict[str, Value]) -> None:
        at = self.i
        oname = self.value_name()
        self.expect(":")
        otype = self.type_()
        self.expect("=")
        op_at = self.i
        op = self.ident("an op name")
        self.expect("(")
        args: list[Value] = []
        if not self.accept(")"):
            while True:
                a_at = self.i
                aname = self.value_name()
                if aname not in defined:
                    raise self.error(f"%{aname} is used before it is defined", a_at)
                args.append(defined[aname])
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        self.ws(newlines=False)
        attrs = self.attrs() if self.s.startswith("{", self.i) else {}
        prov = self.provenance()
        sub = self.graph() if self.peek("graph") else None
        if oname in defined:
            raise self.error(f"%{oname} is defined twice (SSA values have one definition)", at)
        if op not in PRIMITIVES and sub is None:
            raise self.error(f"unknown op {op!r}", op_at)
        if op in PRIMITIVES:
            try:
                extra = {"body": sub} if sub is not None else {}
                inferred = PRIMITIVES[op].infer(*[v.type for v in args], **attrs, **extra)
            except Exception as err:  # noqa: BLE001 - any type-rule failure is a parse error here
                raise self.error(f"{op}: {err}", op_at) from None
            if inferred != otype:
                raise self.error(f"%{oname} is declared {_t(otype)} but {op} gives {_t(inferred)}", at)
        out = Value(oname, otype)
        node = Node(op, args, attrs, out, prov, sub)
        out.producer = node
        g.nodes.append(node)
        defined[oname] = out


def _t(t: TensorType) -> str:
    from .printer import fmt_type
    return fmt_type(t)


def parse(text: str, constants: Optional[dict] = None) -> Graph:
    """Parse the text form of one graph.

    ``constants`` maps content digests (``sha1:...`` in the text) to arrays; constants
    without data come back as ``MissingConstant`` placeholders that print identically.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() expects a str, got {type(text).__name__}")
    p = _Parser(text, constants)
    try:
        g = p.graph()
        p.ws()
        while p.s.startswith("#", p.i):  # trailing comments are allowed
            p.provenance()
            p.ws()
        if p.i != len(text):
            raise p.error("unexpected text after the graph")
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("input nested too deeply") from None
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as err:
        raise ParseError(f"malformed IR text: {type(err).__name__}: {err}") from None
    return g
