"""Split a joint forward+backward graph into a forward graph and a backward graph.

The forward graph computes what the joint graph's forward outputs need and also
returns the *saved values*: every forward value (or input) the backward reads.
The backward graph takes the saved values and the cotangent inputs and returns
the gradients. This is what ``ember.compile`` needs when the user calls
``.backward()`` outside the compiled region (torch.fx ``default_partition``).
Nodes the forward does not need (seeds, transposed weights for the backward)
go to the backward graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.ir.graph import Graph, Value

from ._rewrite import copy_node
from .manager import register_pass


@dataclass
class Partition:
    forward: Graph
    backward: Graph
    saved: list[str]  # names of the saved values, in the order the forward returns them


def _ancestors(graph: Graph, roots: list[Value]) -> set[int]:
    need = {v.name for v in roots}
    keep: set[int] = set()
    for node in reversed(graph.nodes):
        if node.output.name in need:
            keep.add(id(node))
            need.update(v.name for v in node.inputs)
    return keep


def partition(joint: Graph, n_forward: int | None = None) -> Partition:
    """Split ``joint`` (outputs: ``n_forward`` forward outputs, then gradients)."""
    if n_forward is None:
        n_forward = joint.meta.get("forward_outputs")
        if n_forward is None:
            raise ValueError("partition needs n_forward (or a graph made by autodiff)")
    fwd_outs, bwd_outs = joint.outputs[:n_forward], joint.outputs[n_forward:]
    fwd_ids = _ancestors(joint, fwd_outs)
    bwd_ids = _ancestors(joint, bwd_outs) - fwd_ids
    forward_names = {v.name for v in joint.inputs} | {n.output.name for n in joint.nodes if id(n) in fwd_ids}
    # cotangent inputs are graph inputs that only the backward reads
    fwd_reads = {v.name for n in joint.nodes if id(n) in fwd_ids for v in n.inputs} | {v.name for v in fwd_outs}
    cotangents = [v for v in joint.inputs if v.name.startswith("grad_") and v.name not in fwd_reads]
    cot_names = {v.name for v in cotangents}

    saved: list[str] = []
    for node in joint.nodes:
        if id(node) in bwd_ids:
            for v in node.inputs:
                if v.name in forward_names and v.name not in cot_names and v.name not in saved:
                    saved.append(v.name)
    for v in bwd_outs:  # a gradient that is a forward value itself
        if v.name in forward_names and v.name not in cot_names and v.name not in saved:
            saved.append(v.name)

    fwd = Graph(f"{joint.name}_forward", meta={"saved": list(saved), "forward_outputs": n_forward})
    env: dict[str, Value] = {}
    for v in joint.inputs:
        if v.name not in cot_names:
            env[v.name] = fwd.add_input(v.type, v.name, joint.input_roles.get(v.name, "input"))
    for node in joint.nodes:
        if id(node) in fwd_ids:
            env[node.output.name] = copy_node(fwd, node, [env[v.name] for v in node.inputs])
    fwd.outputs = [env[v.name] for v in fwd_outs] + [env[n] for n in saved]

    bwd = Graph(f"{joint.name}_backward", meta={"saved": list(saved), "grads": joint.meta.get("grads", {})})
    benv: dict[str, Value] = {}
    for name in saved:
        benv[name] = bwd.add_input(joint.value(name).type, name, "input")
    for v in cotangents:
        benv[v.name] = bwd.add_input(v.type, v.name, "input")
    for node in joint.nodes:
        if id(node) in bwd_ids:
            benv[node.output.name] = copy_node(bwd, node, [benv[v.name] for v in node.inputs])
    bwd.outputs = [benv[v.name] for v in bwd_outs]
    return Partition(fwd, bwd, saved)


@register_pass("partition", "keep only the forward half of a joint graph (plus saved values)")
def partition_forward(graph: Graph, n_forward: int | None = None) -> Graph:
    """As a pipeline step: the forward graph (the backward is in ``meta['backward']``)."""
    part = partition(graph, n_forward)
    part.forward.meta["backward"] = part.backward
    return part.forward

