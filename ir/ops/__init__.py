"""Every primitive of ember, importable by name: ``from ember.ir.ops import add``.

One file per family holds each op's type rule and gradient rule side by side.
"""

from .creation import cast, constant, full, full_like, normal, randint, uniform
from .elementwise import (
    abs_, add, ceil, cos, div, eq, erf, exp, expm1, floor, floor_divide, ge, gt, isinf, isnan,
    le, log, log1p, logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, mul,
    ne, neg, pow_, relu, remainder, round_, rsqrt, sigmoid, sign, sin, sqrt, sub, tanh, where,
)
from .indexing import gather, index_add, scatter_add, take
from .linalg import matmul, transpose_last
from .movement import broadcast_to, concat, flip, pad, permute, reshape, slice_, sum_to_shape
from .reduction import amax, amin, argmax, argmin, prod, sum_
from . import nn  # noqa: F401  conv / pooling primitives
from . import fused as _fused  # noqa: F401  fused groups (formed by ember.passes.fusion)

__all__ = [
    "abs_", "add", "amax", "amin", "argmax", "argmin", "broadcast_to", "cast", "ceil", "concat",
    "constant", "cos", "div", "eq", "erf", "exp", "expm1", "flip", "floor", "floor_divide", "full",
    "full_like", "gather", "ge", "gt", "index_add", "isinf", "isnan", "le", "log", "log1p",
    "logical_and", "logical_not", "logical_or", "logical_xor", "lt", "matmul", "maximum", "minimum",
    "mul", "ne", "neg", "normal", "pad", "permute", "pow_", "prod", "randint", "relu", "remainder",
    "reshape", "round_", "rsqrt", "scatter_add", "sigmoid", "sign", "sin", "slice_", "sqrt", "sub",
    "sum_", "sum_to_shape", "take", "tanh", "transpose_last", "uniform", "where",
]
