"""Stable structural hashing of graphs, for compile caches.

The hash covers what changes a graph's meaning: input types and roles (by
position), each node's op, operands (by position in the graph, not by name),
attributes (constants by content digest, attribute order ignored), output types,
fused bodies, the outputs, and the printable ``Graph.meta`` (output structure,
write-back map). It deliberately ignores value names, the graph's name and
provenance, so re-tracing the same program from another file, or renaming
values, hits the same cache entry. It is stable across processes (sha256 of a
canonical text, no Python ``hash``).
"""

from __future__ import annotations

import hashlib

from .graph import ROLE_INPUT, Graph
from .printer import fmt_attr, fmt_type, printed_meta


def _canonical(graph: Graph, out: list[str]) -> None:
    index: dict[int, int] = {}
    for v in graph.inputs:
        index[id(v)] = len(index)
        out.append(f"in {graph.input_roles.get(v.name, ROLE_INPUT)} {fmt_type(v.type)}")
    for n in graph.nodes:
        args = ",".join(str(index.get(id(v), f"?{v.name}")) for v in n.inputs)
        attrs = ",".join(f"{k}={fmt_attr(n.attrs[k])}" for k in sorted(n.attrs))
        out.append(f"{fmt_type(n.output.type)}={n.op}({args}){{{attrs}}}")
        if n.subgraph is not None:
            out.append("body{")
            _canonical(n.subgraph, out)
            out.append("}")
        index[id(n.output)] = len(index)
    out.append("out " + ",".join(str(index.get(id(v), f"?{v.name}")) for v in graph.outputs))
    meta = printed_meta(graph)
    meta = {k: meta[k] for k in sorted(meta)}
    if meta:
        out.append("meta " + fmt_attr(meta))


def structural_hash(graph: Graph) -> str:
    """A hex digest equal for structurally identical graphs (see the module docstring)."""
    lines: list[str] = []
    _canonical(graph, lines)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
