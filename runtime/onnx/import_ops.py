"""Converters from ONNX operators to compositions of ember primitives.

A converter reads its node through the ``ImportContext`` (``ctx.value(name)`` for
a run-time operand, ``ctx.const(name, what)`` for an import-time one such as a
shape, ``ctx.attr(...)``) and returns one entry per node output: an ember
``Value`` (built under the active ``GraphBuilder``) or a numpy array when the
result is known at import time (shape arithmetic).
"""

from __future__ import annotations

import numpy as np
import onnx

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .importer import CONVERTERS, MAX_ELEMENTS, OnnxImportError, converter, onnx_dtype

# ------------------------------------------------------------------ helpers


def _axis(a: int, rank: int, ctx) -> int:
    a = int(a)
    if rank == 0:
        raise OnnxImportError(ctx.where(f"axis {a} given for a 0-d tensor"))
    if not -rank <= a < rank:
        raise OnnxImportError(ctx.where(f"axis {a} is out of range for rank {rank}"))
    return a + rank if a < 0 else a


def _full(value, dtype: T.DType, shape) -> Value:
    return P.full(shape=tuple(shape), value=value, dtype=dtype)


def _scalar_like(x: Value, value) -> Value:
    return P.full(shape=tuple(x.shape), value=value, dtype=x.dtype)


def bcast(ctx, *vals: Value) -> list[Value]:
    """ONNX (numpy) multidirectional broadcasting made explicit."""
    try:
        shape = T.broadcast_shapes(*[tuple(v.shape) for v in vals])
    except T.ShapeError as exc:
        raise OnnxImportError(ctx.where(str(exc))) from None
    out = []
    for v in vals:
        if tuple(v.shape) != shape:
            if len(v.shape) < len(shape):
                v = P.reshape(v, shape=(1,) * (len(shape) - len(v.shape)) + tuple(v.shape))
            v = P.broadcast_to(v, shape=shape)
        out.append(v)
    return out


def _same_dtype(ctx, a: Value, b: Value) -> None:
    if a.dtype is not b.dtype:
        raise OnnxImportError(ctx.where(f"operand dtypes differ: {a.dtype.name} and {b.dtype.name}"))


def _ins(ctx) -> list[Value]:
    return [ctx.value(x) for x in ctx.node.input if x]


def _ints(ctx, name: str, what: str) -> list:
    arr = ctx.const(name, what)
    if arr.dtype != object and arr.dtype.kind not in "iu":
        raise OnnxImportError(ctx.where(f"{what} must be integers, got {arr.dtype}"))
    return [int(v) if isinstance(v, (int, np.integer)) else v for v in np.asarray(arr).ravel().tolist()]


def _opt(ctx, i: int) -> str:
    ins = list(ctx.node.input)
    return ins[i] if i < len(ins) and ins[i] else ""


def _numel(shape) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def _check_size(ctx, shape) -> None:
    n = _numel(shape)
    if any(isinstance(d, int) and d < 0 for d in shape):
        raise OnnxImportError(ctx.where(f"negative dimension in shape {list(shape)}"))
    if n is not None and n > MAX_ELEMENTS:
        raise OnnxImportError(ctx.where(f"shape {list(shape)} has {n} elements (limit {MAX_ELEMENTS})"))


# ------------------------------------------------------------------ elementwise
_UNARY = {"Neg": P.neg, "Abs": P.abs_, "Exp": P.exp, "Log": P.log, "Sqrt": P.sqrt, "Sin": P.sin, "Cos": P.cos,
          "Tanh": P.tanh, "Sigmoid": P.sigmoid, "Relu": P.relu, "Erf": P.erf, "Sign": P.sign, "Floor": P.floor,
          "Ceil": P.ceil, "Round": P.round_, "Not": P.logical_not, "IsNaN": P.isnan, "Identity": None}


def _unary(op_type):
    prim = _UNARY[op_type]

    def conv(ctx, node):
        (x,) = _ins(ctx)
        return [x if prim is None else prim(x)]
    return conv


for _op in _UNARY:
    converter(_op)(_unary(_op))


@converter("IsInf")
def _isinf(ctx, node):
    (x,) = _ins(ctx)
    pos, neg = int(ctx.attr("detect_positive", 1)), int(ctx.attr("detect_negative", 1))
    inf = P.isinf(x)
    if pos and neg:
        return [inf]
    zero = _scalar_like(x, 0)
    if pos:
        return [P.logical_and(inf, P.gt(x, zero))]
    if neg:
        return [P.logical_and(inf, P.lt(x, zero))]
    return [P.logical_and(inf, P.logical_not(inf))]


@converter("Reciprocal")
def _reciprocal(ctx, node):
    (x,) = _ins(ctx)
    return [P.div(_scalar_like(x, 1), x)]


@converter("Tan")
def _tan(ctx, node):
    (x,) = _ins(ctx)
    return [P.div(P.sin(x), P.cos(x))]


_BINARY = {"Add": P.add, "Sub": P.sub, "Mul": P.mul, "Equal": P.eq, "Less": P.lt, "LessOrEqual": P.le,
           "Greater": P.gt, "GreaterOrEqual": P.ge, "And": P.logical_and, "Or": P.logical_or,
           "Xor": P.logical_xor}


def _binary(op_type):
    prim = _BINARY[op_type]

    def conv(ctx, node):
        a, b = _ins(ctx)
        _same_dtype(ctx, a, b)
        a, b = bcast(ctx, a, b)
        return [prim(a, b)]
    return conv


for _op in _BINARY:
    converter(_op)(_binary(_op))


@converter("Div")
def _div(ctx, node):
    a, b = _ins(ctx)
    _same_dtype(ctx, a, b)
    a, b = bcast(ctx, a, b)
    if a.dtype.is_floating_point:
        return [P.div(a, b)]
    # integer division truncates toward zero: floor division, plus one where the signs differ and
    # the division is inexact
    q = P.floor_divide(a, b)
    zero = _scalar_like(a, 0)
    inexact = P.ne(P.mul(q, b), a)
    signs = P.logical_xor(P.lt(a, zero), P.lt(b, zero))
    return [P.where(P.logical_and(inexact, signs), P.add(q, _scalar_like(q, 1)), q)]


@converter("Mod")
def _mod(ctx, node):
    a, b = _ins(ctx)
    _same_dtype(ctx, a, b)
    a, b = bcast(ctx, a, b)
    if int(ctx.attr("fmod", 0)) == 0:
        return [P.remainder(a, b)]  # Python-style: the sign of the divisor
    # fmod: sign of the dividend = remainder, minus b where the signs of r and a differ (r != 0)
    r = P.remainder(a, b)
    zero = _scalar_like(a, 0)
    fix = P.logical_and(P.ne(r, zero), P.logical_xor(P.lt(r, zero), P.lt(a, zero)))
    return [P.where(fix, P.sub(r, b), r)]


@converter("Pow")
def _pow(ctx, node):
    a, b = _ins(ctx)
    if b.dtype is not a.dtype:
        b = P.cast(b, dtype=a.dtype)
    a, b = bcast(ctx, a, b)
    return [P.pow_(a, b)]


def _variadic(prim):
    def conv(ctx, node):
        xs = _ins(ctx)
        if not xs:
            raise OnnxImportError(ctx.where("needs at least one input"))
        for x in xs[1:]:
            _same_dtype(ctx, xs[0], x)
        xs = bcast(ctx, *xs)
        acc = xs[0]
        for x in xs[1:]:
            acc = prim(acc, x)
        return [acc]
    return conv


converter("Max")(_variadic(P.maximum))
converter("Min")(_variadic(P.minimum))
converter("Sum")(_variadic(P.add))


@converter("Mean")
def _mean(ctx, node):
    (acc,) = _variadic(P.add)(ctx, node)
    return [P.div(acc, _scalar_like(acc, len([x for x in node.input if x])))]


@converter("Where")
def _where(ctx, node):
    c, a, b = _ins(ctx)
    _same_dtype(ctx, a, b)
    c, a, b = bcast(ctx, c, a, b)
    return [P.where(c, a, b)]


@converter("Cast")
def _cast(ctx, node):
    to = onnx_dtype(int(ctx.attr("to")), ctx.where("Cast 'to'"))
    name = node.input[0]
    if name in ctx.known and ctx.known[name].dtype == object and to in (T.int64, T.int32):
        return [ctx.known[name]]
    (x,) = _ins(ctx)
    return [x if x.dtype is to else P.cast(x, dtype=to)]


@converter("CastLike")
def _cast_like(ctx, node):
    name = node.input[0]
    if name in ctx.known and ctx.known[name].dtype != object and not ctx._folding:
        # only the dtype of ``like`` matters: a known input stays known (e.g. a -inf fill value)
        like_dt = ctx.known[node.input[1]].dtype if node.input[1] in ctx.known else ctx.value(node.input[1]).dtype.np
        return [np.asarray(ctx.known[name]).astype(like_dt)]
    x, like = _ins(ctx)
    return [x if x.dtype is like.dtype else P.cast(x, dtype=like.dtype)]


@converter("Clip")
def _clip(ctx, node):
    x = ctx.value(node.input[0])
    lo, hi = _opt(ctx, 1), _opt(ctx, 2)
    if ctx.opset < 11:
        lo_v, hi_v = ctx.attr("min"), ctx.attr("max")
        if lo_v is not None:
            x = P.maximum(x, _scalar_like(x, lo_v))
        if hi_v is not None:
            x = P.minimum(x, _scalar_like(x, hi_v))
        return [x]
    if lo:
        x = P.maximum(*bcast(ctx, x, ctx.value(lo)))
    if hi:
        x = P.minimum(*bcast(ctx, x, ctx.value(hi)))
    return [x]


# ------------------------------------------------------------------ activations (compositions)
@converter("LeakyRelu")
def _leaky(ctx, node):
    (x,) = _ins(ctx)
    alpha = float(ctx.attr("alpha", 0.01))
    return [P.where(P.ge(x, _scalar_like(x, 0)), x, P.mul(x, _scalar_like(x, alpha)))]


@converter("Elu")
def _elu(ctx, node):
    (x,) = _ins(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    return [P.where(P.gt(x, _scalar_like(x, 0)), x, P.mul(_scalar_like(x, alpha), P.expm1(x)))]


@converter("Selu")
def _selu(ctx, node):
    (x,) = _ins(ctx)
    alpha = float(ctx.attr("alpha", 1.67326319217681884765625))
    gamma = float(ctx.attr("gamma", 1.05070102214813232421875))
    neg = P.sub(P.mul(_scalar_like(x, alpha), P.exp(x)), _scalar_like(x, alpha))
    return [P.mul(_scalar_like(x, gamma), P.where(P.gt(x, _scalar_like(x, 0)), x, neg))]


@converter("Celu")
def _celu(ctx, node):
    (x,) = _ins(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    neg = P.mul(_scalar_like(x, alpha), P.expm1(P.div(x, _scalar_like(x, alpha))))
    return [P.add(P.relu(x), P.minimum(_scalar_like(x, 0), neg))]


@converter("ThresholdedRelu")
def _thresholded(ctx, node):
    (x,) = _ins(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    return [P.where(P.gt(x, _scalar_like(x, alpha)), x, _scalar_like(x, 0))]


@converter("Softplus")
def _softplus(ctx, node):
    (x,) = _ins(ctx)
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), stable for large |x|
    return [P.add(P.relu(x), P.log1p(P.exp(P.neg(P.abs_(x)))))]


@converter("Softsign")
def _softsign(ctx, node):
    (x,) = _ins(ctx)
    return [P.div(x, P.add(_scalar_like(x, 1), P.abs_(x)))]


@converter("HardSigmoid")
def _hard_sigmoid(ctx, node):
    (x,) = _ins(ctx)
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    y = P.add(P.mul(x, _scalar_like(x, alpha)), _scalar_like(x, beta))
    return [P.minimum(P.maximum(y, _scalar_like(x, 0)), _scalar_like(x, 1))]


@converter("HardSwish")
def _hard_swish(ctx, node):
    (x,) = _ins(ctx)
    y = P.add(P.mul(x, _scalar_like(x, 1 / 6)), _scalar_like(x, 0.5))
    return [P.mul(x, P.minimum(P.maximum(y, _scalar_like(x, 0)), _scalar_like(x, 1)))]


@converter("PRelu")
def _prelu(ctx, node):
    x, slope = _ins(ctx)
    _same_dtype(ctx, x, slope)
    x, slope = bcast(ctx, x, slope)
    return [P.where(P.lt(x, _scalar_like(x, 0)), P.mul(x, slope), x)]


@converter("Gelu")
def _gelu(ctx, node):
    (x,) = _ins(ctx)
    if ctx.attr("approximate", "none") == "tanh":
        inner = P.mul(_scalar_like(x, np.sqrt(2 / np.pi)),
                      P.add(x, P.mul(_scalar_like(x, 0.044715), P.mul(x, P.mul(x, x)))))
        return [P.mul(P.mul(_scalar_like(x, 0.5), x), P.add(_scalar_like(x, 1), P.tanh(inner)))]
    return [P.mul(P.mul(_scalar_like(x, 0.5), x),
                  P.add(_scalar_like(x, 1), P.erf(P.mul(x, _scalar_like(x, 1 / np.sqrt(2))))))]


def _softmax_axis(ctx, x):
    default = -1 if ctx.opset >= 13 else 1
    return _axis(ctx.attr("axis", default), x.type.ndim, ctx)


def _flatten_for_legacy(ctx, x, axis):
    """opset < 13 Softmax works on the input flattened to 2-D at ``axis``."""
    shape = tuple(x.shape)
    lead, tail = _numel(shape[:axis]), _numel(shape[axis:])
    if lead is None or tail is None:
        raise OnnxImportError(ctx.where("legacy (opset < 13) softmax needs static shapes"))
    return P.reshape(x, shape=(lead, tail)), shape


def _log_softmax_last(x, axis):
    m = P.amax(x, dims=(axis,), keepdim=True)
    z = P.sub(x, P.broadcast_to(m, shape=tuple(x.shape)))
    lse = P.log(P.sum_(P.exp(z), dims=(axis,), keepdim=True))
    return P.sub(z, P.broadcast_to(lse, shape=tuple(x.shape)))


def _softmax_at(x, axis):
    m = P.amax(x, dims=(axis,), keepdim=True)
    e = P.exp(P.sub(x, P.broadcast_to(m, shape=tuple(x.shape))))
    s = P.sum_(e, dims=(axis,), keepdim=True)
    return P.div(e, P.broadcast_to(s, shape=tuple(x.shape)))


def _softmax_family(fn):
    def conv(ctx, node):
        (x,) = _ins(ctx)
        axis = _softmax_axis(ctx, x)
        if ctx.opset >= 13:
            return [fn(x, axis)]
        x2, shape = _flatten_for_legacy(ctx, x, axis)
        return [P.reshape(fn(x2, 1), shape=shape)]
    return conv


converter("Softmax")(_softmax_family(_softmax_at))
converter("LogSoftmax")(_softmax_family(_log_softmax_last))


@converter("Hardmax")
def _hardmax(ctx, node):
    (x,) = _ins(ctx)
    axis = _softmax_axis(ctx, x)
    if ctx.opset < 13:
        x, shape = _flatten_for_legacy(ctx, x, axis)
        axis = 1
    else:
        shape = tuple(x.shape)
    idx = P.argmax(x, dim=axis, keepdim=True)
    n = x.shape[axis]
    rng = P.constant(value=np.arange(n, dtype=np.int64).reshape([n if i == axis else 1
                                                                   for i in range(x.type.ndim)]))
    hit = P.eq(*bcast(ctx, idx, rng))
    out = P.cast(hit, dtype=x.dtype)
    return [P.reshape(out, shape=shape) if tuple(out.shape) != shape else out]


# ------------------------------------------------------------------ linear algebra
def _matmul(ctx, a: Value, b: Value) -> Value:
    _same_dtype(ctx, a, b)
    squeeze_a = squeeze_b = False
    if a.type.ndim == 1:
        a, squeeze_a = P.reshape(a, shape=(1, a.shape[0])), True
    if b.type.ndim == 1:
        b, squeeze_b = P.reshape(b, shape=(b.shape[0], 1)), True
    batch = T.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if tuple(a.shape[:-2]) != batch:
        a = P.broadcast_to(P.reshape(a, shape=(1,) * (len(batch) + 2 - a.type.ndim) + tuple(a.shape)),
                           shape=batch + tuple(a.shape[-2:]))
    if tuple(b.shape[:-2]) != batch:
        b = P.broadcast_to(P.reshape(b, shape=(1,) * (len(batch) + 2 - b.type.ndim) + tuple(b.shape)),
                           shape=batch + tuple(b.shape[-2:]))
    y = P.matmul(a, b)
    if squeeze_a or squeeze_b:
        shape = tuple(y.shape[:-2]) + ((y.shape[-2],) if not squeeze_a else ()) + \
            ((y.shape[-1],) if not squeeze_b else ())
        y = P.reshape(y, shape=shape)
    return y


@converter("MatMul")
def _matmul_conv(ctx, node):
    a, b = _ins(ctx)
    return [_matmul(ctx, a, b)]


@converter("Gemm")
def _gemm(ctx, node):
    xs = _ins(ctx)
    a, b = xs[0], xs[1]
    if int(ctx.attr("transA", 0)):
        a = P.permute(a, dims=(1, 0))
    if int(ctx.attr("transB", 0)):
        b = P.permute(b, dims=(1, 0))
    y = P.matmul(a, b)
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if alpha != 1.0:
        y = P.mul(y, _scalar_like(y, alpha))
    if len(xs) > 2:
        c = xs[2]
        if beta != 1.0:
            c = P.mul(c, _scalar_like(c, beta))
        y, c = bcast(ctx, y, c)
        y = P.add(y, c)
    return [y]


# ------------------------------------------------------------------ creation / shapes
@converter("Constant")
def _constant(ctx, node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        v = ctx.attr(key)
        if v is not None:
            if key == "value_float" or key == "value_floats":
                return [np.asarray(v, dtype=np.float32)]
            if key in ("value_int", "value_ints"):
                return [np.asarray(v, dtype=np.int64)]
            return [np.asarray(v)]
    raise OnnxImportError(ctx.where("Constant without a supported value attribute (sparse/string values are not "
                                    "supported)"))


def _shape_of(ctx, name: str) -> np.ndarray:
    if name in ctx.known:
        return np.asarray(ctx.known[name].shape, dtype=np.int64)
    v = ctx.value(name)
    dims = list(v.shape)
    if all(isinstance(d, int) for d in dims):
        return np.asarray(dims, dtype=np.int64)
    return np.asarray(dims, dtype=object)


@converter("Shape")
def _shape(ctx, node):
    s = _shape_of(ctx, node.input[0])
    n = len(s)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    start = max(0, min(n, start + n if start < 0 else start))
    end = n if end is None else max(0, min(n, end + n if end < 0 else end))
    return [s[start:end]]


@converter("Size")
def _size(ctx, node):
    s = _shape_of(ctx, node.input[0])
    if s.dtype == object:
        raise OnnxImportError(ctx.where("Size of a tensor with symbolic dimensions is not supported"))
    return [np.asarray(int(np.prod(s)), dtype=np.int64)]


@converter("ConstantOfShape")
def _constant_of_shape(ctx, node):
    shape = _ints(ctx, node.input[0], "the shape")
    _check_size(ctx, [d for d in shape if isinstance(d, int)])
    value = ctx.attr("value")
    if value is None:
        value = np.zeros(1, np.float32)
    value = np.asarray(value)
    dt = T.from_numpy(value.dtype)
    return [_full(value.ravel()[0].item(), dt, shape)]


@converter("Range")
def _range(ctx, node):
    start, limit, delta = (np.asarray(ctx.const(x, "Range bounds")) for x in node.input)
    if any(v.size != 1 for v in (start, limit, delta)):
        raise OnnxImportError(ctx.where("Range bounds must be scalars"))
    start, limit, delta = (v.reshape(()) for v in (start, limit, delta))
    n = int(max(np.ceil((limit - start) / delta), 0)) if delta != 0 else -1
    if n < 0 or n > MAX_ELEMENTS:
        raise OnnxImportError(ctx.where(f"bad Range({start}, {limit}, {delta})"))
    return [(start + np.arange(n) * delta).astype(np.asarray(start).dtype)]


def _target_shape(ctx, x: Value, shape: list, allowzero: bool) -> tuple:
    shape = list(shape)
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            if i >= x.type.ndim:
                raise OnnxImportError(ctx.where(f"shape {shape}: 0 copies dimension {i}, input rank {x.type.ndim}"))
            shape[i] = x.shape[i]
    if shape.count(-1) > 1:
        raise OnnxImportError(ctx.where(f"shape {shape} has more than one -1"))
    if -1 in shape:
        known = [d for d in shape if d != -1]
        total, rest = _numel(x.shape), _numel([d for d in known if isinstance(d, int)])
        syms_in = [d for d in x.shape if not isinstance(d, int)]
        syms_out = [d for d in known if not isinstance(d, int)]
        if total is not None and rest:
            if total % rest:
                raise OnnxImportError(ctx.where(f"cannot reshape {list(x.shape)} into {shape}"))
            shape[shape.index(-1)] = total // rest
        elif sorted(map(str, syms_in)) == sorted(map(str, syms_out)) and rest:
            static_in = _numel([d for d in x.shape if isinstance(d, int)])
            if static_in % rest:
                raise OnnxImportError(ctx.where(f"cannot reshape {list(x.shape)} into {shape}"))
            shape[shape.index(-1)] = static_in // rest
        elif len(syms_in) == 1 and not syms_out and rest:
            static_in = _numel([d for d in x.shape if isinstance(d, int)])
            if static_in % rest:
                raise OnnxImportError(ctx.where(f"cannot reshape {list(x.shape)} into {shape}"))
            k = static_in // rest
            shape[shape.index(-1)] = syms_in[0] if k == 1 else f"{syms_in[0]}*{k}"
        else:
            raise OnnxImportError(ctx.where(f"cannot infer -1 in {shape} from {list(x.shape)}"))
    for d in shape:
        if isinstance(d, int) and d < 0:
            raise OnnxImportError(ctx.where(f"negative dimension in target shape {shape}"))
    return tuple(shape)


@converter("Reshape")
def _reshape(ctx, node):
    x = ctx.value(node.input[0])
    shape = _ints(ctx, node.input[1], "the target shape")
    target = _target_shape(ctx, x, shape, bool(ctx.attr("allowzero", 0)))
    _check_size(ctx, target)
    return [x if tuple(x.shape) == target else P.reshape(x, shape=target)]


@converter("Flatten")
def _flatten(ctx, node):
    (x,) = _ins(ctx)
    r = x.type.ndim
    axis = int(ctx.attr("axis", 1))
    axis = axis + r if axis < 0 else axis
    if not 0 <= axis <= r:
        raise OnnxImportError(ctx.where(f"axis {axis} out of range for rank {r}"))
    a, b = _numel(x.shape[:axis]), _numel(x.shape[axis:])
    if a is None and b is not None and len([d for d in x.shape[:axis] if not isinstance(d, int)]) == 1:
        k = _numel([d for d in x.shape[:axis] if isinstance(d, int)])
        sym = [d for d in x.shape[:axis] if not isinstance(d, int)][0]
        a = sym if k == 1 else f"{sym}*{k}"
    if a is None or b is None:
        raise OnnxImportError(ctx.where(f"cannot flatten symbolic shape {list(x.shape)} at axis {axis}"))
    return [P.reshape(x, shape=(a, b))]


@converter("Transpose")
def _transpose(ctx, node):
    (x,) = _ins(ctx)
    perm = ctx.attr("perm")
    perm = list(range(x.type.ndim))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.type.ndim)):
        raise OnnxImportError(ctx.where(f"perm {perm} is not a permutation of rank {x.type.ndim}"))
    return [P.permute(x, dims=tuple(perm))]


def _axes_arg(ctx, node, what="axes"):
    if ctx.opset >= 13 and len(node.input) > 1 and node.input[1]:
        return _ints(ctx, node.input[1], what)
    a = ctx.attr("axes")
    return None if a is None else [int(v) for v in a]


@converter("Squeeze")
def _squeeze(ctx, node):
    name = node.input[0]
    x_known = ctx.known.get(name)
    axes = _axes_arg(ctx, node)
    shape = list(x_known.shape) if x_known is not None else list(ctx.value(name).shape)
    r = len(shape)
    axes = [i for i, d in enumerate(shape) if d == 1] if axes is None else [_axis(a, r, ctx) for a in axes]
    for a in axes:
        if shape[a] != 1:
            raise OnnxImportError(ctx.where(f"cannot squeeze axis {a} of size {shape[a]}"))
    new = tuple(d for i, d in enumerate(shape) if i not in axes)
    if x_known is not None and x_known.dtype == object:
        return [x_known.reshape(new)]
    return [P.reshape(ctx.value(name), shape=new)]


@converter("Unsqueeze")
def _unsqueeze(ctx, node):
    name = node.input[0]
    x_known = ctx.known.get(name)
    axes = _axes_arg(ctx, node)
    if axes is None:
        raise OnnxImportError(ctx.where("Unsqueeze needs axes"))
    shape = list(x_known.shape) if x_known is not None else list(ctx.value(name).shape)
    r = len(shape) + len(axes)
    axes = sorted(_axis(a, r, ctx) for a in axes)
    if len(set(axes)) != len(axes):
        raise OnnxImportError(ctx.where(f"repeated axes {axes}"))
    for a in axes:
        shape.insert(a, 1)
    if x_known is not None and x_known.dtype == object:
        return [x_known.reshape(shape)]
    return [P.reshape(ctx.value(name), shape=tuple(shape))]


@converter("Expand")
def _expand(ctx, node):
    x = ctx.value(node.input[0])
    shape = _ints(ctx, node.input[1], "the target shape")
    target = T.broadcast_shapes(tuple(x.shape), tuple(shape))
    _check_size(ctx, target)
    if len(x.shape) < len(target):
        x = P.reshape(x, shape=(1,) * (len(target) - len(x.shape)) + tuple(x.shape))
    return [x if tuple(x.shape) == target else P.broadcast_to(x, shape=target)]


@converter("Concat")
def _concat(ctx, node):
    names = [x for x in node.input if x]
    if not names:
        raise OnnxImportError(ctx.where("Concat needs at least one input"))
    if all(n in ctx.known for n in names) and any(ctx.known[n].dtype == object for n in names):
        arrs = [ctx.known[n] for n in names]
        axis = _axis(ctx.attr("axis", 0), arrs[0].ndim, ctx)
        return [np.concatenate([a.astype(object) for a in arrs], axis=axis)]
    xs = [ctx.value(n) for n in names]
    axis = _axis(ctx.attr("axis"), xs[0].type.ndim, ctx)
    xs = [x for x in xs if x.shape[axis] != 0] or xs[:1]
    return [xs[0] if len(xs) == 1 else P.concat(*xs, dim=axis)]


def _slice_spec(dim, start, end, step):
    """Normalize one ONNX slice to (start, stop, step) with python semantics; step may be negative."""
    if not isinstance(dim, int):
        if step == 1 and start == 0 and end >= np.iinfo(np.int64).max // 2:
            return None
        raise ValueError(f"cannot slice symbolic dimension {dim}")
    s = slice(start, end, step).indices(dim)
    return s


@converter("Slice")
def _slice(ctx, node):
    name = node.input[0]
    if ctx.opset < 10:
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes = ctx.attr("axes")
        steps = None
    else:
        starts = _ints(ctx, node.input[1], "Slice starts")
        ends = _ints(ctx, node.input[2], "Slice ends")
        axes = _ints(ctx, _opt(ctx, 3), "Slice axes") if _opt(ctx, 3) else None
        steps = _ints(ctx, _opt(ctx, 4), "Slice steps") if _opt(ctx, 4) else None
    x_known = ctx.known.get(name)
    shape = list(x_known.shape) if x_known is not None else list(ctx.value(name).shape)
    r = len(shape)
    axes = list(range(len(starts))) if axes is None else [_axis(a, r, ctx) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise OnnxImportError(ctx.where("starts/ends/axes/steps lengths differ"))
    if any(s == 0 for s in steps):
        raise OnnxImportError(ctx.where("a slice step is 0"))
    if x_known is not None and x_known.dtype == object:
        idx = [slice(None)] * r
        for a, s, e, st in zip(axes, starts, ends, steps):
            idx[a] = slice(s, e, st)
        return [x_known[tuple(idx)]]
    x = ctx.value(name)
    st_, sp_, step_ = [0] * r, list(x.shape), [1] * r
    flips = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        spec = _slice_spec(shape[a], int(s), int(e), int(st))
        if spec is None:
            continue
        b, c, k = spec
        if k > 0:
            st_[a], sp_[a], step_[a] = b, max(c, b), k
        else:
            # negative step: flip, then slice forward
            n = len(range(b, c, k))
            flips.append(a)
            d = shape[a]
            fb = d - 1 - b
            st_[a], sp_[a], step_[a] = fb, fb + (n - 1) * (-k) + 1 if n else fb, -k
    if flips:
        x = P.flip(x, dims=tuple(sorted(flips)))
    if st_ == [0] * r and step_ == [1] * r and sp_ == list(x.shape):
        return [x]
    return [P.slice_(x, starts=tuple(st_), stops=tuple(sp_), steps=tuple(step_))]


@converter("Split")
def _split(ctx, node):
    x = ctx.value(node.input[0])
    axis = _axis(ctx.attr("axis", 0), x.type.ndim, ctx)
    n_out = len(node.output)
    if _opt(ctx, 1):
        sizes = _ints(ctx, node.input[1], "split sizes")
    elif ctx.attr("split") is not None:
        sizes = [int(v) for v in ctx.attr("split")]
    else:
        d = x.shape[axis]
        if not isinstance(d, int):
            raise OnnxImportError(ctx.where("cannot split a symbolic dimension"))
        k = int(ctx.attr("num_outputs", n_out))
        chunk = -(-d // k)
        sizes = [min(chunk, d - i * chunk) for i in range(k)]
    if sum(sizes) != x.shape[axis] or len(sizes) != n_out:
        raise OnnxImportError(ctx.where(f"split sizes {sizes} do not cover dimension {x.shape[axis]} in {n_out} parts"))
    outs, off = [], 0
    for s in sizes:
        starts = tuple(off if i == axis else 0 for i in range(x.type.ndim))
        stops = tuple(off + s if i == axis else d for i, d in enumerate(x.shape))
        outs.append(P.slice_(x, starts=starts, stops=stops, steps=(1,) * x.type.ndim))
        off += s
    return outs


@converter("Tile")
def _tile(ctx, node):
    x = ctx.value(node.input[0])
    reps = _ints(ctx, node.input[1], "repeats")
    if len(reps) != x.type.ndim:
        raise OnnxImportError(ctx.where(f"repeats {reps} do not match rank {x.type.ndim}"))
    # [d] -> [1, d] -> broadcast [r, d] -> reshape [r*d] per axis
    shape = list(x.shape)
    _check_size(ctx, [r * d for r, d in zip(reps, shape) if isinstance(d, int)])
    inter = []
    for r, d in zip(reps, shape):
        inter += [1, d]
    y = P.reshape(x, shape=tuple(inter))
    target = []
    for r, d in zip(reps, shape):
        target += [r, d]
    y = P.broadcast_to(y, shape=tuple(target))
    return [P.reshape(y, shape=tuple(r * d for r, d in zip(reps, shape)))]


@converter("Pad")
def _pad(ctx, node):
    x = ctx.value(node.input[0])
    mode = ctx.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise OnnxImportError(ctx.where(f"Pad mode {mode!r} is not one of constant/reflect/edge/wrap"))
    r = x.type.ndim
    if ctx.opset < 11:
        pads, value = [int(p) for p in ctx.attr("pads")], float(ctx.attr("value", 0.0))
        axes = list(range(r))
    else:
        pads = _ints(ctx, node.input[1], "pads")
        value = 0
        if _opt(ctx, 2) and node.input[2] in ctx.known:
            cv = ctx.const(node.input[2], "the pad value")
            value = cv.ravel()[0].item() if cv.size else 0
        axes = [_axis(a, r, ctx) for a in _ints(ctx, _opt(ctx, 3), "axes")] if _opt(ctx, 3) else list(range(r))
    if len(pads) != 2 * len(axes):
        raise OnnxImportError(ctx.where(f"pads {pads} do not match {len(axes)} axes"))
    lo = dict(zip(axes, pads[:len(axes)]))
    hi = dict(zip(axes, pads[len(axes):]))
    # negative pads crop
    starts, stops, need_crop = [], [], False
    for i, d in enumerate(x.shape):
        a, b = lo.get(i, 0), hi.get(i, 0)
        starts.append(-a if a < 0 else 0)
        stops.append(d + b if b < 0 else d)
        need_crop |= a < 0 or b < 0
    if need_crop:
        x = P.slice_(x, starts=tuple(starts), stops=tuple(stops), steps=(1,) * r)
    spec = tuple((max(lo.get(i, 0), 0), max(hi.get(i, 0), 0)) for i in range(r))
    if all(p == (0, 0) for p in spec):
        return [x]
    if mode != "constant":
        return [_pad_from_input(ctx, x, spec, mode)]
    if _opt(ctx, 2) and node.input[2] not in ctx.known and ctx.opset >= 11:
        # a pad value computed at run time: pad with 0, then put the value where the padding is
        v = ctx.value(node.input[2])
        zero = False if x.dtype is T.bool_ else 0
        padded = P.pad(x, pads=spec, value=zero)
        border = P.pad(_full(False, T.bool_, tuple(x.shape)), pads=spec, value=True)
        fill = P.broadcast_to(P.reshape(v, shape=(1,) * r), shape=tuple(padded.shape))
        return [P.where(border, fill, padded)]
    value = bool(value) if x.dtype is T.bool_ else (int(value) if not x.dtype.is_floating_point else float(value))
    return [P.pad(x, pads=spec, value=value)]


def _pad_from_input(ctx, x: Value, spec, mode: str) -> Value:
    """reflect / edge / wrap padding: concatenate slices of ``x`` itself, one axis at a time."""
    for axis, (lo, hi) in enumerate(spec):
        if not lo and not hi:
            continue
        d = x.shape[axis]
        if not isinstance(d, int) or d == 0:
            raise OnnxImportError(ctx.where(f"{mode} padding of dimension {d} is not supported"))
        limit = d - 1 if mode == "reflect" else d
        if (lo > limit or hi > limit) and mode != "edge":
            raise OnnxImportError(ctx.where(f"{mode} pads ({lo}, {hi}) exceed dimension {d}"))

        def part(start, stop, flip=False, x=x, axis=axis):
            starts = tuple(start if i == axis else 0 for i in range(x.type.ndim))
            stops = tuple(stop if i == axis else s for i, s in enumerate(x.shape))
            y = P.slice_(x, starts=starts, stops=stops, steps=(1,) * x.type.ndim)
            return P.flip(y, dims=(axis,)) if flip else y

        def edge(i, n, x=x, axis=axis):
            shape = tuple(n if j == axis else s for j, s in enumerate(x.shape))
            return P.broadcast_to(part(i, i + 1), shape=shape)
        pieces = []
        if lo:
            pieces.append({"reflect": lambda: part(1, lo + 1, True), "edge": lambda: edge(0, lo),
                           "wrap": lambda: part(d - lo, d)}[mode]())
        pieces.append(x)
        if hi:
            pieces.append({"reflect": lambda: part(d - 1 - hi, d - 1, True), "edge": lambda: edge(d - 1, hi),
                           "wrap": lambda: part(0, hi)}[mode]())
        x = P.concat(*pieces, dim=axis)
    return x


# ------------------------------------------------------------------ indexing
@converter("Gather")
def _gather(ctx, node):
    data_name, idx_name = node.input[0], node.input[1]
    if data_name in ctx.known and ctx.known[data_name].dtype == object and idx_name in ctx.known:
        axis = _axis(ctx.attr("axis", 0), ctx.known[data_name].ndim, ctx)
        out = np.take(ctx.known[data_name], ctx.known[idx_name].astype(np.int64), axis=axis)
        return [np.asarray(out, dtype=object)]
    x, idx = ctx.value(data_name), ctx.value(idx_name)
    axis = _axis(ctx.attr("axis", 0), x.type.ndim, ctx)
    idx = _wrap_negative(ctx, idx, x.shape[axis], idx_name)
    return [P.take(x, idx, dim=axis)]


def _wrap_negative(ctx, idx: Value, size, name: str) -> Value:
    """ONNX allows negative indices: add the axis size where idx < 0."""
    if idx.dtype not in (T.int64, T.int32):
        raise OnnxImportError(ctx.where(f"indices must be int32/int64, got {idx.dtype.name}"))
    known = ctx.known.get(name)
    if known is not None and known.dtype != object:
        if isinstance(size, int) and ((known >= size) | (known < -size)).any():
            raise OnnxImportError(ctx.where(f"index out of range for a dimension of size {size}"))
        if (known >= 0).all():
            return idx
    if not isinstance(size, int):
        return idx
    zero = _scalar_like(idx, 0)
    return P.where(P.lt(idx, zero), P.add(idx, _scalar_like(idx, size)), idx)


@converter("GatherElements")
def _gather_elements(ctx, node):
    x, idx = _ins(ctx)
    axis = _axis(ctx.attr("axis", 0), x.type.ndim, ctx)
    idx = _wrap_negative(ctx, idx, x.shape[axis], node.input[1])
    return [P.gather(x, idx, dim=axis)]


@converter("ScatterElements", "Scatter")
def _scatter_elements(ctx, node):
    x, idx, src = _ins(ctx)
    axis = _axis(ctx.attr("axis", 0), x.type.ndim, ctx)
    idx = _wrap_negative(ctx, idx, x.shape[axis], node.input[1])
    red = ctx.attr("reduction", "none")
    if red == "add":
        return [P.scatter_add(x, idx, src, dim=axis)]
    if red in ("mul", "max", "min"):
        # no scatter-max primitive: planned from indices known at import time
        from .import_ops_index import scatter_reduce_static, static_scatter_positions_elements
        pos = static_scatter_positions_elements(ctx, np.asarray(ctx.const(node.input[1], "the indices")),
                                                tuple(x.shape), axis)
        return [scatter_reduce_static(ctx, x, src, pos, red)]
    if red != "none":
        raise OnnxImportError(ctx.where(f"reduction {red!r} is not supported"))
    # replace: where any index hits a position, take the scattered value (indices assumed unique, as ONNX says)
    hits = P.scatter_add(_scalar_like(x, 0) if x.dtype.is_floating_point or x.dtype is not T.bool_ else
                         P.cast(_scalar_like(x, 0), dtype=T.float32), idx,
                         _scalar_like(src, 1) if src.dtype is not T.bool_ else P.cast(_scalar_like(src, 1),
                                                                                       dtype=T.float32), dim=axis)
    placed = P.scatter_add(_scalar_like(x, 0), idx, src, dim=axis)
    mask = P.gt(hits, _scalar_like(hits, 0))
    return [P.where(mask, placed, x)]


# ------------------------------------------------------------------ reductions
def _reduce_axes(ctx, node, rank):
    if ctx.opset >= 18 or node.op_type == "ReduceSum" and ctx.opset >= 13:
        axes = _ints(ctx, _opt(ctx, 1), "axes") if _opt(ctx, 1) else None
    else:
        a = ctx.attr("axes")
        axes = None if a is None else [int(v) for v in a]
    if rank == 0:
        return ()  # reducing a scalar is the identity
    if not axes:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            return ()
        return tuple(range(rank))
    dims = sorted({_axis(a, rank, ctx) for a in axes})
    return tuple(dims)


def _reducer(kind):
    def conv(ctx, node):
        x = ctx.value(node.input[0])
        keep = bool(int(ctx.attr("keepdims", 1)))
        dims = _reduce_axes(ctx, node, x.type.ndim)
        if dims and any(x.shape[d] == 0 for d in dims) and kind in ("Max", "Min", "LogSumExp"):
            # an empty reduction gives the identity: -inf for max/logsumexp, +inf for min
            out_shape = tuple(1 if i in dims else d for i, d in enumerate(x.shape)) if keep else \
                tuple(d for i, d in enumerate(x.shape) if i not in dims)
            if x.dtype.is_floating_point:
                value = float("inf") if kind == "Min" else float("-inf")
            elif x.dtype is T.bool_:
                value = kind == "Min"
            else:
                info = np.iinfo(x.dtype.np)
                value = int(info.max if kind == "Min" else info.min)
            return [_full(value, x.dtype, out_shape)]
        if not dims:
            return [x if kind not in ("L1", "L2", "SumSquare", "LogSumExp") else _elementwise_noop(kind, x)]
        if kind == "Sum":
            return [P.sum_(x, dims=dims, keepdim=keep)]
        if kind == "Prod":
            return [P.prod(x, dims=dims, keepdim=keep)]
        if kind == "Max":
            return [P.amax(x, dims=dims, keepdim=keep)]
        if kind == "Min":
            return [P.amin(x, dims=dims, keepdim=keep)]
        if kind == "Mean":
            n = _numel([x.shape[d] for d in dims])
            if n is None:
                raise OnnxImportError(ctx.where("ReduceMean over a symbolic dimension is not supported"))
            s = P.sum_(x, dims=dims, keepdim=keep)
            return [P.div(s, _scalar_like(s, n))]
        if kind == "L1":
            return [P.sum_(P.abs_(x), dims=dims, keepdim=keep)]
        if kind == "SumSquare":
            return [P.sum_(P.mul(x, x), dims=dims, keepdim=keep)]
        if kind == "L2":
            s = P.sum_(P.mul(x, x), dims=dims, keepdim=keep)
            if not s.dtype.is_floating_point:
                return [P.cast(P.sqrt(P.cast(s, dtype=T.float64)), dtype=s.dtype)]
            return [P.sqrt(s)]
        if kind == "LogSumExp":
            m = P.amax(x, dims=dims, keepdim=True)
            z = P.exp(P.sub(x, P.broadcast_to(m, shape=tuple(x.shape))))
            out = P.add(P.log(P.sum_(z, dims=dims, keepdim=True)), m)
            if not keep:
                out = P.reshape(out, shape=tuple(d for i, d in enumerate(x.shape) if i not in dims))
            return [out]
        if kind == "LogSum":
            return [P.log(P.sum_(x, dims=dims, keepdim=keep))]
        raise AssertionError(kind)
    return conv


def _elementwise_noop(kind, x):
    if kind == "L1":
        return P.abs_(x)
    if kind == "SumSquare":
        return P.mul(x, x)
    if kind == "L2":
        return P.abs_(x)
    return x


for _k in ("Sum", "Prod", "Max", "Min", "Mean", "L1", "L2", "SumSquare", "LogSumExp", "LogSum"):
    converter(f"Reduce{_k}")(_reducer(_k))


def _arg(prim):
    def conv(ctx, node):
        (x,) = _ins(ctx)
        axis = _axis(ctx.attr("axis", 0), x.type.ndim, ctx)
        keep = bool(int(ctx.attr("keepdims", 1)))
        if int(ctx.attr("select_last_index", 0)):
            # the last extremum: argmax of the flipped input, mapped back
            n = x.shape[axis]
            idx = prim(P.flip(x, dims=(axis,)), dim=axis, keepdim=keep)
            return [P.sub(_scalar_like(idx, n - 1), idx)]
        return [prim(x, dim=axis, keepdim=keep)]
    return conv


converter("ArgMax")(_arg(P.argmax))
converter("ArgMin")(_arg(P.argmin))


# ------------------------------------------------------------------ nn
def _check_pool_pads(ctx, padding, kernel, dilations=(1, 1)):
    for (lo, hi), k, d in zip(padding, kernel, dilations):
        if max(lo, hi) > ((k - 1) * d + 1) // 2:
            raise OnnxImportError(ctx.where(f"padding {max(lo, hi)} larger than half the kernel ({k}) is not "
                                            "supported (PyTorch's pooling rule)"))


def _spatial_attrs(ctx, x: Value, kernel):
    if x.type.ndim != 4:
        raise OnnxImportError(ctx.where(f"{x.type.ndim - 2}-D convolution/pooling is not supported (2-D NCHW only)"))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    strides = tuple(int(s) for s in (ctx.attr("strides") or (1, 1)))
    dilations = tuple(int(d) for d in (ctx.attr("dilations") or (1, 1)))
    pads = ctx.attr("pads") or (0, 0, 0, 0)
    pads = [int(p) for p in pads]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i, (size, k, s, d) in enumerate(zip(x.shape[2:], kernel, strides, dilations)):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2:
        raise OnnxImportError(ctx.where("only 2-D convolution/pooling attributes are supported"))
    return strides, ((pads[0], pads[2]), (pads[1], pads[3])), dilations


@converter("Conv")
def _conv(ctx, node):
    xs = _ins(ctx)
    x, w = xs[0], xs[1]
    strides, padding, dilations = _spatial_attrs(ctx, x, tuple(w.shape[2:]))
    y = P.nn.conv2d(x, w, stride=strides, padding=padding, dilation=dilations, groups=int(ctx.attr("group", 1)))
    if len(xs) > 2:
        b = P.reshape(xs[2], shape=(1, xs[2].shape[0], 1, 1))
        y = P.add(y, P.broadcast_to(b, shape=tuple(y.shape)))
    return [y]


@converter("ConvTranspose")
def _conv_transpose(ctx, node):
    xs = _ins(ctx)
    x, w = xs[0], xs[1]
    strides, padding, dilations = _spatial_attrs(ctx, x, tuple(w.shape[2:]))
    opad = tuple(int(p) for p in (ctx.attr("output_padding") or (0, 0)))
    out_shape = ctx.attr("output_shape")
    grow = ((0, 0), (0, 0))
    if out_shape is not None and ctx.attr("pads") is None:
        # pads follow from the requested output size (ONNX's rule); a negative pad grows the output with zeros
        out_shape = [int(v) for v in out_shape][-2:]
        upper = ctx.attr("auto_pad", "NOTSET") == "SAME_UPPER"
        pads, grow = [], []
        for size, k, s, d, op, want in zip(x.shape[2:], w.shape[2:], strides, dilations, opad, out_shape):
            total = s * (size - 1) + op + (k - 1) * d + 1 - want
            lo, hi = (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)
            pads.append((max(lo, 0), max(hi, 0)))
            grow.append((max(-lo, 0), max(-hi, 0)))
        padding, grow = tuple(pads), tuple(grow)
    elif ctx.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        # output = input * stride; the padding trims the full transposed output down to that
        pads = []
        for size, k, s, d, op in zip(x.shape[2:], w.shape[2:], strides, dilations, opad):
            total = max(s * (size - 1) + op + (k - 1) * d + 1 - size * s, 0)
            lo = total // 2 if ctx.attr("auto_pad") == "SAME_UPPER" else total - total // 2
            pads.append((lo, total - lo))
        padding = tuple(pads)
    y = P.nn.conv_transpose2d(x, w, stride=strides, padding=padding, output_padding=opad, dilation=dilations,
                              groups=int(ctx.attr("group", 1)))
    if grow != ((0, 0), (0, 0)):
        y = P.pad(y, pads=((0, 0), (0, 0)) + grow, value=0.0)
    if len(xs) > 2:
        b = P.reshape(xs[2], shape=(1, xs[2].shape[0], 1, 1))
        y = P.add(y, P.broadcast_to(b, shape=tuple(y.shape)))
    return [y]


@converter("MaxPool")
def _max_pool(ctx, node):
    (x,) = _ins(ctx)
    if len([o for o in node.output if o]) > 1:
        raise OnnxImportError(ctx.where("MaxPool's Indices output is not supported"))
    k = tuple(int(v) for v in ctx.attr("kernel_shape"))
    strides, padding, dilations = _spatial_attrs(ctx, x, k)
    _check_pool_pads(ctx, padding, k, dilations)
    if int(ctx.attr("storage_order", 0)):
        raise OnnxImportError(ctx.where("storage_order=1 is not supported"))
    return [P.nn.max_pool2d(x, kernel_size=k, stride=strides, padding=padding, dilation=dilations,
                            ceil_mode=bool(int(ctx.attr("ceil_mode", 0))))]


@converter("AveragePool")
def _avg_pool(ctx, node):
    (x,) = _ins(ctx)
    k = tuple(int(v) for v in ctx.attr("kernel_shape"))
    strides, padding, dilations = _spatial_attrs(ctx, x, k)
    if dilations != (1, 1):
        raise OnnxImportError(ctx.where("dilated AveragePool is not supported"))
    _check_pool_pads(ctx, padding, k)
    return [P.nn.avg_pool2d(x, kernel_size=k, stride=strides, padding=padding,
                            ceil_mode=bool(int(ctx.attr("ceil_mode", 0))),
                            count_include_pad=bool(int(ctx.attr("count_include_pad", 0))), divisor_override=0)]


# 1-D convolution/pooling: the 2-D primitives with a height of 1
_AS_2D_ATTRS = {"kernel_shape": 1, "strides": 1, "dilations": 1, "output_padding": 0, "output_shape": 1}


def _one_d_as_2d(conv2d):
    def conv(ctx, node):
        x = ctx.value(node.input[0])
        if x.type.ndim != 3:
            return conv2d(ctx, node)
        inner = onnx.NodeProto()
        inner.CopyFrom(node)
        n, c, length = x.shape
        ctx.values[node.input[0] + "/as2d"] = P.reshape(x, shape=(n, c, 1, length))
        inner.input[0] = node.input[0] + "/as2d"
        if node.op_type in ("Conv", "ConvTranspose"):
            w = ctx.value(node.input[1])
            ctx.values[node.input[1] + "/as2d"] = P.reshape(w, shape=(w.shape[0], w.shape[1], 1, w.shape[2]))
            inner.input[1] = node.input[1] + "/as2d"
        for a in inner.attribute:
            if a.name in _AS_2D_ATTRS:
                vals = list(a.ints)
                del a.ints[:]
                a.ints.extend([_AS_2D_ATTRS[a.name]] + vals)
            elif a.name == "pads":
                lo, hi = list(a.ints)
                del a.ints[:]
                a.ints.extend([0, lo, 0, hi])
        outer = ctx.node
        ctx.node = inner
        try:
            outs = conv2d(ctx, inner)
        finally:
            ctx.node = outer
        y = outs[0]
        return [P.reshape(y, shape=(y.shape[0], y.shape[1], y.shape[3]))] + list(outs[1:])
    return conv


for _op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool"):
    converter(_op)(_one_d_as_2d(CONVERTERS[_op]))


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, node):
    (x,) = _ins(ctx)
    dims = tuple(range(2, x.type.ndim))
    if node.op_type == "GlobalMaxPool":
        return [P.amax(x, dims=dims, keepdim=True)]
    n = _numel([x.shape[d] for d in dims])
    s = P.sum_(x, dims=dims, keepdim=True)
    return [P.div(s, _scalar_like(s, n))]


@converter("BatchNormalization")
def _batch_norm(ctx, node):
    x, scale, bias, mean, var = _ins(ctx)[:5]
    if int(ctx.attr("training_mode", 0)):
        from .import_ops_math import batch_norm_training
        return batch_norm_training(ctx, node, x, scale, bias, mean, var)
    eps = float(ctx.attr("epsilon", 1e-5))
    shape = (1, x.shape[1]) + (1,) * (x.type.ndim - 2)

    def chan(v):
        return P.broadcast_to(P.reshape(v, shape=shape), shape=tuple(x.shape))
    inv = P.rsqrt(P.add(var, _scalar_like(var, eps)))
    y = P.mul(P.sub(x, chan(mean)), chan(P.mul(inv, scale)))
    return [P.add(y, chan(bias))]


@converter("LayerNormalization")
def _layer_norm(ctx, node):
    xs = _ins(ctx)
    x, scale = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 else None
    r = x.type.ndim
    axis = _axis(ctx.attr("axis", -1), r, ctx)
    eps = float(ctx.attr("epsilon", 1e-5))
    dims = tuple(range(axis, r))
    n = _numel([x.shape[d] for d in dims])
    full = tuple(x.shape)
    mean = P.div(P.sum_(x, dims=dims, keepdim=True), _full(n, x.dtype, [1 if i in dims else d
                                                                       for i, d in enumerate(full)]))
    mean_b = P.broadcast_to(mean, shape=full)
    d = P.sub(x, mean_b)
    var = P.div(P.sum_(P.mul(d, d), dims=dims, keepdim=True), _scalar_like(mean, n))
    inv = P.rsqrt(P.add(var, _scalar_like(var, eps)))
    y = P.mul(d, P.broadcast_to(inv, shape=full))
    y = P.mul(*bcast(ctx, y, scale))
    if bias is not None:
        y = P.add(*bcast(ctx, y, bias))
    outs = [y]
    if len(node.output) > 1:
        outs += [mean, inv]
    return outs


@converter("Trilu")
def _trilu(ctx, node):
    x = ctx.value(node.input[0])
    k = int(ctx.const(node.input[1], "k").ravel()[0]) if _opt(ctx, 1) else 0
    upper = bool(int(ctx.attr("upper", 1)))
    n, m = x.shape[-2], x.shape[-1]
    if not (isinstance(n, int) and isinstance(m, int)):
        raise OnnxImportError(ctx.where("Trilu needs static matrix dimensions"))
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    mask = (cols - rows >= k) if upper else (cols - rows <= k)
    mask_v = P.broadcast_to(P.constant(value=mask), shape=tuple(x.shape))
    return [P.where(mask_v, x, _scalar_like(x, False if x.dtype is T.bool_ else 0))]


@converter("EyeLike")
def _eye_like(ctx, node):
    (x,) = _ins(ctx)
    dt = onnx_dtype(int(ctx.attr("dtype")), "EyeLike dtype") if ctx.attr("dtype") is not None else x.dtype
    k = int(ctx.attr("k", 0))
    n, m = x.shape
    return [np.eye(n, m, k=k, dtype=dt.np)]


@converter("CumSum")
def _cumsum(ctx, node):
    x = ctx.value(node.input[0])
    axis = _axis(int(ctx.const(node.input[1], "axis").ravel()[0]), x.type.ndim, ctx)
    n = x.shape[axis]
    if not isinstance(n, int):
        raise OnnxImportError(ctx.where("CumSum along a symbolic dimension is not supported"))
    exclusive, reverse = int(ctx.attr("exclusive", 0)), int(ctx.attr("reverse", 0))
    # a triangular matmul: move axis last, multiply by the [n, n] prefix mask
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    mask = (i >= j) if reverse else (i <= j)
    if exclusive:
        mask = mask & (i != j)
    r = x.type.ndim
    perm = tuple(d for d in range(r) if d != axis) + (axis,)
    xt = P.permute(x, dims=perm) if perm != tuple(range(r)) else x
    work = xt if x.dtype.is_floating_point else P.cast(xt, dtype=T.float64)
    lead = tuple(xt.shape[:-1])
    lead_n = _numel(lead)
    if lead_n is None:
        raise OnnxImportError(ctx.where("CumSum needs static shapes"))
    flat = P.reshape(work, shape=(lead_n, n))
    y = P.matmul(flat, P.constant(value=mask.astype(work.dtype.np)))
    y = P.reshape(y, shape=lead + (n,))
    if not x.dtype.is_floating_point:
        y = P.cast(P.round_(y), dtype=x.dtype)
    inv = tuple(sorted(range(r), key=lambda d: perm[d]))
    return [P.permute(y, dims=inv) if perm != tuple(range(r)) else y]


from . import import_ops_index, import_ops_math, import_ops_nn, import_ops_train, import_resize, import_rnn  # noqa: E402,F401,I001,E501
