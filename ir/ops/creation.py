"""Ops that create tensors: constants, fills, random draws, and dtype casts."""

from __future__ import annotations

import numpy as np

from ..registry import CREATION, ELEMENTWISE, primitive
from ..types import ShapeError, TensorType, from_numpy
from ._rules import as_dtype


def _shape_attr(shape) -> tuple:
    shape = tuple(shape)
    for d in shape:
        if isinstance(d, int) and d < 0:
            raise ShapeError(f"negative dimension {d} in shape {list(shape)}")
    return shape


def _constant_type(*, value: np.ndarray) -> TensorType:
    return TensorType(from_numpy(value.dtype), tuple(value.shape))


constant = primitive("constant", _constant_type, kind=CREATION, attrs=("value",),
                     doc="a literal tensor held in the graph")


def _fill_type(*, shape, value, dtype) -> TensorType:
    return TensorType(as_dtype(dtype), _shape_attr(shape))


full = primitive("full", _fill_type, kind=CREATION, attrs=("shape", "value", "dtype"),
                 doc="a tensor of one value; shape may hold symbols")


def _random_type(*, shape, dtype, **_) -> TensorType:
    dt = as_dtype(dtype)
    return TensorType(dt, _shape_attr(shape))


uniform = primitive("uniform", _random_type, kind=CREATION, attrs=("shape", "low", "high", "dtype"),
                    doc="i.i.d. uniform draws in [low, high) from ember's generator")
normal = primitive("normal", _random_type, kind=CREATION, attrs=("shape", "mean", "std", "dtype"),
                   doc="i.i.d. normal draws from ember's generator")
randint = primitive("randint", _random_type, kind=CREATION, attrs=("shape", "low", "high", "dtype"),
                    doc="i.i.d. integers in [low, high) from ember's generator")


for _p in (constant, full, uniform, normal, randint):
    _p.mark_nondifferentiable()  # no tensor inputs: nothing to differentiate


def _cast_type(x: TensorType, *, dtype) -> TensorType:
    return TensorType(as_dtype(dtype), x.shape)


cast = primitive("cast", _cast_type, kind=ELEMENTWISE, saves="", attrs=("dtype",),
                 doc="elementwise conversion to another dtype")


@cast.def_vjp
def _cast_vjp(g, ins, out, needs, attrs):
    (x,) = ins
    return (cast(g, dtype=x.dtype) if x.dtype.is_floating_point else None,)


def full_like(x, value) -> object:
    """A tensor shaped and typed like ``x`` filled with ``value`` (used by rules)."""
    return full(shape=tuple(x.shape), value=value, dtype=x.dtype)
