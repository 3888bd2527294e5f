"""PyTorch's tensor functions, written over ember's primitives.

This layer turns PyTorch's flexible calling conventions (Python scalars, negative
dims, implicit broadcasting and type promotion) into explicit primitive calls.
Broadcasts and casts become nodes only when they matter to autograd or a trace;
plain eager execution lets numpy broadcast, which gives identical values.
"""

from __future__ import annotations

import builtins
import math
from typing import Sequence

import numpy as np

from ember.ir import ops as P
from ember.ir.types import (
    SCALAR_TYPE_NAMES, DType, ShapeError, bool_, broadcast_shapes, float32, fmt_shape, int64, result_type,
)

from . import _state
from ember.runtime.kernels import KERNELS

from ._dispatch import apply
from ._tensor import Tensor, _wrap

_VIEW_PRIMS = {"reshape", "permute", "broadcast_to", "slice", "flip"}


def get_default_dtype() -> DType:
    return _state_default_dtype[0]


_state_default_dtype = [float32]


# ----------------------------------------------------------------- operands
def _scalar_kind(x) -> int:
    if isinstance(x, bool):
        return 0
    if isinstance(x, (int, np.integer)):
        return 1
    if isinstance(x, (float, np.floating)):
        return 2
    raise TypeError(f"expected a tensor or a number, got {type(x).__name__}")


def const(value, dtype: DType) -> Tensor:
    """A 0-d tensor (no grad) holding a Python number, or a graph constant when tracing."""
    if _state.tracer is not None:
        return apply(P.full, (), {"shape": (), "value": value, "dtype": dtype})
    return _wrap(np.array(value, dtype=dtype.np))


def to_tensor(x, dtype: DType | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float, np.number)):
        return const(x, dtype or {0: bool_, 1: int64, 2: get_default_dtype()}[_scalar_kind(x)])
    from ._creation import tensor
    return tensor(x, dtype=dtype)


def promote(*xs) -> DType:
    """PyTorch's result dtype for operands that may be tensors or Python numbers."""
    dims, zerodims, kinds = [], [], []
    for x in xs:
        if isinstance(x, Tensor):
            (dims if len(x.shape) else zerodims).append(x.dtype)
        else:
            kinds.append(_scalar_kind(x))
    return result_type(dims, zerodims, kinds, get_default_dtype())


def cast(x: Tensor, dtype: DType) -> Tensor:
    if x.dtype is dtype:
        return x
    return apply(P.cast, (x,), {"dtype": dtype})


def _explicit(*xs: Tensor) -> bool:
    """Whether broadcasts must be recorded (autograd tape or a trace is watching)."""
    if _state.tracer is not None:
        return True
    if _state.grad_enabled:
        for x in xs:
            if x.requires_grad:
                return True
    return False


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    out = apply(P.broadcast_to, (x,), {"shape": shape})
    _share_version(x, out)
    return out


def _share_version(src: Tensor, out: Tensor) -> None:
    if out._value is None:
        out._version = src._version
        out._base = src if src._base is None else src._base


def operands(*xs, dtype: DType | None = None, op: str = "") -> list[Tensor]:
    """Tensors of one dtype (PyTorch's promotion unless ``dtype`` is given), broadcast
    explicitly when autograd or a trace records the op."""
    if dtype is None:
        a = xs[0]
        if len(xs) == 2 and isinstance(a, Tensor):
            b = xs[1]
            if isinstance(b, Tensor):
                da, db = a.dtype, b.dtype
                dtype = da if da is db else promote(a, b)
            elif isinstance(b, float) and a.dtype.is_floating_point:
                dtype = a.dtype
            else:
                dtype = promote(a, b)
        else:
            dtype = promote(*xs)
    ts = [cast(x, dtype) if isinstance(x, Tensor) else const(x, dtype) for x in xs]
    if _explicit(*ts):
        shapes = [tuple(t.shape) for t in ts]
        if builtins.any(s != shapes[0] for s in shapes):
            try:
                shape = broadcast_shapes(*shapes)
            except ShapeError:
                from ._dispatch import broadcast_error
                raise broadcast_error(op or "broadcast", ts) from None
            if _state.tracer is not None:
                ts = [broadcast_to(t, shape) for t in ts]
            else:  # eager autograd only needs the operands it differentiates to be full-shaped
                ts = [broadcast_to(t, shape) if t.requires_grad else t for t in ts]
    return ts


def _broadcast_or_raise(name: str, ts) -> tuple:
    try:
        return broadcast_shapes(*[tuple(t.shape) for t in ts])
    except ShapeError:
        from ._dispatch import broadcast_error
        raise broadcast_error(name, ts) from None


_NO_ATTRS: dict = {}


def _binary(prim, a, b, dtype: DType | None = None) -> Tensor:
    if dtype is None and _state.tracer is None:
        # hot path: same-dtype tensors, or a float tensor with a Python number, and nothing
        # to record -> one kernel call (numpy broadcasts, the result dtype is already right)
        if isinstance(a, Tensor):
            ad = a._data
            if isinstance(b, Tensor):
                bd = b._data
                if ad.dtype is bd.dtype:
                    if not (_state.grad_enabled and (a.requires_grad or b.requires_grad)):
                        return _run_binary(prim, ad, bd, a, b)
                    if ad.shape == bd.shape:  # nothing to broadcast or cast: record directly
                        return apply(prim, (a, b), _NO_ATTRS)
            elif (type(b) is float or type(b) is int) and ad.dtype.kind == "f" and not (
                    _state.grad_enabled and a.requires_grad):
                return _run_binary(prim, ad, ad.dtype.type(b), a, b)
        elif (type(a) is float or type(a) is int) and isinstance(b, Tensor):
            bd = b._data
            if bd.dtype.kind == "f" and not (_state.grad_enabled and b.requires_grad):
                return _run_binary(prim, bd.dtype.type(a), bd, a, b)
    if type(a) is np.ndarray or type(b) is np.ndarray:  # torch accepts numpy arrays as operands
        from ._creation import as_tensor
        a, b = (as_tensor(v) if type(v) is np.ndarray else v for v in (a, b))
    x, y = operands(a, b, dtype=dtype, op=prim.name)
    return apply(prim, (x, y), _NO_ATTRS)


def _run_binary(prim, x, y, a, b) -> Tensor:
    try:
        out = KERNELS[prim.name](x, y)
    except Exception as exc:  # noqa: BLE001 - re-raised with the op's context
        from ._dispatch import op_error
        raise op_error(prim, (to_tensor(a), to_tensor(b)), {}, exc) from None
    return _wrap(out if type(out) is np.ndarray else np.asarray(out))


def _float_dtype(*xs) -> DType:
    dt = promote(*xs)
    return dt if dt.is_floating_point else get_default_dtype()


# ----------------------------------------------------------------- arithmetic
def add(input, other, *, alpha=1, out=None) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    if out is None:
        return _binary(P.add, input, other)
    return _out(_binary(P.add, input, other), out)


def sub(input, other, *, alpha=1, out=None) -> Tensor:
    a_bool = isinstance(input, Tensor) and input._data is not None and input._data.dtype.kind == "b"
    b_bool = isinstance(other, Tensor) and other._data is not None and other._data.dtype.kind == "b"
    if input.__class__ is Tensor and input._value is not None:  # traced operands
        a_bool = input.dtype is bool_
    if other.__class__ is Tensor and other._value is not None:
        b_bool = other.dtype is bool_
    if (a_bool or type(input) is bool) and (b_bool or type(other) is bool):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if a_bool or b_bool or type(input) is bool or type(other) is bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    if alpha != 1:
        other = mul(other, alpha)
    return _out(_binary(P.sub, input, other), out)


def rsub(input, other, *, alpha=1) -> Tensor:
    return sub(other, input, alpha=alpha)


def mul(input, other, *, out=None) -> Tensor:
    if out is None:
        return _binary(P.mul, input, other)
    return _out(_binary(P.mul, input, other), out)


def div(input, other, *, rounding_mode=None, out=None) -> Tensor:
    if rounding_mode is None:
        if isinstance(input, Tensor) and input._value is None and input._data.dtype.kind == "f" and (
                type(other) is float or isinstance(other, Tensor) and other._data is not None
                and other._data.dtype is input._data.dtype):
            return _out(_binary(P.div, input, other), out)  # already floating: no promotion needed
        return _out(_binary(P.div, input, other, dtype=_float_dtype(input, other)), out)
    if rounding_mode == "floor":
        return _out(floor_divide(input, other), out)
    if rounding_mode == "trunc":
        dt = promote(input, other)
        q = _binary(P.div, input, other, dtype=_float_dtype(input, other))
        return _out(cast(trunc(q), dt), out)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


true_divide = divide = div
multiply = mul
subtract = sub


def _refuse_bool(name: str, *xs) -> None:
    """PyTorch has no bool kernels for arithmetic such as floor division (numpy silently uses int8)."""
    if promote(*xs) is bool_:
        raise RuntimeError(f'"{name}" not implemented for \'Bool\'')


def floor_divide(input, other) -> Tensor:
    _refuse_bool("floor_divide", input, other)
    return _binary(P.floor_divide, input, other)


def remainder(input, other) -> Tensor:
    _refuse_bool("remainder", input, other)
    return _binary(P.remainder, input, other)


def fmod(input, other) -> Tensor:
    # C-style remainder: sign of the dividend
    return sub(input, mul(trunc(div(input, other)), other)) if promote(input, other).is_floating_point \
        else cast(sub(input, mul(trunc(div(input, other)), other)), promote(input, other))


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    if isinstance(input, Tensor) and type(exponent) is bool and input.dtype is bool_:
        return logical_or(input, not exponent)  # b ** True == b, b ** False == True (torch keeps bool)
    _refuse_bool("pow", input, exponent)
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and isinstance(input, Tensor):
        if exponent == 2 and input.dtype.is_floating_point:
            return mul(input, input)
        if exponent == 1:
            return input.clone() if not _explicit(input) else mul(input, 1)
    return _binary(P.pow_, input, exponent)


float_power = lambda input, exponent: pow(cast(to_tensor(input), _f64()), exponent)  # noqa: E731


def _f64():
    from ember.ir.types import float64
    return float64


def neg(input) -> Tensor:
    if input.dtype is bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    return apply(P.neg, (input,), {})


negative = neg


def _unary(prim, *, float_only=False):
    def fn(input, *, out=None) -> Tensor:
        if out is None and isinstance(input, Tensor) and input._value is None and (
                not float_only or input._data.dtype.kind == "f"):
            return apply(prim, (input,), _NO_ATTRS)  # hot path: nothing to cast
        x = to_tensor(input)
        if float_only and not x.dtype.is_floating_point:
            x = cast(x, get_default_dtype())
        return _out(apply(prim, (x,), {}), out)
    fn.__name__ = prim.name
    return fn


abs = _unary(P.abs_)  # noqa: A001
absolute = abs
exp = _unary(P.exp, float_only=True)
log = _unary(P.log, float_only=True)
log1p = _unary(P.log1p, float_only=True)
expm1 = _unary(P.expm1, float_only=True)
sqrt = _unary(P.sqrt, float_only=True)
rsqrt = _unary(P.rsqrt, float_only=True)
sin = _unary(P.sin, float_only=True)
cos = _unary(P.cos, float_only=True)
tanh = _unary(P.tanh, float_only=True)
sigmoid = _unary(P.sigmoid, float_only=True)
erf = _unary(P.erf, float_only=True)
relu = _unary(P.relu)
sign = _unary(P.sign)
floor = _unary(P.floor)
ceil = _unary(P.ceil)
isnan = _unary(P.isnan)
isinf = _unary(P.isinf)


def round(input, *, decimals: int = 0) -> Tensor:  # noqa: A001
    if decimals == 0:
        return apply(P.round_, (input,), {})
    scale = 10.0 ** decimals
    return div(apply(P.round_, (mul(input, scale),), {}), scale)


def trunc(input) -> Tensor:
    return mul(sign(input), floor(abs(input))) if input.dtype.is_floating_point else input


fix = trunc


def frac(input) -> Tensor:
    return sub(input, trunc(input))


def log2(input) -> Tensor:
    return div(log(input), math.log(2.0))


def log10(input) -> Tensor:
    return div(log(input), math.log(10.0))


def exp2(input) -> Tensor:
    if isinstance(input, Tensor) and input.dtype.is_floating_point:
        return pow(2.0, input)
    return pow(2.0, cast(input, get_default_dtype()))


def tan(input) -> Tensor:
    return div(sin(input), cos(input))


def reciprocal(input) -> Tensor:
    return div(1.0, input)


def square(input) -> Tensor:
    return mul(input, input)


def isfinite(input) -> Tensor:
    if not input.dtype.is_floating_point:
        return ones_like_bool(input)
    return logical_not(logical_or(isnan(input), isinf(input)))


def ones_like_bool(x: Tensor) -> Tensor:
    return apply(P.full, (), {"shape": tuple(x.shape), "value": True, "dtype": bool_})


def nan_to_num(input, nan=0.0, posinf=None, neginf=None) -> Tensor:
    finfo = np.finfo(input.dtype.np) if input.dtype.is_floating_point else None
    if finfo is None:
        return input
    posinf = float(finfo.max) if posinf is None else posinf
    neginf = float(finfo.min) if neginf is None else neginf
    x = where(isnan(input), nan, input)
    x = where(logical_and(isinf(x), gt(x, 0)), posinf, x)
    return where(logical_and(isinf(x), lt(x, 0)), neginf, x)


def clamp(input, min=None, max=None, *, out=None) -> Tensor:  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    x = input
    # where-based so the gradient is 1 on the boundary, as PyTorch
    if min is not None:
        x = where(lt(x, min), cast(to_tensor(min, x.dtype), promote(x, min)) if isinstance(min, Tensor) else min, x)
    if max is not None:
        x = where(gt(x, max), max, x)
    return _out(x, out)


clip = clamp


def clamp_min(input, min) -> Tensor:  # noqa: A002
    return clamp(input, min=min)


def clamp_max(input, max) -> Tensor:  # noqa: A002
    return clamp(input, max=max)


def maximum(input, other) -> Tensor:
    return _binary(P.maximum, input, other)


def minimum(input, other) -> Tensor:
    return _binary(P.minimum, input, other)


fmax, fmin = maximum, minimum


def where(condition, input=None, other=None) -> Tensor:
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cond = to_tensor(condition)
    if cond.dtype is not bool_:
        cond = cast(cond, bool_) if cond.dtype.category == 0 else ne(cond, 0)
    dt = promote(input, other)
    a, b = (cast(x, dt) if isinstance(x, Tensor) else const(x, dt) for x in (input, other))
    if _explicit(a, b) or tuple(cond.shape) != tuple(a.shape) or tuple(a.shape) != tuple(b.shape):
        shape = _broadcast_or_raise("where", (cond, a, b))
        if _explicit(a, b, cond):
            cond, a, b = (broadcast_to(t, shape) for t in (cond, a, b))
    return apply(P.where, (cond, a, b), {})


def lerp(input, end, weight) -> Tensor:
    return add(input, mul(weight, sub(end, input)))


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    return add(input, mul(div(tensor1, tensor2), value))


# ----------------------------------------------------------------- comparisons
def _compare(prim):
    def fn(input, other) -> Tensor:
        return _binary(prim, input, other)
    fn.__name__ = prim.name
    return fn


eq = _compare(P.eq)
ne = _compare(P.ne)
lt = _compare(P.lt)
le = _compare(P.le)
gt = _compare(P.gt)
ge = _compare(P.ge)
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _to_bool(x) -> Tensor:
    x = to_tensor(x)
    return x if x.dtype is bool_ else ne(x, 0)


def logical_and(input, other) -> Tensor:
    return _binary(P.logical_and, _to_bool(input), _to_bool(other), dtype=bool_)


def logical_or(input, other) -> Tensor:
    return _binary(P.logical_or, _to_bool(input), _to_bool(other), dtype=bool_)


def logical_xor(input, other) -> Tensor:
    return _binary(P.logical_xor, _to_bool(input), _to_bool(other), dtype=bool_)


def logical_not(input) -> Tensor:
    return apply(P.logical_not, (_to_bool(input),), {})


def bitwise_not(input) -> Tensor:
    if input.dtype is bool_:
        return logical_not(input)
    return sub(neg(input), 1)


def equal(input, other) -> bool:
    return tuple(input.shape) == tuple(other.shape) and bool(all(eq(input, other)).item())


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(np.allclose(input.numpy(), other.numpy(), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    return _wrap(np.isclose(input.numpy(), to_tensor(other).numpy(), rtol=rtol, atol=atol, equal_nan=equal_nan))


# ----------------------------------------------------------------- matmul
def matmul(input, other, *, out=None) -> Tensor:
    a, b = input, other
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul(): argument 'other' must be Tensor, not {type(b).__name__}")
    if _state.autocast_dtype is not None:  # ember.amp.autocast: matmul runs in the low precision
        a, b = _state.autocast_hook("lower", a, b)
    elif _state.tracer is None and out is None and not (_state.grad_enabled and (a.requires_grad or b.requires_grad)):
        ad, bd = a._data, b._data
        if ad.dtype is bd.dtype and ad.ndim and bd.ndim:
            # hot path: numpy's matmul has torch.matmul's semantics (1-D, batched, broadcast)
            try:
                res = np.matmul(ad, bd)
            except ValueError:
                pass  # the general path below explains the error
            else:
                return _wrap(res if type(res) is np.ndarray else np.asarray(res))
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} != {b.dtype.name}")
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) == 0 or len(sb) == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {len(sa)}D and {len(sb)}D")
    # 1-D operands become matrices and the added dim is dropped afterwards
    squeeze_front = len(sa) == 1
    squeeze_back = len(sb) == 1
    if squeeze_front:
        a = reshape(a, (1,) + sa)
    if squeeze_back:
        b = reshape(b, sb + (1,))
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa[-1] != sb[-2]:
        from ._dispatch import user_frame
        where_ = user_frame()
        raise RuntimeError(f"matmul: cannot multiply {fmt_shape(input.shape)} by {fmt_shape(other.shape)} "
                           f"({input.dtype.name}): inner dimensions {sa[-1]} and {sb[-2]} differ"
                           + (f"\n  at {where_}" if where_ else ""))
    try:
        batch = broadcast_shapes(sa[:-2], sb[:-2])
    except ShapeError:
        from ._dispatch import user_frame
        where_ = user_frame()
        raise RuntimeError(f"matmul: batch dimensions of {fmt_shape(input.shape)} and {fmt_shape(other.shape)} "
                           f"({input.dtype.name}) do not broadcast" + (f"\n  at {where_}" if where_ else "")) from None
    if len(sa) > 2 or len(sb) > 2:
        if tuple(sa[:-2]) != batch:
            a = broadcast_to(a, batch + sa[-2:])
        if tuple(sb[:-2]) != batch:
            if len(sb) == 2 and not _explicit(b) and len(sa) > 2:
                # [..., M, K] @ [K, N]: one big GEMM over the folded batch
                m = apply(P.matmul, (reshape(a, (-1, sa[-1])), b), {})
                res = reshape(m, batch + (sa[-2], sb[-1]))
                return _out(_squeeze_matmul(res, squeeze_front, squeeze_back), out)
            b = broadcast_to(b, batch + sb[-2:])
    res = apply(P.matmul, (a, b), {})
    return _out(_squeeze_matmul(res, squeeze_front, squeeze_back), out)


def _squeeze_matmul(res: Tensor, front: bool, back: bool) -> Tensor:
    shape = tuple(res.shape)
    if back:
        shape = shape[:-1]
    if front:
        shape = shape[:-2] + shape[-1:] if back is False else shape[:-1]
    return reshape(res, shape) if (front or back) else res


def mm(input, mat2) -> Tensor:
    if len(input.shape) != 2 or len(mat2.shape) != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {fmt_shape(input.shape)} and {fmt_shape(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input, mat2) -> Tensor:
    if len(input.shape) != 3 or len(mat2.shape) != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {fmt_shape(input.shape)} and {fmt_shape(mat2.shape)}")
    return matmul(input, mat2)


def dot(input, other) -> Tensor:
    if len(input.shape) != 1 or len(other.shape) != 1:
        raise RuntimeError("1D tensors expected, but got "
                           f"{len(input.shape)}D and {len(other.shape)}D tensors")
    return matmul(input, other)


def mv(input, vec) -> Tensor:
    return matmul(input, vec)


def outer(input, vec2) -> Tensor:
    return mul(reshape(input, (-1, 1)), reshape(vec2, (1, -1)))


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    prod_ = matmul(mat1, mat2)
    if alpha != 1:
        prod_ = mul(prod_, alpha)
    return add(mul(input, beta) if beta != 1 else input, prod_)


def einsum(equation: str, *operands) -> Tensor:
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if builtins.any(_explicit(x) for x in operands):
        raise NotImplementedError("einsum with autograd is not supported yet; use matmul/permute/sum")
    return _wrap(np.asarray(np.einsum(equation, *[x._data for x in operands])))


# ----------------------------------------------------------------- reductions
def norm_dims(dim, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (int(dim),)
    out = []
    for d in dim:
        d = int(d)
        if not (-builtins.max(ndim, 1) <= d < builtins.max(ndim, 1)):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-builtins.max(ndim, 1)}, {builtins.max(ndim, 1) - 1}], but got {d})")
        out.append(d % builtins.max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out} appears multiple times in the list of dims")
    return tuple(sorted(out)) if ndim else ()


def norm_dim(dim: int, ndim: int) -> int:
    n = builtins.max(ndim, 1)
    if not (-n <= dim < n):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def sum(input, dim=None, keepdim: bool = False, *, dtype: DType | None = None) -> Tensor:  # noqa: A001
    if dim is None and dtype is None and isinstance(input, Tensor) and input._value is None and \
            _state.autocast_dtype is None and input._data.dtype.kind == "f":
        # hot path: a full float reduction (loss.sum())
        return apply(P.sum_, (input,), {"dims": tuple(range(input._data.ndim)), "keepdim": False})
    x = to_tensor(input)
    if _state.autocast_dtype is not None:  # ember.amp.autocast: reductions run in float32
        x, = _state.autocast_hook("fp32", x)
    if dtype is not None:
        x = cast(x, dtype)
    elif x.dtype.category < 2:
        x = cast(x, int64)
    return apply(P.sum_, (x,), {"dims": norm_dims(dim, len(x.shape)), "keepdim": bool(keepdim)})


def prod(input, dim=None, keepdim: bool = False, *, dtype: DType | None = None) -> Tensor:
    x = to_tensor(input)
    if dtype is not None:
        x = cast(x, dtype)
    elif x.dtype.category < 2:
        x = cast(x, int64)
    return apply(P.prod, (x,), {"dims": norm_dims(dim, len(x.shape)) if dim is not None else tuple(range(len(x.shape))),
                                "keepdim": bool(keepdim)})


def _count(shape, dims) -> list:
    return [shape[d] for d in dims]


def count_of(sizes, dtype: DType):
    """The product of ``sizes`` as an int, or, when some size is symbolic (a traced batch dimension),
    as a 0-d ``dtype`` tensor computed from the sizes at run time."""
    static, out = 1, None
    for n in sizes:
        if isinstance(n, int):
            static *= n
        else:
            size = apply(P.full, (), {"shape": (), "value": n, "dtype": dtype})
            out = size if out is None else mul(out, size)
    if out is None:
        return static
    return mul(out, float(static)) if static != 1 else out


def divide_by_count(s: Tensor, sizes) -> Tensor:
    """Divide by the product of reduced sizes; symbolic sizes become graph values."""
    static = 1
    for n in sizes:
        if isinstance(n, int):
            static *= n
    out = div(s, float(static)) if static != 1 else s
    for n in sizes:
        if not isinstance(n, int):
            out = div(out, apply(P.full, (), {"shape": (), "value": n, "dtype": out.dtype}))
    return out


def mean(input, dim=None, keepdim: bool = False, *, dtype: DType | None = None) -> Tensor:
    x = to_tensor(input)
    if _state.autocast_dtype is not None:  # ember.amp.autocast: reductions run in float32
        x, = _state.autocast_hook("fp32", x)
    if dtype is not None:
        x = cast(x, dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {SCALAR_TYPE_NAMES[x.dtype]}")
    dims = norm_dims(dim, len(x.shape))
    s = apply(P.sum_, (x,), {"dims": dims, "keepdim": bool(keepdim)})
    return divide_by_count(s, _count(x.shape, dims))


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    x = to_tensor(input)
    if isinstance(dim, bool) and unbiased is None:
        unbiased, dim = dim, None
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = norm_dims(dim, len(x.shape))
    mu = mean(x, dims, keepdim=True)
    d = sub(x, mu)
    s = sum(mul(d, d), dims, keepdim=keepdim)
    sizes = _count(x.shape, dims)
    if correction == 0:
        return divide_by_count(s, sizes)
    n = count_of(sizes, s.dtype)
    if isinstance(n, int):
        return div(s, float(builtins.max(n - correction, 0)))
    return div(s, maximum(sub(n, float(correction)), 0.0))  # a symbolic (traced) reduced size


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def amax(input, dim=(), keepdim: bool = False) -> Tensor:
    dims = norm_dims(dim if dim != () else None, len(input.shape))
    return apply(P.amax, (input,), {"dims": dims, "keepdim": bool(keepdim)})


def amin(input, dim=(), keepdim: bool = False) -> Tensor:
    dims = norm_dims(dim if dim != () else None, len(input.shape))
    return apply(P.amin, (input,), {"dims": dims, "keepdim": bool(keepdim)})


def _minmax(input, dim, keepdim, other, which):
    from . import _containers
    MinMaxResult = _containers.max if which == "max" else _containers.min
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return (maximum if which == "max" else minimum)(input, other)
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError(f"{which}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return (amax if which == "max" else amin)(input)
    d = norm_dim(dim, len(input.shape))
    idx = apply(P.argmax if which == "max" else P.argmin, (input,), {"dim": d, "keepdim": True})
    if len(input.shape) == 0:
        return MinMaxResult(input, reshape(idx, ()))
    # values gathered at the indices: the gradient flows to the chosen element only, as PyTorch
    values = apply(P.gather, (input, idx), {"dim": d})
    if not keepdim:
        values, idx = squeeze(values, d), squeeze(idx, d)
    return MinMaxResult(values, idx)


def max(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    return _minmax(input, dim, keepdim, other, "max")


def min(input, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    return _minmax(input, dim, keepdim, other, "min")


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return apply(P.argmax, (reshape(input, (-1,)),), {"dim": 0, "keepdim": False})
    return apply(P.argmax, (input,), {"dim": norm_dim(dim, len(input.shape)), "keepdim": bool(keepdim)})


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return apply(P.argmin, (reshape(input, (-1,)),), {"dim": 0, "keepdim": False})
    return apply(P.argmin, (input,), {"dim": norm_dim(dim, len(input.shape)), "keepdim": bool(keepdim)})


def all(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    b = _to_bool(input)
    dims = norm_dims(dim, len(b.shape))
    return cast(apply(P.amin, (cast(b, _u8()),), {"dims": dims, "keepdim": bool(keepdim)}), bool_)


def any(input, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    b = _to_bool(input)
    dims = norm_dims(dim, len(b.shape))
    if b.numel() == 0:
        return apply(P.full, (), {"shape": tuple(1 if i in dims else s for i, s in enumerate(b.shape)) if keepdim
                                  else tuple(s for i, s in enumerate(b.shape) if i not in dims),
                                  "value": False, "dtype": bool_})
    return cast(apply(P.amax, (cast(b, _u8()),), {"dims": dims, "keepdim": bool(keepdim)}), bool_)


def _u8():
    from ember.ir.types import uint8
    return uint8


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    dims = norm_dims(dim, len(input.shape))
    m = detach(amax(input, dims, keepdim=True))
    m = where(isinf(m), 0.0, m)
    s = log(sum(exp(sub(input, m)), dims, keepdim=True))
    out = add(s, m)
    if not keepdim:
        out = reshape(out, tuple(d for i, d in enumerate(out.shape) if i not in dims))
    return out


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    x = input if dtype is None else cast(input, dtype)
    if p in ("fro", 2, 2.0, None):
        return _root_at_zero_safe(sum(mul(x, x), dim, keepdim), sqrt)
    if p in (float("inf"), "inf"):
        return amax(abs(x), dim if dim is not None else (), keepdim)
    if p in (float("-inf"),):
        return amin(abs(x), dim if dim is not None else (), keepdim)
    if p == 1:
        return sum(abs(x), dim, keepdim)
    if p == 0:
        return sum(cast(ne(x, 0), x.dtype), dim, keepdim)
    return _root_at_zero_safe(sum(pow(abs(x), p), dim, keepdim), lambda t: pow(t, 1.0 / p))


def _root_at_zero_safe(s: Tensor, root) -> Tensor:
    """``root(s)`` whose gradient is 0 where ``s == 0`` (PyTorch's norm), instead of 0 * inf = nan."""
    if not _explicit(s):
        return root(s)
    zero = eq(s, 0)
    return where(zero, 0.0, root(where(zero, 1.0, s)))


def cumsum(input, dim, *, dtype=None) -> Tensor:
    x = input if dtype is None else cast(input, dtype)
    d = norm_dim(dim, len(x.shape))
    n = x.shape[d]
    # lower-triangular matmul keeps it differentiable and traceable for modest sizes
    tri = const_array(np.tril(np.ones((n, n), dtype=x.dtype.np)))
    moved = movedim(x, d, -1)
    return movedim(matmul(moved, transpose(tri, 0, 1)), -1, d)


def const_array(arr: np.ndarray) -> Tensor:
    if _state.tracer is not None:
        return apply(P.constant, (), {"value": arr})
    return _wrap(arr)


# ----------------------------------------------------------------- shape ops
def _resolve_shape(shape, numel_in, in_shape) -> tuple:
    shape = tuple(int(s) if isinstance(s, (int, np.integer)) else s for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        known = 1
        syms = []
        for s in shape:
            if s == -1:
                continue
            if isinstance(s, int):
                known *= s
            else:
                syms.append(s)
        if numel_in is not None:
            if known == 0 or numel_in % known:
                raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel_in}")
            return tuple(numel_in // known if s == -1 else s for s in shape)
        # symbolic input: divide symbols out, then the static part
        in_static, in_syms = 1, []
        for s in in_shape:
            (in_syms.append(s) if not isinstance(s, int) else None)
            in_static *= s if isinstance(s, int) else 1
        for s in syms:
            if s in in_syms:
                in_syms.remove(s)
            else:
                raise RuntimeError(f"cannot infer -1 in {list(shape)} from symbolic shape {fmt_shape(in_shape)}")
        if in_static % builtins.max(known, 1) or len(in_syms) > 1:
            raise RuntimeError(f"cannot infer -1 in {list(shape)} from symbolic shape {fmt_shape(in_shape)}")
        fill = in_static // known if not in_syms else (in_syms[0] if in_static == known else None)
        if fill is None:
            raise RuntimeError(f"cannot infer -1 in {list(shape)} from symbolic shape {fmt_shape(in_shape)}")
        return tuple(fill if s == -1 else s for s in shape)
    return shape


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def numel_of(x: Tensor):
    n = 1
    for d in x.shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def _eager_view(input: Tensor, shape) -> Tensor | None:
    """Hot path of view/reshape: a numpy view when nothing records and no copy is needed."""
    if _state.tracer is not None or input._value is not None or (_state.grad_enabled and input.requires_grad):
        return None
    try:
        arr = input._data.reshape(shape, copy=False)
    except (ValueError, TypeError):
        return None  # the general path copies or explains the error
    out = _wrap(arr)
    out._version = input._version
    out._base = input if input._base is None else input._base
    return out


def reshape(input, shape) -> Tensor:
    fast = _eager_view(input, shape)
    if fast is not None:
        return fast
    in_shape = tuple(input.shape)
    shape = _resolve_shape(tuple(shape), numel_of(input), in_shape)
    if shape == in_shape:
        return input if not _explicit(input) else _view(P.reshape, input, {"shape": shape})
    for s in shape:
        if isinstance(s, int) and s < -1:
            raise RuntimeError(f"invalid shape dimension {s}")
    return _view(P.reshape, input, {"shape": shape})


def _view(prim, x: Tensor, attrs: dict) -> Tensor:
    out = apply(prim, (x,), attrs)
    if out._value is None:
        out._version = x._version
        out._base = x if x._base is None else x._base
    return out


def view(input, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], DType):
        dt = shape[0]
        if dt.itemsize != input.dtype.itemsize:
            raise RuntimeError("view(dtype) with a different element size is not supported")
        return _wrap(input._data.view(dt.np))
    shape = _shape_args(shape)
    fast = _eager_view(input, shape)
    if fast is not None:
        return fast
    if input._value is None and not input._data.flags.c_contiguous and input._data.size > 1:
        # PyTorch refuses views of non-contiguous tensors that would need a copy
        try:
            np.reshape(input._data, _resolve_shape(shape, input._data.size, input._data.shape), copy=False)
        except (ValueError, TypeError):
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.") from None
    return reshape(input, shape)


def permute(input, *dims) -> Tensor:
    dims = _shape_args(dims)
    nd = len(input.shape)
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
                           f"to len(dims) = {len(dims)}")
    dims = tuple(norm_dim(int(d), nd) for d in dims)
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute(): duplicate dims are not allowed: {list(dims)}")
    if dims == tuple(range(nd)):
        return input
    return _view(P.permute, input, {"dims": dims})


def transpose(input, dim0: int, dim1: int) -> Tensor:
    nd = len(input.shape)
    if nd == 0:
        return input
    d0, d1 = norm_dim(dim0, nd), norm_dim(dim1, nd)
    if d0 == d1:
        return input
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _view(P.permute, input, {"dims": tuple(dims)})


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    nd = len(input.shape)
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return input if nd < 2 else transpose(input, 0, 1)


def movedim(input, source, destination) -> Tensor:
    nd = len(input.shape)
    src = [norm_dim(s, nd) for s in ([source] if isinstance(source, int) else source)]
    dst = [norm_dim(s, nd) for s in ([destination] if isinstance(destination, int) else destination)]
    order = [d for d in range(nd) if d not in src]
    for s, d in sorted(zip(dst, src)):
        order.insert(s, d)
    return permute(input, order)


moveaxis = movedim


def squeeze(input, dim=None) -> Tensor:
    shape = tuple(input.shape)
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = norm_dims(dim, len(shape))
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return reshape(input, new) if new != shape else input


def unsqueeze(input, dim: int) -> Tensor:
    shape = tuple(input.shape)
    d = norm_dim(dim, len(shape) + 1)
    return reshape(input, shape[:d] + (1,) + shape[d:])


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = tuple(input.shape)
    if not shape:
        return reshape(input, (1,))
    s, e = norm_dim(start_dim, len(shape)), norm_dim(end_dim, len(shape))
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    mid = 1
    for d in shape[s:e + 1]:
        if not isinstance(d, int):
            mid = -1
            break
        mid *= d
    return reshape(input, shape[:s] + (mid,) + shape[e + 1:])


def unflatten(input, dim: int, sizes) -> Tensor:
    shape = tuple(input.shape)
    d = norm_dim(dim, len(shape))
    return reshape(input, shape[:d] + tuple(sizes) + shape[d + 1:])


def expand(input, *sizes) -> Tensor:
    sizes = _shape_args(sizes)
    shape = tuple(input.shape)
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({len(shape)})")
    target = []
    for i, s in enumerate(sizes):
        if s == -1:
            if i < lead:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = shape[i - lead]
        elif i >= lead and shape[i - lead] != 1 and shape[i - lead] != s:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({shape[i - lead]}) at non-singleton dimension {i}.  Target sizes: {list(sizes)}."
                               f"  Tensor sizes: {list(shape)}")
        target.append(s)
    return broadcast_to(input, tuple(target))


def expand_as(input, other) -> Tensor:
    return expand(input, *other.shape)


def broadcast_tensors(*tensors):
    shape = _broadcast_or_raise("broadcast_tensors", tensors)
    return tuple(broadcast_to(t, shape) for t in tensors)


def repeat(input, *sizes) -> Tensor:
    sizes = _shape_args(sizes)
    shape = tuple(input.shape)
    if len(sizes) < len(shape):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    shape = (1,) * (len(sizes) - len(shape)) + shape
    x = reshape(input, shape)
    # [a, b] repeated [r, s]: view as [1, a, 1, b], broadcast to [r, a, s, b], reshape to [r*a, s*b]
    inter = []
    for s in shape:
        inter += [1, s]
    x = reshape(x, tuple(inter))
    big = []
    for r, s in zip(sizes, shape):
        big += [r, s]
    x = broadcast_to(x, tuple(big))
    return reshape(x, tuple(r * s for r, s in zip(sizes, shape)))


def tile(input, dims) -> Tensor:
    dims = tuple(dims)
    if len(dims) < len(input.shape):
        dims = (1,) * (len(input.shape) - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats: int, dim=None) -> Tensor:
    if dim is None:
        input, dim = reshape(input, (-1,)), 0
    d = norm_dim(dim, len(input.shape))
    shape = tuple(input.shape)
    x = unsqueeze(input, d + 1)
    x = broadcast_to(x, shape[:d + 1] + (repeats,) + shape[d + 1:])
    return reshape(x, shape[:d] + (shape[d] * repeats,) + shape[d + 1:])


def cat(tensors: Sequence[Tensor], dim: int = 0, *, out=None) -> Tensor:
    tensors = [t for t in tensors if not (len(t.shape) == 1 and t.shape[0] == 0)] or list(tensors[:1])
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    nd = len(tensors[0].shape)
    if nd == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = norm_dim(dim, nd)
    dt = promote(*tensors)
    ts = [cast(t, dt) for t in tensors]
    if len(ts) == 1:
        return ts[0] if not _explicit(ts[0]) else apply(P.concat, tuple(ts), {"dim": d})
    for i, t in enumerate(ts):
        if len(t.shape) != nd or builtins.any(a != b for j, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if j != d):
            raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected size "
                               f"{ts[0].shape[1 if d == 0 else 0]} but got size {t.shape[1 if d == 0 else 0]} "
                               f"for tensor number {i} in the list ({', '.join(fmt_shape(x.shape) for x in ts)}).")
    return _out(apply(P.concat, tuple(ts), {"dim": d}), out)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape0 = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != shape0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape0)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    d = norm_dim(dim, len(shape0) + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    return cat(tensors, 0 if len(tensors[0].shape) == 1 else 1)


def vstack(tensors):
    return cat([reshape(t, (1, -1)) if len(t.shape) == 1 else t for t in tensors], 0)


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    d = norm_dim(dim, len(input.shape))
    return slice_dim(input, d, start, start + length, 1)


def slice_dim(x: Tensor, d: int, start: int, stop: int, step: int = 1) -> Tensor:
    shape = tuple(x.shape)
    if start == 0 and stop == shape[d] and step == 1:
        return x
    starts = tuple(start if i == d else 0 for i in range(len(shape)))
    stops = tuple(stop if i == d else s for i, s in enumerate(shape))
    steps = tuple(step if i == d else 1 for i in range(len(shape)))
    return _view(P.slice_, x, {"starts": starts, "stops": stops, "steps": steps})


def split(tensor, split_size_or_sections, dim: int = 0):
    d = norm_dim(dim, len(tensor.shape))
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and n > 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {d}), but got split_sizes={sizes}")
    out, off = [], 0
    for s in sizes:
        out.append(slice_dim(tensor, d, off, off + s))
        off += s
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = norm_dim(dim, len(input.shape))
    n = input.shape[d]
    size = -(-n // chunks) if n else 0
    return split(input, size, d) if size else (input,)


def tensor_split(input, indices_or_sections, dim=0):
    d = norm_dim(dim, len(input.shape))
    n = input.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    else:
        idx = [0] + list(indices_or_sections) + [n]
        sizes = [builtins.max(0, idx[i + 1] - idx[i]) for i in range(len(idx) - 1)]
    return split(input, sizes, d)


def unbind(input, dim: int = 0):
    d = norm_dim(dim, len(input.shape))
    return tuple(squeeze(s, d) for s in split(input, 1, d))


def flip(input, dims) -> Tensor:
    dims = norm_dims(dims, len(input.shape))
    return _view(P.flip, input, {"dims": dims})


def roll(input, shifts, dims=None) -> Tensor:
    if dims is None:
        flat = reshape(input, (-1,))
        return reshape(roll(flat, shifts, 0), tuple(input.shape))
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    dims = [dims] if isinstance(dims, int) else list(dims)
    x = input
    for s, d in zip(shifts, dims):
        d = norm_dim(d, len(x.shape))
        n = x.shape[d]
        s %= n
        if s:
            x = cat([slice_dim(x, d, n - s, n), slice_dim(x, d, 0, n - s)], d)
    return x


def _zero_of(t) -> "bool | int":
    """A zero that keeps ``t``'s dtype in ``where`` (False for a bool tensor: 0 would promote it to int64)."""
    return False if t.dtype is bool_ else 0


def tril(input, diagonal: int = 0) -> Tensor:
    r, c = input.shape[-2:]
    mask = const_array(np.tril(np.ones((r, c), dtype=bool), diagonal))
    return where(mask, input, _zero_of(input))


def triu(input, diagonal: int = 0) -> Tensor:
    r, c = input.shape[-2:]
    mask = const_array(np.triu(np.ones((r, c), dtype=bool), diagonal))
    return where(mask, input, _zero_of(input))


def diag(input, diagonal: int = 0) -> Tensor:
    if len(input.shape) == 1:
        n = input.shape[0] + builtins.abs(diagonal)
        eye_ = const_array(np.eye(n, k=diagonal, dtype=bool))
        row = broadcast_to(reshape(input, (1, -1)), (n, input.shape[0]))
        padded = pad_dims(row, n, diagonal)
        return where(eye_, padded, 0)
    return _wrap(np.ascontiguousarray(np.diagonal(input._data, offset=diagonal)))


def pad_dims(row, n, diagonal):
    lo = builtins.max(diagonal, 0)
    hi = n - row.shape[1] - lo
    return apply(P.pad, (row,), {"pads": ((0, 0), (lo, hi)), "value": 0})


# ----------------------------------------------------------------- indexing ops
def _check_index_range(name: str, index, size, d: int, exc=RuntimeError) -> None:
    """numpy wraps negative indices silently; PyTorch's index ops refuse them."""
    if index._value is not None or not isinstance(size, int) or index._data.size == 0:
        return
    lo, hi = int(index._data.min()), int(index._data.max())
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise exc(f"{name}(): index {bad} is out of bounds for dimension {d} with size {size}")


def gather(input, dim: int, index, *, sparse_grad=False) -> Tensor:
    d = norm_dim(dim, len(input.shape))
    if index.dtype is not int64:
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {index.dtype.name}")
    _check_index_range("gather", index, input.shape[d] if input.shape else 1, d)
    return apply(P.gather, (input, index), {"dim": d})


def scatter_add(input, dim: int, index, src) -> Tensor:
    d = norm_dim(dim, len(input.shape))
    _check_index_range("scatter_add", index, input.shape[d] if input.shape else 1, d)
    return apply(P.scatter_add, (input, index, cast(src, input.dtype)), {"dim": d})


def index_select(input, dim: int, index) -> Tensor:
    d = norm_dim(dim, len(input.shape))
    if len(index.shape) > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    _check_index_range("index_select", index, input.shape[d] if input.shape else 1, d, IndexError)
    return apply(P.take, (input, cast(index, int64)), {"dim": d})


def index_add(input, dim: int, index, source, *, alpha=1) -> Tensor:
    d = norm_dim(dim, len(input.shape))
    _check_index_range("index_add", index, input.shape[d] if input.shape else 1, d, IndexError)
    src = mul(source, alpha) if alpha != 1 else source
    return apply(P.index_add, (input, cast(index, int64), cast(src, input.dtype)), {"dim": d})


def take(input, index) -> Tensor:
    return apply(P.take, (reshape(input, (-1,)), cast(index, int64)), {"dim": 0})


def masked_fill(input, mask, value) -> Tensor:
    if isinstance(value, Tensor):
        value = cast(value, input.dtype)
    return where(mask, value if isinstance(value, Tensor) else _fill_scalar(value, input.dtype), input)


def _fill_scalar(value, dtype: DType):
    return const(value, dtype)


def masked_select(input, mask) -> Tensor:
    from ._indexing import getitem
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def nonzero(input, *, as_tuple: bool = False):
    if input._value is not None:
        from .jit import TraceError
        raise TraceError("nonzero() has a data-dependent output shape and cannot be captured in a graph")
    idx = np.nonzero(input._data)
    if as_tuple:
        return tuple(_wrap(i.astype(np.int64)) for i in idx)
    return _wrap(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64))


def argwhere(input) -> Tensor:
    return nonzero(input)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    if tensor.dtype is not int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        num_classes = int(tensor._data.max()) + 1 if tensor.numel() else 0
    elif tensor._value is None and tensor.numel() and int(tensor._data.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    if tensor._value is None and tensor.numel() and int(tensor._data.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    classes = const_array(np.arange(num_classes, dtype=np.int64))
    return cast(eq(unsqueeze(tensor, -1), classes), int64)


def bincount(input, weights=None, minlength: int = 0) -> Tensor:
    w = None if weights is None else weights._data
    return _wrap(np.bincount(input._data, weights=w, minlength=minlength))


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    from ._containers import SortResult
    d = norm_dim(dim, len(input.shape))
    arr = input._data
    idx = np.argsort(-arr if descending and arr.dtype != np.bool_ else arr, axis=d, kind="stable")
    if descending and arr.dtype == np.bool_:
        idx = np.flip(np.argsort(arr, axis=d, kind="stable"), d)
    idx_t = _wrap(np.ascontiguousarray(idx.astype(np.int64)))
    return SortResult(gather(input, d, idx_t), idx_t)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(input, dim, descending, stable)[1]


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    from ._containers import TopKResult
    vals, idx = sort(input, dim, descending=largest)
    d = norm_dim(dim, len(input.shape))
    return TopKResult(narrow(vals, d, 0, k), narrow(idx, d, 0, k))


def unique(input, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):  # noqa: A002
    res = np.unique(input._data, return_inverse=return_inverse, return_counts=return_counts)
    if not (return_inverse or return_counts):
        return _wrap(res)
    out = [_wrap(res[0])]
    if return_inverse:
        out.append(_wrap(res[1].reshape(input._data.shape).astype(np.int64)))
    if return_counts:
        out.append(_wrap(res[-1].astype(np.int64)))
    return tuple(out)


# ----------------------------------------------------------------- misc
def detach(input) -> Tensor:
    if input._value is not None:
        return _state.tracer.detach(input)
    # shares memory and the version counter (PyTorch's detach), but is no autograd view:
    # in-place ops on it change the data without touching the original's history
    t = _wrap(input._data)
    t._version = input._version
    return t


def clone(input, *, memory_format=None) -> Tensor:
    if _explicit(input):
        return apply(P.reshape, (input,), {"shape": tuple(input.shape)}) if False else _copy_op(input)
    return _wrap(np.array(input._data, copy=True))


def _copy_op(x: Tensor) -> Tensor:
    # identity with a fresh buffer: a cast to the same dtype is the simplest recorded copy
    if _state.tracer is not None:
        return add(x, 0) if x.dtype is not bool_ else logical_or(x, False)
    out = mul(x, 1) if x.dtype is not bool_ else logical_or(x, False)
    return out


def _out(result: Tensor, out) -> Tensor:
    if out is None:
        return result
    out.resize_(tuple(result.shape)) if tuple(out.shape) != tuple(result.shape) else None
    out.copy_(result)
    return out


def numel(input) -> int:
    return input.numel()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return input.dtype.is_floating_point


def broadcast_shapes_(*shapes):
    from ._tensor import Size
    return Size(broadcast_shapes(*[tuple(s) for s in shapes]))
