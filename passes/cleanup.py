"""Dead-code elimination and common-subexpression elimination.

Random draws (``uniform``, ``normal``, ``randint``) advance ember's generator, so
they are never removed or merged: a compiled step must draw exactly what eager
execution draws.
"""

from __future__ import annotations

import numpy as np

from ember.ir.graph import Graph, Node, Value

from ._rewrite import copy_node, empty_like, remap_meta_names
from .manager import register_pass

RANDOM_OPS = frozenset({"uniform", "normal", "randint"})


def has_side_effect(node: Node) -> bool:
    return node.op in RANDOM_OPS


@register_pass("dce", "remove nodes whose results are never used")
def dce(graph: Graph) -> Graph:
    """Dead-code elimination (random draws are kept: they advance the generator)."""
    live = {v.name for v in graph.outputs}
    keep: list[Node] = []
    for node in reversed(graph.nodes):
        if node.output.name in live or has_side_effect(node):
            keep.append(node)
            live.update(v.name for v in node.inputs)
    keep_ids = {id(n) for n in keep}
    new, env = empty_like(graph)
    for node in graph.nodes:
        if id(node) in keep_ids:
            env[node.output.name] = copy_node(new, node, [env[v.name] for v in node.inputs])
    new.outputs = [env[v.name] for v in graph.outputs]
    return new


def _freeze(x):
    """A hashable key for an attribute value."""
    if isinstance(x, np.ndarray):
        if x.size <= 4096:
            return ("array", x.dtype.str, x.shape, x.tobytes())
        return ("array-id", id(x))
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, float) and x != x:
        return ("nan",)
    return (type(x).__name__, x) if isinstance(x, (int, float, bool)) else x


def node_key(node: Node, inputs: list[Value]):
    return (node.op, tuple(v.name for v in inputs), _freeze(node.attrs))


@register_pass("cse", "merge nodes computing the same op on the same values")
def cse(graph: Graph) -> Graph:
    """Common-subexpression elimination (never merges random draws or fused groups)."""
    new, env = empty_like(graph)
    seen: dict = {}
    renamed = {}
    for node in graph.nodes:
        ins = [env[v.name] for v in node.inputs]
        if has_side_effect(node) or node.subgraph is not None:
            env[node.output.name] = copy_node(new, node, ins)
            continue
        key = node_key(node, ins)
        hit = seen.get(key)
        if hit is not None:
            env[node.output.name] = hit
            renamed[node.output.name] = hit.name
            continue
        out = copy_node(new, node, ins)
        seen[key] = env[node.output.name] = out
    new.outputs = [env[v.name] for v in graph.outputs]
    remap_meta_names(new, renamed)
    return new
