"""Relax lowerings of the elementwise primitives.

Relax ops are used where their semantics equal numpy's (they print readably in
``--show relax``); a TE kernel where they do not: NaN propagation of
maximum/minimum/relu/sign (TVM's ``max`` drops NaN), ``expm1`` (no Relax op) and
casts to bool (``!= 0``). Operands already share shape and dtype (ember makes
broadcasting and casting explicit), so no lowering broadcasts.
"""

from __future__ import annotations

from tvm import relax
from tvm import tirx as tir

from ..lower import lowering, tvm_dtype
from ._te import const, ewise

R = relax.op

_UNARY = {
    "neg": R.negative, "abs": R.abs, "exp": R.exp, "log": R.log, "sqrt": R.sqrt, "rsqrt": R.rsqrt,
    "sin": R.sin, "cos": R.cos, "tanh": R.tanh, "sigmoid": R.sigmoid, "erf": R.erf,
    "isnan": R.isnan, "isinf": R.isinf,
}
_BINARY = {
    "add": R.add, "sub": R.subtract, "mul": R.multiply,
    "remainder": R.floor_mod, "floor_divide": R.floor_divide,
    "eq": R.equal, "ne": R.not_equal, "lt": R.less, "le": R.less_equal, "gt": R.greater,
    "ge": R.greater_equal, "logical_and": R.logical_and, "logical_or": R.logical_or,
    "logical_xor": R.logical_xor,
}


def _is_float(node) -> bool:
    return node.inputs[0].dtype.is_floating_point


def _unary(op):
    return lambda ctx, args, attrs, node: op(args[0])


def _binary(op):
    return lambda ctx, args, attrs, node: op(args[0], args[1])


for _name, _op in _UNARY.items():
    lowering(_name)(_unary(_op))
for _name, _op in _BINARY.items():
    lowering(_name)(_binary(_op))


@lowering("div")
def _div(ctx, args, attrs, node):
    if _is_float(node):
        return R.divide(*args)
    # numpy's true division of integers, then the graph's (integer) result type
    f64 = [R.astype(a, "float64") for a in args]
    return R.astype(R.divide(*f64), tvm_dtype(node.output.dtype))


@lowering("pow")
def _pow(ctx, args, attrs, node):
    if _is_float(node):
        return R.power(*args)
    # integer powers through float64 (exact below 2**53), rounded back
    f64 = [R.astype(a, "float64") for a in args]
    return R.astype(R.round(R.power(*f64)), tvm_dtype(node.output.dtype))


@lowering("floor", "ceil", "round")
def _rounding(ctx, args, attrs, node):
    if not _is_float(node):
        return args[0]  # integers are already whole
    return {"floor": R.floor, "ceil": R.ceil, "round": R.round}[node.op](args[0])  # round: half to even


@lowering("log1p")
def _log1p(ctx, args, attrs, node):
    return ewise(ctx, "log1p", tir.log1p, args, node.output.shape)


@lowering("expm1")
def _expm1(ctx, args, attrs, node):
    dt = tvm_dtype(node.output.dtype)
    one = const(1, dt)

    def expm1(x):
        # Kahan's trick: exact to rounding near 0, where exp(x) - 1 cancels
        u = tir.exp(x)
        um1 = u - one
        accurate = tir.Select(um1 == const(-1, dt), const(-1, dt), um1 * x / tir.log(u))
        return tir.Select(u == one, x, tir.Select(tir.isinf(u), u, accurate))
    return ewise(ctx, "expm1", expm1, args, node.output.shape)


def _nan_aware(pick):
    """maximum/minimum that propagate NaN as numpy does (TVM's max/min drop it)."""
    def scalar(a, b):
        return tir.Select(tir.isnan(a), a, tir.Select(tir.isnan(b), b, pick(a, b)))
    return scalar


@lowering("maximum", "minimum")
def _extremum(ctx, args, attrs, node):
    pick = tir.max if node.op == "maximum" else tir.min
    if not _is_float(node):
        return (R.maximum if node.op == "maximum" else R.minimum)(*args)
    return ewise(ctx, node.op, _nan_aware(pick), args, node.output.shape)


@lowering("relu")
def _relu(ctx, args, attrs, node):
    dt = tvm_dtype(node.output.dtype)
    if node.output.dtype.name == "bool":
        return args[0]
    # x < 0 ? 0 : x keeps NaN, as np.maximum(x, 0)
    return ewise(ctx, "relu", lambda x: tir.Select(x < const(0, dt), const(0, dt), x), args, node.output.shape)


@lowering("sign")
def _sign(ctx, args, attrs, node):
    dt = tvm_dtype(node.output.dtype)
    if node.output.dtype.name == "bool":
        return args[0]

    def sign(x):
        zero = const(0, dt)
        neg = const(-1, dt) if node.output.dtype.is_signed else zero
        return tir.Select(x > zero, const(1, dt), tir.Select(x < zero, neg, x))  # NaN and 0 pass through
    return ewise(ctx, "sign", sign, args, node.output.shape)


@lowering("logical_not")
def _logical_not(ctx, args, attrs, node):
    if node.inputs[0].dtype.name == "bool":
        return R.logical_not(args[0])
    dt = tvm_dtype(node.inputs[0].dtype)
    return ewise(ctx, "logical_not", lambda x: x == const(0, dt), args, node.output.shape)


@lowering("where")
def _where(ctx, args, attrs, node):
    return R.where(args[0], args[1], args[2])


@lowering("cast")
def _cast(ctx, args, attrs, node):
    src, dst = node.inputs[0].dtype, attrs["dtype"]
    if src is dst:
        return args[0]
    if dst.name == "bool":
        sdt = tvm_dtype(src)
        return ewise(ctx, "to_bool", lambda x: x != const(0, sdt), args, node.output.shape)
    return R.astype(args[0], tvm_dtype(dst))
