"""Algebraic simplification: identities that remove nodes without changing values.

permute∘permute and reshape∘reshape collapse (and vanish when they are the
identity), lossless cast chains collapse, ``x*1``, ``x/1``, ``x+0``, ``x-0``,
``neg(neg(x))`` become ``x``, broadcasts of broadcast scalars collapse, and (with
``fill_views``) fills become a 0-d ``full`` broadcast to their shape (a zero-stride
view in numpy: no memory, no fill time). Follow with ``dce`` to drop what became dead.
"""

from __future__ import annotations

from ember.ir import types as T
from ember.ir.graph import Graph, Node, Value
from ember.ir.registry import ELEMENTWISE, PRIMITIVES

from ._rewrite import rebuild
from .fold import scalar_value
from .manager import register_pass

_INT_BITS = {T.uint8: 8, T.int8: 8, T.int16: 16, T.int32: 32, T.int64: 64}
_FLOAT_MANTISSA = {T.float16: 11, T.bfloat16: 8, T.float32: 24, T.float64: 53}


def lossless(src: T.DType, dst: T.DType) -> bool:
    """Whether every value of ``src`` is exactly representable in ``dst``."""
    if src is dst or src is T.bool_:
        return True
    if dst is T.bool_:
        return False
    if src.is_floating_point:
        if not dst.is_floating_point:
            return False
        if {src, dst} == {T.float16, T.bfloat16}:
            return False
        return _FLOAT_MANTISSA[dst] >= _FLOAT_MANTISSA[src]
    if dst.is_floating_point:
        return _FLOAT_MANTISSA[dst] > _INT_BITS[src]
    if src is T.uint8:
        return dst is not T.int8
    return dst is not T.uint8 and _INT_BITS[dst] >= _INT_BITS[src]


def _producer(v: Value, op: str):
    n = v.producer
    return n if n is not None and n.op == op and n.subgraph is None else None


def elementwise_readers(node: Node, users: dict) -> bool:
    """Whether every reader of ``node``'s value is an elementwise op (so a broadcast view is as good)."""
    readers = users.get(node.output.name, [])
    return bool(readers) and all(r.subgraph is None and PRIMITIVES[r.op].kind == ELEMENTWISE for r in readers)


def _simplify(new: Graph, node: Node, ins: list[Value], users: dict, fill_views: bool):
    op, attrs = node.op, node.attrs
    if op == "permute":
        dims = tuple(attrs["dims"])
        inner = _producer(ins[0], "permute")
        if inner is not None:
            dims = tuple(inner.attrs["dims"][d] for d in dims)
            src = inner.inputs[0]
        else:
            src = ins[0]
        if dims == tuple(range(len(dims))):
            return src
        if inner is not None:
            return new.add_node("permute", [src], {"dims": dims}, name=node.output.name,
                                provenance=node.provenance)
    elif op == "reshape":
        src = ins[0]
        inner = _producer(src, "reshape")
        if inner is not None:
            src = inner.inputs[0]
        if tuple(src.type.shape) == tuple(attrs["shape"]):
            return src
        if inner is not None:
            return new.add_node("reshape", [src], attrs, name=node.output.name, provenance=node.provenance)
    elif op == "cast":
        src = ins[0]
        if src.type.dtype is attrs["dtype"]:
            return src
        inner = _producer(src, "cast")
        if inner is not None and lossless(inner.inputs[0].type.dtype, src.type.dtype):
            x = inner.inputs[0]
            if x.type.dtype is attrs["dtype"]:
                return x
            return new.add_node("cast", [x], attrs, name=node.output.name, provenance=node.provenance)
    elif op == "full":
        # a fill is a broadcast scalar: a 0-d fill viewed at the shape costs no memory and no time.
        # Only for elementwise readers: a reduction over a zero-stride view sums in another order
        # (numpy's pairwise summation needs contiguous data), which would change the bits.
        shape = tuple(attrs["shape"])
        if (fill_views and shape and not isinstance(attrs["value"], str) and any(d != 1 for d in shape)
                and elementwise_readers(node, users)):
            scalar = new.add_node("full", [], {"shape": (), "value": attrs["value"], "dtype": attrs["dtype"]},
                                  name=node.output.name + "_s", provenance=node.provenance)
            return new.add_node("broadcast_to", [scalar], {"shape": shape}, name=node.output.name,
                                provenance=node.provenance)
    elif op == "broadcast_to":
        src = ins[0]
        if tuple(src.type.shape) == tuple(attrs["shape"]):
            return src
        inner = _producer(src, "broadcast_to")
        if inner is not None and len(inner.inputs[0].type.shape) == 0:
            return new.add_node("broadcast_to", [inner.inputs[0]], attrs, name=node.output.name,
                                provenance=node.provenance)
        fill = _producer(src, "full")
        if fill is not None and len(src.type.shape) and all(d == 1 for d in src.type.shape):
            scalar = new.add_node("full", [], {"shape": (), "value": fill.attrs["value"], "dtype": src.type.dtype},
                                  name=node.output.name + "_s", provenance=node.provenance)
            return new.add_node("broadcast_to", [scalar], attrs, name=node.output.name, provenance=node.provenance)
    elif op == "neg":
        inner = _producer(ins[0], "neg")
        if inner is not None:
            return inner.inputs[0]
    elif op in ("mul", "add", "sub", "div"):
        a, b = ins
        if a.type != b.type or a.type != node.output.type:
            return None
        identity = 1 if op in ("mul", "div") else 0
        sb = scalar_value(b)
        if sb is not None and sb == identity:
            return a
        if op in ("mul", "add"):
            sa = scalar_value(a)
            if sa is not None and sa == identity:
                return b
    return None


@register_pass("simplify", "algebraic identities: double permute/reshape/cast, x*1, x+0, fills as scalar broadcasts")
def simplify(graph: Graph, fill_views: bool = False) -> Graph:
    """Algebraic simplification (run ``dce`` after it).

    ``fill_views=True`` also turns fills read only by elementwise ops into broadcast
    0-d fills: faster and leaner in numpy, but a zero-stride operand can change the
    memory layout numpy picks for a result and so the summation order of a later
    reduction (last-bit differences); off by default to stay bit-identical to eager.
    """
    users = graph.users()
    return rebuild(graph, lambda new, node, ins: _simplify(new, node, ins, users, fill_views))
