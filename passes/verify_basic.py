"""A minimal structural check and plain text form, used until ``ember.ir.verify`` / the printer exist.

The full verifier (types, attributes, provenance in messages) belongs to the IR
layer; this only guards the pass manager against passes that break SSA form.
"""

from __future__ import annotations

from ember.ir.graph import Graph


def verify_basic(graph: Graph) -> None:
    """SSA: each value defined once, before use; outputs defined; fused bodies valid."""
    defined = set()
    for v in graph.inputs:
        if v.name in defined:
            raise ValueError(f"input %{v.name} defined twice")
        defined.add(v.name)
    for node in graph.nodes:
        for v in node.inputs:
            if v.name not in defined:
                raise ValueError(f"node %{node.output.name} = {node.op}(...) reads %{v.name} before it is defined")
        if node.output.name in defined:
            raise ValueError(f"value %{node.output.name} defined twice")
        defined.add(node.output.name)
        if node.subgraph is not None:
            verify_basic(node.subgraph)
    for v in graph.outputs:
        if v.name not in defined:
            raise ValueError(f"output %{v.name} is not defined in graph {graph.name}")


def plain_text(graph: Graph, indent: str = "") -> str:
    """One line per node; nested fused bodies indented."""
    ins = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    outs = ", ".join(f"%{v.name}" for v in graph.outputs)
    lines = [f"{indent}graph {graph.name}({ins}) -> ({outs}) {{"]
    for n in graph.nodes:
        attrs = {k: v for k, v in n.attrs.items() if k != "value"}
        lines.append(f"{indent}  %{n.output.name}: {n.output.type} = {n.op}("
                     + ", ".join(f"%{v.name}" for v in n.inputs) + ")" + (f" {attrs}" if attrs else ""))
        if n.subgraph is not None:
            lines.append(plain_text(n.subgraph, indent + "    "))
    lines.append(indent + "}")
    return "\n".join(lines)
