"""Shared type rules and small helpers used by the op families."""

from __future__ import annotations

from ..types import DType, ShapeError, TensorType, bool_, fmt_shape


def same_type(*ts: TensorType) -> TensorType:
    """All operands share one shape and dtype (broadcasting is explicit in ember)."""
    first = ts[0]
    for t in ts[1:]:
        if t.shape != first.shape:
            raise ShapeError(f"operand shapes differ: {', '.join(fmt_shape(x.shape) for x in ts)} "
                             "(broadcasting must be explicit at this level)")
        if t.dtype is not first.dtype:
            raise ShapeError(f"operand dtypes differ: {', '.join(x.dtype.name for x in ts)}")
    return first


def unary(t: TensorType) -> TensorType:
    return t


def float_unary(t: TensorType) -> TensorType:
    if not t.dtype.is_floating_point:
        raise ShapeError(f"expects a floating-point tensor, got {t.dtype.name}")
    return t


def to_bool(*ts: TensorType) -> TensorType:
    return TensorType(bool_, same_type(*ts).shape)


def check_dims(dims, ndim: int) -> None:
    for d in dims:
        if not (0 <= d < max(ndim, 1)):
            raise ShapeError(f"dimension {d} out of range for a tensor of rank {ndim}")
    if len(set(dims)) != len(dims):
        raise ShapeError(f"dimensions {list(dims)} repeat")


def reduced_shape(shape, dims, keepdim: bool) -> tuple:
    if keepdim:
        return tuple(1 if i in dims else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in dims)


def numel(shape) -> int | None:
    """Element count of a static shape, or None when a dimension is symbolic."""
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def as_dtype(dtype) -> DType:
    if not isinstance(dtype, DType):
        raise ShapeError(f"attribute dtype must be an ember dtype, got {dtype!r}")
    return dtype
