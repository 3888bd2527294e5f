"""Helpers shared by passes: copying a graph node by node into a fresh one.

Passes never mutate their input graph: each builds a new ``Graph`` whose inputs
have the same names, types and roles, copying (or replacing) nodes in order.
Keeping the user's value names makes before/after dumps easy to compare.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

from ember.ir.graph import Graph, Node, Value


def empty_like(graph: Graph, name: Optional[str] = None) -> tuple[Graph, dict[str, Value]]:
    """A graph with ``graph``'s inputs (same names/types/roles) and no nodes, and the value map."""
    new = Graph(name or graph.name, meta=copy.copy(graph.meta))
    env: dict[str, Value] = {}
    for v in graph.inputs:
        env[v.name] = new.add_input(v.type, v.name, graph.input_roles.get(v.name, "input"))
    return new, env


def copy_node(new: Graph, node: Node, inputs: list[Value], name: str = "") -> Value:
    """Append a copy of ``node`` reading ``inputs``; fused groups keep their body."""
    if node.subgraph is not None:
        out = Value(new.fresh_name(name or node.output.name), node.output.type)
        n = Node(node.op, list(inputs), dict(node.attrs), out, node.provenance, node.subgraph)
        out.producer = n
        new.nodes.append(n)
        return out
    return new.add_node(node.op, inputs, node.attrs, name=name or node.output.name,
                        provenance=node.provenance)


Rewrite = Callable[[Graph, Node, list[Value]], Optional[Value]]


def rebuild(graph: Graph, rewrite: Optional[Rewrite] = None, *, name: Optional[str] = None) -> Graph:
    """Copy ``graph``; ``rewrite(new, node, new_inputs)`` may return a replacement value.

    Returning ``None`` copies the node unchanged. A replacement may be any value
    already in ``new`` (an input, an earlier node) or one appended by the rewrite.
    """
    new, env = empty_like(graph, name)
    for node in graph.nodes:
        ins = [env[v.name] for v in node.inputs]
        out = rewrite(new, node, ins) if rewrite is not None else None
        env[node.output.name] = out if out is not None else copy_node(new, node, ins)
    new.outputs = [env[v.name] for v in graph.outputs]
    remap_meta_names(new, {k: v.name for k, v in env.items()})
    return new


def remap_meta_names(graph: Graph, renamed: dict[str, str]) -> None:
    """Keep value names recorded in ``graph.meta`` valid after a rewrite renamed values."""
    changed = {k: v for k, v in renamed.items() if k != v}
    if not changed:
        return
    for key in ("output_names",):
        if key in graph.meta:
            graph.meta[key] = [changed.get(n, n) for n in graph.meta[key]]


def use_counts(graph: Graph) -> dict[str, int]:
    """How many times each value is read by a node or listed as an output."""
    counts: dict[str, int] = {}
    for n in graph.nodes:
        for v in n.inputs:
            counts[v.name] = counts.get(v.name, 0) + 1
    for v in graph.outputs:
        counts[v.name] = counts.get(v.name, 0) + 1
    return counts
