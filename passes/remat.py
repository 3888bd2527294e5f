"""Rematerialization (activation checkpointing) and a static peak-memory estimate.

In a joint forward+backward graph, every forward value the backward reads stays
alive from its forward definition until its backward use. ``remat`` recomputes
cheap forward values (elementwise ops, broadcasts, reshapes) right before their
first backward reader instead, when everything they are computed from is kept
for the backward anyway (a graph input, or a value the backward already reads):
recomputing then extends no other lifetime, so peak memory can only fall, at the
cost of one elementwise op per value. ``peak_bytes`` is the liveness-based peak
of a graph's intermediates (static shapes), to measure the trade.
"""

from __future__ import annotations

from ember.ir.graph import Graph, Node, Provenance, Value
from ember.ir.registry import ELEMENTWISE, PRIMITIVES

from ._rewrite import copy_node, empty_like
from .cleanup import RANDOM_OPS
from .manager import register_pass

_CHEAP_MOVEMENT = frozenset({"broadcast_to", "reshape", "permute"})


def _cheap(node: Node) -> bool:
    if node.subgraph is not None or node.op in RANDOM_OPS:
        return False
    prim = PRIMITIVES.get(node.op)
    return node.op in _CHEAP_MOVEMENT or (prim is not None and prim.kind == ELEMENTWISE)


def _nbytes(v: Value) -> int:
    n = v.type.dtype.itemsize
    for d in v.type.shape:
        if not isinstance(d, int):
            return 0
        n *= d
    return n


def peak_bytes(graph: Graph) -> int:
    """Peak total size of live intermediate values when nodes run in order (inputs excluded)."""
    last: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            last[v.name] = i
    for v in graph.outputs:
        last[v.name] = len(graph.nodes)
    live = peak = 0
    dying: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        size = 0 if n.op in ("broadcast_to", "reshape", "permute") else _nbytes(n.output)  # views
        live += size
        peak = max(peak, live)
        end = last.get(n.output.name, i)
        dying[end] = dying.get(end, 0) + size
        live -= dying.pop(i, 0)
    return peak


@register_pass("remat", "recompute cheap forward values in the backward (activation checkpointing)")
def remat(graph: Graph, n_forward: int | None = None) -> Graph:
    """Rematerialize cheap forward values of a joint graph (outputs: forward ones first)."""
    if n_forward is None:
        n_forward = graph.meta.get("forward_outputs")
        if n_forward is None:
            raise ValueError("remat needs n_forward (or a graph made by autodiff)")
    need = {v.name for v in graph.outputs[:n_forward]}
    forward: set[int] = set()
    for node in reversed(graph.nodes):
        if node.output.name in need:
            forward.add(id(node))
            need.update(v.name for v in node.inputs)
    backward_reads = {v.name for n in graph.nodes if id(n) not in forward for v in n.inputs}
    inputs = {v.name for v in graph.inputs}
    recompute: set[str] = set()
    for node in graph.nodes:
        if (id(node) in forward and _cheap(node) and node.output.name in backward_reads
                and all(v.name in inputs or v.name in backward_reads or v.name in recompute for v in node.inputs)):
            recompute.add(node.output.name)
    if not recompute:
        return graph
    new, env = empty_like(graph)
    clones: dict[str, Value] = {}
    by_name = {n.output.name: n for n in graph.nodes}

    def clone(name: str) -> Value:
        if name not in clones:
            src = by_name[name]
            ins = [clone(v.name) if v.name in recompute else env[v.name] for v in src.inputs]
            prov = Provenance(f"{src.provenance.module} (remat)".strip(), src.provenance.file, src.provenance.line)
            clones[name] = new.add_node(src.op, ins, src.attrs, name=f"{name}_remat", provenance=prov)
        return clones[name]

    for node in graph.nodes:
        if id(node) in forward:
            ins = [env[v.name] for v in node.inputs]
        else:
            ins = [clone(v.name) if v.name in recompute else env[v.name] for v in node.inputs]
        env[node.output.name] = copy_node(new, node, ins)
    new.outputs = [env[v.name] for v in graph.outputs]
    return new
