"""The ``ember`` command line.

::

    ember ir model.py:SimpleNet --input "f32[64,784]"      # trace and print the IR
    ember ir model.py:SimpleNet --input "f32[B,784]" --output net.eir   # symbolic batch, saved with weights
    ember ir net.eir [--format json]                       # print a saved graph
    ember run net.eir [--input x.npy] [--dim B=8]          # run it, print output shapes and statistics

Pluggable: other parts of ember add subcommands with ``register_command`` and
options of ``ember ir`` with ``register_ir_extension`` (for example ``--backend
tvm --show relax``). Modules named ``ember.tools.cli_*`` are imported at start-up
so they can register themselves; keep their heavy imports inside the handlers.

Errors print one line (``ember: error: ...``) and exit with status 1; ``--debug``
shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np


class CLIError(Exception):
    """A user-facing error: printed as one line, no traceback."""


# ------------------------------------------------------------------ plug-in registry
@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


@dataclass
class IRExtension:
    """Extra options of ``ember ir``: ``handle(graph, args)`` returns text to print instead of the IR,
    a transformed graph to print instead, or None to leave the output alone."""

    configure: Callable[[argparse.ArgumentParser], None]
    handle: Callable[[Any, argparse.Namespace], Any]


COMMANDS: dict[str, Command] = {}
IR_EXTENSIONS: list[IRExtension] = []


def register_command(name: str, help: str, configure: Callable, run: Callable, description: str = "") -> None:  # noqa: A002
    """Add ``ember NAME``: ``configure(parser)`` adds its arguments, ``run(args)`` returns an exit code."""
    COMMANDS[name] = Command(name, help, configure, run, description or help)


def register_ir_extension(configure: Callable, handle: Callable) -> None:
    """Add options to ``ember ir`` (see ``IRExtension``)."""
    IR_EXTENSIONS.append(IRExtension(configure, handle))


def _load_plugins() -> None:
    import ember.tools as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("cli_"):
            importlib.import_module(f"ember.tools.{info.name}")


# ------------------------------------------------------------------ input specs
_SPEC_RE = re.compile(r"^\s*([a-z0-9]+)\s*\[\s*([^\]]*)\]\s*$")


def parse_input_spec(spec: str) -> tuple[Any, tuple]:
    """``"f32[64,784]"`` -> (dtype, shape); dims are ints or symbol names (``B``)."""
    from ember.ir.types import from_name
    m = _SPEC_RE.match(spec)
    if not m:
        raise CLIError(f"malformed input spec {spec!r}: expected DTYPE[DIMS], e.g. 'f32[64,784]' or 'i64[B]'")
    try:
        dtype = from_name(m.group(1))
    except TypeError:
        raise CLIError(f"unknown dtype {m.group(1)!r} in input spec {spec!r} (use f32, f64, f16, bf16, i64, i32, "
                       "u8, bool, ...)") from None
    dims: list = []
    body = m.group(2).strip()
    for d in (body.split(",") if body else []):
        d = d.strip()
        if d.isdigit():
            dims.append(int(d))
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", d):
            dims.append(d)
        else:
            raise CLIError(f"malformed dimension {d!r} in input spec {spec!r}: use a non-negative int or a name")
    return dtype, tuple(dims)


def _example_tensor(dtype, shape: tuple, sizes: dict[str, int], rng: np.random.Generator):
    import ember
    concrete = tuple(sizes.get(d, 2) if isinstance(d, str) else d for d in shape)
    if dtype.is_floating_point:
        arr = rng.standard_normal(concrete).astype(dtype.np)
    elif dtype.category == 0:
        arr = rng.random(concrete) < 0.5
    else:
        arr = np.zeros(concrete, dtype=dtype.np)  # indices: 0 is valid for any table
    return ember.from_numpy(np.ascontiguousarray(arr))


# ------------------------------------------------------------------ loading targets
def load_target(target: str) -> Any:
    """``FILE.py:NAME`` -> the object ``NAME`` (attribute path allowed) defined in FILE.py."""
    path, sep, name = target.rpartition(":")
    if not sep or not path:
        raise CLIError(f"expected FILE.py:NAME (e.g. model.py:SimpleNet), got {target!r}")
    if not os.path.exists(path):
        raise CLIError(f"no such file: {path}")
    if not path.endswith(".py"):
        raise CLIError(f"{path} is not a Python file (expected FILE.py:NAME or a saved FILE.eir)")
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    mod_name = "_ember_cli_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise CLIError(f"{path}:{err.lineno}: syntax error: {err.msg}") from err
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"{path} has no attribute {name!r}")
        obj = getattr(obj, part)
    return obj


def _callable_of(obj: Any, name: str) -> Any:
    import inspect

    import ember.nn as nn
    if inspect.isclass(obj):
        if not issubclass(obj, nn.Module):
            raise CLIError(f"{name} is a class but not an nn.Module")
        try:
            obj = obj()
        except TypeError as err:
            raise CLIError(f"cannot construct {name}() without arguments ({err}); define an instance or a "
                           "function in the file and name that instead") from None
    if not callable(obj):
        raise CLIError(f"{name} is a {type(obj).__name__}, not an nn.Module or a function")
    return obj


def trace_target(target: str, inputs: Sequence[str], train: bool = False):
    """Trace ``FILE.py:NAME`` on example inputs built from ``--input`` specs; returns the TracedModule."""
    import ember
    if not inputs:
        raise CLIError("tracing needs at least one --input spec, e.g. --input 'f32[64,784]'")
    specs = [parse_input_spec(s) for s in inputs]
    obj = _callable_of(load_target(target), target.rpartition(":")[2])
    if hasattr(obj, "train") and hasattr(obj, "training"):
        obj.train(train)
    rng = np.random.default_rng(0)
    sizes: dict[str, int] = {}
    for _, shape in specs:
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                sizes[d] = 2 + len(sizes)  # distinct sizes keep distinct symbols apart
    args = tuple(_example_tensor(dt, shape, sizes, rng) for dt, shape in specs)
    symbols = {i: {k: d for k, d in enumerate(shape) if isinstance(d, str)} for i, (_, shape) in enumerate(specs)}
    symbols = {i: s for i, s in symbols.items() if s}
    return ember.jit.trace(obj, args, dynamic=symbols or False)


# ------------------------------------------------------------------ ember ir
def _configure_ir(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="FILE.py:NAME (an nn.Module class or instance, or a function) or a saved FILE.eir")
    p.add_argument("--input", "-i", action="append", default=[], metavar="SPEC",
                   help="an example input as DTYPE[DIMS], e.g. 'f32[64,784]'; a named dim ('f32[B,784]') stays "
                        "symbolic in the graph; repeat for several inputs")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write to FILE instead of stdout; FILE.eir saves the graph with its weights "
                        "(readable by 'ember ir' and 'ember run')")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--train", action="store_true", help="trace a module in training mode (default: eval)")
    for ext in IR_EXTENSIONS:
        ext.configure(p)


def _run_ir(args: argparse.Namespace) -> int:
    from ember.ir.serialize import graph_to_json, load, save
    weights: dict = {}
    if args.target.endswith(".py") or ".py:" in args.target:
        traced = trace_target(args.target, args.input, args.train)
        graph = traced.graph
        weights = traced.weights()
    elif args.target.endswith(".onnx"):  # import an ONNX model (ember.tools.cli_onnx)
        from .cli_onnx import load_onnx_graph
        if not os.path.exists(args.target):
            raise CLIError(f"no such file: {args.target}")
        graph, weights = load_onnx_graph(args.target)
    else:
        if args.input:
            raise CLIError("--input is for tracing FILE.py:NAME; a saved graph already has its input types")
        if not os.path.exists(args.target):
            raise CLIError(f"no such file: {args.target}")
        try:
            graph, weights = load(args.target)
        except (ValueError, OSError) as err:
            raise CLIError(f"cannot read {args.target}: {str(err).splitlines()[0]}") from None
    text = None
    for ext in IR_EXTENSIONS:
        res = ext.handle(graph, args)
        if isinstance(res, str):
            text = res
        elif res is not None:
            graph = res
    if args.output and args.output.endswith(".eir") and text is None:
        save(graph, args.output, weights)
        print(f"saved graph {graph.name} ({len(graph.nodes)} nodes, {len(weights)} weights) to {args.output}")
        return 0
    if text is None:
        text = json.dumps(graph_to_json(graph), indent=1) if args.format == "json" else str(graph)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


# ------------------------------------------------------------------ ember run
def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("graph", help="a saved graph (FILE.eir, written by 'ember ir ... --output FILE.eir')")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy",
                   help="a .npy file for the next (or the named) graph input; other inputs are random")
    p.add_argument("--dim", action="append", default=[], metavar="SYM=N",
                   help="size of a symbolic dimension for random inputs (default 2), e.g. --dim B=8")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs (default 0)")
    p.add_argument("--backend", default="eager", help="backend to run on (default eager: the numpy interpreter)")


def _run_run(args: argparse.Namespace) -> int:
    from ember.ir.graph import ROLE_INPUT
    from ember.ir.serialize import load
    from ember.runtime.backend import compile_graph
    if not os.path.exists(args.graph):
        raise CLIError(f"no such file: {args.graph}")
    try:
        graph, weights = load(args.graph)
    except (ValueError, OSError) as err:
        raise CLIError(f"cannot read {args.graph}: {str(err).splitlines()[0]}") from None
    sizes: dict[str, int] = {}
    for d in args.dim:
        k, sep, v = d.partition("=")
        if not sep or not v.strip().isdigit():
            raise CLIError(f"malformed --dim {d!r}: expected SYM=N, e.g. B=8")
        sizes[k.strip()] = int(v)
    user_inputs = [v for v in graph.inputs if graph.input_roles.get(v.name, ROLE_INPUT) == ROLE_INPUT]
    given: dict[str, np.ndarray] = {}
    positional = 0
    for item in args.input:
        name, sep, path = item.rpartition("=")
        if not sep:
            if positional >= len(user_inputs):
                raise CLIError(f"too many --input files: the graph has {len(user_inputs)} inputs")
            name = user_inputs[positional].name
            positional += 1
        if not os.path.exists(path):
            raise CLIError(f"no such file: {path}")
        if name not in {v.name for v in graph.inputs}:
            raise CLIError(f"graph {graph.name} has no input named {name!r}")
        try:
            given[name] = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise CLIError(f"cannot read {path} as a .npy array: {err}") from None
    rng = np.random.default_rng(args.seed)
    feed = []
    for v in graph.inputs:
        if v.name in given:
            arr = given[v.name]
        elif v.name in weights:
            arr = weights[v.name]
        else:
            arr = _random_array(v.type, sizes, rng)
        if arr.dtype != v.type.dtype.np:
            arr = arr.astype(v.type.dtype.np)
        feed.append(arr)
    outs = compile_graph(graph, args.backend, {})(feed)
    print(f"graph {graph.name}: {len(graph.inputs)} inputs, {len(graph.nodes)} nodes, {len(outs)} outputs")
    for v, a in zip(graph.outputs, outs):
        print(f"  %{v.name}: {_summary(np.asarray(a))}")
    return 0


def _random_array(t, sizes: dict, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(sizes.get(d, 2) if isinstance(d, str) else d for d in t.shape)
    if t.dtype.is_floating_point:
        return rng.standard_normal(shape).astype(t.dtype.np)
    if t.dtype.category == 0:
        return rng.random(shape) < 0.5
    return np.zeros(shape, dtype=t.dtype.np)


def _summary(a: np.ndarray) -> str:
    from ember.ir.types import from_numpy
    head = f"{from_numpy(a.dtype).short}{list(a.shape)}"
    if a.size == 0:
        return head + " (empty)"
    x = a.astype(np.float64)
    return (f"{head} mean={x.mean():.6g} std={x.std():.6g} min={x.min():.6g} max={x.max():.6g}"
            + (f" nan={int(np.isnan(x).sum())}" if np.isnan(x).any() else ""))


register_command("ir", "trace a program (or read a saved graph) and print its IR", _configure_ir, _run_ir,
                 "Trace FILE.py:NAME on example inputs and print ember's IR, or print a saved FILE.eir.")
register_command("run", "run a saved graph and print output shapes and statistics", _configure_run, _run_run,
                 "Run a saved graph (FILE.eir) on .npy or random inputs with the numpy interpreter.")


# ------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser = argparse.ArgumentParser(prog="ember", parents=[common],
                                     description="ember: capture, inspect and run deep learning programs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description, parents=[common])
        cmd.configure(p)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        _load_plugins()
    except Exception as err:  # noqa: BLE001 - a broken plug-in must not break the core commands
        if debug:
            raise
        print(f"ember: warning: a CLI plug-in failed to load: {err}", file=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # noqa: BLE001 - one clear line unless --debug
        if args.debug:
            raise
        lines = str(err).strip().splitlines()
        msg = lines[0] if lines else type(err).__name__
        where = [ln.strip() for ln in lines[1:] if ln.strip().startswith(("at ", "from "))]
        if where:
            msg += f" ({where[-1]})"
        if not isinstance(err, CLIError):
            msg = f"{type(err).__name__}: {msg}"
        print(f"ember: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # run the registry of the importable module: plug-ins register into ``ember.tools.cli``,
    # not into this ``__main__`` copy
    from ember.tools import cli as _cli

    sys.exit(_cli.main())
