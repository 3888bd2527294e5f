"""``ember.onnx.export``: trace a model, lower it to ONNX, check it, write it.

Follows ``torch.onnx.export``. Beyond it: every dynamic axis is exercised at a
second size in ONNX Runtime against eager execution, so a dimension the trace
silently specialized (``x.view(4, -1)`` with a batch of 4) fails the export
loudly; ``verify=True`` compares ONNX Runtime with eager on the example inputs.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Optional, Union

import numpy as np
import onnx

from ember.ir.graph import ROLE_PARAM, Graph
from ember.runtime.onnx import DEFAULT_OPSET, OnnxLoweringError, graph_to_onnx
from ember.runtime.onnx.session import make_session, providers_for

_TWO_GB = 2 ** 31 - 2 ** 20  # protobuf's limit, less headroom for the graph itself


class TrainingMode(enum.IntEnum):
    """As ``torch.onnx.TrainingMode``: the module mode used while exporting."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


class OnnxExportError(RuntimeError):
    """The model could not be exported faithfully."""


@dataclass
class ExportResult:
    """What ``export`` produced: the model, and per-output max errors when verified."""

    model: onnx.ModelProto
    max_errors: dict = field(default_factory=dict)  # output name -> max |ort - eager|
    dynamic_checked: dict = field(default_factory=dict)  # symbol -> (example size, second size)

    def report(self) -> str:
        lines = [f"{name}: max abs error {err:.3g}" for name, err in self.max_errors.items()]
        return "\n".join(lines)


def _as_tuple(args: Any) -> tuple:
    if isinstance(args, tuple):
        # torch: a trailing dict in args holds keyword arguments; keep it positional-only here
        return args
    if isinstance(args, list):
        return tuple(args)
    return (args,)


def _leaves(args: tuple) -> list:
    from ember.jit import flatten
    out: list = []
    flatten((args, {}), out)
    return out


def _symbols(graph_inputs_names: list[str], leaves: list, dynamic_axes: Optional[dict],
             input_names: Optional[list]) -> dict:
    """torch-style ``dynamic_axes`` -> ember's {flat input index: {dim: symbol}}."""
    if not dynamic_axes:
        return {}
    names = list(input_names or []) + graph_inputs_names[len(input_names or []):]
    out: dict = {}
    for key, axes in dynamic_axes.items():
        if key not in names:
            continue  # output names are handled after lowering
        i = names.index(key)
        if i >= len(leaves):
            raise OnnxExportError(f"dynamic_axes names input {key!r}, but the model takes {len(leaves)} tensor inputs")
        if isinstance(axes, dict):
            spec = {int(a): str(n) for a, n in axes.items()}
        else:
            spec = {int(a): f"{key}_dynamic_axes_{k + 1}" for k, a in enumerate(axes)}
        nd = len(leaves[i].shape)
        spec = {a + nd if a < 0 else a: n for a, n in spec.items()}
        for a in spec:
            if not 0 <= a < nd:
                raise OnnxExportError(f"dynamic_axes: input {key!r} has rank {nd}, no axis {a}")
        out[i] = spec
    return out


def _default_input_names(module, args: tuple, leaves: list) -> list[str]:
    import inspect
    fn = getattr(module, "forward", module)
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(len(leaves)):
        names.append(params[i] if i < len(params) and len(leaves) == len(args) else f"x{i}")
    return names


def _is_module(obj) -> bool:
    from ember.nn import Module
    return isinstance(obj, Module)


def _set_mode(model, training: TrainingMode):
    if not _is_module(model) or training == TrainingMode.PRESERVE:
        return None
    was = model.training
    model.train(training == TrainingMode.TRAINING)
    return was


def export(model, args, f: Union[str, os.PathLike, BinaryIO, None] = None, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: Optional[int] = None, export_params: bool = True,
           do_constant_folding: bool = True, training: TrainingMode = TrainingMode.EVAL, verify: bool = False,
           *, keep_initializers_as_inputs: bool = False, fuse: bool = False, **_ignored) -> ExportResult:
    """Export ``model(*args)`` to ONNX at ``f`` (a path or a binary file object), as ``torch.onnx.export``.

    ``dynamic_axes``: ``{input_or_output_name: {axis: "name"}}`` (or a list of axes);
    the names appear as ONNX ``dim_param``s. ``verify=True`` runs the model in
    ONNX Runtime on ``args`` and compares with eager execution.
    """
    import ember
    from ember.jit import trace

    args = _as_tuple(args)
    leaves = _leaves(args)
    was = _set_mode(model, training)
    try:
        names = _default_input_names(model, args, leaves)
        symbols = _symbols(names, leaves, dynamic_axes, input_names)
        with ember.no_grad():
            traced = trace(model, args, dynamic=symbols or False)
            eager_out = model(*args)
        graph = _user_graph(traced.graph)
        weights = traced.weights()
        if do_constant_folding:
            graph = _fold(graph)
            if export_params and not _training(training, model):
                graph, weights = _fold_parameters(graph, weights)
        opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
        in_names = list(input_names or [])
        try:
            model_proto = graph_to_onnx(graph, opset=opset, input_names=in_names, output_names=output_names,
                                        export_params=export_params, param_values=weights,
                                        producer="ember", fuse_mode="function" if fuse else "inline")
        except OnnxLoweringError as err:
            raise OnnxExportError(str(err)) from None
        if do_constant_folding and export_params:
            _fold_initializer_reshapes(model_proto, keep=set(traced.weights()))
        if keep_initializers_as_inputs:
            for init in model_proto.graph.initializer:
                t = graph.value(init.name).type if _has_value(graph, init.name) else None
                if t is not None:
                    from ember.runtime.onnx.lowering import value_info
                    model_proto.graph.input.append(value_info(init.name, t))
        _rename_output_dims(model_proto, dynamic_axes)
        result = ExportResult(model_proto)
        big = _initializer_bytes(model_proto) > _TWO_GB
        if not big:
            onnx.checker.check_model(model_proto, full_check=True)
        with ember.no_grad():
            if symbols:
                result.dynamic_checked = _check_dynamic(model, args, leaves, symbols, model_proto, big, weights,
                                                        export_params, graph)
            if verify:
                result.max_errors = _verify(model_proto, leaves, eager_out, weights, export_params, graph)
    finally:
        if was is not None:
            model.train(was)
    if f is not None:
        _write(model_proto, f, big)
    return result


def _has_value(graph: Graph, name: str) -> bool:
    try:
        graph.value(name)
        return True
    except KeyError:
        return False


def _user_graph(graph: Graph) -> Graph:
    """The graph without its write-back outputs (state updates are not part of an inference model)."""
    n_user = graph.meta.get("n_user_outputs", len(graph.outputs))
    if n_user == len(graph.outputs):
        return graph
    g = Graph(graph.name, list(graph.inputs), list(graph.nodes), list(graph.outputs[:n_user]),
              dict(graph.input_roles), dict(graph.meta))
    live = {id(v) for v in g.outputs}
    kept = []
    for n in reversed(g.nodes):
        if id(n.output) in live:
            kept.append(n)
            live.update(id(v) for v in n.inputs)
    g.nodes = kept[::-1]
    return g


def _fold(graph: Graph) -> Graph:
    try:
        from ember.passes.fold import fold
    except ImportError:  # pragma: no cover - passes not present
        return graph
    try:
        return fold(graph)
    except Exception:  # noqa: BLE001 - folding is an optimization; the unfolded graph is still right
        return graph


def _training(training, model) -> bool:
    """Whether the export is of the training-mode graph (whose parameters must stay as they are)."""
    if training == TrainingMode.TRAINING:
        return True
    return training == TrainingMode.PRESERVE and bool(getattr(model, "training", False))


_VIEW_OPS = frozenset({"permute", "reshape", "broadcast_to"})


def _fold_parameters(graph: Graph, weights: dict) -> tuple[Graph, dict]:
    """Inference-time parameter folding, as ``torch.onnx.export(do_constant_folding=True)``: a batch norm after
    a convolution moves into the convolution's weight and bias (``fold_conv_bn``), then every value computed
    from parameters alone (a batch norm's scale and shift, a transposed weight) becomes one initializer,
    named after the parameter it came from (``0.weight.folded``). Parameters used as they are keep their
    names. Returns the graph and its initializer values."""
    try:
        from ember.passes import dce
        from ember.passes._rewrite import rebuild
        from ember.passes.conv_bn import fold_conv_bn
        from ember.runtime.interpreter import run_graph
    except ImportError:  # pragma: no cover - passes not present
        return graph, weights
    try:
        graph = dce(fold_conv_bn(graph))
    except Exception:  # noqa: BLE001 - an optimization; the unfolded graph is still right
        return graph, weights
    static = {v.name for v in graph.inputs if v.name in weights}  # computable from parameters alone
    derived = set(static)  # ... and reading at least one
    for n in graph.nodes:
        if n.op not in ("uniform", "normal", "randint") and all(v.name in static for v in n.inputs):
            static.add(n.output.name)
            if any(v.name in derived for v in n.inputs):
                derived.add(n.output.name)
    boundary = []  # computed static values that something non-static (or the output) reads
    seen: set = set()
    readers = [n for n in graph.nodes if n.output.name not in static]
    for v in [v for n in readers for v in n.inputs] + list(graph.outputs):
        if v.name not in static:
            continue
        # views stay in the graph: a transposed Linear weight is Gemm(transB) of `fc1.weight` itself, and a
        # broadcast is folded at its (small) source
        while v.producer is not None and v.producer.op in _VIEW_OPS and v.producer.subgraph is None:
            v = v.producer.inputs[0]
        if (v.producer is not None and v.name in derived and v.name not in seen
                and all(isinstance(d, int) for d in v.shape)):
            seen.add(v.name)
            boundary.append(v)
    if not boundary:
        return graph, weights
    params = [v for v in graph.inputs if v.name in weights]
    needed, stack = set(), list(boundary)
    while stack:
        v = stack.pop()
        if v.producer is not None and v.name not in needed:
            needed.add(v.name)
            stack.extend(v.producer.inputs)
    sub = Graph("fold", list(params), [n for n in graph.nodes if n.output.name in needed], list(boundary))
    try:
        values = run_graph(sub, [np.asarray(weights[v.name]) for v in params])
    except Exception:  # noqa: BLE001 - an optimization; the unfolded graph is still right
        return graph, weights
    origin = {v.name: v.name for v in params}
    for n in graph.nodes:  # the parameter a folded value comes from: preferably an input of its own shape
        if n.output.name in static:
            known = [v for v in n.inputs if v.name in origin]
            same = [v for v in known if tuple(v.shape) == tuple(n.output.shape)]
            origin[n.output.name] = origin[(same or known)[0].name] if known else "constant"
    weights = dict(weights)
    folded = {}
    taken = {v.name for v in graph.inputs}
    for v, value in zip(boundary, values):
        name, k = f"{origin[v.name]}.folded", 1
        while name in taken:
            k += 1
            name = f"{origin[v.name]}.folded{k}"
        taken.add(name)
        folded[v.name] = name
        weights[name] = value

    def rewrite(new, node, ins):
        name = folded.get(node.output.name)
        return new.add_input(node.output.type, name, ROLE_PARAM) if name is not None else None
    new = dce(rebuild(graph, rewrite))
    new.inputs.sort(key=lambda v: v.name in weights)  # user inputs first, as graph_to_onnx expects
    return new, weights


def _fold_initializer_reshapes(model: onnx.ModelProto, keep: set) -> None:
    """``Reshape(initializer, constant shape)`` with nothing else reading the initializer: the initializer
    itself reshaped (a folded batch norm's bias [1, C, 1, 1] given to Conv as [C]). The module's own
    parameters (``keep``) keep their shapes."""
    from onnx import numpy_helper
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant" and n.attribute
              and n.attribute[0].name == "value"}
    reads: dict = {}
    for n in g.node:
        for i in n.input:
            reads[i] = reads.get(i, 0) + 1
    outputs = {o.name for o in g.output}
    renamed, dropped = {}, set()
    nodes = list(g.node)  # one wrapper per node: their ids below must not be recycled
    for k, n in enumerate(nodes):
        if (n.op_type != "Reshape" or n.input[0] not in inits or n.input[0] in keep or reads.get(n.input[0]) != 1
                or n.input[1] not in consts or n.output[0] in outputs
                or any(a.name == "allowzero" and a.i for a in n.attribute)):
            continue
        shape = numpy_helper.to_array(consts[n.input[1]].attribute[0].t)
        data = numpy_helper.to_array(inits[n.input[0]])
        if (shape == 0).any():
            continue
        inits[n.input[0]].CopyFrom(numpy_helper.from_array(data.reshape(shape), n.input[0]))
        renamed[n.output[0]] = n.input[0]
        dropped.add(k)
    if not dropped:
        return
    kept = [n for k, n in enumerate(nodes) if k not in dropped]
    for n in kept:
        for j, i in enumerate(n.input):
            if i in renamed:
                n.input[j] = renamed[i]
    still_read = {i for n in kept for i in n.input}
    kept = [n for n in kept if not (n.op_type == "Constant" and n.output[0] not in still_read)]
    del g.node[:]
    g.node.extend(kept)


def _rename_output_dims(model: onnx.ModelProto, dynamic_axes: Optional[dict]) -> None:
    """dynamic_axes entries for outputs rename the output's dim_params (torch keeps the user's names)."""
    if not dynamic_axes:
        return
    for out in model.graph.output:
        spec = dynamic_axes.get(out.name)
        if not spec:
            continue
        dims = out.type.tensor_type.shape.dim
        items = spec.items() if isinstance(spec, dict) else [(a, f"{out.name}_dynamic_axes_{k + 1}")
                                                           for k, a in enumerate(spec)]
        for a, name in items:
            a = int(a) + (len(dims) if int(a) < 0 else 0)
            if 0 <= a < len(dims):
                if dims[a].HasField("dim_value"):
                    raise OnnxExportError(f"dynamic_axes: output {out.name!r} axis {a} came out static "
                                          f"({dims[a].dim_value}): the traced program specialized it")
                dims[a].dim_param = str(name)


def _initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) or t.ByteSize() for t in model.graph.initializer)


def _feeds(model_proto, leaves, weights, export_params, graph, arrays=None) -> dict:
    arrays = arrays if arrays is not None else [t._data for t in leaves]
    feeds = {}
    names = [i.name for i in model_proto.graph.input]
    data = list(arrays)
    if not export_params:
        data += [weights[v.name] for v in graph.inputs[len(arrays):]]
    for name, a in zip(names, data):
        feeds[name] = a
    return feeds


def _session(model_proto, big):
    if big:
        raise OnnxExportError("checking a model over 2 GB in memory is not supported; export with verify=False")
    return make_session(model_proto.SerializeToString(), providers_for("cpu"))


def _flat_out(out) -> list:
    from ember.jit import flatten
    leaves: list = []
    flatten(out, leaves)
    return [t.numpy() for t in leaves]


def _compare(got: list, want: list, out_names: list, rtol=1e-3, atol=1e-5, context="") -> dict:
    errors = {}
    if len(got) != len(want):
        raise OnnxExportError(f"{context}ONNX Runtime returned {len(got)} outputs, eager {len(want)}")
    for name, g, w in zip(out_names, got, want):
        if g.shape != w.shape:
            raise OnnxExportError(f"{context}output {name!r}: ONNX Runtime gives shape {list(g.shape)}, "
                                  f"eager {list(w.shape)}")
        if g.size == 0:
            errors[name] = 0.0
            continue
        if w.dtype.kind in "fc" or w.dtype.name == "bfloat16":
            err = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
            bad = not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
        else:
            err = float(np.max(np.abs(g.astype(np.int64) - w.astype(np.int64)))) if w.dtype != bool else \
                float(np.sum(g != w))
            bad = err != 0
        errors[name] = err
        if bad:
            raise OnnxExportError(f"{context}output {name!r} differs between ONNX Runtime and eager: "
                                  f"max abs error {err:.3g}")
    return errors


def _verify(model_proto, leaves, eager_out, weights, export_params, graph) -> dict:
    sess = _session(model_proto, False)
    got = sess.run(None, _feeds(model_proto, leaves, weights, export_params, graph))
    names = [o.name for o in model_proto.graph.output]
    return _compare(got, _flat_out(eager_out), names, context="verify: ")


def _resize(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``a`` with dimension ``axis`` of size ``n``: example data repeated (indices stay valid)."""
    return np.take(a, np.arange(n) % max(a.shape[axis], 1), axis=axis)


def _check_dynamic(model, args, leaves, symbols, model_proto, big, weights, export_params, graph) -> dict:
    """Run at a second size of every dynamic dimension; ORT must agree with eager there."""
    import ember
    from ember.jit._capture import flatten, unflatten

    sizes = {}
    for i, spec in symbols.items():
        for axis, name in spec.items():
            sizes.setdefault(name, leaves[i].shape[axis])
    second = {name: (n + 3 if n > 1 else 3) for name, n in sizes.items()}
    arrays = []
    for i, t in enumerate(leaves):
        a = t._data
        for axis, name in symbols.get(i, {}).items():
            a = _resize(a, axis, second[name])
        arrays.append(np.ascontiguousarray(a))
    if big:
        return {n: (sizes[n], second[n]) for n in sizes}
    # eager at the second size
    new_leaves = [ember.from_numpy(a.copy()) for a in arrays]
    spec = flatten((args, {}), [])
    new_args, _ = unflatten(spec, new_leaves)
    sym_text = ", ".join(f"{n}={sizes[n]}->{second[n]}" for n in sizes)
    try:
        want = _flat_out(model(*new_args))
    except Exception as exc:  # noqa: BLE001
        raise OnnxExportError(f"dynamic axes check: the model cannot run at a second size ({sym_text}), so the "
                              f"dimension cannot be dynamic: "
                              f"{exc}") from None
    sess = _session(model_proto, big)
    try:
        got = sess.run(None, _feeds(model_proto, leaves, weights, export_params, graph, arrays))
    except Exception as exc:  # noqa: BLE001
        raise OnnxExportError(f"dynamic axes check: the exported model fails when {sym_text}; a dynamic "
                              f"dimension was specialized to its example size during tracing "
                              f"(e.g. a shape computed from x.shape used as a constant): {exc}") from None
    names = [o.name for o in model_proto.graph.output]
    _compare(got, want, names, context=f"dynamic axes check ({sym_text}): a dynamic dimension was specialized "
                                       "during tracing; ")
    return {n: (sizes[n], second[n]) for n in sizes}


def _write(model_proto: onnx.ModelProto, f, big: bool) -> None:
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if big:
            location = os.path.basename(path) + ".data"
            onnx.save_model(model_proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=location, size_threshold=0)
            onnx.checker.check_model(path, full_check=True)
        else:
            onnx.save_model(model_proto, path)
        return
    if big:
        raise OnnxExportError("the model is over 2 GB and needs external data files: pass a path, not a file object")
    f.write(model_proto.SerializeToString())
