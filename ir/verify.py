"""The IR verifier: types, SSA form, topological order and attributes.

``verify(graph)`` re-runs every op's type rule and checks that each value is
defined once and before its uses; every message names the offending node (its
text form and provenance). Passes run it after each transformation.
"""

from __future__ import annotations

import os

from .graph import ROLE_BUFFER, ROLE_INPUT, ROLE_PARAM, ROLE_STATE, Graph, Node
from .registry import PRIMITIVES

ROLES = (ROLE_INPUT, ROLE_PARAM, ROLE_BUFFER, ROLE_STATE)


class VerifyError(ValueError):
    """A graph breaks an IR invariant; the message names the node."""


def _where(node: Node) -> str:
    from .printer import fmt_node
    return fmt_node(node)


def verify(graph: Graph) -> Graph:
    """Check ``graph`` and return it; raise ``VerifyError`` on the first problem.

    With the environment variable ``EMBER_CHECK_IR`` set (the test suite sets it), the text
    form must also round-trip: ``print(parse(print(g))) == print(g)``.
    """
    _verify(graph, graph.name)
    if os.environ.get("EMBER_CHECK_IR") and not _checking:
        _check_roundtrip(graph)
    return graph


_checking: list = []


def _check_roundtrip(graph: Graph) -> None:
    from .parser import ParseError, parse
    from .printer import print_graph
    from .testing import collect_constants
    _checking.append(True)
    try:
        text = print_graph(graph)
        try:
            again = print_graph(parse(text, constants=collect_constants(graph)))
        except ParseError as err:
            raise VerifyError(f"graph {graph.name}: its text form does not parse back: {err}") from None
        if again != text:
            import difflib
            diff = "\n".join(list(difflib.unified_diff(text.splitlines(), again.splitlines(), lineterm=""))[:20])
            raise VerifyError(f"graph {graph.name}: its text form does not round-trip:\n{diff}")
    finally:
        _checking.pop()


def _verify(graph: Graph, path: str) -> None:
    from .printer import fmt_type
    defined: dict[str, object] = {}
    for v in graph.inputs:
        if v.name in defined:
            raise VerifyError(f"graph {path}: input %{v.name} is declared twice")
        defined[v.name] = v
        role = graph.input_roles.get(v.name)
        if role not in ROLES:
            raise VerifyError(f"graph {path}: input %{v.name} has role {role!r}; expected one of {ROLES}")
    extra = set(graph.input_roles) - set(defined)
    if extra:
        raise VerifyError(f"graph {path}: input_roles names values that are not inputs: {sorted(extra)}")
    for node in graph.nodes:
        out = node.output
        for i, v in enumerate(node.inputs):
            if defined.get(v.name) is not v:
                what = "used before its definition (graph not in topological order)" if any(
                    n.output is v for n in graph.nodes) else "not defined in this graph"
                raise VerifyError(f"graph {path}: operand {i} %{v.name} of node `{_where(node)}` is {what}")
        if out.name in defined:
            raise VerifyError(f"graph {path}: node `{_where(node)}` redefines %{out.name} (SSA: one definition)")
        if out.producer is not node:
            raise VerifyError(f"graph {path}: the output of node `{_where(node)}` does not point back at it")
        prim = PRIMITIVES.get(node.op)
        if node.subgraph is not None:
            _verify_subgraph(node, f"{path}/{out.name}")
        elif prim is None:
            raise VerifyError(f"graph {path}: node `{_where(node)}` uses unknown op {node.op!r}")
        if prim is not None:
            if prim.attr_names:
                unknown = set(node.attrs) - set(prim.attr_names)
                missing = set(prim.attr_names) - set(node.attrs) if node.subgraph is None else set()
                if unknown:
                    raise VerifyError(f"graph {path}: node `{_where(node)}` has unknown attributes {sorted(unknown)}"
                                      f"; {node.op} takes {list(prim.attr_names)}")
                if missing:
                    raise VerifyError(f"graph {path}: node `{_where(node)}` lacks attributes {sorted(missing)}")
            try:
                extra = {"body": node.subgraph} if node.subgraph is not None else {}
                inferred = prim.infer(*[v.type for v in node.inputs], **node.attrs, **extra)
            except Exception as err:  # noqa: BLE001 - any type-rule failure is reported against the node
                raise VerifyError(f"graph {path}: node `{_where(node)}` fails its type rule: {err}") from None
            if inferred != out.type:
                raise VerifyError(f"graph {path}: node `{_where(node)}` declares {fmt_type(out.type)} but "
                                  f"{node.op} infers {fmt_type(inferred)}")
        defined[out.name] = out
    for i, v in enumerate(graph.outputs):
        if defined.get(v.name) is not v:
            raise VerifyError(f"graph {path}: output {i} %{v.name} is not defined in the graph")


def _verify_subgraph(node: Node, path: str) -> None:
    from .printer import fmt_type
    sub = node.subgraph
    _verify(sub, path)
    if len(sub.inputs) != len(node.inputs):
        raise VerifyError(f"node `{_where(node)}` passes {len(node.inputs)} operands to a body with "
                          f"{len(sub.inputs)} inputs")
    for a, p in zip(node.inputs, sub.inputs):
        if a.type != p.type:
            raise VerifyError(f"node `{_where(node)}`: operand %{a.name} is {fmt_type(a.type)} but body input "
                              f"%{p.name} is {fmt_type(p.type)}")
    if len(sub.outputs) != 1 or sub.outputs[0].type != node.output.type:
        got = ", ".join(fmt_type(v.type) for v in sub.outputs)
        raise VerifyError(f"node `{_where(node)}` declares {fmt_type(node.output.type)} but its body returns ({got})")
