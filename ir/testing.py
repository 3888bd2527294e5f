"""Test helpers other areas can call on any graph they build."""

from __future__ import annotations

from .graph import Graph


def assert_roundtrip(graph: Graph) -> Graph:
    """Assert that printing, parsing and printing ``graph`` again gives the same text.

    The graph is also verified, and the parsed graph must hash like the original.
    Returns the parsed graph.
    """
    from .hashing import structural_hash
    from .parser import parse
    from .printer import print_graph
    from .verify import verify

    verify(graph)
    text = print_graph(graph)
    constants = collect_constants(graph)
    parsed = parse(text, constants=constants)
    again = print_graph(parsed)
    if again != text:
        import difflib
        diff = "\n".join(difflib.unified_diff(text.splitlines(), again.splitlines(), "printed", "reparsed",
                                              lineterm=""))
        raise AssertionError(f"IR text does not round-trip:\n{diff}")
    verify(parsed)
    assert structural_hash(parsed) == structural_hash(graph), "parsed graph hashes differently"
    return parsed


def collect_constants(graph: Graph) -> dict:
    """digest -> array of every large tensor attribute in ``graph`` (and its subgraphs)."""
    import numpy as np

    from .printer import MissingConstant, array_digest

    out: dict = {}

    def walk_value(v) -> None:
        if isinstance(v, np.ndarray) and not isinstance(v, MissingConstant):
            out[array_digest(v)] = v
        elif isinstance(v, (tuple, list)):
            for x in v:
                walk_value(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk_value(x)

    def walk(g: Graph) -> None:
        for n in g.nodes:
            for v in n.attrs.values():
                walk_value(v)
            if n.subgraph is not None:
                walk(n.subgraph)

    walk(graph)
    return out
