"""Import an ONNX model as an ember ``Graph`` built from ember primitives.

Each supported ONNX operator has a converter in ``CONVERTERS`` (``import_ops.py``)
that composes ember primitives under a ``GraphBuilder``, so an imported graph
differentiates, runs on every backend and exports again like a traced one.

Values are tracked as ember ``Value``s or, when known at import time, as numpy
arrays ("known" values: initializers, ``Constant``s and everything computed
only from them, folded by running the converter on the numpy interpreter).
Shape computations (``Shape -> Gather -> Concat -> Reshape``) fold through
object arrays whose entries are ints or dimension symbols, so models exported
with dynamic batch sizes import with symbolic dims.

Every failure is one ``OnnxImportError`` naming the node: malformed protobufs,
unknown operators, missing inputs/initializers, cycles, bad or absurd shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ember.ir import types as T
from ember.ir.graph import ROLE_INPUT, ROLE_PARAM, Graph, GraphBuilder, Provenance, Value

from .lowering import EMBER_DTYPE, ONNX_DTYPE

MAX_ELEMENTS = 1 << 31        # refuse tensors larger than this (2^31 elements)
MAX_NODES = 1_000_000


class OnnxImportError(ValueError):
    """An ONNX model ember cannot import (the message says which node and why)."""


class NeedsStaticInput(OnnxImportError):
    """A graph input is used where ember needs a value known at import time (a shape, axes)."""

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg)
        self.input_name = name


Converter = Callable[["ImportContext", onnx.NodeProto], list]
CONVERTERS: dict[str, Converter] = {}


def _domain_converter(node) -> bool:
    """Operators of other domains ember converts (ai.onnx.preview.training's optimizers), keyed "domain::op"."""
    return f"{node.domain}::{node.op_type}" in CONVERTERS


def converter(*op_types: str):
    def deco(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn
    return deco


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def symbol_name(dim_param: str, index: int) -> str:
    s = _IDENT.sub("_", dim_param or "")
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = f"d{index}" if not s else f"d_{s}"
    return s


def onnx_dtype(elem_type: int, what: str) -> T.DType:
    dt = EMBER_DTYPE.get(elem_type)
    if dt is None:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise OnnxImportError(f"{what}: element type {name} is not supported by ember")
    return dt


def tensor_to_numpy(t: onnx.TensorProto, where: str) -> np.ndarray:
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise OnnxImportError(f"{where}: negative dimension in {dims}")
    n = int(np.prod(dims, dtype=np.float64)) if dims else 1
    if n > MAX_ELEMENTS:
        raise OnnxImportError(f"{where}: tensor of shape {dims} has {n} elements (limit {MAX_ELEMENTS})")
    if t.data_location == TensorProto.EXTERNAL:
        raise OnnxImportError(f"{where}: external data was not loaded (pass a file path so ember can read it)")
    dt = onnx_dtype(t.data_type, where)
    try:
        if t.data_type == TensorProto.BFLOAT16:
            if t.raw_data:
                raw = np.frombuffer(t.raw_data, dtype=np.uint16)
            else:
                raw = np.asarray(t.int32_data, dtype=np.uint16)
            arr = raw.view(T.bfloat16.np).reshape(dims)
        else:
            arr = numpy_helper.to_array(t)
    except Exception as exc:  # noqa: BLE001 - protobuf content is untrusted
        raise OnnxImportError(f"{where}: cannot read tensor data ({type(exc).__name__}: {exc})") from None
    if tuple(arr.shape) != tuple(dims):
        raise OnnxImportError(f"{where}: data holds {arr.size} elements, dims {dims} need {n}")
    return np.asarray(arr, dtype=dt.np)


@dataclass
class ImportContext:
    """Maps ONNX value names to ember Values or known arrays while converting."""

    graph: Graph
    opset: int
    known: dict = field(default_factory=dict)      # onnx name -> np.ndarray (possibly object dtype)
    values: dict = field(default_factory=dict)     # onnx name -> Value
    params: dict = field(default_factory=dict)     # graph input name -> np.ndarray (initializers)
    graph_inputs: set = field(default_factory=set)
    node: Optional[onnx.NodeProto] = None
    _folding: bool = False
    _fn_depth: int = 0      # nesting of expanded ONNX function bodies

    # ------------------------------------------------------------ access
    def has(self, name: str) -> bool:
        return bool(name) and (name in self.known or name in self.values)

    def value(self, name: str) -> Value:
        """An ember Value for ONNX value ``name`` (constants become ``constant`` nodes)."""
        if name in self.values:
            return self.values[name]
        if name in self.known:
            arr = self.known[name]
            if arr.dtype == object:
                arr = _concrete_ints(arr, name, self)
            from ember.ir.ops import constant
            v = constant(value=np.asarray(arr))
            self.values[name] = v
            return v
        raise OnnxImportError(self.where(f"input {name!r} is not produced by any node, initializer or graph input"))

    def const(self, name: str, what: str) -> np.ndarray:
        """The import-time value of ``name`` (a shape, axes, ...); refuses run-time values."""
        if name in self.known:
            return self.known[name]
        if "__param__" + name in self.known:
            return self.known["__param__" + name]
        if name in self.graph_inputs:
            raise NeedsStaticInput(name, self.where(f"{what} comes from graph input {name!r}; ember needs it known "
                                                    "at import time (pass static_inputs={...})"))
        if name in self.values:
            raise OnnxImportError(self.where(f"{what} ({name!r}) is computed at run time: data-dependent shapes "
                                             "are not supported (ember needs them known at import time)"))
        raise OnnxImportError(self.where(f"input {name!r} is not produced by any node, initializer or graph input"))

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.node.attribute:
            if a.name == name:
                v = onnx.helper.get_attribute_value(a)
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "replace")
                if isinstance(v, onnx.TensorProto):
                    v = tensor_to_numpy(v, self.where(f"attribute {name}"))
                return v
        return default

    def inputs(self) -> list[str]:
        return list(self.node.input)

    def where(self, msg: str) -> str:
        if self.node is None:
            return msg
        n = self.node
        label = f"{n.op_type} node {n.name!r}" if n.name else f"{n.op_type} node (output {list(n.output)[:1]})"
        return f"{label}: {msg}"


def _concrete_ints(arr: np.ndarray, name: str, ctx: ImportContext) -> np.ndarray:
    """An object array of ints/symbols as int64 (symbols cannot become data in ember)."""
    if all(isinstance(v, (int, np.integer)) for v in arr.ravel()):
        return arr.astype(np.int64)
    raise OnnxImportError(ctx.where(f"{name!r} holds symbolic sizes {arr.tolist()} used as data; ember keeps "
                                    "shapes symbolic only where they feed shape arguments"))


def _text(s) -> str:
    """Protobuf strings with invalid UTF-8 come back as bytes: show them readably."""
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)


def _load_model(src) -> onnx.ModelProto:
    if isinstance(src, onnx.ModelProto):
        return src
    try:
        if isinstance(src, (bytes, bytearray)):
            return onnx.load_model_from_string(bytes(src))
        return onnx.load(str(src))
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is one clear error
        raise OnnxImportError(f"not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None


def _toposort(nodes: list, available: set) -> list:
    """Nodes in dependency order; a cycle or a dangling input is an error."""
    produced_by: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                if o in produced_by or o in available:
                    raise OnnxImportError(f"{n.op_type} node {n.name!r}: value {o!r} is produced twice "
                                          "(ONNX graphs are SSA)")
                produced_by[o] = i
    order, state = [], [0] * len(nodes)  # 0 new, 1 visiting, 2 done
    for start in range(len(nodes)):
        if state[start]:
            continue
        stack = [(start, iter([x for x in nodes[start].input if x]))]
        state[start] = 1
        while stack:
            i, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[i] = 2
                order.append(nodes[i])
                stack.pop()
                continue
            j = produced_by.get(nxt)
            if j is None:
                if nxt not in available:
                    n = nodes[i]
                    raise OnnxImportError(f"{n.op_type} node {n.name!r}: input {nxt!r} is not produced by any node, "
                                          "initializer or graph input (missing initializer?)")
                continue
            if state[j] == 1:
                raise OnnxImportError(f"the graph has a cycle through value {nxt!r} ({nodes[j].op_type} node "
                                      f"{nodes[j].name!r})")
            if state[j] == 0:
                state[j] = 1
                stack.append((j, iter([x for x in nodes[j].input if x])))
    return order


def import_model(src, *, static_inputs: Optional[dict] = None, params_as_inputs: bool = True,
                 name: Optional[str] = None) -> tuple[Graph, dict]:
    """(ember Graph, {parameter name: array}) of an ONNX model (path, bytes or ModelProto).

    Floating-point initializers become ``param`` graph inputs (named as in the
    model); other initializers are constants. ``static_inputs`` gives import-time
    values for graph inputs that feed shape-like arguments.
    """
    from . import import_ops  # noqa: F401  registers the converters

    model = _load_model(src)
    if not model.HasField("graph"):
        raise OnnxImportError("the model has no graph")
    og = model.graph
    if len(og.node) > MAX_NODES:
        raise OnnxImportError(f"the graph has {len(og.node)} nodes (limit {MAX_NODES})")
    opset = 0
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    if not opset and any(imp.domain in ("ai.onnx.preview.training", "ai.onnx.ml", "ai.onnx.preview")
                         for imp in model.opset_import):
        opset = onnx.defs.onnx_opset_version()  # a model of another domain only: default ops at the newest opset
    if not opset:
        raise OnnxImportError("the model imports no default-domain (ai.onnx) opset")
    local_functions = {(f.domain, f.name): f for f in model.functions}
    unknown = sorted({_text(n.op_type) if n.domain in ("", "ai.onnx") else f"{_text(n.domain)}::{_text(n.op_type)}"
                      for n in og.node
                      if (n.domain in ("", "ai.onnx") and not is_supported(n.op_type, opset))
                      or (n.domain not in ("", "ai.onnx") and (n.domain, n.op_type) not in local_functions
                          and not _domain_converter(n))})
    if unknown:
        raise OnnxImportError(f"unsupported ONNX operator(s): {', '.join(map(_text, unknown))}")

    graph = Graph(name or symbol_name(og.name or "onnx_model", 0))
    ctx = ImportContext(graph, opset)
    static_inputs = dict(static_inputs or {})
    init_names = set()
    for t in og.initializer:
        if not t.name:
            raise OnnxImportError("an initializer has no name")
        init_names.add(t.name)
    for t in og.sparse_initializer:
        raise OnnxImportError("sparse initializers are not supported")
    sym_index = 0
    for vi in og.input:
        if vi.name in init_names:
            continue  # an initializer listed as input too (old exporters): a parameter with a default
        if vi.name in static_inputs:
            ctx.known[vi.name] = np.asarray(static_inputs[vi.name])
            continue
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None:
            raise OnnxImportError(f"graph input {vi.name!r} is not a tensor (sequences/maps/optionals are not "
                                  "supported)")
        dt = onnx_dtype(tt.elem_type, f"graph input {vi.name!r}")
        if not tt.HasField("shape"):
            raise OnnxImportError(f"graph input {vi.name!r} has no shape (its rank must be known)")
        dims = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                if d.dim_value < 0 or d.dim_value > MAX_ELEMENTS:
                    raise OnnxImportError(f"graph input {vi.name!r}: bad dimension {d.dim_value}")
                dims.append(int(d.dim_value))
            else:
                dims.append(symbol_name(d.dim_param, sym_index))
                sym_index += 1
        v = graph.add_input(T.TensorType(dt, tuple(dims)), vi.name, ROLE_INPUT)
        if v.name != vi.name:
            raise OnnxImportError(f"graph input name {vi.name!r} is used twice")
        ctx.values[vi.name] = v
        ctx.graph_inputs.add(vi.name)
    for t in og.initializer:
        arr = tensor_to_numpy(t, f"initializer {t.name!r}")
        if params_as_inputs and arr.dtype.kind == "f" and arr.size > 1 and t.name not in static_inputs:
            v = graph.add_input(T.TensorType(T.from_numpy(arr.dtype), tuple(arr.shape)), t.name, ROLE_PARAM)
            ctx.values[t.name] = v
            ctx.params[v.name] = arr
            # shape-like uses of a parameter still see its value
            ctx.known.setdefault("__param__" + t.name, arr)
        else:
            ctx.known[t.name] = arr
    available = set(ctx.values) | set(ctx.known)
    nodes = _toposort(list(og.node), available)
    builder = GraphBuilder(graph)
    with builder:
        for node in nodes:
            ctx.node = node
            builder.provenance = Provenance(module=node.name or node.op_type)
            if node.domain not in ("", "ai.onnx") and (node.domain, node.op_type) in local_functions:
                outs = _call_function(ctx, node, local_functions[(node.domain, node.op_type)])
            elif node.domain not in ("", "ai.onnx"):
                outs = CONVERTERS[f"{node.domain}::{node.op_type}"](ctx, node)
            else:
                outs = run_converter(ctx, node)
            _bind_outputs(ctx, node, outs)
        ctx.node = None
        outputs = []
        for vo in og.output:
            if not ctx.has(vo.name):
                raise OnnxImportError(f"graph output {vo.name!r} is not produced by any node")
            outputs.append(ctx.value(vo.name))
    graph.outputs = outputs
    graph.meta["onnx_output_names"] = [vo.name for vo in og.output]
    graph.meta["onnx_opset"] = opset
    _dedupe_outputs(graph)
    return graph, ctx.params


def _dedupe_outputs(graph: Graph) -> None:
    """Graph outputs stay distinct values (an output that is an input gets an identity-like reshape)."""
    from ember.ir.ops import reshape
    seen: set = set()
    with GraphBuilder(graph):
        for i, v in enumerate(graph.outputs):
            if id(v) in seen or v.producer is None:
                graph.outputs[i] = reshape(v, shape=tuple(v.shape))
                # reshape to the same shape is a no-op kernel-wise but a distinct value
            seen.add(id(graph.outputs[i]))


def run_converter(ctx: ImportContext, node: onnx.NodeProto) -> list:
    conv = CONVERTERS.get(node.op_type)
    if conv is None:
        return _expand_schema_function(ctx, node)
    ins = [x for x in node.input if x]
    if ins and all(x in ctx.known for x in ins) and not ctx._folding and node.op_type not in _NO_FOLD:
        folded = _fold(ctx, node, conv)
        if folded is not None:
            return folded
    try:
        return conv(ctx, node)
    except (OnnxImportError, NeedsStaticInput):
        raise
    except T.ShapeError as exc:
        raise OnnxImportError(ctx.where(f"invalid operands: {exc}")) from None
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError) as exc:
        raise OnnxImportError(ctx.where(f"{type(exc).__name__}: {exc}")) from None


_NO_FOLD = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
            "Bernoulli", "If", "Scan", "Loop"}


def _fold(ctx: ImportContext, node: onnx.NodeProto, conv: Converter) -> Optional[list]:
    """Evaluate a node whose inputs are all known, at import time."""
    if any(ctx.known[x].dtype == object for x in node.input if x):
        return None  # symbolic shape arithmetic: converters handle object arrays themselves
    if sum(ctx.known[x].size for x in node.input if x) > 1 << 16:
        return None
    scratch = Graph("fold")
    sub = ImportContext(scratch, ctx.opset, known=dict(ctx.known), node=node, _folding=True)
    try:
        with GraphBuilder(scratch):
            outs = conv(sub, node)
            vals = [o if isinstance(o, (Value, np.ndarray)) or o is None else o for o in outs]
        scratch.outputs = [o for o in vals if isinstance(o, Value)]
        results = iter(evaluate(scratch, []))
        return [next(results) if isinstance(o, Value) else o for o in vals]
    except (OnnxImportError, NeedsStaticInput):
        raise
    except Exception:  # noqa: BLE001 - fall back to converting the node normally
        return None


def evaluate(graph: Graph, arrays: list) -> list:
    """Run a static-shaped graph on the numpy kernels (import-time folding, conformance runs)."""
    from ember.runtime.kernels import KERNELS
    env = {v.name: a for v, a in zip(graph.inputs, arrays)}
    for n in graph.nodes:
        env[n.output.name] = np.asarray(KERNELS[n.op](*[env[v.name] for v in n.inputs], **n.attrs))
    return [env[v.name] for v in graph.outputs]


def _bind_outputs(ctx: ImportContext, node: onnx.NodeProto, outs: list) -> None:
    names = list(node.output)
    if len(outs) < len([n for n in names if n]):
        raise OnnxImportError(ctx.where(f"produces {len(outs)} outputs, the node declares {len(names)}"))
    for name, out in zip(names, outs):
        if not name or out is None:
            continue
        if isinstance(out, np.ndarray):
            ctx.known[name] = out
        elif isinstance(out, Value):
            ctx.values[name] = out
        else:
            ctx.known[name] = np.asarray(out, dtype=object if isinstance(out, str) else None)


def _call_function(ctx: ImportContext, node: onnx.NodeProto, fn: onnx.FunctionProto) -> list:
    """Inline a model-local function (e.g. ember's fused groups)."""
    outer = ctx.node
    rename = dict(zip(fn.input, node.input))
    for fn_node in fn.node:
        inner = onnx.NodeProto()
        inner.CopyFrom(fn_node)
        del inner.input[:]
        inner.input.extend([rename.get(x, f"{node.name}/{x}") if x else "" for x in fn_node.input])
        del inner.output[:]
        inner.output.extend([f"{node.name}/{x}" if x else "" for x in fn_node.output])
        for o_old, o_new in zip(fn_node.output, inner.output):
            rename[o_old] = o_new
        if not is_supported(inner.op_type, ctx.opset):
            raise OnnxImportError(f"function {fn.name}: unsupported operator {inner.op_type}")
        ctx.node = inner
        _bind_outputs(ctx, inner, run_converter(ctx, inner))
    ctx.node = outer
    return [ctx.known.get(rename[o]) if rename[o] in ctx.known else ctx.values[rename[o]] for o in fn.output]


# ------------------------------------------------------------------ ONNX's own function bodies
# An operator without a converter whose ONNX schema defines it as a function (Attention,
# RotaryEmbedding, ...) imports as that function's body: ONNX's own composition of other
# operators, each converted as usual.
_FUNCTION_DEPTH_LIMIT = 16


def _schema(op_type: str, opset: int):
    try:
        return onnx.defs.get_schema(op_type, opset, domain="")
    except Exception:  # noqa: BLE001 - unknown operator or no version at this opset
        return None


def _function_version(schema, opset: int) -> Optional[tuple[int, bool]]:
    """(function opset version, context dependent?) of the body to expand at ``opset``."""
    plain = [(v, False) for v in schema.function_opset_versions]
    ctx_dep = [(v, True) for v in schema.context_dependent_function_opset_versions]
    cands = plain + ctx_dep
    if not cands:
        return None
    usable = [c for c in cands if c[0] <= opset]
    return max(usable) if usable else min(cands)


def node_supported(node: onnx.NodeProto, opset: int) -> bool:
    """Whether ember imports this node (any domain; model-local functions aside)."""
    if node.domain in ("", "ai.onnx"):
        return is_supported(node.op_type, opset)
    return _domain_converter(node)


def is_supported(op_type: str, opset: int) -> bool:
    """Whether ember imports ``op_type`` (default domain) at ``opset``: a converter or a function body."""
    if op_type in CONVERTERS:
        return True
    schema = _schema(op_type, opset)
    return schema is not None and _function_version(schema, opset) is not None


def _type_proto(ctx: ImportContext, name: str) -> onnx.TypeProto:
    if name in ctx.known:
        arr = ctx.known[name]
        dt = T.int64 if arr.dtype == object else T.from_numpy(arr.dtype)
        shape = list(arr.shape)
    else:
        v = ctx.value(name)
        dt, shape = v.dtype, [d if isinstance(d, int) else str(d) for d in v.shape]
    return onnx.helper.make_tensor_type_proto(ONNX_DTYPE[dt], shape)


def _function_body(ctx: ImportContext, node: onnx.NodeProto) -> onnx.FunctionProto:
    schema = _schema(node.op_type, ctx.opset)
    picked = _function_version(schema, ctx.opset) if schema is not None else None
    if picked is None:
        raise OnnxImportError(ctx.where(f"unsupported ONNX operator {node.op_type} (no converter, no function body)"))
    version, context_dependent = picked
    fn = onnx.FunctionProto()
    if context_dependent:
        types = [_type_proto(ctx, x).SerializeToString() if x else onnx.TypeProto().SerializeToString()
                 for x in node.input]
        blob = schema.get_context_dependent_function_with_opset_version(version, node.SerializeToString(), types)
    else:
        blob = schema.get_function_with_opset_version(version)
    if not blob:
        raise OnnxImportError(ctx.where(f"ONNX defines no function body for {node.op_type} with these inputs"))
    fn.ParseFromString(blob)
    return fn


def _bind_attributes(inner: onnx.NodeProto, attrs: dict) -> None:
    """Replace the body's attribute references (``ref_attr_name``) by the node's values."""
    kept = []
    for a in inner.attribute:
        if a.ref_attr_name:
            if a.ref_attr_name in attrs:
                b = onnx.AttributeProto()
                b.CopyFrom(attrs[a.ref_attr_name])
                b.name = a.name
                kept.append(b)
            continue
        kept.append(a)
    del inner.attribute[:]
    inner.attribute.extend(kept)


def _rename_outer_refs(g: onnx.GraphProto, rename: dict, prefix: Optional[str], keep: frozenset = frozenset()) -> None:
    """Rewrite a subgraph's references to enclosing-scope names (unknown ones get ``prefix``, or stay);
    names a (nested) subgraph defines itself are left alone."""
    local = {o for n in g.node for o in n.output} | {t.name for t in g.initializer} | {i.name for i in g.input}
    keep = keep | local
    for n in g.node:
        for i, x in enumerate(n.input):
            if x and x not in keep:
                n.input[i] = rename.get(x, x if prefix is None else prefix + x)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_outer_refs(a.g, rename, prefix, keep)


def _expand_schema_function(ctx: ImportContext, node: onnx.NodeProto) -> list:
    depth = getattr(ctx, "_fn_depth", 0)
    if depth > _FUNCTION_DEPTH_LIMIT:
        raise OnnxImportError(ctx.where("function bodies nest too deeply"))
    fn = _function_body(ctx, node)
    schema = _schema(node.op_type, ctx.opset)
    attrs = {a.name: a for a in node.attribute}
    for name, spec in schema.attributes.items():
        if name not in attrs and spec.default_value.type:
            attrs[name] = spec.default_value
    for a in fn.attribute_proto:  # defaults the body itself declares
        attrs.setdefault(a.name, a)
    inner_opset = next((o.version for o in fn.opset_import if o.domain in ("", "ai.onnx")), ctx.opset)
    prefix = f"{node.name or node.output[0]}/{node.op_type}/"
    rename = {f: (x if i < len(node.input) else "") for i, (f, x) in
              enumerate(zip(fn.input, list(node.input) + [""] * len(fn.input)))}
    outer, outer_opset = ctx.node, ctx.opset
    ctx._fn_depth = depth + 1
    ctx.opset = inner_opset
    try:
        for fn_node in fn.node:
            if fn_node.domain not in ("", "ai.onnx"):
                raise OnnxImportError(f"{node.op_type}'s function body uses {fn_node.domain}::{fn_node.op_type}")
            inner = onnx.NodeProto()
            inner.CopyFrom(fn_node)
            del inner.input[:]
            inner.input.extend([rename.get(x, prefix + x) if x else "" for x in fn_node.input])
            del inner.output[:]
            inner.output.extend([prefix + x if x else "" for x in fn_node.output])
            for o_old, o_new in zip(fn_node.output, inner.output):
                rename[o_old] = o_new
            _bind_attributes(inner, attrs)
            for a in inner.attribute:  # a branch body may read function-scope values: rename those too
                if a.type == onnx.AttributeProto.GRAPH:
                    _rename_outer_refs(a.g, rename, prefix)
            if inner.op_type != "If" and any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                             for a in inner.attribute):
                raise OnnxImportError(ctx.where(f"unsupported ONNX operator {inner.op_type} (control flow) in the "
                                                f"function body of {node.op_type}"))
            if not is_supported(inner.op_type, ctx.opset):
                raise OnnxImportError(ctx.where(f"unsupported ONNX operator {inner.op_type} in the function body "
                                                f"of {node.op_type}"))
            ctx.node = inner
            _bind_outputs(ctx, inner, run_converter(ctx, inner))
    finally:
        ctx.node, ctx.opset, ctx._fn_depth = outer, outer_opset, depth
    outs = []
    for o in fn.output:
        name = rename.get(o, "")
        outs.append(None if not name or not ctx.has(name) else
                    (ctx.known[name] if name in ctx.known else ctx.values[name]))
    return outs


@converter("If")
def _if(ctx: ImportContext, node: onnx.NodeProto) -> list:
    """An If whose condition is known at import time (a shape test, a static input) is its taken branch."""
    cond = np.asarray(ctx.const(node.input[0], "the If condition"))
    if cond.size != 1:
        raise OnnxImportError(ctx.where(f"the condition must hold one value, got shape {list(cond.shape)}"))
    branch = ctx.attr("then_branch" if bool(cond.ravel()[0]) else "else_branch")
    if not isinstance(branch, onnx.GraphProto):
        raise OnnxImportError(ctx.where("missing then_branch/else_branch graph"))
    prefix = f"{node.name or node.output[0]}/{'then' if bool(cond.ravel()[0]) else 'else'}/"
    return inline_graph(ctx, branch, {}, prefix)


def inline_graph(ctx: ImportContext, g: onnx.GraphProto, bindings: dict, prefix: str) -> list:
    """Import subgraph ``g``'s nodes into the current graph: its inputs bound to ``bindings``
    ({input name: Value or array}), names it defines prefixed, other names read from the enclosing
    scope. Returns its outputs (an If branch, FlexAttention's score_mod, ...)."""
    rename: dict = {}
    for name, v in bindings.items():
        rename[name] = prefix + name
        if isinstance(v, np.ndarray):
            ctx.known[prefix + name] = v
        else:
            ctx.values[prefix + name] = v
    for t in g.initializer:
        rename[t.name] = prefix + t.name
        ctx.known[prefix + t.name] = tensor_to_numpy(t, ctx.where(f"initializer {t.name!r}"))
    outer = ctx.node
    try:
        for sub in g.node:
            inner = onnx.NodeProto()
            inner.CopyFrom(sub)
            del inner.input[:]
            inner.input.extend([rename.get(x, x) for x in sub.input])  # other names: the outer scope
            del inner.output[:]
            inner.output.extend([prefix + x if x else "" for x in sub.output])
            for o_old, o_new in zip(sub.output, inner.output):
                if o_old:
                    rename[o_old] = o_new
            for a in inner.attribute:  # a nested subgraph may read values this one produced
                if a.type == onnx.AttributeProto.GRAPH:
                    _rename_outer_refs(a.g, rename, None)
            if not node_supported(inner, ctx.opset):
                raise OnnxImportError(ctx.where(f"unsupported ONNX operator {inner.op_type} in a subgraph"))
            ctx.node = inner
            _bind_outputs(ctx, inner, run_converter(ctx, inner))
    finally:
        ctx.node = outer
    outs = []
    for o in g.output:
        name = rename.get(o.name, o.name)
        if not ctx.has(name):
            raise OnnxImportError(ctx.where(f"subgraph output {o.name!r} is not produced"))
        outs.append(ctx.known[name] if name in ctx.known else ctx.values[name])
    return outs


def _as_value(v):
    from ember.ir.ops import constant
    return constant(value=np.asarray(v)) if isinstance(v, np.ndarray) else v


@converter("Scan")
def _scan(ctx: ImportContext, node: onnx.NodeProto) -> list:
    """Scan over a static sequence length: the body is inlined once per step (opset 8's batched
    form: once per step and batch element)."""
    from ember.ir import ops as P
    body = ctx.attr("body")
    m = int(ctx.attr("num_scan_inputs"))
    names = list(node.input)
    if ctx.opset < 9:   # Scan-8: [sequence_lens], states and scan inputs with a leading batch dim
        lens_name, names = names[0], names[1:]
    n_state = len(names) - m
    if m < 1 or n_state < 0 or len(body.input) != len(names):
        raise OnnxImportError(ctx.where(f"{len(names)} inputs do not match the body's {len(body.input)}"))
    k = len(body.output) - n_state

    def val(x):
        return _as_value(ctx.known[x]) if x in ctx.known else ctx.value(x)
    states, scans = [val(x) for x in names[:n_state]], [val(x) for x in names[n_state:]]
    if ctx.opset >= 9:
        return _scan_run(ctx, node, body, states, scans, list(ctx.attr("scan_input_axes") or [0] * m),
                         list(ctx.attr("scan_input_directions") or [0] * m),
                         list(ctx.attr("scan_output_axes") or [0] * k),
                         list(ctx.attr("scan_output_directions") or [0] * k))
    batch = scans[0].shape[0]
    if lens_name:
        lens = np.asarray(ctx.const(lens_name, "sequence_lens")).ravel()
        if not (lens == scans[0].shape[1]).all():
            raise OnnxImportError(ctx.where("Scan-8 with sequence_lens shorter than the input is not supported"))

    def row(v, b):
        sl = P.slice_(v, starts=(b,) + (0,) * (v.type.ndim - 1), stops=(b + 1,) + tuple(v.shape[1:]),
                      steps=(1,) * v.type.ndim)
        return P.reshape(sl, shape=tuple(v.shape[1:]))
    dirs = list(ctx.attr("directions") or [0] * m)
    per_batch = [_scan_run(ctx, node, body, [row(v, b) for v in states], [row(v, b) for v in scans], [0] * m, dirs,
                           [0] * k, [0] * k, tag=f"b{b}") for b in range(batch)]
    out = []
    for j in range(n_state + k):
        parts = [_as_value(r[j]) for r in per_batch]
        parts = [P.reshape(p, shape=(1,) + tuple(p.shape)) for p in parts]
        out.append(parts[0] if len(parts) == 1 else P.concat(*parts, dim=0))
    return out


def _scan_run(ctx, node, body, states, scans, in_axes, in_dirs, out_axes, out_dirs, tag=""):
    from ember.ir import ops as P
    n_state, k = len(states), len(body.output) - len(states)
    axes = [a + s.type.ndim if a < 0 else a for a, s in zip(in_axes, scans)]
    lengths = {s.shape[a] for s, a in zip(scans, axes)}
    if len(lengths) != 1 or not isinstance(next(iter(lengths)), int):
        raise OnnxImportError(ctx.where(f"scan inputs need one static length, got {sorted(map(str, lengths))}"))
    steps = lengths.pop()
    if steps > 4096:
        raise OnnxImportError(ctx.where(f"a Scan of {steps} steps is too long to unroll"))
    collected: list = [[] for _ in range(k)]
    for t in range(steps):
        bind = {body.input[i].name: states[i] for i in range(n_state)}
        for j, (s, a, d) in enumerate(zip(scans, axes, in_dirs)):
            i = steps - 1 - t if d else t
            sl = P.slice_(s, starts=tuple(i if ax == a else 0 for ax in range(s.type.ndim)),
                          stops=tuple(i + 1 if ax == a else n for ax, n in enumerate(s.shape)),
                          steps=(1,) * s.type.ndim)
            bind[body.input[n_state + j].name] = P.reshape(sl, shape=tuple(n for ax, n in enumerate(s.shape)
                                                                           if ax != a))
        outs = inline_graph(ctx, body, bind, f"{node.name or node.output[0]}/scan{tag}{t}/")
        states = outs[:n_state]
        for j in range(k):
            collected[j].append(_as_value(outs[n_state + j]))
    results = list(states)
    for j in range(k):
        parts = collected[j][::-1] if out_dirs[j] else collected[j]
        r = parts[0].type.ndim + 1
        a = out_axes[j] + r if out_axes[j] < 0 else out_axes[j]
        parts = [P.reshape(p, shape=tuple(p.shape[:a]) + (1,) + tuple(p.shape[a:])) for p in parts]
        results.append(parts[0] if len(parts) == 1 else P.concat(*parts, dim=a))
    return results


@converter("Loop")
def _loop(ctx: ImportContext, node: onnx.NodeProto) -> list:
    """Loop with an import-time trip count or condition: the body is inlined once per iteration
    (the condition each iteration produces must be known at import time too)."""
    from ember.ir import ops as P
    body = ctx.attr("body")
    names = list(node.input)
    trip = int(np.asarray(ctx.const(names[0], "the trip count")).ravel()[0]) if names and names[0] else None
    cond = bool(np.asarray(ctx.const(names[1], "the loop condition")).ravel()[0]) \
        if len(names) > 1 and names[1] else True
    carried = [ctx.known[x] if x in ctx.known else ctx.value(x) for x in names[2:]]
    n = len(carried)
    k = len(body.output) - 1 - n
    if trip is None and not cond:
        trip = 0
    if trip is None:
        trip = 1 << 62   # until the body's condition turns false
    collected: list = [[] for _ in range(k)]
    it = 0
    while cond and it < trip:
        if it >= 4096:
            raise OnnxImportError(ctx.where("a Loop of more than 4096 iterations is too long to unroll"))
        bind = {body.input[0].name: np.asarray(it, dtype=np.int64), body.input[1].name: np.asarray(cond)}
        bind.update({body.input[2 + i].name: carried[i] for i in range(n)})
        outs = inline_graph(ctx, body, bind, f"{node.name or node.output[0]}/loop{it}/")
        c = outs[0]
        if not isinstance(c, np.ndarray):
            raise OnnxImportError(ctx.where("the Loop condition is computed at run time; ember unrolls loops "
                                            "whose condition is known at import time"))
        cond = bool(np.asarray(c).ravel()[0])
        carried = outs[1:1 + n]
        for j in range(k):
            collected[j].append(outs[1 + n + j])
        it += 1
    results = list(carried)
    for j in range(k):
        if not collected[j]:
            raise OnnxImportError(ctx.where("a Loop that runs zero times has empty scan outputs of unknown shape"))
        if all(isinstance(p, np.ndarray) for p in collected[j]):
            results.append(np.stack(collected[j]))
            continue
        parts = [_as_value(p) for p in collected[j]]
        parts = [P.reshape(p, shape=(1,) + tuple(p.shape)) for p in parts]
        results.append(parts[0] if len(parts) == 1 else P.concat(*parts, dim=0))
    return results
