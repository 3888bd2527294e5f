"""Elementwise primitives: meaning, type rule and gradient rule side by side.

Operands of binary/ternary ops have identical shapes and dtypes: the front end
inserts explicit ``broadcast_to`` and ``cast`` nodes, so each rule here stays a
one-liner and reductions back to an input's shape happen in one place (the VJP of
``broadcast_to``).
"""

from __future__ import annotations

import math

from ..registry import ELEMENTWISE, primitive
from ..types import ShapeError, TensorType, bool_
from ._rules import float_unary, same_type, to_bool, unary
from .creation import full, full_like
from .movement import broadcast_to


def _unary(name, rule=unary, saves="", doc=""):
    return primitive(name, rule, kind=ELEMENTWISE, saves=saves, doc=doc)


def _binary(name, rule=same_type, saves="", doc=""):
    return primitive(name, rule, kind=ELEMENTWISE, saves=saves, doc=doc)


# ----------------------------------------------------------------- unary math
neg = _unary("neg")
abs_ = _unary("abs", saves="inputs")
exp = _unary("exp", float_unary, saves="output")
log = _unary("log", float_unary, saves="inputs")
log1p = _unary("log1p", float_unary, saves="inputs")
expm1 = _unary("expm1", float_unary, saves="output")
sqrt = _unary("sqrt", float_unary, saves="output")
rsqrt = _unary("rsqrt", float_unary, saves="output")
sin = _unary("sin", float_unary, saves="inputs")
cos = _unary("cos", float_unary, saves="inputs")
tanh = _unary("tanh", float_unary, saves="output")
sigmoid = _unary("sigmoid", float_unary, saves="output")
relu = _unary("relu", saves="output")
erf = _unary("erf", float_unary, saves="inputs")
sign = _unary("sign")
floor = _unary("floor")
ceil = _unary("ceil")
round_ = _unary("round", doc="round half to even, as torch.round")

# -------------------------------------------------------------- unary -> bool
logical_not = _unary("logical_not", lambda t: TensorType(bool_, t.shape))
isnan = _unary("isnan", lambda t: TensorType(bool_, t.shape))
isinf = _unary("isinf", lambda t: TensorType(bool_, t.shape))

# ---------------------------------------------------------------- binary math
add = _binary("add")
sub = _binary("sub")
mul = _binary("mul", saves="inputs")
div = _binary("div", saves="inputs")
pow_ = _binary("pow", saves="inputs")
maximum = _binary("maximum", saves="inputs")
minimum = _binary("minimum", saves="inputs")
remainder = _binary("remainder", saves="inputs", doc="Python-style modulo (sign of divisor)")
floor_divide = _binary("floor_divide")

# -------------------------------------------------------------- binary -> bool
eq = _binary("eq", to_bool)
ne = _binary("ne", to_bool)
lt = _binary("lt", to_bool)
le = _binary("le", to_bool)
gt = _binary("gt", to_bool)
ge = _binary("ge", to_bool)


def _logical_type(a: TensorType, b: TensorType) -> TensorType:
    if a.dtype is not bool_ or b.dtype is not bool_:
        raise ShapeError(f"expects bool operands, got {a.dtype.name} and {b.dtype.name}")
    return to_bool(a, b)


logical_and = _binary("logical_and", _logical_type)
logical_or = _binary("logical_or", _logical_type)
logical_xor = _binary("logical_xor", _logical_type)


def _where_type(c: TensorType, a: TensorType, b: TensorType) -> TensorType:
    if c.dtype is not bool_:
        raise ShapeError(f"condition must be bool, got {c.dtype.name}")
    if c.shape != a.shape:
        raise ShapeError(f"condition shape {list(c.shape)} differs from operand shape {list(a.shape)}")
    return same_type(a, b)


where = primitive("where", _where_type, kind=ELEMENTWISE, saves="inputs", nondiff_inputs=(0,))


# ------------------------------------------------------------- gradient rules
# boolean results and integer floor division have no gradient (as in PyTorch)
for _p in (logical_not, isnan, isinf, floor_divide, eq, ne, lt, le, gt, ge,
           logical_and, logical_or, logical_xor):
    _p.mark_nondifferentiable()


def _zeros(x):
    return full_like(x, 0)


def _zero_operand(x):
    """A zero shaped like ``x`` for use as an operand (never as a returned gradient): a broadcast 0-d
    zero, i.e. a zero-stride view in eager mode, so no full-size allocation and no layout mismatch
    with channels-last operands."""
    return broadcast_to(full(shape=(), value=0, dtype=x.dtype), shape=tuple(x.shape))


def _scale(x, c):
    return mul(x, full_like(x, c))


neg.def_vjp(lambda g, ins, out, needs, attrs: (neg(g),))
abs_.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, sign(ins[0])),))
exp.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, out),))
log.def_vjp(lambda g, ins, out, needs, attrs: (div(g, ins[0]),))
log1p.def_vjp(lambda g, ins, out, needs, attrs: (div(g, add(ins[0], full_like(g, 1))),))
expm1.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, add(out, full_like(g, 1))),))
sqrt.def_vjp(lambda g, ins, out, needs, attrs: (div(g, _scale(out, 2)),))
rsqrt.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, _scale(mul(out, mul(out, out)), -0.5)),))
sin.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, cos(ins[0])),))
cos.def_vjp(lambda g, ins, out, needs, attrs: (neg(mul(g, sin(ins[0]))),))
tanh.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, sub(full_like(out, 1), mul(out, out))),))
sigmoid.def_vjp(lambda g, ins, out, needs, attrs: (mul(g, mul(out, sub(full_like(out, 1), out))),))
@relu.def_vjp
def _relu_vjp(g, ins, out, needs, attrs):
    # g * sign(out) (out >= 0, so sign is exactly 0 or 1) instead of a select against a zero tensor:
    # numpy's where branches per element (~10x slower on a random mask) and a full-size zero
    # operand costs an allocation and, against channels-last outputs, a layout mismatch. Equal to
    # torch's threshold_backward for finite g (-0.0 where g < 0 is masked out).
    return (mul(g, sign(out)),)
erf.def_vjp(lambda g, ins, out, needs, attrs: (
    mul(g, _scale(exp(neg(mul(ins[0], ins[0]))), 2.0 / math.sqrt(math.pi))),))
for _p in (sign, floor, ceil, round_):
    # piecewise constant: zero gradient, as PyTorch
    _p.def_vjp(lambda g, ins, out, needs, attrs: (_zeros(g),))

add.def_vjp(lambda g, ins, out, needs, attrs: (g, g))
sub.def_vjp(lambda g, ins, out, needs, attrs: (g, neg(g) if needs[1] else None))


@mul.def_vjp
def _mul_vjp(g, ins, out, needs, attrs):
    a, b = ins
    if a is b and needs[0]:
        # x * x (a variance, a square): one product 2g * x, instead of g * x accumulated twice. When g is
        # a broadcast per-channel value (a batch-norm variance's gradient) the doubling stays per channel
        # and the full-size add disappears.
        return (mul(add(g, g), a), None)
    return (mul(g, b) if needs[0] else None, mul(g, a) if needs[1] else None)


@div.def_vjp
def _div_vjp(g, ins, out, needs, attrs):
    a, b = ins
    ga = div(g, b) if needs[0] else None
    gb = neg(div(mul(g, a), mul(b, b))) if needs[1] else None
    return ga, gb


@pow_.def_vjp
def _pow_vjp(g, ins, out, needs, attrs):
    a, b = ins
    zero = _zero_operand(a)
    ga = gb = None
    if needs[0]:
        # d/da a**b = b * a**(b-1), defined as 0 where b == 0 (as PyTorch)
        d = mul(b, pow_(a, sub(b, full_like(b, 1))))
        ga = mul(g, where(eq(b, zero), zero, d))
    if needs[1]:
        # d/db a**b = a**b * log(a), defined as 0 where a == 0 and b >= 0
        d = mul(pow_(a, b), log(a))
        gb = mul(g, where(logical_and(eq(a, zero), ge(b, zero)), zero, d))
    return ga, gb


def _minmax_vjp(select_a):
    def rule(g, ins, out, needs, attrs):
        # ties split the gradient evenly, as PyTorch's maximum/minimum do
        a, b = ins
        zero = _zero_operand(g)
        half = _scale(g, 0.5)
        ga = where(eq(a, b), half, where(select_a(a, b), g, zero)) if needs[0] else None
        gb = where(eq(a, b), half, where(select_a(a, b), zero, g)) if needs[1] else None
        return ga, gb
    return rule


maximum.def_vjp(_minmax_vjp(gt))
minimum.def_vjp(_minmax_vjp(lt))


@remainder.def_vjp
def _remainder_vjp(g, ins, out, needs, attrs):
    a, b = ins
    return (g if needs[0] else None,
            neg(mul(g, floor(div(a, b)))) if needs[1] else None)


@where.def_vjp
def _where_vjp(g, ins, out, needs, attrs):
    c, _, _ = ins
    zero = _zero_operand(g)
    return (None, where(c, g, zero) if needs[1] else None,
            where(c, zero, g) if needs[2] else None)
