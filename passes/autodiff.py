"""Reverse-mode autodiff as a graph transformation (AOTAutograd's joint graph).

``autodiff(graph, wrt=..., of=...)`` copies the forward graph and appends its
backward: it walks the nodes between ``wrt`` and ``of`` in reverse and calls each
primitive's registered VJP (``Primitive.vjp``) under a ``GraphBuilder``, so the
rules that eager autograd runs on tensors here append IR nodes. No gradient is
written twice.

- broadcasting is explicit in the IR, so a ``broadcast_to`` node's VJP reduces;
- a value read by several nodes gets the sum of their cotangents;
- only nodes on a differentiable path from ``wrt`` to ``of`` are visited (paths
  through integer/bool values, ``nondiff_inputs`` or creation ops are pruned);
- every node on such a path lacking a VJP is listed in one error.

The joint graph's outputs are the forward outputs followed by one gradient per
``wrt`` input; ``meta["grads"]`` maps each ``wrt`` name to its output index.
"""

from __future__ import annotations

from typing import Sequence, Union

from ember.ir import ops as P
from ember.ir.graph import ROLE_INPUT, ROLE_PARAM, Graph, GraphBuilder, Node, Provenance, Value

from ._rewrite import copy_node, empty_like
from .manager import register_pass


class AutodiffError(RuntimeError):
    """The graph cannot be differentiated (lists every offending node)."""


def _is_float(v: Value) -> bool:
    return v.type.dtype.is_floating_point


def _resolve(graph: Graph, names: Union[None, str, Sequence], default: list[Value]) -> list[Value]:
    if names is None:
        return default
    if isinstance(names, (str, int, Value)):
        names = [names]
    out = []
    for n in names:
        if isinstance(n, Value):
            n = n.name
        if isinstance(n, int):
            out.append(graph.outputs[n])
        else:
            out.append(graph.value(n))
    return out


def _default_wrt(graph: Graph) -> list[Value]:
    params = [v for v in graph.inputs if graph.input_roles.get(v.name) == ROLE_PARAM and _is_float(v)]
    return params or [v for v in graph.inputs if _is_float(v)]


def _active_nodes(graph: Graph, wrt: list[Value], of: list[Value]) -> list[Node]:
    """Nodes on a differentiable path from ``wrt`` to ``of``, in forward order."""
    depends = {v.name for v in wrt}
    for node in graph.nodes:
        if not _is_float(node.output):
            continue
        nondiff = node.prim.nondiff_inputs if node.op in _registry() else ()
        if any(v.name in depends for i, v in enumerate(node.inputs) if i not in nondiff):
            depends.add(node.output.name)
    needed = {v.name for v in of if v.name in depends}
    active = []
    for node in reversed(graph.nodes):
        if node.output.name in needed:
            active.append(node)
            nondiff = node.prim.nondiff_inputs if node.op in _registry() else ()
            for i, v in enumerate(node.inputs):
                if i not in nondiff and v.name in depends:
                    needed.add(v.name)
    return active[::-1]


def _registry():
    from ember.ir.registry import PRIMITIVES
    return PRIMITIVES


def _missing_rules(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.subgraph is not None or _registry()[n.op].vjp is None]


def _format_missing(nodes: list[Node]) -> str:
    ops = sorted({n.op for n in nodes})
    lines = [f"autodiff: no gradient rule for op{'s' if len(ops) > 1 else ''} {', '.join(ops)}:"]
    for n in nodes:
        where = f"  # {n.provenance}" if str(n.provenance) else ""
        lines.append(f"  %{n.output.name}: {n.output.type} = {n.op}("
                     + ", ".join(f"%{v.name}" for v in n.inputs) + f"){where}")
    lines.append("register a VJP with Primitive.def_vjp, or detach these values "
                 "(fused groups are formed after autodiff: run 'fuse' last)")
    return "\n".join(lines)


def _backward_provenance(p: Provenance) -> Provenance:
    module = f"{p.module} (backward)" if p.module else "(backward)"
    return Provenance(module, p.file, p.line)


def _accumulate(cts: dict[str, Value], name: str, g: Value) -> None:
    cur = cts.get(name)
    cts[name] = g if cur is None else P.add(cur, g)


@register_pass("autodiff", "append the backward of `of` w.r.t. `wrt` (joint graph)")
def autodiff(graph: Graph, wrt: Union[None, str, Sequence] = None, of: Union[None, str, int, Sequence] = None,
             *, seed: str = "auto", keep_outputs: bool = True) -> Graph:
    """The joint forward+backward graph of ``of`` (default: the first output) w.r.t. ``wrt``.

    ``wrt`` defaults to the floating-point parameters (or every float input when
    the graph has no parameters). ``seed="ones"`` seeds every ``of`` with ones (a
    scalar loss); ``"input"`` adds a cotangent input ``grad_<name>`` per ``of``;
    ``"auto"`` uses ones for scalars and inputs otherwise. A ``wrt`` input no
    path reaches gets a zero gradient (listed in ``meta["grads_unused"]``).
    """
    wrt_vals = _resolve(graph, wrt, _default_wrt(graph))
    of_vals = _resolve(graph, of, graph.outputs[:1])
    for v in wrt_vals:
        if v not in graph.inputs:
            raise AutodiffError(f"autodiff: wrt=%{v.name} is not a graph input")
        if not _is_float(v):
            raise AutodiffError(f"autodiff: cannot differentiate with respect to %{v.name}: {v.type} "
                                "is not floating point (only floating point inputs can require gradients)")
    for v in of_vals:
        if not _is_float(v):
            raise AutodiffError(f"autodiff: %{v.name}: {v.type} is not floating point, so it has no gradient")
    active = _active_nodes(graph, wrt_vals, of_vals)
    missing = _missing_rules(active)
    if missing:
        raise AutodiffError(_format_missing(missing))

    new, env = empty_like(graph)
    for node in graph.nodes:
        env[node.output.name] = copy_node(new, node, [env[v.name] for v in node.inputs])

    cts: dict[str, Value] = {}
    builder = GraphBuilder(new)
    with builder:
        for v in of_vals:
            if seed == "input" or (seed == "auto" and v.type.shape != ()):
                g = new.add_input(v.type, f"grad_{v.name}", ROLE_INPUT)
            else:
                g = P.full(shape=tuple(v.type.shape), value=1.0, dtype=v.type.dtype)
            _accumulate(cts, v.name, g)
        active_names = {v.name for v in wrt_vals} | {n.output.name for n in active}
        for node in reversed(active):
            g = cts.pop(node.output.name, None)
            if g is None:
                continue
            prim = node.prim
            ins = [env[v.name] for v in node.inputs]
            needs = tuple(i not in prim.nondiff_inputs and v.name in active_names and _is_float(v)
                          for i, v in enumerate(node.inputs))
            builder.provenance = _backward_provenance(node.provenance)
            grads = prim.vjp(g, ins, env[node.output.name], needs, node.attrs)
            for v, need, gi in zip(node.inputs, needs, grads):
                if need and gi is not None:
                    _accumulate(cts, v.name, gi)
        builder.provenance = None
        grads_out, unused = [], []
        for v in wrt_vals:
            g = cts.get(v.name)
            if g is None:
                unused.append(v.name)
                g = P.full(shape=tuple(v.type.shape), value=0.0, dtype=v.type.dtype)
            grads_out.append(g)

    forward_outs = [env[v.name] for v in graph.outputs] if keep_outputs else []
    new.outputs = forward_outs + grads_out
    new.meta = dict(new.meta)
    new.meta["grads"] = {v.name: len(forward_outs) + i for i, v in enumerate(wrt_vals)}
    new.meta["grads_unused"] = unused
    new.meta["forward_outputs"] = len(forward_outs)
    return new


def grad_graph(graph: Graph, wrt=None, of=None) -> Graph:
    """Only the gradients (no forward outputs): handy for second-order gradients."""
    return autodiff(graph, wrt=wrt, of=of, keep_outputs=False)


__all__ = ["AutodiffError", "autodiff", "grad_graph"]
