"""Lower an ember ``Graph`` to an ONNX ``ModelProto``.

The per-primitive rules live in ``ops.py`` (``LOWERINGS``, keyed by primitive
name); this module holds the machinery they share: a ``LoweringContext`` that
emits ONNX nodes with fresh names, turns constants into initializers, computes
symbolic dimensions at run time (``Shape`` of the graph input that carries the
symbol) and records the opset each construct needs, so a too-old target opset
is refused with a message naming the op.

The model is pinned to ``IR_VERSION`` (onnx 1.23 writes IR 14 by default, which
onnxruntime 1.31 rejects) and to an opset in ``[MIN_OPSET, MAX_OPSET]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ember.ir import types as T
from ember.ir.graph import Graph, Node, Value

IR_VERSION = 10          # what onnxruntime-gpu 1.31 loads; onnx 1.16 (IR 10) maps it to opset 21
DEFAULT_OPSET = 18       # axes-as-input reductions, ScatterND/ScatterElements(reduction=add)
MIN_OPSET = 13
MAX_OPSET = 21           # the newest opset that IR version 10 may declare

ONNX_DTYPE = {
    T.float16: TensorProto.FLOAT16, T.bfloat16: TensorProto.BFLOAT16, T.float32: TensorProto.FLOAT,
    T.float64: TensorProto.DOUBLE, T.int8: TensorProto.INT8, T.int16: TensorProto.INT16,
    T.int32: TensorProto.INT32, T.int64: TensorProto.INT64, T.uint8: TensorProto.UINT8,
    T.bool_: TensorProto.BOOL,
}
EMBER_DTYPE = {v: k for k, v in ONNX_DTYPE.items()}

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
# constants larger than this become initializers rather than Constant nodes
_INLINE_CONSTANT_LIMIT = 16


class OnnxLoweringError(RuntimeError):
    """A graph cannot be expressed in ONNX (at the requested opset)."""


Lowering = Callable[["LoweringContext", Node, list], str]


def value_info(name: str, t: T.TensorType) -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) else str(d) for d in t.shape]
    return helper.make_tensor_value_info(name, ONNX_DTYPE[t.dtype], dims)


def numpy_to_tensor(arr: np.ndarray, name: str) -> TensorProto:
    """``numpy_helper.from_array`` that also handles bfloat16 (ml_dtypes)."""
    arr = np.asarray(arr)
    if arr.dtype == T.bfloat16.np:
        t = helper.make_tensor(name, TensorProto.BFLOAT16, arr.shape, arr.view(np.uint16).ravel().tolist(),
                               raw=False)
        t.ClearField("int32_data")
        t.raw_data = arr.astype(T.bfloat16.np).view(np.uint16).tobytes()
        return t
    return numpy_helper.from_array(arr if arr.flags.c_contiguous else arr.copy(order="C"), name)


@dataclass
class LoweringContext:
    """Emits the ONNX nodes of one graph (or one fused subgraph body)."""

    graph: Graph
    opset: int
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    functions: dict = field(default_factory=dict)   # name -> FunctionProto (fused groups)
    names: dict = field(default_factory=dict)        # ember value name -> ONNX value name
    fuse_mode: str = "inline"                        # or "function"
    required: dict = field(default_factory=dict)     # construct -> minimum opset
    _used: set = field(default_factory=set)
    _dim_cache: dict = field(default_factory=dict)
    _const_cache: dict = field(default_factory=dict)
    _current: Optional[Node] = None
    _sym_source: dict = field(default_factory=dict)  # symbol -> (input name, axis)
    param_names: set = field(default_factory=set)    # inputs exported as initializers (constants)
    users: dict = field(default_factory=dict)        # value name -> number of reading nodes
    # a fused body's input -> the enclosing context and value it stands for (peepholes look through)
    outer: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)       # one per model: facts rules share across nodes

    def __post_init__(self) -> None:
        for v in self.graph.inputs:
            for axis, d in enumerate(v.shape):
                if isinstance(d, str) and d not in self._sym_source:
                    self._sym_source[d] = (v.name, axis)
        self._used.update(v.name for v in self.graph.inputs)
        self._used.update(n.output.name for n in self.graph.nodes)
        for n in self.graph.nodes:
            for v in n.inputs:
                self.users[v.name] = self.users.get(v.name, 0) + 1
        for v in self.graph.outputs:
            self.users[v.name] = self.users.get(v.name, 0) + 1

    # ------------------------------------------------------------ naming
    def fresh(self, hint: str) -> str:
        base = hint or "t"
        name, i = base, 0
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def require(self, opset: int, what: str) -> None:
        """Record that ``what`` needs at least ``opset``; refuse now if the target is older."""
        self.required[what] = max(opset, self.required.get(what, 0))
        if self.opset < opset:
            where = ""
            if self._current is not None:
                where = f" (node %{self._current.output.name} = {self._current.op}"
                prov = str(self._current.provenance)
                where += f", {prov})" if prov else ")"
            raise OnnxLoweringError(f"opset {self.opset} cannot express {what}{where}: it needs opset >= {opset}; "
                                    f"export with opset_version={max(opset, DEFAULT_OPSET)}")

    # ------------------------------------------------------------ emitting
    def op(self, op_type: str, *inputs: str, out: str = "", domain: str = "", **attrs: Any) -> str:
        """Append one ONNX node; returns its (fresh) output name."""
        base = self._current.output.name if self._current is not None else op_type.lower()
        name = out or self.fresh(f"{base}_{op_type}")
        empty = [k for k, v in attrs.items() if isinstance(v, (list, tuple)) and len(v) == 0]
        node = helper.make_node(op_type, list(inputs), [name], name=self.fresh(f"{op_type}_{name}"),
                                domain=domain or None,
                                **{k: v for k, v in attrs.items() if v is not None and k not in empty})
        for k in empty:  # make_node cannot infer the type of an empty list
            node.attribute.append(helper.make_attribute(k, [], attr_type=onnx.AttributeProto.INTS))
        if self._current is not None:
            prov = self._current.provenance
            if prov.module or prov.file:
                node.doc_string = str(prov)
                props = [("module", prov.module)] if prov.module else []
                if prov.file:
                    props.append(("source", f"{prov.file}:{prov.line}"))
                for k, v in props:
                    entry = node.metadata_props.add()
                    entry.key, entry.value = k, v
                if prov.module:
                    node.name = self.fresh(f"{prov.module}/{op_type}_{name}")
        self.nodes.append(node)
        return name

    def const(self, arr, dtype=None, hint: str = "const") -> str:
        """A constant tensor (cached by value): a Constant node when tiny, else an initializer."""
        a = np.asarray(arr, dtype=dtype)
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else None
        if key is not None and key in self._const_cache:
            return self._const_cache[key]
        if a.size <= _INLINE_CONSTANT_LIMIT:
            name = self.fresh(hint)
            node = helper.make_node("Constant", [], [name], name=self.fresh(f"Constant_{name}"),
                                    value=numpy_to_tensor(a, name))
            self.nodes.append(node)
        else:
            name = self.fresh(hint)
            self.initializers.append(numpy_to_tensor(a, name))
        if key is not None:
            self._const_cache[key] = name
        return name

    def i64(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint="ints")

    def scalar(self, value, dtype: T.DType) -> str:
        return self.const(np.asarray(value, dtype=dtype.np), hint="scalar")

    # ------------------------------------------------------------ symbolic dims
    def dim(self, d) -> str:
        """A 1-element int64 tensor holding dimension ``d`` (an int or a symbol) at run time."""
        if isinstance(d, (int, np.integer)):
            return self.i64([int(d)])
        if d in self._dim_cache:
            return self._dim_cache[d]
        if d in self._sym_source:
            src, axis = self._sym_source[d]
            self.require(15, "Shape with start/end (symbolic dimensions)")
            name = self.op("Shape", self.names.get(src, src), start=axis, end=axis + 1)
        else:
            name = self._dim_expr(str(d))
        self._dim_cache[d] = name
        return name

    def _dim_expr(self, text: str) -> str:
        """A dimension written as arithmetic on symbols ("B+2", "B*3", "(H-1)//2+1") as int64 ONNX ops."""
        import ast
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError:
            tree = None
        ops = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.FloorDiv: "Div"}  # sizes are >= 0

        def build(n) -> str:
            if isinstance(n, ast.Constant) and isinstance(n.value, int):
                return self.i64([n.value])
            if isinstance(n, ast.Name):
                if n.id not in self._sym_source:
                    raise OnnxLoweringError(f"symbolic dimension {n.id!r} (in {text!r}) is not carried by any "
                                            "graph input")
                return self.dim(n.id)
            if isinstance(n, ast.BinOp) and type(n.op) in ops:
                return self.op(ops[type(n.op)], build(n.left), build(n.right))
            raise OnnxLoweringError(f"cannot express symbolic dimension {text!r} in ONNX")
        if tree is None:
            raise OnnxLoweringError(f"symbolic dimension {text!r} is not carried by any graph input")
        return build(tree)

    def shape(self, shape) -> str:
        """An int64 shape tensor for ``shape`` (symbols become run-time sizes)."""
        shape = tuple(shape)
        if all(isinstance(d, (int, np.integer)) for d in shape):
            return self.i64([int(d) for d in shape])
        parts, run = [], []
        for d in shape:
            if isinstance(d, (int, np.integer)):
                run.append(int(d))
            else:
                if run:
                    parts.append(self.i64(run))
                    run = []
                parts.append(self.dim(d))
        if run:
            parts.append(self.i64(run))
        return parts[0] if len(parts) == 1 else self.op("Concat", *parts, axis=0)

    def cast(self, name: str, dtype: T.DType) -> str:
        return self.op("Cast", name, to=ONNX_DTYPE[dtype])


def lower_nodes(ctx: LoweringContext) -> None:
    """Lower every node of ``ctx.graph``; fills ``ctx.names``."""
    from .ops import LOWERINGS
    for node in ctx.graph.nodes:
        ctx._current = node
        if node.subgraph is not None:
            from .fused import lower_fused
            out = lower_fused(ctx, node, [ctx.names[v.name] for v in node.inputs])
        else:
            rule = LOWERINGS.get(node.op)
            if rule is None:
                raise OnnxLoweringError(f"no ONNX lowering for primitive {node.op!r} (node %{node.output.name})")
            out = rule(ctx, node, [ctx.names[v.name] for v in node.inputs])
        ctx.names[node.output.name] = out
    ctx._current = None


def graph_to_onnx(graph: Graph, *, opset: int | None = None, input_names: list | None = None,
                  output_names: list | None = None, export_params: bool = True,
                  fuse_mode: str = "inline", producer: str = "ember",
                  param_values: dict | None = None, doc: str = "",
                  bf16_io_as_f32: bool = False, transposed_inputs: frozenset = frozenset(),
                  transposed_outputs: frozenset = frozenset(), shapes_out: dict | None = None) -> onnx.ModelProto:
    """The ONNX model of ``graph``.

    ``param_values`` maps input names to arrays that become initializers (the
    model's parameters, named as the graph input: ``fc1.weight``); with
    ``export_params=False`` those stay graph inputs. ``input_names`` /
    ``output_names`` rename the remaining inputs and the outputs.
    ``bf16_io_as_f32`` makes bfloat16 inputs/outputs float32 at the boundary
    (onnxruntime's Python API cannot hand bfloat16 tensors to numpy).
    ``transposed_inputs`` (names) / ``transposed_outputs`` (indices) are 2-D values
    that cross the boundary transposed, so column-major numpy arrays are fed and
    returned as zero-copy ``.T`` views (onnxruntime folds the transposes into Gemm).
    ``shapes_out``, when given, receives ONNX value name -> (dtype, shape) for every node's output
    (symbolic dims as None): what ONNX's own shape inference cannot always recover (MaxUnpool's output
    shape is a run-time input), for rewrites of the model a session runs.
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not (MIN_OPSET <= opset <= MAX_OPSET):
        raise OnnxLoweringError(f"opset_version={opset} is not supported: ember targets opsets "
                                f"{MIN_OPSET}..{MAX_OPSET} (IR version {IR_VERSION}, what onnxruntime loads)")
    param_values = dict(param_values or {})
    ctx = LoweringContext(graph, opset, fuse_mode=fuse_mode)
    if export_params:
        ctx.param_names = {v.name for v in graph.inputs if v.name in param_values}
    feeds = [v for v in graph.inputs if not (export_params and v.name in param_values)]
    rename_in = dict(zip([v.name for v in feeds], input_names or []))
    for v in graph.inputs:
        ctx.names[v.name] = rename_in.get(v.name, v.name)
    ctx._used.update(rename_in.values())
    out_names = list(output_names or [])
    ctx._used.update(out_names)
    boundary, boundary_type = {}, {}
    for v in feeds:
        outer, t = ctx.names[v.name], v.type
        if v.name in transposed_inputs and v.type.ndim == 2:
            t = T.TensorType(t.dtype, t.shape[::-1])
            ctx.names[v.name] = ctx.op("Transpose", outer, perm=[1, 0])
        if bf16_io_as_f32 and v.dtype is T.bfloat16:
            t = T.TensorType(T.float32, t.shape)
            ctx.names[v.name] = ctx.op("Cast", ctx.names[v.name], to=ONNX_DTYPE[T.bfloat16])
        if t is not v.type:
            boundary[v.name], boundary_type[v.name] = outer, t
    lower_nodes(ctx)
    if shapes_out is not None:
        for node in graph.nodes:
            t = node.output.type
            shapes_out[ctx.names[node.output.name]] = (t.dtype, tuple(d if isinstance(d, int) else None
                                                                      for d in t.shape))

    inputs = [value_info(boundary.get(v.name, ctx.names[v.name]), boundary_type.get(v.name, v.type))
              for v in feeds]
    initializers = []
    if export_params:
        for v in graph.inputs:
            if v.name in param_values:
                arr = np.asarray(param_values[v.name])
                if arr.dtype != v.dtype.np:
                    arr = arr.astype(v.dtype.np)
                initializers.append(numpy_to_tensor(arr, ctx.names[v.name]))
    outputs, final_nodes = [], []
    seen_out: set = set()
    for i, v in enumerate(graph.outputs):
        src = ctx.names[v.name]
        if bf16_io_as_f32 and v.dtype is T.bfloat16:
            src = ctx.op("Cast", src, to=ONNX_DTYPE[T.float32])
            v = Value(v.name, T.TensorType(T.float32, v.shape))
        if i in transposed_outputs and v.type.ndim == 2:
            src = ctx.op("Transpose", src, perm=[1, 0])
            v = Value(v.name, T.TensorType(v.dtype, v.shape[::-1]))
        want = out_names[i] if i < len(out_names) else (v.name if v.name not in seen_out else "")
        graph_input_names = {x.name for x in inputs} | {t.name for t in initializers}
        if not want or want != src or src in graph_input_names or src in seen_out:
            want = want or ctx.fresh(f"{v.name}_out")
            if want == src and (src in graph_input_names or src in seen_out):
                want = ctx.fresh(f"{v.name}_out")
            final_nodes.append(helper.make_node("Identity", [src], [want], name=ctx.fresh(f"Identity_{want}")))
        seen_out.add(want)
        outputs.append(value_info(want, v.type))
    # node outputs named like a requested output must not collide: rename by re-lowering is
    # overkill; Identity above handles every case because ctx.fresh never yields a reserved name
    all_nodes = eliminate_dead_nodes(_fold_output_identities(ctx.nodes, final_nodes, outputs),
                                     [o.name for o in outputs])
    used = {i for n in all_nodes for i in n.input} | {o.name for o in outputs}
    ctx.initializers = [t for t in ctx.initializers if t.name in used]
    initializers = [t for t in initializers if t.name in used]  # e.g. BatchNorm's num_batches_tracked
    g = helper.make_graph(all_nodes, graph.name or "ember", inputs, outputs,
                          initializer=ctx.initializers + initializers, doc_string=doc or None)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in _function_domains(ctx)],
                              ir_version=IR_VERSION, producer_name=producer,
                              functions=list(ctx.functions.values()))
    helper.set_model_props(model, {"ember.graph": graph.name})
    return model


def _fold_output_identities(nodes: list, final_nodes: list, outputs: list) -> list:
    """``nodes + final_nodes`` with each ``Identity(x) -> out`` dropped by naming ``x``'s producer ``out``.

    onnxruntime keeps such an Identity (a full copy) whenever ``x`` is also read inside the graph,
    e.g. a gradient that the optimizer update reads and that is written back too.
    """
    produced = {o: n for n in nodes for o in n.output if o}
    taken = set(produced) | {o.name for o in outputs}
    renamed: dict[str, str] = {}
    kept = []
    for idn in final_nodes:
        src = idn.input[0] if idn.op_type == "Identity" else None
        if src in produced and src not in renamed and src not in {o.name for o in outputs}:
            renamed[src] = idn.output[0]
            continue
        kept.append(idn)
    if not renamed:
        return nodes + final_nodes
    assert not (set(renamed.values()) & (taken - {o.name for o in outputs}))
    for n in nodes + kept:
        for j, name in enumerate(n.input):
            if name in renamed:
                n.input[j] = renamed[name]
        for j, name in enumerate(n.output):
            if name in renamed:
                n.output[j] = renamed[name]
    return nodes + kept


def eliminate_dead_nodes(nodes: list, outputs: list[str]) -> list:
    """Drop ONNX nodes whose outputs nothing reads (e.g. an Expand whose readers broadcast by themselves)."""
    live = set(outputs)
    kept = []
    for n in reversed(nodes):
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(i for i in n.input if i)
    return kept[::-1]


def _function_domains(ctx: LoweringContext) -> list[str]:
    return sorted({f.domain for f in ctx.functions.values()})
