"""Conv + BatchNorm folding for inference: per-channel affine chains move into the weights.

An eval-mode BatchNorm after a convolution is, per output channel, ``y*s + t``
with ``s`` and ``t`` computed from parameters and running statistics (the graph
shows it as ``sub``/``mul``/``add`` with per-channel operands broadcast from
``[1,C,1,1]``). ``fold_conv_bn`` follows such a chain from a ``conv2d`` (its bias
``add`` included), accumulates ``s`` and ``t`` on ``[1,C,1,1]`` values, and emits
``conv2d(x, W * s) + t``: every activation-sized op of the BatchNorm disappears and
what remains is a few channel-sized ops on the weights. Training-mode BatchNorm is
never folded: its statistics are computed from the convolution's output, so that
output has more than one reader and the chain stops.
"""

from __future__ import annotations

from typing import Optional

from ember.ir.graph import Graph, Node, Value

from ._rewrite import copy_node, empty_like
from .manager import register_pass


def _per_channel(v: Value, c: int) -> Optional[Node]:
    """The producer of ``v`` if ``v`` is ``broadcast_to(u)`` with ``u: [1,C,1,1]``."""
    n = v.producer
    if n is None or n.op != "broadcast_to" or n.subgraph is not None:
        return None
    u = n.inputs[0]
    if tuple(u.type.shape) != (1, c, 1, 1):
        return None
    return n


def _depends_on(v: Value, target: Value, memo: dict) -> bool:
    if v is target:
        return True
    if v.name in memo:
        return memo[v.name]
    n = v.producer
    memo[v.name] = n is not None and any(_depends_on(i, target, memo) for i in n.inputs)
    return memo[v.name]


def _find_chain(graph: Graph, conv: Node, users: dict, outputs: set) -> list[tuple[Node, str, Value]]:
    """(node, op, per-channel [1,C,1,1] operand) steps of the affine chain after ``conv``."""
    if len(conv.output.type.shape) != 4 or not conv.output.type.dtype.is_floating_point:
        return []
    c = conv.output.type.shape[1]
    if not isinstance(c, int):
        return []
    chain, cur, memo = [], conv.output, {}
    while True:
        readers = users.get(cur.name, [])
        if len(readers) != 1 or cur.name in outputs:
            break
        r = readers[0]
        if r.op not in ("add", "sub", "mul", "div") or r.subgraph is not None:
            break
        pos = 0 if r.inputs[0] is cur else 1
        if r.inputs[1 - pos] is cur:
            break  # x*x is not affine
        other = _per_channel(r.inputs[1 - pos], c)
        if other is None or (pos == 1 and r.op in ("sub", "div")):
            break
        u = other.inputs[0]
        if _depends_on(u, conv.output, memo):
            break
        chain.append((r, r.op, u))
        cur = r.output
    return chain


@register_pass("fold_conv_bn", "fold eval-mode BatchNorm (per-channel affine chains) into conv2d weights")
def fold_conv_bn(graph: Graph) -> Graph:
    """Conv+BatchNorm folding (inference graphs)."""
    users = graph.users()
    outputs = {v.name for v in graph.outputs}
    plans: dict[int, tuple[Node, list]] = {}
    skip: set[int] = set()
    for node in graph.nodes:
        if node.op != "conv2d" or node.subgraph is not None or id(node) in skip:
            continue
        chain = _find_chain(graph, node, users, outputs)
        if not any(op in ("mul", "div") for _, op, _ in chain):
            continue
        plans[id(chain[-1][0])] = (node, chain)
        skip.add(id(node))
        skip.update(id(r) for r, _, _ in chain[:-1])
    if not plans:
        return graph
    new, env = empty_like(graph)
    for node in graph.nodes:
        if id(node) in skip:
            continue
        if id(node) not in plans:
            env[node.output.name] = copy_node(new, node, [env[v.name] for v in node.inputs])
            continue
        conv, chain = plans[id(node)]
        env[node.output.name] = _emit(new, env, conv, chain, node)
    new.outputs = [env[v.name] for v in graph.outputs]
    return new


def _emit(new: Graph, env: dict, conv: Node, chain: list, last: Node) -> Value:
    prov = last.provenance
    scale: Optional[Value] = None
    shift: Optional[Value] = None

    def op(name, a, b):
        return new.add_node(name, [a, b], {}, provenance=prov)

    for _, kind, u in chain:
        c = env[u.name]
        if kind == "add":
            shift = c if shift is None else op("add", shift, c)
        elif kind == "sub":
            shift = new.add_node("neg", [c], {}, provenance=prov) if shift is None else op("sub", shift, c)
        elif kind == "mul":
            scale = c if scale is None else op("mul", scale, c)
            shift = None if shift is None else op("mul", shift, c)
        else:
            scale = op("div", _one_like(new, c, prov) if scale is None else scale, c)
            shift = None if shift is None else op("div", shift, c)
    x, w = (env[v.name] for v in conv.inputs[:2])
    cout = w.type.shape[0]
    s = new.add_node("reshape", [scale], {"shape": (cout, 1, 1, 1)}, provenance=prov)
    s = new.add_node("broadcast_to", [s], {"shape": tuple(w.type.shape)}, provenance=prov)
    w2 = new.add_node("mul", [w, s], {}, name=f"{conv.inputs[1].name}_folded", provenance=prov)
    y = new.add_node("conv2d", [x, w2] + [env[v.name] for v in conv.inputs[2:]], conv.attrs,
                     provenance=conv.provenance)
    if shift is None:
        return y
    t = new.add_node("broadcast_to", [shift], {"shape": tuple(y.type.shape)}, provenance=prov)
    return new.add_node("add", [y, t], {}, name=last.output.name, provenance=prov)


def _one_like(new: Graph, c: Value, prov) -> Value:
    return new.add_node("full", [], {"shape": tuple(c.type.shape), "value": 1.0, "dtype": c.type.dtype},
                        provenance=prov)
