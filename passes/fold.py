"""Constant folding: evaluate nodes whose operands are all known at compile time.

A folded value that is one repeated scalar becomes a 0-d ``full`` broadcast to
its shape (any size, no data stored in the graph, no memory at run time); other
results become ``constant`` nodes only up to ``max_elements`` so graphs do not
swell with literal arrays.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ember.ir.graph import Graph, Node, Value

from ._kernels import kernels
from ._rewrite import rebuild
from .cleanup import RANDOM_OPS
from .manager import register_pass


def _static(v: Value) -> bool:
    return v.type.is_static()


def known_array(v: Value) -> Optional[np.ndarray]:
    """The compile-time value of ``v`` (a ``constant`` or static ``full`` node), else None."""
    node = v.producer
    if node is None or node.subgraph is not None:
        return None
    if node.op == "constant":
        return np.asarray(node.attrs["value"])
    if node.op == "full" and _static(v) and not isinstance(node.attrs["value"], str):
        return np.full(v.type.shape, node.attrs["value"], dtype=v.type.dtype.np)
    return None


def scalar_value(v: Value):
    """The single value every element of ``v`` holds, when known at compile time (else None).

    Looks through ``broadcast_to``/``reshape`` of such values; works for symbolic shapes.
    """
    node = v.producer
    while node is not None and node.op in ("broadcast_to", "reshape") and node.subgraph is None:
        node = node.inputs[0].producer
    if node is None or node.subgraph is not None:
        return None
    if node.op == "full" and not isinstance(node.attrs["value"], str):
        return node.attrs["value"]
    if node.op == "constant":
        arr = np.asarray(node.attrs["value"])
        if arr.size and arr.size <= 4096 and np.all(arr == arr.flat[0]):
            return arr.flat[0].item()
    return None


def _python_scalar(x: np.ndarray):
    return x.flat[0].item()


def scalar_fill(new: Graph, shape: tuple, value, dtype, name: str, provenance, view: bool = True) -> Value:
    """``value`` at ``shape``: a 0-d ``full`` broadcast to the shape (a free view in numpy) when ``view``."""
    shape = tuple(shape)
    if not view or not shape or all(d == 1 for d in shape):
        return new.add_node("full", [], {"shape": shape, "value": value, "dtype": dtype}, name=name,
                            provenance=provenance)
    s = new.add_node("full", [], {"shape": (), "value": value, "dtype": dtype}, name=name + "_s",
                     provenance=provenance)
    return new.add_node("broadcast_to", [s], {"shape": shape}, name=name, provenance=provenance)


@register_pass("fold", "evaluate nodes whose operands are all compile-time constants")
def fold(graph: Graph, max_elements: int = 1024, fill_views: bool = False) -> Graph:
    """Constant folding (random draws and fused groups are left alone; ``fill_views`` as in simplify)."""
    from .simplify import elementwise_readers
    table = kernels()
    users = graph.users()

    def rewrite(new: Graph, node: Node, ins: list[Value]):
        if node.op in RANDOM_OPS or node.op in ("constant", "full") or node.subgraph is not None:
            return None
        if not ins or not _static(node.output):
            return None
        arrays = [known_array(v) for v in ins]
        if any(a is None for a in arrays):
            return None
        out = np.asarray(table[node.op](*arrays, **node.attrs))
        dtype = node.output.type.dtype
        if out.dtype != dtype.np:
            out = out.astype(dtype.np)
        if out.size and np.all(out == out.flat[0]) and not np.isnan(out.flat[0]):
            return scalar_fill(new, out.shape, _python_scalar(out), dtype, node.output.name, node.provenance,
                               view=fill_views and elementwise_readers(node, users))
        if out.size <= max_elements:
            return new.add_node("constant", [], {"value": np.ascontiguousarray(out)},
                                name=node.output.name, provenance=node.provenance)
        return None

    return rebuild(graph, rewrite)
