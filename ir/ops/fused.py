"""``fused``: a group of primitives executed as one unit (the body is ``Node.subgraph``).

Fused groups are formed by ``ember.passes.fusion`` after autodiff, so the op has
no gradient rule. Its type is its body's output type: the type rule takes the body
as the ``body`` keyword (``prim.infer(*types, body=node.subgraph, **node.attrs)``).
Backends run the body their own way (the numpy interpreter with fewer temporaries,
ONNX as a local function, TVM as one primitive function).
"""

from __future__ import annotations

from ..registry import OTHER, primitive
from ..types import ShapeError, TensorType


def _fused_type(*types: TensorType, body=None, **attrs) -> TensorType:
    if body is None:
        raise ShapeError("a fused group is typed by its body: pass body=node.subgraph")
    if len(types) != len(body.inputs):
        raise ShapeError(f"fused group takes {len(body.inputs)} operands, got {len(types)}")
    for i, (t, v) in enumerate(zip(types, body.inputs)):
        if t != v.type:
            raise ShapeError(f"fused group operand {i} is {t}, its body expects {v.type}")
    if len(body.outputs) != 1:
        raise ShapeError(f"a fused group has one output, its body has {len(body.outputs)}")
    return body.outputs[0].type


fused = primitive("fused", _fused_type, kind=OTHER, variadic=True, attrs=("pattern",),
                  doc="a fused group of primitives; the body is the node's subgraph")
