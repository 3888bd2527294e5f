"""Mixed precision as a pass: insert the casts PyTorch's autocast policy would.

Ops in the policy's ``"lower"`` category (``matmul``, ``conv2d``,
``conv_transpose2d``) run in the low dtype (bfloat16 by default, as CPU autocast):
their floating-point operands are cast down and their result stays low. Every
other op sees its operands as they come: elementwise ops whose operands now
differ in dtype run in the widest one (``"promote"``), reductions in the policy's
``"fp32"`` category (``sum``) get low-precision operands cast up to float32, and
shape/dtype-neutral ops (relu, reshape, ...) keep the low dtype, as eager autocast
leaves them. Graph outputs are cast back to their original dtypes, so the
graph's signature does not change. float64 values are never cast (PyTorch).

The policy table is ember.amp's (``ember.amp.autocast_mode.POLICY``, keyed by op
name; the primitive names in it apply here). Passes sit below the front end, so
the table is looked up lazily by module name, with the same defaults built in.

Run it on a forward (inference) graph; for training, capture the step under
``ember.amp.autocast`` instead: the tracer records the very casts eager autocast
makes, and the backward follows them.
"""

from __future__ import annotations

import importlib

from ember.ir import types as T
from ember.ir.graph import Graph, Node, Value
from ember.ir.registry import ELEMENTWISE, PRIMITIVES, REDUCTION

from ._rewrite import empty_like
from .manager import register_pass

_DEFAULT_LOWER = frozenset({"matmul", "conv2d", "conv_transpose2d"})
_DEFAULT_FP32 = frozenset({"sum"})
_LOW = (T.float16, T.bfloat16)


def _policy() -> tuple[frozenset, frozenset]:
    try:
        table = importlib.import_module("ember.amp.autocast_mode").POLICY
    except (ImportError, AttributeError):
        return _DEFAULT_LOWER, _DEFAULT_FP32
    lower = frozenset(k for k, v in table.items() if v == "lower" and k in PRIMITIVES)
    fp32 = frozenset(k for k, v in table.items() if v == "fp32" and k in PRIMITIVES)
    return lower or _DEFAULT_LOWER, fp32 or _DEFAULT_FP32


def _cast(new: Graph, v: Value, dtype: T.DType, prov) -> Value:
    if v.type.dtype is dtype:
        return v
    return new.add_node("cast", [v], {"dtype": dtype}, provenance=prov)


def _widest(dtypes) -> T.DType:
    floats = [d for d in dtypes if d.is_floating_point]
    return max(floats, key=lambda d: (d.itemsize, d is not T.bfloat16))


@register_pass("autocast", "mixed precision: matmul/conv in bf16/f16 with PyTorch's autocast casts")
def autocast(graph: Graph, dtype: str = "bfloat16") -> Graph:
    """Insert autocast casts (``dtype``: ``"bfloat16"`` or ``"float16"``)."""
    low = T.from_name(dtype) if isinstance(dtype, str) else dtype
    if low not in _LOW:
        raise ValueError(f"autocast: dtype must be bfloat16 or float16, got {low.name}")
    lower, fp32 = _policy()
    new, env = empty_like(graph)
    for node in graph.nodes:
        ins = [env[v.name] for v in node.inputs]
        env[node.output.name] = _rewrite(new, node, ins, low, lower, fp32)
    new.outputs = [_cast(new, env[v.name], v.type.dtype, None) if v.type.dtype.is_floating_point else env[v.name]
                   for v in graph.outputs]
    return new


def _rewrite(new: Graph, node: Node, ins: list[Value], low, lower, fp32) -> Value:
    prov = node.provenance
    if node.subgraph is not None:
        raise ValueError("autocast: run it before fuse (it does not rewrite fused group bodies)")
    if node.op in lower:
        ins = [_cast(new, v, low, prov) if v.type.dtype.is_floating_point and v.type.dtype is not T.float64 else v
               for v in ins]
    elif node.op in fp32:
        ins = [_cast(new, v, T.float32, prov) if v.type.dtype in _LOW else v for v in ins]
    else:
        prim = PRIMITIVES[node.op]
        floats = {v.type.dtype for v in ins if v.type.dtype.is_floating_point}
        if len(floats) > 1 and (prim.kind in (ELEMENTWISE, REDUCTION) or prim.variadic or node.op == "where"):
            wide = _widest(floats)
            ins = [_cast(new, v, wide, prov) if v.type.dtype.is_floating_point else v for v in ins]
        elif len(floats) > 1:
            # ops with operands of different roles (index_add's source, scatter's): follow operand 0
            want = ins[0].type.dtype
            ins = [_cast(new, v, want, prov) if v.type.dtype.is_floating_point else v for v in ins]
    return new.add_node(node.op, ins, node.attrs, name=node.output.name, provenance=prov)
