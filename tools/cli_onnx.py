"""``ember export FILE.py:NAME --input SPEC -o model.onnx [--dynamic NAME] [--opset N] [--verify]``
and ``ember ir model.onnx`` (import an ONNX model and print it as ember IR).

A plugin of the ``ember`` command line (``ember.tools.cli`` loads ``cli_*`` modules).
"""

from __future__ import annotations

import argparse

import numpy as np

from .cli import CLIError, _callable_of, _example_tensor, load_target, parse_input_spec, register_command


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="FILE.py:NAME (an nn.Module class or instance, or a function)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="SPEC",
                   help="an example input as DTYPE[DIMS], e.g. 'f32[1,3,32,32]'; a named dim ('f32[batch,784]') "
                        "is exported as a dynamic axis; repeat for several inputs")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--dynamic", action="append", default=[], metavar="NAME",
                   help="make dimension 0 of every input dynamic, named NAME in the model (e.g. --dynamic batch)")
    p.add_argument("--opset", type=int, default=None, help="target ONNX opset (default: ember's, 18)")
    p.add_argument("--verify", action="store_true",
                   help="run the exported model in ONNX Runtime and report the max error per output vs eager")
    p.add_argument("--input-names", default="", help="comma-separated names of the model inputs")
    p.add_argument("--output-names", default="", help="comma-separated names of the model outputs")


def _run_export(args: argparse.Namespace) -> int:
    import ember
    from ember.onnx import OnnxExportError
    from ember.onnx._export import _default_input_names, _leaves

    if not args.input:
        raise CLIError("export needs at least one --input spec, e.g. --input 'f32[1,3,32,32]'")
    if len(args.dynamic) > 1:
        raise CLIError("--dynamic names the leading dimension; give it once (use named dims in --input for more)")
    specs = [parse_input_spec(s) for s in args.input]
    obj = _callable_of(load_target(args.target), args.target.rpartition(":")[2])
    rng = np.random.default_rng(0)
    sizes: dict = {}
    for _, shape in specs:
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                sizes[d] = 2 + len(sizes)
    example = tuple(_example_tensor(dt, shape, sizes, rng) for dt, shape in specs)
    names = [n for n in args.input_names.split(",") if n] or _default_input_names(obj, example, _leaves(example))
    dynamic: dict = {}
    for name, (_, shape) in zip(names, specs):
        axes = {k: d for k, d in enumerate(shape) if isinstance(d, str)}
        if args.dynamic and shape:
            axes[0] = args.dynamic[0]
        if axes:
            dynamic[name] = axes
    out_names = [n for n in args.output_names.split(",") if n] or None
    if out_names and dynamic:
        for o in out_names:
            dynamic.setdefault(o, {0: args.dynamic[0]} if args.dynamic else {})
    try:
        res = ember.onnx.export(obj, example, args.output, input_names=names, output_names=out_names,
                                dynamic_axes=dynamic or None, opset_version=args.opset, verify=args.verify)
    except OnnxExportError as err:
        raise CLIError(str(err).splitlines()[0]) from None
    model = res.model
    n_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"exported {args.target} to {args.output}: opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} nodes, {n_params} parameters")
    for sym, (a, b) in res.dynamic_checked.items():
        print(f"dynamic axis {sym!r}: checked at sizes {a} and {b}")
    if args.verify:
        print("verify (ONNX Runtime vs eager):")
        print(res.report())
    return 0


def load_onnx_graph(path: str):
    """(graph, weights) of an ONNX file, for ``ember ir model.onnx`` / ``ember run``."""
    from ember.runtime.onnx.importer import OnnxImportError, import_model
    try:
        return import_model(path)
    except OnnxImportError as err:
        raise CLIError(f"cannot import {path}: {str(err).splitlines()[0]}") from None


register_command("export", "trace a program and export it to ONNX", _configure_export, _run_export,
                 description="Trace FILE.py:NAME on example inputs and write an ONNX model (checked with "
                             "onnx.checker; dynamic axes are exercised at a second size).")
