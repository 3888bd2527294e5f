"""Helpers for the passes tests: build graphs from primitive-level functions and run them.

A test function written with ``ember.ir.ops`` primitives runs unchanged on eager
tensors (default handler) and on graph values (inside ``GraphBuilder``), so the
same function gives the graph and the eager oracle.
"""

from __future__ import annotations

import numpy as np

import ember
from ember.ir.graph import Graph, GraphBuilder
from ember.ir.types import TensorType, from_numpy
from ember.runtime.fused import run_graph


def build(fn, arrays, name="f", roles=None) -> Graph:
    """Trace ``fn(*values)`` (primitive calls only) into a Graph with one input per array."""
    g = Graph(name)
    vals = [g.add_input(TensorType(from_numpy(a.dtype), tuple(a.shape)), f"x{i}",
                        (roles or {}).get(i, "input")) for i, a in enumerate(arrays)]
    with GraphBuilder(g):
        out = fn(*vals)
    g.outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    return g


def run(graph: Graph, arrays, inplace=True):
    return run_graph(graph, [np.asarray(a) for a in arrays], inplace=inplace)


def eager_grads(fn, arrays, diff, weight=None):
    """Eager autograd gradients of sum(fn(*xs) * weight) w.r.t. the inputs flagged in ``diff``."""
    ts = [ember.tensor(a, requires_grad=bool(d)) for a, d in zip(arrays, diff)]
    out = fn(*ts)
    if weight is not None:
        out = out * ember.tensor(weight)
    out.sum().backward()
    return [t.grad.numpy() if d else None for t, d in zip(ts, diff)]
