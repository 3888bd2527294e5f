"""ONNX lowering of every ember primitive, keyed by primitive name (``LOWERINGS``).

A rule takes the ``LoweringContext``, the ember ``Node`` and the ONNX names of its
inputs, emits ONNX nodes and returns the name holding the node's output.

ONNX Runtime's CPU kernels do not cover every dtype for every op (no bfloat16
arithmetic, no int16 ``Max``...). ``NATIVE`` lists what it runs; other dtypes are
computed in a wider type and cast back, which is also how numpy evaluates
float16/bfloat16 math, so results agree with the numpy kernels.
"""

from __future__ import annotations

import numpy as np

from ember.ir import types as T
from ember.ir.graph import Node

from .lowering import INT64_MAX, INT64_MIN, LoweringContext, Lowering, OnnxLoweringError

LOWERINGS: dict[str, Lowering] = {}


def lowering(*names: str):
    def deco(fn: Lowering) -> Lowering:
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return deco


F = {T.float16, T.float32, T.float64}
SIGNED = {T.int8, T.int16, T.int32, T.int64}
I_WIDE = {T.int32, T.int64}
ALL_NUM = F | SIGNED | {T.uint8}
# ONNX op -> dtypes ONNX Runtime's CPU provider implements (probed against onnxruntime 1.31)
NATIVE = {
    "Neg": F | SIGNED, "Abs": ALL_NUM, "Relu": F | {T.int8, T.int32, T.int64},
    "Sign": ALL_NUM | {T.bfloat16}, "Erf": {T.float16, T.float32}, "IsInf": {T.float32, T.float64},
    "Add": ALL_NUM, "Sub": ALL_NUM, "Mul": ALL_NUM, "Div": ALL_NUM, "Mod": ALL_NUM,
    "Pow": F | I_WIDE, "Max": F | {T.int8, T.int32, T.int64, T.uint8}, "Min": F | {T.int8, T.int32, T.int64, T.uint8},
    "Equal": ALL_NUM | {T.bool_}, "Less": ALL_NUM, "LessOrEqual": ALL_NUM, "Greater": ALL_NUM,
    "GreaterOrEqual": ALL_NUM, "MatMul": F | I_WIDE,
    "ReduceSum": F | I_WIDE, "ReduceProd": F | I_WIDE,
    "ReduceMax": F | {T.int8, T.int32, T.int64, T.uint8}, "ReduceMin": F | {T.int8, T.int32, T.int64, T.uint8},
    "ArgMax": F | {T.int8, T.int32, T.int64, T.uint8}, "ArgMin": F | {T.int8, T.int32, T.int64, T.uint8},
    "Where": F | {T.int8, T.int32, T.int64, T.uint8}, "Pad": ALL_NUM - {T.int16} | {T.bool_},
    "And": {T.bool_}, "Or": {T.bool_}, "Xor": {T.bool_}, "Not": {T.bool_},
}
FLOAT_ONLY = F  # Exp, Log, Sqrt, trig, Floor...


def compute_dtype(op_type: str, dt: T.DType) -> T.DType:
    """The dtype ``op_type`` runs in for operands of dtype ``dt``."""
    native = NATIVE.get(op_type, FLOAT_ONLY)
    if dt in native:
        return dt
    if dt.is_floating_point:
        return T.float32 if T.float32 in native else T.float64
    if dt is T.bool_:
        return T.uint8 if T.uint8 in native else T.int32
    return T.int32 if T.int32 in native else T.int64


def emit(ctx: LoweringContext, op_type: str, xs: list, dt: T.DType, out_dtype: T.DType | None = None,
         **attrs) -> str:
    """``op_type(*xs)`` computed in a dtype ONNX Runtime implements, cast back to ``out_dtype``."""
    cdt = compute_dtype(op_type, dt)
    if cdt is not dt:
        xs = [ctx.cast(x, cdt) for x in xs]
    y = ctx.op(op_type, *xs, **attrs)
    want = dt if out_dtype is None else out_dtype
    if cdt is not dt and want is dt:
        y = ctx.cast(y, dt)
    return y


# ------------------------------------------------------------------ elementwise
_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos",
          "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf"}  # sign: _sign below


def _unary_rule(op_type):
    def rule(ctx, node, xs):
        return emit(ctx, op_type, xs, node.inputs[0].dtype)
    return rule


for _name, _op in _UNARY.items():
    LOWERINGS[_name] = _unary_rule(_op)


def resolve_outer(ctx: LoweringContext, v) -> tuple:
    """(context, value) that ``v`` stands for: a fused body's input resolves to the enclosing value."""
    while v.producer is None and v.name in ctx.outer:
        ctx, v = ctx.outer[v.name]
    return ctx, v


def producer_of(ctx: LoweringContext, v) -> tuple:
    """(context, node) producing ``v``, looking through fused-body inputs and into fused bodies."""
    ctx, v = resolve_outer(ctx, v)
    p = v.producer
    while p is not None and p.subgraph is not None:  # the body's own output producer
        body_out = p.subgraph.outputs[0]
        if body_out.producer is None:
            return ctx, None
        p = body_out.producer
    return ctx, p


def nonnegative(ctx: LoweringContext, v) -> bool:
    """Whether every element of ``v`` is >= 0 or NaN (the output of a relu)."""
    _, p = producer_of(ctx, v)
    return p is not None and p.op == "relu"


@lowering("sign")
def _sign(ctx, node, xs):
    """Sign of a relu output (the relu VJP's mask) as ``Cast(Cast(x, bool), float)``: 0 for 0 and 1 for
    positive values, like Sign, and ONNX Runtime's Sign kernel is ~3x slower. A NaN output masks to 1, so
    the gradient passes there as in PyTorch's threshold_backward (ember's eager kernel gives NaN; either
    way that step's loss is NaN). Measured on a 512x512 relu backward, 1 thread: Clip+Ceil+Mul 213 us,
    Cast+Cast+Mul 137 us."""
    dt = node.inputs[0].dtype
    if dt.is_floating_point and nonnegative(ctx, node.inputs[0]):
        return ctx.cast(ctx.cast(xs[0], T.bool_), dt)
    return emit(ctx, "Sign", xs, dt)


@lowering("floor", "ceil", "round")
def _rounding(ctx, node, xs):
    dt = node.inputs[0].dtype
    if not dt.is_floating_point:  # integers are already whole
        return ctx.op("Identity", xs[0])
    return emit(ctx, node.op.capitalize(), xs, dt)


@lowering("log1p")
def _log1p(ctx, node, xs):
    dt = node.inputs[0].dtype
    return emit_chain(ctx, dt, lambda x: ctx.op("Log", ctx.op("Add", x, ctx.scalar(1, cdt(dt)))), xs[0])


@lowering("expm1")
def _expm1(ctx, node, xs):
    dt = node.inputs[0].dtype
    return emit_chain(ctx, dt, lambda x: ctx.op("Sub", ctx.op("Exp", x), ctx.scalar(1, cdt(dt))), xs[0])


@lowering("rsqrt")
def _rsqrt(ctx, node, xs):
    dt = node.inputs[0].dtype
    return emit_chain(ctx, dt, lambda x: ctx.op("Reciprocal", ctx.op("Sqrt", x)), xs[0])


def cdt(dt: T.DType) -> T.DType:
    """Float math dtype: float16/bfloat16 are computed in float32 (as numpy does)."""
    return dt if dt in (T.float32, T.float64) else T.float32


def emit_chain(ctx, dt, body, *xs):
    """Run ``body`` in ``cdt(dt)``, casting in and out when ``dt`` is a half type."""
    c = cdt(dt)
    if c is not dt:
        xs = tuple(ctx.cast(x, c) for x in xs)
    y = body(*xs)
    return ctx.cast(y, dt) if c is not dt else y


@lowering("logical_not")
def _not(ctx, node, xs):
    dt = node.inputs[0].dtype
    if dt is not T.bool_:  # logical_not of a number: x == 0
        return emit(ctx, "Equal", [xs[0], ctx.scalar(0, dt)], dt, out_dtype=T.bool_)
    return ctx.op("Not", xs[0])


@lowering("isnan")
def _isnan(ctx, node, xs):
    dt = node.inputs[0].dtype
    if not dt.is_floating_point:
        return _all_false(ctx, node, xs[0])
    return emit(ctx, "IsNaN", xs, dt, out_dtype=T.bool_)


@lowering("isinf")
def _isinf(ctx, node, xs):
    dt = node.inputs[0].dtype
    if not dt.is_floating_point:
        return _all_false(ctx, node, xs[0])
    return emit(ctx, "IsInf", xs, dt, out_dtype=T.bool_)


def _all_false(ctx, node, x):
    return ctx.op("ConstantOfShape", ctx.op("Shape", x), value=_tensor_attr(False, T.bool_))


_BINARY = {"sub": "Sub", "pow": "Pow", "maximum": "Max", "minimum": "Min"}


class _Scalar:
    shape = ()


def elide_broadcasts(ctx: LoweringContext, node: Node, xs: list) -> list:
    """Operands with their explicit ``broadcast_to`` dropped where ONNX broadcasting gives the same shape.

    ember makes broadcasting explicit; ONNX elementwise ops broadcast by themselves. Feeding the
    un-expanded operand saves materializing it, and lets onnxruntime constant-fold and fuse
    (Conv+Mul/Add for folded batch norm, MatMul+Add into Gemm). The Expand is removed as dead
    code when nothing else reads it. A fused body's input is looked through to the enclosing
    graph's value (inlined bodies share one namespace), so a broadcast made outside a fused
    group is elided inside it too.
    """
    return _elide(ctx, node, xs, allow_smaller=False)[0]


def _elide(ctx: LoweringContext, node: Node, xs: list, allow_smaller: bool) -> tuple[list, tuple | None]:
    """(operands, the shape they broadcast to) for ``elide_broadcasts``; with ``allow_smaller`` also when
    that shape is less than the output's (static shapes only), else (xs, None)."""
    from ember.ir.types import ShapeError, broadcast_shapes
    srcs = []
    changed = False
    small = ctx.shared.setdefault("broadcast_results", {})
    for v, x in zip(node.inputs, xs):
        octx, ov = resolve_outer(ctx, v)
        p = ov.producer
        if p is not None and p.op == "broadcast_to" and p.inputs[0].name in octx.names:
            p, v = p.inputs[0].producer, p.inputs[0]
            srcs.append((v, octx.names[v.name]))
            changed = True
        elif x in small:  # the Expand of a result computed small (see small_elementwise)
            srcs.append(small[x])
            changed = True
        else:
            srcs.append((v, x))
        if p is not None and p.op == "full" and not isinstance(p.attrs["value"], str) and v.dtype is not T.bfloat16:
            # a filled tensor feeding a broadcasting op: a scalar constant does the same, no buffer
            srcs[-1] = (_Scalar(), ctx.scalar(p.attrs["value"], v.dtype))
            changed = True
    if not changed:
        return xs, None
    try:
        shape = broadcast_shapes(*[tuple(v.shape) for v, _ in srcs])
    except ShapeError:
        return xs, None
    if shape != tuple(node.output.shape) and not (allow_smaller and all(isinstance(d, int) for d in shape)):
        return xs, None
    return [x for _, x in srcs], shape


class _Small:
    """The shape of a value computed smaller than the IR's and broadcast after (``small_elementwise``)."""

    def __init__(self, shape) -> None:
        self.shape = tuple(shape)


def small_elementwise(ctx: LoweringContext, node: Node, xs: list, op_type: str, dt: T.DType,
                      out_dtype: T.DType | None = None) -> str:
    """``op_type`` on the operands' broadcast sources when those make a smaller result than the output.

    ``add(broadcast(g), broadcast(g))`` (a batch-norm variance's doubled per-channel gradient) then costs
    a [1, C, 1, 1] Add instead of two full-size Expands and a full-size Add. The result is Expanded to the
    IR's shape for readers that need it; elementwise readers take the small value (``elide_broadcasts``)
    and the Expand is dropped as dead code.
    """
    ins, shape = _elide(ctx, node, xs, allow_smaller=True)
    y = emit(ctx, op_type, ins, dt, out_dtype=out_dtype)
    if shape is None or shape == tuple(node.output.shape):
        return y
    full = ctx.op("Expand", y, ctx.shape(node.output.shape))
    ctx.shared["broadcast_results"][full] = (_Small(shape), y)
    return full


_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual"}
_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}


def _binary_rule(op_type, out_bool=False):
    def rule(ctx, node, xs):
        return small_elementwise(ctx, node, xs, op_type, node.inputs[0].dtype, out_dtype=T.bool_ if out_bool else None)
    return rule


for _name, _op in _BINARY.items():
    LOWERINGS[_name] = _binary_rule(_op)
for _name, _op in _COMPARE.items():
    LOWERINGS[_name] = _binary_rule(_op, out_bool=True)
for _name, _op in _LOGICAL.items():
    LOWERINGS[_name] = _binary_rule(_op)


def _static(ctx: LoweringContext, v) -> bool:
    """Whether ``v`` depends only on parameters/buffers and constants (initializers in an export)."""
    cache = ctx.__dict__.setdefault("_static_cache", {})
    if v.name in cache:
        return cache[v.name]
    p = v.producer
    if p is None:
        out = v.name in ctx.param_names
    elif p.op in ("uniform", "normal", "randint"):
        out = False
    else:
        out = all(_static(ctx, x) for x in p.inputs)
    cache[v.name] = out
    return out


@lowering("mul")
def _mul(ctx, node, xs):
    """``(x - m) * s`` with m, s parameter-only (inference batch norm) -> ``x * s + (-(m * s))``.

    onnxruntime folds the constant side and fuses Mul/Add into a preceding Conv or Gemm
    (it has no Sub fusion), so an eval-mode BatchNorm after a conv costs nothing.
    """
    dt = node.inputs[0].dtype
    if ctx.param_names and dt.is_floating_point:
        for i in (0, 1):
            d, s_v = node.inputs[i], node.inputs[1 - i]
            p = d.producer
            if (p is not None and p.op == "sub" and _static(ctx, s_v) and _static(ctx, p.inputs[1])
                    and not _static(ctx, p.inputs[0]) and ctx.users.get(d.name, 0) == 1):
                x_v, m_v = p.inputs
                s_name = elide_broadcasts(ctx, node, xs)[1 - i]
                m_name = ctx.names[m_v.name]
                if m_v.producer is not None and m_v.producer.op == "broadcast_to":
                    m_name = ctx.names[m_v.producer.inputs[0].name]
                scaled = emit(ctx, "Mul", [ctx.names[x_v.name], s_name], dt)  # x has the output's shape
                shift = emit(ctx, "Neg", [emit(ctx, "Mul", [m_name, s_name], dt)], dt)
                return emit(ctx, "Add", [scaled, shift], dt)
    return small_elementwise(ctx, node, xs, "Mul", dt)


def _gemm_operands(ctx, node):
    """(A, B, attrs) for lowering a 2-D float matmul as Gemm, folding transposes into transA/transB."""
    a, b = node.inputs
    if a.type.ndim != 2 or a.dtype not in (T.float32, T.float64):
        return None
    ins, attrs = [ctx.names[a.name], ctx.names[b.name]], {}
    for i, (v, key) in enumerate(((a, "transA"), (b, "transB"))):
        p = v.producer
        if p is not None and p.op == "permute" and tuple(p.attrs["dims"]) == (1, 0):
            ins[i] = ctx.names[p.inputs[0].name]
            attrs[key] = 1
    return ins, attrs


@lowering("matmul")
def _matmul(ctx, node, xs):
    """MatMul; a 2-D product with a transposed operand becomes Gemm(transA/transB) (no Transpose)."""
    g = _gemm_operands(ctx, node)
    if g is not None and g[1]:
        return ctx.op("Gemm", *g[0], **g[1])
    return emit(ctx, "MatMul", xs, node.inputs[0].dtype)


@lowering("add")
def _add(ctx, node, xs):
    """``matmul(a, b) + bias`` (bias broadcast along rows) -> one Gemm with C, which onnxruntime fuses
    further with a following Relu."""
    for i in (0, 1):
        mm, bias = node.inputs[i], node.inputs[1 - i]
        p = mm.producer
        if p is None or p.op != "matmul" or ctx.users.get(mm.name, 0) != 1:
            continue
        g = _gemm_operands(ctx, p)
        bp = bias.producer
        if g is None or bp is None or bp.op != "broadcast_to":
            continue
        src = bp.inputs[0]
        if len(src.shape) in (1, 2) and src.shape[-1] == mm.shape[-1] and (len(src.shape) == 1 or src.shape[0] == 1):
            return ctx.op("Gemm", *g[0], ctx.names[src.name], **g[1])
    conv = _conv_with_bias(ctx, node)
    if conv is not None:
        return conv
    return small_elementwise(ctx, node, xs, "Add", node.inputs[0].dtype)


def _conv_with_bias(ctx, node) -> str | None:
    """``conv2d(x, w) + broadcast(b)`` (nn.Conv2d's bias, per output channel) -> one Conv with its B input.

    The conv, already emitted, is left dead when nothing else reads it. In an export the model matches
    PyTorch's (Conv with bias); in a training step it saves a full-size pass."""
    from .ops_nn import conv2d_with_bias
    if node.output.type.ndim != 4:
        return None
    for i in (0, 1):
        (yctx, y), (bctx, bias) = resolve_outer(ctx, node.inputs[i]), resolve_outer(ctx, node.inputs[1 - i])
        p, bp = y.producer, bias.producer
        if (p is None or p.op != "conv2d" or p.subgraph is not None or yctx.users.get(y.name, 0) != 1
                or bp is None or bp.op != "broadcast_to" or y.type != node.output.type):
            continue
        src = bp.inputs[0]
        c = y.shape[1]
        rp = src.producer
        if rp is not None and rp.op == "reshape" and tuple(rp.inputs[0].shape) == (c,):
            src = rp.inputs[0]  # nn.Conv2d's bias.reshape(1, C, 1, 1): Conv takes the [C] parameter itself
        if (src.dtype is y.dtype and isinstance(c, int) and tuple(src.shape) in ((c,), (1, c, 1, 1), (c, 1, 1))
                and src.name in bctx.names):
            b = bctx.names[src.name]
            if len(src.shape) != 1:
                b = ctx.op("Reshape", b, ctx.i64([c]))
            return conv2d_with_bias(ctx, p, yctx.names[p.inputs[0].name], yctx.names[p.inputs[1].name], b)
    return None


@lowering("ne")
def _ne(ctx, node, xs):
    xs = elide_broadcasts(ctx, node, xs)
    return ctx.op("Not", emit(ctx, "Equal", xs, node.inputs[0].dtype, out_dtype=T.bool_))


@lowering("div")
def _div(ctx, node, xs):
    dt = node.inputs[0].dtype
    if dt.is_floating_point:
        return small_elementwise(ctx, node, xs, "Div", dt)
    # numpy's true_divide of integers is float64; the type rule keeps the operand dtype,
    # so match the kernel: divide in float64 and cast back (truncates toward zero)
    a, b = (ctx.cast(x, T.float64) for x in xs)
    return ctx.cast(ctx.op("Div", a, b), dt)


@lowering("remainder")
def _remainder(ctx, node, xs):
    dt = node.inputs[0].dtype
    if not dt.is_floating_point:
        return emit(ctx, "Mod", xs, dt, fmod=0)  # integer Mod is Python-style: sign of the divisor
    c = cdt(dt)

    def body(a, b):
        # float: r = fmod(a, b); add b where r is nonzero and its sign differs from b's
        r = ctx.op("Mod", a, b, fmod=1)
        zero = ctx.scalar(0, c)
        fix = ctx.op("And", ctx.op("Not", ctx.op("Equal", r, zero)),
                     ctx.op("Xor", ctx.op("Less", r, zero), ctx.op("Less", b, zero)))
        return ctx.op("Where", fix, ctx.op("Add", r, b), r)
    return emit_chain(ctx, dt, body, *xs)


@lowering("floor_divide")
def _floor_divide(ctx, node, xs):
    dt = node.inputs[0].dtype
    if dt.is_floating_point:
        return emit_chain(ctx, dt, lambda a, b: ctx.op("Floor", ctx.op("Div", a, b)), *xs)
    # exact for integers: (a - mod(a, b)) / b with Python-style mod
    c = compute_dtype("Mod", dt)
    a, b = (ctx.cast(x, c) if c is not dt else x for x in xs)
    q = ctx.op("Div", ctx.op("Sub", a, ctx.op("Mod", a, b, fmod=0)), b)
    return ctx.cast(q, dt) if c is not dt else q


@lowering("where")
def _where(ctx, node, xs):
    xs = elide_broadcasts(ctx, node, xs)
    dt = node.inputs[1].dtype
    c = compute_dtype("Where", dt)
    if c is dt:
        return ctx.op("Where", *xs)
    y = ctx.op("Where", xs[0], ctx.cast(xs[1], c), ctx.cast(xs[2], c))
    return ctx.cast(y, dt)


@lowering("cast")
def _cast(ctx, node, xs):
    src, dst = node.inputs[0].dtype, node.attrs["dtype"]
    if src is dst:
        return ctx.op("Identity", xs[0])
    if dst is T.bool_ and src.is_floating_point:
        # numpy: nonzero (incl. NaN) is True; ONNX Cast agrees, but be explicit
        return ctx.op("Not", emit(ctx, "Equal", [xs[0], ctx.scalar(0, src)], src, out_dtype=T.bool_))
    return ctx.cast(xs[0], dst)


# ------------------------------------------------------------------ creation
def _tensor_attr(value, dtype: T.DType):
    from .lowering import numpy_to_tensor
    return numpy_to_tensor(np.asarray([value], dtype=dtype.np), "value")


@lowering("constant")
def _constant(ctx, node, xs):
    return ctx.const(node.attrs["value"], hint=node.output.name)


@lowering("full")
def _full(ctx, node, xs):
    shape, value, dtype = node.attrs["shape"], node.attrs["value"], node.attrs["dtype"]
    if isinstance(value, str):  # the run-time size of a symbolic dimension
        v = ctx.cast(ctx.op("Reshape", ctx.dim(value), ctx.i64([])), dtype)
        return ctx.op("Expand", v, ctx.shape(shape))
    static = all(isinstance(d, int) for d in shape)
    if static and int(np.prod(shape, dtype=np.int64)) <= 16:
        return ctx.const(np.full(shape, value, dtype=dtype.np), hint=node.output.name)
    if dtype is T.bfloat16:  # ConstantOfShape has no bfloat16 kernel in onnxruntime
        return ctx.cast(ctx.op("ConstantOfShape", ctx.shape(shape), value=_tensor_attr(value, T.float32)), dtype)
    return ctx.op("ConstantOfShape", ctx.shape(shape), value=_tensor_attr(value, dtype))


def _random(ctx, node, onnx_op, **params):
    shape, dtype = node.attrs["shape"], node.attrs["dtype"]
    rdt = dtype if dtype in (T.float16, T.float32, T.float64) else T.float32
    from .lowering import ONNX_DTYPE
    if all(isinstance(d, int) for d in shape):
        y = ctx.op(onnx_op, dtype=ONNX_DTYPE[rdt], shape=list(shape), **params)
    else:
        like = ctx.op("ConstantOfShape", ctx.shape(shape), value=_tensor_attr(0, rdt))
        y = ctx.op(onnx_op + "Like", like, dtype=ONNX_DTYPE[rdt], **params)
    return y, rdt


@lowering("uniform")
def _uniform(ctx, node, xs):
    y, rdt = _random(ctx, node, "RandomUniform", low=float(node.attrs["low"]), high=float(node.attrs["high"]))
    return ctx.cast(y, node.attrs["dtype"]) if rdt is not node.attrs["dtype"] else y


@lowering("normal")
def _normal(ctx, node, xs):
    y, rdt = _random(ctx, node, "RandomNormal", mean=float(node.attrs["mean"]), scale=float(node.attrs["std"]))
    return ctx.cast(y, node.attrs["dtype"]) if rdt is not node.attrs["dtype"] else y


@lowering("randint")
def _randint(ctx, node, xs):
    lo, hi = int(node.attrs["low"]), int(node.attrs["high"])
    y, rdt = _random(ctx, node, "RandomUniform", low=0.0, high=1.0)
    y = ctx.cast(y, T.float64)
    # floor(low + u * (high - low)), clamped below high against u rounding up to 1.0
    z = ctx.op("Floor", ctx.op("Add", ctx.op("Mul", y, ctx.scalar(hi - lo, T.float64)), ctx.scalar(lo, T.float64)))
    z = ctx.op("Min", z, ctx.scalar(hi - 1, T.float64))
    return ctx.cast(z, node.attrs["dtype"])


# ------------------------------------------------------------------ reductions
_REDUCE = {"sum": "ReduceSum", "prod": "ReduceProd", "amax": "ReduceMax", "amin": "ReduceMin"}


@lowering(*_REDUCE)
def _reduce(ctx, node, xs):
    op_type = _REDUCE[node.op]
    dims, keepdim = tuple(node.attrs["dims"]), bool(node.attrs["keepdim"])
    x, dt = xs[0], node.inputs[0].dtype
    if not dims or node.inputs[0].type.ndim == 0:
        return ctx.op("Identity", x)
    if dt is T.bool_ and op_type in ("ReduceMax", "ReduceMin"):
        c = T.uint8
    else:
        c = compute_dtype(op_type, dt)
    if c is not dt:
        x = ctx.cast(x, c)
    if op_type == "ReduceSum" and c is T.float32:
        y = _sum_leading_as_gemm(ctx, node, x)
        if y is not None:
            return ctx.cast(y, dt) if c is not dt else y
    square = _squared_operand(ctx, node) if op_type == "ReduceSum" and c is dt else None
    if square is not None:  # sum(x * x): one pass, no x*x buffer
        op_type, x = "ReduceSumSquare", square
    if op_type == "ReduceSum" or ctx.opset >= 18:
        y = ctx.op(op_type, x, ctx.i64(list(dims)), keepdims=int(keepdim))
    else:
        y = ctx.op(op_type, x, axes=list(dims), keepdims=int(keepdim))
    return ctx.cast(y, dt) if c is not dt else y


def _sum_leading_as_gemm(ctx, node, x: str) -> str | None:
    """A float32 sum over the leading axes (and possibly others) as ``ones[1, R] @ x[R, rest]``, the
    remaining axes by ReduceSum; None when the leading axis is not reduced (or several leading axes are and
    one is symbolic).

    ONNX Runtime's ReduceSum over a leading axis splits the reduced axis across threads badly: a Linear
    bias gradient (512x512, axis 0) takes 290 us at 2 threads and 40 us at 1, the Gemm 70 and 33 us.
    Batch-norm statistics (axes 0, 2, 3 of 64x32x8x8) go from 71 to 58 us at 2 threads.
    """
    shape = node.inputs[0].shape
    dims = sorted(d % len(shape) for d in node.attrs["dims"])
    k = 0
    while k < len(dims) and dims[k] == k:
        k += 1
    if k == 0 or k == len(shape):
        return None
    if all(isinstance(d, int) for d in shape[:k]):
        rows = int(np.prod(shape[:k]))
        if rows < 2:
            return None
        ones = ctx.const(np.ones((1, rows), np.float32), hint="ones")
    elif k == 1:  # a symbolic batch: the row of ones made at run time
        from .lowering import numpy_to_tensor
        ones = ctx.op("ConstantOfShape", ctx.op("Concat", ctx.i64([1]), ctx.dim(shape[0]), axis=0),
                      value=numpy_to_tensor(np.ones(1, np.float32), "value"))
    else:
        return None
    rest = list(shape[k:])
    y = ctx.op("Gemm", ones, ctx.op("Flatten", x, axis=k))
    y = ctx.op("Reshape", y, ctx.shape(rest))  # [rest...]
    others = [d - k for d in dims[k:]]
    if others:
        y = ctx.op("ReduceSum", y, ctx.i64(others), keepdims=0)
    return ctx.op("Reshape", y, ctx.shape(list(node.output.shape)))


def _squared_operand(ctx, node) -> str | None:
    """The ONNX name of x when a float sum reads ``mul(x, x)`` and nothing else reads the product."""
    v = node.inputs[0]
    p = v.producer
    if (p is None or p.op != "mul" or p.inputs[0] is not p.inputs[1] or ctx.users.get(v.name, 0) != 1
            or v.dtype not in (T.float32, T.float64) or v.name in {o.name for o in ctx.graph.outputs}):
        return None
    return ctx.names.get(p.inputs[0].name)


@lowering("argmax", "argmin")
def _arg(ctx, node, xs):
    x = node.inputs[0]
    if x.type.ndim == 0:
        return ctx.const(np.zeros((), np.int64), hint=node.output.name)
    op_type = "ArgMax" if node.op == "argmax" else "ArgMin"
    return emit(ctx, op_type, xs, x.dtype, out_dtype=T.int64, axis=int(node.attrs["dim"]),
                keepdims=int(node.attrs["keepdim"]))


# ------------------------------------------------------------------ movement
@lowering("reshape")
def _reshape(ctx, node, xs):
    shape = tuple(node.attrs["shape"])
    if tuple(node.inputs[0].shape) == shape:
        return ctx.op("Identity", xs[0])
    src = tuple(node.inputs[0].shape)
    if (len(shape) == 2 and len(src) > 2 and shape[0] == src[0] and all(isinstance(d, int) for d in src[1:])
            and shape[1] == int(np.prod(src[1:]))):
        return ctx.op("Flatten", xs[0], axis=1)  # nn.Flatten: no Shape/Concat for a symbolic batch
    # allowzero=1: a literal 0 means a zero-size dim, not "copy the input's dim"
    attrs = {}
    if any(isinstance(d, int) and d == 0 for d in shape):
        ctx.require(14, "Reshape of a zero-size dimension (allowzero)")
        attrs["allowzero"] = 1
    return ctx.op("Reshape", xs[0], ctx.shape(shape), **attrs)


@lowering("permute")
def _permute(ctx, node, xs):
    """Transpose; the transpose of a 2-D product is the product of transposes: one Gemm, no Transpose."""
    dims = [int(d) for d in node.attrs["dims"]]
    src = node.inputs[0]
    p = src.producer
    if dims == [1, 0] and p is not None and p.op == "matmul" and ctx.users.get(src.name, 0) == 1:
        from .ops import _gemm_operands
        g = _gemm_operands(ctx, p)
        if g is not None:
            (a, b), attrs = g
            # (op(A) @ op(B))^T = op(B)^T @ op(A)^T
            return ctx.op("Gemm", b, a, transA=1 - attrs.get("transB", 0), transB=1 - attrs.get("transA", 0))
    return ctx.op("Transpose", xs[0], perm=dims)


@lowering("broadcast_to")
def _broadcast_to(ctx, node, xs):
    shape = tuple(node.attrs["shape"])
    if tuple(node.inputs[0].shape) == shape:
        return ctx.op("Identity", xs[0])
    return ctx.op("Expand", xs[0], ctx.shape(shape))


@lowering("slice")
def _slice(ctx, node, xs):
    shape = node.inputs[0].shape
    axes, starts, ends, steps = [], [], [], []
    for axis, (dim, a, b, s) in enumerate(zip(shape, node.attrs["starts"], node.attrs["stops"], node.attrs["steps"])):
        if a == 0 and s == 1 and b == dim:
            continue
        axes.append(axis)
        starts.append(int(a))
        ends.append(int(b) if isinstance(b, int) else INT64_MAX)
        steps.append(int(s))
    if not axes:
        return ctx.op("Identity", xs[0])
    return ctx.op("Slice", xs[0], ctx.i64(starts), ctx.i64(ends), ctx.i64(axes), ctx.i64(steps))


@lowering("flip")
def _flip(ctx, node, xs):
    dims = [int(d) for d in node.attrs["dims"]]
    if not dims:
        return ctx.op("Identity", xs[0])
    n = len(dims)
    return ctx.op("Slice", xs[0], ctx.i64([-1] * n), ctx.i64([INT64_MIN] * n), ctx.i64(dims), ctx.i64([-1] * n))


@lowering("concat")
def _concat(ctx, node, xs):
    return ctx.op("Concat", *xs, axis=int(node.attrs["dim"]))


@lowering("pad")
def _pad(ctx, node, xs):
    pads = node.attrs["pads"]
    dt = node.inputs[0].dtype
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return ctx.op("Identity", xs[0])
    c = compute_dtype("Pad", dt)
    x = ctx.cast(xs[0], c) if c is not dt else xs[0]
    onnx_pads = ctx.i64([int(lo) for lo, _ in pads] + [int(hi) for _, hi in pads])
    y = ctx.op("Pad", x, onnx_pads, ctx.scalar(node.attrs["value"], c), mode="constant")
    return ctx.cast(y, dt) if c is not dt else y


# ------------------------------------------------------------------ indexing
@lowering("take")
def _take(ctx, node, xs):
    return ctx.op("Gather", xs[0], xs[1], axis=int(node.attrs["dim"]))


@lowering("gather")
def _gather(ctx, node, xs):
    return ctx.op("GatherElements", xs[0], xs[1], axis=int(node.attrs["dim"]))


@lowering("scatter_add")
def _scatter_add(ctx, node, xs):
    ctx.require(16, "ScatterElements with reduction='add' (scatter_add)")
    dt = node.inputs[0].dtype
    c = compute_dtype("Add", dt)
    x, idx, src = xs
    if c is not dt:
        x, src = ctx.cast(x, c), ctx.cast(src, c)
    y = ctx.op("ScatterElements", x, idx, src, axis=int(node.attrs["dim"]), reduction="add")
    return ctx.cast(y, dt) if c is not dt else y


@lowering("index_add")
def _index_add(ctx, node, xs):
    """``x`` with ``src`` added at ``take(x, idx, dim)``'s positions, as ScatterND(add).

    Move ``dim`` of x to the front and the index dims of src to the front, so that
    ScatterND's updates are ``idx.shape + rest``; then move the axis back.
    """
    ctx.require(16, "ScatterND with reduction='add' (index_add)")
    dim = int(node.attrs["dim"])
    x_t, idx_t = node.inputs[0].type, node.inputs[1].type
    r, k = x_t.ndim, idx_t.ndim
    dt = x_t.dtype
    c = compute_dtype("Add", dt)
    x, idx, src = xs
    if c is not dt:
        x, src = ctx.cast(x, c), ctx.cast(src, c)
    x_perm = [dim] + [i for i in range(r) if i != dim]
    src_perm = list(range(dim, dim + k)) + list(range(dim)) + list(range(dim + k, r - 1 + k))
    if x_perm != list(range(r)):
        x = ctx.op("Transpose", x, perm=x_perm)
    if src_perm != list(range(len(src_perm))):
        src = ctx.op("Transpose", src, perm=src_perm)
    if idx_t.dtype is not T.int64:
        idx = ctx.cast(idx, T.int64)
    idx = ctx.op("Unsqueeze", idx, ctx.i64([-1]))
    y = ctx.op("ScatterND", x, idx, src, reduction="add")
    if x_perm != list(range(r)):
        inverse = sorted(range(r), key=lambda i: x_perm[i])
        y = ctx.op("Transpose", y, perm=inverse)
    return ctx.cast(y, dt) if c is not dt else y


def check_complete(names) -> list[str]:
    """The primitives among ``names`` that have no ONNX lowering."""
    return sorted(n for n in names if n not in LOWERINGS)


__all__ = ["LOWERINGS", "lowering", "emit", "emit_chain", "compute_dtype", "OnnxLoweringError", "Node"]
