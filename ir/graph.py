"""The graph IR: SSA values, nodes and graphs, plus a builder that records primitive calls.

A ``Graph`` has typed inputs (activations, parameters, state), a topologically
ordered list of ``Node``s and outputs. Every value is produced exactly once (by a
graph input or a node). Nodes keep their provenance (module path, user source
line) for dumps and errors.

``GraphBuilder`` is a dispatch handler: inside ``with builder:`` every primitive
call on ``Value``s appends a node (type-checked by the op's type rule). Graph
passes use it to run the registry's gradient rules symbolically.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from . import dispatch
from .registry import PRIMITIVES, Primitive
from .types import ShapeError, TensorType


class Value:
    """An SSA value: a graph input or the output of one node."""

    __slots__ = ("name", "type", "producer", "__weakref__")

    def __init__(self, name: str, type: TensorType, producer: Optional["Node"] = None) -> None:  # noqa: A002
        self.name = name
        self.type = type
        self.producer = producer

    # the same attribute names as Tensor, so gradient rules work on both
    @property
    def shape(self) -> tuple:
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass
class Provenance:
    """Where a node came from: the module path and the user's source line."""

    module: str = ""
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        parts = []
        if self.module:
            parts.append(self.module)
        if self.file:
            parts.append(f"{self.file}:{self.line}")
        return " @ ".join(parts)


@dataclass(eq=False)
class Node:
    """One primitive application with a single output value."""

    op: str
    inputs: list[Value]
    attrs: dict[str, Any]
    output: Value
    provenance: Provenance = field(default_factory=Provenance)
    subgraph: Optional["Graph"] = None  # fused groups hold their body here

    @property
    def prim(self) -> Primitive:
        return PRIMITIVES[self.op]

    def __repr__(self) -> str:
        return f"Node({self.output.name} = {self.op}({', '.join(v.name for v in self.inputs)}))"


# input roles: how the runtime feeds and writes back each graph input
ROLE_INPUT = "input"
ROLE_PARAM = "param"
ROLE_BUFFER = "buffer"
ROLE_STATE = "state"


@dataclass(eq=False)
class Graph:
    """A typed SSA dataflow graph."""

    name: str = "graph"
    inputs: list[Value] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    input_roles: dict[str, str] = field(default_factory=dict)  # value name -> ROLE_*
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. output structure, state write-back map

    def __post_init__(self) -> None:
        self._names = {v.name for v in self.inputs} | {n.output.name for n in self.nodes}
        self._counter = itertools.count()

    # ------------------------------------------------------------ construction
    def fresh_name(self, hint: str = "") -> str:
        if hint and hint not in self._names:
            self._names.add(hint)
            return hint
        while True:
            name = f"{hint}{next(self._counter)}" if hint else str(next(self._counter))
            if name not in self._names:
                self._names.add(name)
                return name

    def add_input(self, type: TensorType, name: str = "", role: str = ROLE_INPUT) -> Value:  # noqa: A002
        v = Value(self.fresh_name(name or "x"), type)
        self.inputs.append(v)
        self.input_roles[v.name] = role
        return v

    def add_node(self, op: str, inputs: Iterable[Value], attrs: Optional[dict] = None, *,
                 name: str = "", provenance: Optional[Provenance] = None) -> Value:
        """Append ``op(inputs)``; the output type comes from the op's type rule."""
        inputs = list(inputs)
        attrs = dict(attrs or {})
        prim = PRIMITIVES.get(op)
        if prim is None:
            raise ShapeError(f"unknown op {op!r}")
        try:
            out_type = prim.infer(*[v.type for v in inputs], **attrs)
        except ShapeError as err:
            raise ShapeError(f"{op}: {err} (operands: {', '.join(str(v.type) for v in inputs)})") from None
        except TypeError as err:
            raise ShapeError(f"{op}: bad attributes {sorted(attrs)}: {err}") from None
        out = Value(self.fresh_name(name), out_type)
        node = Node(op, inputs, attrs, out, provenance or Provenance())
        out.producer = node
        self.nodes.append(node)
        return out

    # ------------------------------------------------------------ queries
    def users(self) -> dict[str, list[Node]]:
        """Value name -> nodes that read it."""
        uses: dict[str, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                uses.setdefault(v.name, []).append(n)
        return uses

    def value(self, name: str) -> Value:
        for v in self.inputs:
            if v.name == name:
                return v
        for n in self.nodes:
            if n.output.name == name:
                return n.output
        raise KeyError(f"no value %{name} in graph {self.name}")

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)


class GraphBuilder:
    """A dispatch handler that appends a node for every primitive call on Values."""

    def __init__(self, graph: Graph, provenance: Optional[Provenance] = None) -> None:
        self.graph = graph
        self.provenance = provenance

    def __call__(self, prim: Primitive, inputs: tuple, attrs: dict) -> Value:
        for v in inputs:
            if not isinstance(v, Value):
                raise TypeError(f"{prim.name}: graph builder got a non-Value operand {type(v).__name__}")
        return self.graph.add_node(prim.name, inputs, attrs, provenance=self.provenance)

    def __enter__(self) -> "GraphBuilder":
        self._ctx = dispatch.handler(self)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)
