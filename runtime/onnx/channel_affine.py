"""Per-channel elementwise ops as ONNX Runtime ``BatchNormalization`` kernels, for the CPU session ember opens.

A batch-norm training step is full of ``x * s + b`` with ``x`` [N, C, H, W] and ``s``, ``b`` [1, C, 1, 1]:
the normalization itself, a convolution's bias, the backward's per-channel scalings. ONNX Runtime's CPU
``Mul``/``Add``/``Sub`` broadcast such an operand through a generic loop over runs of H*W elements, while
its inference-mode ``BatchNormalization`` computes ``x * scale + bias`` per channel with vectorized code.
Measured in one process on the 2-core VM (64x32x8x8 float32, 1 thread): a ``Mul`` + ``Add`` pair 126 us,
the same pair as one ``BatchNormalization`` 11 us, in a chain of such ops; inside the digits CNN training step
(where operands come from memory, not cache) the rewrite saves 4-7% of the step.

With ``var = 1`` and ``epsilon = 0`` ONNX Runtime's kernel computes ``x * scale + (bias - mean * scale)``
with an inverse standard deviation of exactly 1, so:

- ``Mul(x, s)``  -> ``BatchNormalization(x, scale=s, bias=0, mean=0, var=1)``
- ``Add(x, b)``  -> ``BatchNormalization(x, scale=1, bias=b, mean=0, var=1)``
- ``Sub(x, m)``  -> ``BatchNormalization(x, scale=1, bias=0, mean=m, var=1)``  (``x + (-m)``: exact)
- ``Sub(b, x)``  -> ``BatchNormalization(x, scale=-1, bias=b, mean=0, var=1)``
- ``Add(Mul(x, s), b)`` with the product used only there -> one ``BatchNormalization(x, s, b, 0, 1)``
- ``Add(Add(Mul(x, s), y), b)`` with single-use intermediates -> ``Add(BatchNormalization(x, s, b), y)``

Results are those of the original ops to the rounding of one multiply-add. Only float32 tensors of rank
>= 3 whose other operand broadcasts along the channel axis alone qualify. Like ``nchwc.py`` this rewrites
the copy of the model the session runs; exported models keep plain ops.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_OPS = ("Mul", "Add", "Sub")


def _shapes(model: onnx.ModelProto, known: dict | None = None) -> dict:
    """Float32 value name -> shape (ints, or None for a symbolic dim): ``known`` (name -> (dtype, shape), from
    the lowering), completed by ONNX shape inference."""
    from ember.ir import types as T
    known = known or {}
    out = {name: tuple(shape) for name, (dtype, shape) in known.items() if dtype is T.float32}
    annotated = onnx.ModelProto()
    annotated.CopyFrom(model)
    declared = {v.name for v in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)}
    declared |= {t.name for t in model.graph.initializer}
    produced = {o for n in model.graph.node for o in n.output}
    annotated.graph.value_info.extend(  # lets inference continue past ops whose output shape it cannot tell
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [d if d is not None else f"d{i}"
                                                                      for i, d in enumerate(shape)])
        for name, shape in out.items() if name in produced and name not in declared)
    inferred = onnx.shape_inference.infer_shapes(annotated)
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.elem_type == onnx.TensorProto.FLOAT and t.HasField("shape"):
            out.setdefault(vi.name, tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            out[init.name] = tuple(init.dims)
    return out


def _channel_vector(shape, x_shape) -> bool:
    """Whether ``shape`` broadcasts against ``x_shape`` [N, C, ...] along the channel axis only."""
    if shape is None or x_shape is None or len(x_shape) < 3 or x_shape[1] is None or len(shape) > len(x_shape):
        return False
    full = (1,) * (len(x_shape) - len(shape)) + tuple(shape)
    per_channel = full[1] == x_shape[1] and x_shape[1] > 1 and all(d == 1 for i, d in enumerate(full) if i != 1)
    # x itself must be more than one value per channel: a [1, C, 1, 1] product stays a plain Mul
    return per_channel and any(d is None or d > 1 for i, d in enumerate(x_shape) if i != 1)


def _split(node, shapes):
    """(x, per-channel operand, whether x is the first operand) for a qualifying binary node, else None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in _OPS or len(node.input) != 2:
        return None
    a, b = node.input
    sa, sb, so = shapes.get(a), shapes.get(b), shapes.get(node.output[0])
    if so is None or sa != so or None in sa[1:]:
        if sb == so and so is not None and _channel_vector(sa, sb):
            return b, a, False
        return None
    if _channel_vector(sb, sa):
        return a, b, True
    return None


def _bias_into_summand(nodes, split, producer, consumers, graph_outputs, fused_mul) -> dict:
    """``Add(Add(Mul(x, s), y), b)`` with per-channel ``s``, ``b`` and single-use intermediates: the bias
    joins the product's BatchNormalization (``x * s + b``) and the outer Add disappears, one full-size pass
    less (a batch-norm backward adds a per-channel term to the sum of two full-size terms).

    Returns id(outer Add) -> (the Mul, the inner Add, b); both move to the outer Add's place, where ``b``
    is surely computed (they have no other readers, so nothing needs them earlier)."""
    def single_use(n) -> bool:
        return consumers.get(n.output[0]) == 1 and n.output[0] not in graph_outputs

    out = {}
    taken: set = set()
    for n in nodes:
        s = split[id(n)]
        if n.op_type != "Add" or s is None or id(n) in fused_mul:
            continue
        p = producer.get(s[0])
        if p is None or p.op_type != "Add" or split.get(id(p)) is not None or not single_use(p):
            continue
        for operand in p.input:
            q = producer.get(operand)
            if (q is not None and q.op_type == "Mul" and split.get(id(q)) is not None and single_use(q)
                    and id(q) not in taken and id(p) not in taken):
                out[id(n)] = (q, p, s[1])
                taken |= {id(q), id(p)}
                break
    return out


class _Builder:
    """Shared constants (zeros/ones/minus-ones per channel count) and 1-D views of per-channel operands."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._const: dict = {}
        self._flat: dict = {}

    def const(self, value: float, c: int) -> str:
        key = (value, c)
        if key not in self._const:
            name = f"channel_affine_{'m1' if value < 0 else int(value)}_{c}"
            self.inits.append(numpy_helper.from_array(np.full(c, value, np.float32), name))
            self._const[key] = name
        return self._const[key]

    def flat(self, name: str, c: int) -> str:
        """``name`` reshaped to [C] (one Reshape per operand, placed before its first use)."""
        if name not in self._flat:
            shape = f"channel_affine_shape_{c}"
            if ("shape", c) not in self._const:
                self.inits.append(numpy_helper.from_array(np.array([c], np.int64), shape))
                self._const[("shape", c)] = shape
            out = f"{name}__per_channel"
            self.nodes.append(helper.make_node("Reshape", [name, shape], [out]))
            self._flat[name] = out
        return self._flat[name]

    def bn(self, x: str, out: str, c: int, *, scale=None, bias=None, mean=None, name: str = "") -> None:
        inputs = [scale or self.const(1.0, c), bias or self.const(0.0, c), mean or self.const(0.0, c),
                  self.const(1.0, c)]
        self.nodes.append(helper.make_node("BatchNormalization", [x] + inputs, [out], epsilon=0.0,
                                           name=name or out))


def rewrite_channel_ops(model: onnx.ModelProto, known_shapes: dict | None = None) -> onnx.ModelProto:
    """``model`` with its per-channel float32 Mul/Add/Sub as inference-mode BatchNormalization nodes.

    ``known_shapes``: value name -> (dtype, shape) from ``graph_to_onnx(shapes_out=...)``; ONNX shape
    inference fills in the rest (it loses track after ops like MaxUnpool)."""
    nodes = list(model.graph.node)
    if not any(n.op_type in _OPS for n in nodes):
        return model
    shapes = _shapes(model, known_shapes)
    consumers: dict = {}
    for n in nodes:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    graph_outputs = {o.name for o in model.graph.output}
    split = {id(n): _split(n, shapes) for n in nodes}
    producer = {n.output[0]: n for n in nodes if n.output}
    # a Mul whose only use is a qualifying Add of a per-channel bias: both become one node at the Add
    fused_mul: dict = {}  # id(Add node) -> (x, scale operand) of the Mul it absorbs
    absorbed: set = set()
    for n in nodes:
        s = split[id(n)]
        if n.op_type != "Add" or s is None:
            continue
        m = producer.get(s[0])
        ms = split.get(id(m)) if m is not None else None
        if (m is not None and m.op_type == "Mul" and ms is not None and consumers.get(m.output[0]) == 1
                and m.output[0] not in graph_outputs):
            fused_mul[id(n)] = ms[:2]
            absorbed.add(id(m))
    pushed = _bias_into_summand(nodes, split, producer, consumers, graph_outputs, fused_mul)
    deferred = {id(q) for q, _, _ in pushed.values()} | {id(p) for _, p, _ in pushed.values()}
    b = _Builder()
    changed = False
    for n in nodes:
        s = split[id(n)]
        if id(n) in absorbed or id(n) in deferred:  # emitted with the node that absorbs them
            continue
        if s is None:
            b.nodes.append(n)
            continue
        x, v, x_first = s
        c = shapes[x][1]
        out, name = n.output[0], n.name
        if id(n) in pushed:
            q, p, _ = pushed[id(n)]
            qx, qv, _ = split[id(q)]
            b.bn(qx, q.output[0], c, scale=b.flat(qv, c), bias=b.flat(v, c), name=q.name)
            renamed = onnx.NodeProto()
            renamed.CopyFrom(p)
            renamed.output[0] = out
            b.nodes.append(renamed)
        elif id(n) in fused_mul:
            mx, ms = fused_mul[id(n)]
            b.bn(mx, out, c, scale=b.flat(ms, c), bias=b.flat(v, c), name=name)
        elif n.op_type == "Mul":
            b.bn(x, out, c, scale=b.flat(v, c), name=name)
        elif n.op_type == "Add":
            b.bn(x, out, c, bias=b.flat(v, c), name=name)
        elif x_first:  # Sub(x, m)
            b.bn(x, out, c, mean=b.flat(v, c), name=name)
        else:  # Sub(b, x) = -x + b
            b.bn(x, out, c, scale=b.const(-1.0, c), bias=b.flat(v, c), name=name)
        changed = True
    if not changed:
        return model
    out_model = onnx.ModelProto()
    out_model.CopyFrom(model)
    del out_model.graph.node[:]
    out_model.graph.node.extend(b.nodes)
    out_model.graph.initializer.extend(b.inits)
    return out_model
