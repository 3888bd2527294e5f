"""Fusion: groups of elementwise and reduction ops become ``fused`` nodes holding a subgraph.

Groups are formed **after autodiff** (the ``fused`` op has no gradient rule; a
joint graph is fused as a whole, so the backward is fused too). A group is a
convex set of nodes with one result: walking the graph backwards, a producer
joins its consumer's group when *every* reader of its value is in that group and
the value is not a graph output. So a softmax (``amax``, ``sub``, ``exp``,
``sum``, ``div``) with its internal fan-out becomes one group, as does a whole
elementwise chain with a trailing reduction.

Fusible: elementwise ops, reductions, ``broadcast_to``/``reshape`` (free views
that feed them) and scalar fills. Random draws never fuse (they advance the
generator in program order). At most one ``matmul``/conv anchor joins a group,
as its producer: ``matmul + bias (+ activation)`` is one group.

Each group is labelled with the pattern it matches (``linear_relu``,
``softmax``, ``log_softmax``, ``layer_norm``, ``gelu``, ``elementwise``, ...)
in its ``pattern`` attribute, so dumps say what was recognised.
"""

from __future__ import annotations

from collections import Counter

from ember.ir.graph import Graph, Node, Provenance, Value
from ember.ir.registry import ELEMENTWISE, PRIMITIVES, REDUCTION

from ._rewrite import copy_node, empty_like
from .cleanup import RANDOM_OPS
from .manager import register_pass

_VIEW_OPS = frozenset({"broadcast_to", "reshape"})
_ANCHORS = frozenset({"matmul", "conv2d"})


def _fusible(node: Node) -> bool:
    if node.subgraph is not None or node.op in RANDOM_OPS:
        return False
    if node.op in _VIEW_OPS or node.op == "full":
        return True
    prim = PRIMITIVES.get(node.op)
    return prim is not None and prim.kind in (ELEMENTWISE, REDUCTION)


def _is_compute(node: Node) -> bool:
    return node.op not in _VIEW_OPS and node.op not in ("full", "constant")


def find_groups(graph: Graph) -> list[list[Node]]:
    """Groups of nodes (in graph order) to fuse; each group's last node is its root."""
    users = graph.users()
    outputs = {v.name for v in graph.outputs}
    group_of: dict[int, int] = {}  # id(node) -> group id
    members: dict[int, list[Node]] = {}
    anchors: dict[int, int] = {}
    next_id = 0
    for node in reversed(graph.nodes):
        readers = users.get(node.output.name, [])
        gids = {group_of.get(id(u)) for u in readers}
        # a value feeding a matmul/conv stays outside (no prologues: the anchor starts the group)
        joinable = (readers and node.output.name not in outputs and len(gids) == 1 and None not in gids
                    and not any(u.op in _ANCHORS for u in readers))
        if joinable:
            gid = gids.pop()
            # an anchor takes only an elementwise epilogue (matmul+bias+act), never a reduction group
            if _fusible(node) or (node.op in _ANCHORS and anchors.get(gid, 0) == 0
                                  and not any(PRIMITIVES[m.op].kind == REDUCTION for m in members[gid])):
                group_of[id(node)] = gid
                members[gid].append(node)
                anchors[gid] = anchors.get(gid, 0) + (node.op in _ANCHORS)
                continue
        if _fusible(node) and _is_compute(node):
            group_of[id(node)] = next_id
            members[next_id] = [node]
            next_id += 1
    groups = []
    for gid, nodes in members.items():
        if sum(_is_compute(n) for n in nodes) >= 2:
            groups.append(nodes[::-1])
    return groups


def classify(nodes: list[Node]) -> str:
    """Name the pattern a group matches (for readable dumps and backend lowering choices)."""
    ops = Counter(n.op for n in nodes)
    compute = {op for op in ops if op not in _VIEW_OPS and op not in ("full", "constant", "cast")}
    if "matmul" in compute:
        rest = compute - {"matmul", "add"}
        act = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "erf": "gelu"}
        name = "linear" if "add" in compute else "matmul"
        if not rest:
            return name
        for op, label in act.items():
            if op in rest:
                return f"{name}_{label}"
        return f"{name}_epilogue"
    if "conv2d" in compute:
        return "conv_epilogue"
    if {"amax", "exp", "sum", "div"} <= compute and "log" not in compute:
        return "softmax"
    if {"amax", "exp", "sum", "log"} <= compute:
        return "log_softmax"
    if {"sum", "rsqrt"} <= compute or ({"sum", "sqrt", "div"} <= compute and "mul" in compute):
        return "layer_norm"
    if "erf" in compute and "mul" in compute:
        return "gelu"
    if "tanh" in compute and "pow" in compute:
        return "gelu"
    if compute & {"sum", "prod", "amax", "amin"}:
        return "reduction"
    return "elementwise"


def _build_body(group: list[Node], index: int) -> tuple[Graph, list[Value]]:
    """The subgraph of a group and the outer values it reads, in order."""
    inside = {n.output.name for n in group}
    outer: list[Value] = []
    seen = set()
    for n in group:
        for v in n.inputs:
            if v.name not in inside and v.name not in seen:
                seen.add(v.name)
                outer.append(v)
    body = Graph(f"fused_{index}")
    env: dict[str, Value] = {}
    for v in outer:
        env[v.name] = body.add_input(v.type, v.name)
    for n in group:
        env[n.output.name] = copy_node(body, n, [env[v.name] for v in n.inputs])
    body.outputs = [env[group[-1].output.name]]
    return body, outer


@register_pass("fuse", "group elementwise/reduction chains (and matmul epilogues) into fused nodes")
def fuse(graph: Graph, min_ops: int = 2) -> Graph:
    """Form fused groups (run after autodiff; see the module docstring)."""
    groups = [g for g in find_groups(graph) if sum(_is_compute(n) for n in g) >= min_ops]
    root_of = {id(g[-1]): (i, g) for i, g in enumerate(groups)}
    member = {id(n) for g in groups for n in g[:-1]}
    new, env = empty_like(graph)
    for node in graph.nodes:
        if id(node) in member:
            continue
        if id(node) in root_of:
            i, group = root_of[id(node)]
            body, outer = _build_body(group, i)
            out = Value(new.fresh_name(node.output.name), node.output.type)
            prov = next((n.provenance for n in group if str(n.provenance)), Provenance())
            fused = Node("fused", [env[v.name] for v in outer], {"pattern": classify(group)}, out, prov, body)
            out.producer = fused
            new.nodes.append(fused)
            env[node.output.name] = out
            continue
        env[node.output.name] = copy_node(new, node, [env[v.name] for v in node.inputs])
    new.outputs = [env[v.name] for v in graph.outputs]
    return new


@register_pass("unfuse", "inline every fused group's body back into the graph")
def unfuse(graph: Graph) -> Graph:
    """Undo ``fuse`` (useful before passes that do not look inside groups)."""
    new, env = empty_like(graph)

    def emit(g: Graph, local: dict[str, Value]) -> None:
        for node in g.nodes:
            ins = [local[v.name] for v in node.inputs]
            if node.subgraph is not None:
                inner = {bv.name: v for bv, v in zip(node.subgraph.inputs, ins)}
                emit(node.subgraph, inner)
                local[node.output.name] = inner[node.subgraph.outputs[0].name]
            else:
                local[node.output.name] = copy_node(new, node, ins)

    emit(graph, env)
    new.outputs = [env[v.name] for v in graph.outputs]
    return new
