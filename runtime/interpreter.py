"""The graph interpreter: runs a ``Graph`` with the numpy kernels eager mode uses.

Registered as backend ``"eager"``. Because every node calls the very kernel an
eager op calls (``ember.runtime.kernels.KERNELS``), a graph run is bit-identical
to running the program eagerly. The graph is compiled once into a flat program
(kernel, operand slots, attributes, slots to free); each intermediate is dropped
right after its last use. Symbolic dimensions (``B``) are bound from the input
shapes on each call and substituted into attributes that mention them (a
``reshape`` to ``(B, 784)``, a ``full`` whose value is ``B``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from ember.ir.graph import Graph, Node
from ember.ir.printer import MissingConstant, fmt_node, fmt_provenance, fmt_type

from .backend import register_backend
from .kernels import KERNELS

_SYMBOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPR_RE = re.compile(r"^[A-Za-z0-9_+\-* ]+$")


class GraphRuntimeError(RuntimeError):
    """A node failed while running a graph; the message names the node and its provenance."""


def graph_symbols(graph: Graph) -> set[str]:
    """Names of the symbolic dimensions of the graph's inputs."""
    syms: set[str] = set()
    for v in graph.inputs:
        for d in v.type.shape:
            if isinstance(d, str):
                syms.update(_SYMBOL_RE.findall(d))
    return syms


def eval_dim(expr: str, env: dict[str, int]) -> int:
    """Evaluate a symbolic dimension such as ``B`` or ``B+2`` under ``env``."""
    if expr in env:
        return env[expr]
    if not _EXPR_RE.match(expr):
        raise ValueError(f"cannot evaluate symbolic dimension {expr!r}")
    names = _SYMBOL_RE.findall(expr)
    missing = [n for n in names if n not in env]
    if missing:
        raise ValueError(f"symbolic dimension {expr!r} uses unbound symbols {missing}")
    return int(eval(expr, {"__builtins__": {}}, dict(env)))  # noqa: S307 - validated arithmetic only


def _mentions(v: Any, syms: set[str]) -> bool:
    if isinstance(v, str):
        names = _SYMBOL_RE.findall(v)
        return bool(names) and _EXPR_RE.match(v) is not None and all(n in syms for n in names)
    if isinstance(v, (tuple, list)):
        return any(_mentions(x, syms) for x in v)
    return False


def _resolve(v: Any, env: dict[str, int]) -> Any:
    if isinstance(v, str):
        names = _SYMBOL_RE.findall(v)
        if names and _EXPR_RE.match(v) and all(n in env for n in names):
            return eval_dim(v, env)
        return v
    if isinstance(v, tuple):
        return tuple(_resolve(x, env) for x in v)
    if isinstance(v, list):
        return [_resolve(x, env) for x in v]
    return v


class _Step:
    __slots__ = ("fn", "args", "attrs", "sym_attrs", "out", "free", "node")

    def __init__(self, fn, args, attrs, sym_attrs, out, free, node):
        self.fn = fn
        self.args = args
        self.attrs = attrs
        self.sym_attrs = sym_attrs
        self.out = out
        self.free = free
        self.node = node


class Interpreter:
    """A graph compiled for the numpy kernels; call it with the inputs as arrays."""

    resident: tuple = ()

    def __init__(self, graph: Graph, options: dict | None = None) -> None:
        self.graph = graph
        self.options = dict(options or {})
        self.symbols = graph_symbols(graph)
        slot: dict[int, int] = {}
        for v in graph.inputs:
            slot[id(v)] = len(slot)
        for n in graph.nodes:
            slot[id(n.output)] = len(slot)
        self.n_slots = len(slot)
        self.input_types = [v.type for v in graph.inputs]
        self.outputs = [slot[id(v)] for v in graph.outputs]
        last_use: dict[int, int] = {}
        for i, n in enumerate(graph.nodes):
            for v in n.inputs:
                last_use[slot[id(v)]] = i
        keep = set(self.outputs)
        frees: dict[int, list[int]] = {}
        for s, i in last_use.items():
            if s not in keep:
                frees.setdefault(i, []).append(s)
        self.steps: list[_Step] = []
        for i, n in enumerate(graph.nodes):
            fn = self._kernel_for(n)
            sym_attrs = tuple(k for k, v in n.attrs.items() if _mentions(v, self.symbols))
            self.steps.append(_Step(fn, tuple(slot[id(v)] for v in n.inputs), n.attrs, sym_attrs,
                                    slot[id(n.output)], tuple(frees.get(i, ())), n))
        if self.options.get("inplace", False):  # buffer reuse by liveness (ember.runtime.fused)
            from .fused import inplace_kernels
            for i, fn in inplace_kernels(graph).items():
                self.steps[i].fn = fn
        self.plan = [(st.fn, st.args, st.attrs, st.sym_attrs, st.out, st.free) for st in self.steps]
        self.expected = [(t.shape, t.dtype.np) for t in self.input_types]

    def _kernel_for(self, n: Node) -> Callable:
        if n.op == "constant" and isinstance(n.attrs.get("value"), MissingConstant):
            raise GraphRuntimeError(f"node `{fmt_node(n)}`: the constant's data is missing (the graph was parsed "
                                    "from text without its weights); load it with ember.ir.load from a saved file")
        if n.subgraph is not None:
            body = Interpreter(n.subgraph, self.options)
            return lambda *xs, **_: body(list(xs))[0]
        fn = KERNELS.get(n.op)
        if fn is None:
            raise GraphRuntimeError(f"node `{fmt_node(n)}`: no numpy kernel for op {n.op!r}")
        return fn

    # ------------------------------------------------------------ running
    def bind_symbols(self, inputs: Sequence[np.ndarray]) -> dict[str, int]:
        """Check the inputs against the graph's input types and bind its symbols."""
        if len(inputs) != len(self.input_types):
            raise GraphRuntimeError(f"graph {self.graph.name} takes {len(self.input_types)} inputs, got {len(inputs)}")
        env: dict[str, int] = {}
        deferred = []
        for v, t, a in zip(self.graph.inputs, self.input_types, inputs):
            shape = np.shape(a)
            if len(shape) != len(t.shape) or a.dtype != t.dtype.np:
                raise GraphRuntimeError(f"input %{v.name} of graph {self.graph.name} expects {fmt_type(t)}, got "
                                        f"{a.dtype}{list(shape)}")
            for d, n in zip(t.shape, shape):
                if isinstance(d, int):
                    if d != n:
                        raise GraphRuntimeError(f"input %{v.name} of graph {self.graph.name} expects "
                                                f"{fmt_type(t)}, got shape {list(shape)}")
                elif _SYMBOL_RE.fullmatch(d):
                    if env.setdefault(d, n) != n:
                        raise GraphRuntimeError(f"symbol {d} is {env[d]} for one input but {n} for %{v.name} "
                                                f"(shape {list(shape)})")
                else:
                    deferred.append((v, t, d, n, shape))
        for v, t, d, n, shape in deferred:  # compound dims (B+2) once every symbol is bound
            if eval_dim(d, env) != n:
                raise GraphRuntimeError(f"input %{v.name} expects {fmt_type(t)} with {d}={eval_dim(d, env)}, "
                                        f"got shape {list(shape)}")
        return env

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        env = self.bind_symbols(inputs) if self.symbols or len(inputs) != len(self.input_types) else None
        if env is None:
            self._check_static(inputs)
        regs: list[Any] = list(inputs) + [None] * (self.n_slots - len(inputs))
        ndarray = np.ndarray
        # the hot loop: plain tuples unpacked per step (cheaper than attribute lookups)
        for k, (fn, args, attrs, sym_attrs, out_slot, free) in enumerate(self.plan):
            if sym_attrs:
                attrs = dict(attrs)
                for name in sym_attrs:
                    attrs[name] = _resolve(attrs[name], env)
            try:
                out = fn(*[regs[i] for i in args], **attrs)
            except Exception as exc:  # noqa: BLE001 - re-raised naming the node
                raise self._node_error(self.steps[k], exc, regs) from exc
            if type(out) is not ndarray:
                out = np.asarray(out)
            regs[out_slot] = out
            for i in free:
                regs[i] = None
        return [regs[i] for i in self.outputs]

    def _check_static(self, inputs: Sequence[np.ndarray]) -> None:
        for (shape, dt), a in zip(self.expected, inputs):
            if a.shape != shape or (a.dtype is not dt and a.dtype != dt):
                self._input_error(inputs)

    def _input_error(self, inputs: Sequence[np.ndarray]) -> None:
        for v, t, a in zip(self.graph.inputs, self.input_types, inputs):
            if a.shape != t.shape or a.dtype != t.dtype.np:
                raise GraphRuntimeError(f"input %{v.name} of graph {self.graph.name} expects {fmt_type(t)}, got "
                                        f"{a.dtype}{list(a.shape)}")

    def _node_error(self, st: _Step, exc: Exception, regs) -> GraphRuntimeError:
        n = st.node
        operands = ", ".join(f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                             for a in (regs[i] for i in st.args))
        prov = fmt_provenance(n.provenance)
        return GraphRuntimeError(f"graph {self.graph.name}: node `{fmt_node(n)}` failed: {type(exc).__name__}: "
                                 f"{exc}\n  operands: {operands}" + (f"\n  from {prov}" if prov else ""))


def run_graph(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run ``graph`` once on numpy ``inputs`` (compiles, then calls)."""
    return Interpreter(graph)(list(inputs))


register_backend("eager", Interpreter)
