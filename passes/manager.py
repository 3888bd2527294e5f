"""The pass manager: named ``Graph -> Graph`` passes run as a verified, timed pipeline.

A pass is a function ``fn(graph, **options) -> Graph`` registered under a name.
``run_pipeline`` runs passes by name (``"autodiff,dce,fuse"`` or a list; options
as ``("autodiff", {"of": "loss"})``), verifies the graph after each pass, times
each one, and prints or saves the IR around any pass on request. Each dump file
(``003-fuse.eir``) starts with a header naming the pass and its options, and holds
the graph *after* that pass; ``000-input.eir`` holds the input. So any single
pass can be re-run alone on the file before it (``rerun_pass``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence, TextIO, Union

from ember.ir.graph import Graph

PassFn = Callable[..., Graph]


@dataclass
class Pass:
    name: str
    fn: PassFn
    doc: str = ""


PASSES: dict[str, Pass] = {}


def register_pass(name: str, doc: str = "") -> Callable[[PassFn], PassFn]:
    """Register ``fn(graph, **options) -> Graph`` as the pass ``name``."""
    def deco(fn: PassFn) -> PassFn:
        if name in PASSES and PASSES[name].fn is not fn:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = Pass(name, fn, doc or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


def get_pass(name: str) -> Pass:
    try:
        return PASSES[name]
    except KeyError:
        raise ValueError(f"unknown pass {name!r}; available: {', '.join(sorted(PASSES))}") from None


PassSpec = Union[str, tuple]


def parse_pipeline(spec: Union[str, Iterable[PassSpec]]) -> list[tuple[str, dict]]:
    """``"a,b"`` or ``["a", ("b", {...})]`` -> ``[(name, options), ...]`` (names checked)."""
    items = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        name, opts = (item, {}) if isinstance(item, str) else (item[0], dict(item[1]))
        get_pass(name)
        out.append((name, opts))
    return out


@dataclass
class PassRecord:
    """What one pass did: its time and node counts before and after."""

    index: int
    name: str
    options: dict
    seconds: float
    nodes_before: int
    nodes_after: int


@dataclass
class PipelineResult:
    graph: Graph
    records: list[PassRecord] = field(default_factory=list)

    def report(self) -> str:
        """A table of passes, times and node counts."""
        lines = [f"{'#':>3}  {'pass':<14} {'ms':>9}  nodes"]
        for r in self.records:
            lines.append(f"{r.index:>3}  {r.name:<14} {r.seconds * 1e3:>9.2f}  {r.nodes_before} -> {r.nodes_after}")
        return "\n".join(lines)


def count_nodes(graph: Graph, *, nested: bool = False) -> int:
    """Node count; ``nested`` also counts the nodes inside fused groups."""
    n = 0
    for node in graph.nodes:
        n += 1
        if nested and node.subgraph is not None:
            n += count_nodes(node.subgraph, nested=True)
    return n


def _verify(graph: Graph, after: str) -> None:
    try:
        from ember.ir.verify import verify
    except ImportError:  # the verifier is optional while the IR layer grows
        from .verify_basic import verify_basic as verify
    try:
        verify(graph)
    except Exception as err:  # noqa: BLE001 - name the pass that broke the graph
        raise type(err)(f"graph is invalid after pass {after!r}: {err}") from err


def graph_text(graph: Graph) -> str:
    try:
        return str(graph)
    except ImportError:  # no printer yet: a plain fallback keeps dumps useful
        from .verify_basic import plain_text
        return plain_text(graph)


def _header(index: int, name: str, options: dict) -> str:
    opts = json.dumps(options, sort_keys=True, default=repr)
    return f"# ember pass dump {index:03d}: pass={name} options={opts}\n"


def read_dump_header(text: str) -> tuple[str, dict]:
    """The pass name and options recorded in a dump file's first line."""
    first = text.split("\n", 1)[0]
    if not first.startswith("# ember pass dump"):
        raise ValueError("not an ember pass dump (missing header line)")
    rest = first.split("pass=", 1)[1]
    name, opts = rest.split(" options=", 1)
    return name, json.loads(opts)


def run_pipeline(graph: Graph, passes: Union[str, Sequence[PassSpec]], *, verify: bool = True,
                 print_before: Sequence[str] = (), print_after: Sequence[str] = (),
                 print_after_all: bool = False, print_before_all: bool = False,
                 dump_dir: Optional[str] = None, stream: Optional[TextIO] = None,
                 timing: bool = False) -> PipelineResult:
    """Run ``passes`` on ``graph`` and return the final graph with per-pass records."""
    pipeline = parse_pipeline(passes)
    stream = stream or sys.stdout
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        _write_dump(dump_dir, 0, "input", {}, graph)
    result = PipelineResult(graph)
    for i, (name, opts) in enumerate(pipeline, start=1):
        if print_before_all or name in print_before:
            stream.write(f"// ----- IR before {name} -----\n{graph_text(graph)}\n")
        before = count_nodes(graph)
        t0 = time.perf_counter()
        new = get_pass(name).fn(graph, **opts)
        seconds = time.perf_counter() - t0
        if not isinstance(new, Graph):
            raise TypeError(f"pass {name!r} returned {type(new).__name__}, not a Graph")
        if verify:
            _verify(new, name)
        graph = new
        result.records.append(PassRecord(i, name, opts, seconds, before, count_nodes(graph)))
        if print_after_all or name in print_after:
            stream.write(f"// ----- IR after {name} -----\n{graph_text(graph)}\n")
        if dump_dir:
            _write_dump(dump_dir, i, name, opts, graph)
    result.graph = graph
    if timing:
        stream.write(result.report() + "\n")
    return result


def _write_dump(dump_dir: str, index: int, name: str, opts: dict, graph: Graph) -> str:
    path = os.path.join(dump_dir, f"{index:03d}-{name}.eir")
    with open(path, "w") as f:
        f.write(_header(index, name, opts))
        f.write(graph_text(graph))
        f.write("\n")
    return path


def load_dump(path: str) -> tuple[Graph, str, dict]:
    """A dump file's graph and the pass (name, options) that produced it."""
    from ember.ir.parser import parse
    with open(path) as f:
        text = f.read()
    name, opts = read_dump_header(text)
    body = "\n".join(line for line in text.split("\n") if not line.startswith("# ember pass dump"))
    return parse(body), name, opts


def rerun_pass(dump_dir: str, index: int) -> Graph:
    """Re-run pass number ``index`` of a dumped pipeline on the graph dumped before it."""
    files = sorted(os.listdir(dump_dir))
    by_index = {int(f.split("-", 1)[0]): f for f in files if f.endswith(".eir") and f[:3].isdigit()}
    graph, _, _ = load_dump(os.path.join(dump_dir, by_index[index - 1]))
    _, name, opts = load_dump(os.path.join(dump_dir, by_index[index]))
    return get_pass(name).fn(graph, **opts)


def cli_run_passes(graph: Graph, passes: str, *, print_after_all: bool = False,
                   print_after: Sequence[str] = (), dump_dir: Optional[str] = None,
                   timing: bool = False, stream: Optional[TextIO] = None) -> Graph:
    """The hook behind ``ember ir ... --passes a,b --print-after-all --dump-dir DIR``."""
    return run_pipeline(graph, passes, print_after_all=print_after_all, print_after=print_after,
                        dump_dir=dump_dir, timing=timing, stream=stream).graph


def describe_passes() -> list[tuple[str, str]]:
    """(name, one-line doc) of every registered pass, for ``--help``."""
    return [(p.name, p.doc) for p in sorted(PASSES.values(), key=lambda p: p.name)]

