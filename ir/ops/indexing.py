"""Index-driven primitives and their adjoint pairs.

``take`` / ``index_add`` (NumPy ``take`` along a dim, its scatter-add adjoint) and
``gather`` / ``scatter_add`` (PyTorch's same-rank index semantics) are closed under
differentiation: each one's VJP is the other. Embedding, advanced indexing, NLL
and cross entropy are compositions of them.
"""

from __future__ import annotations

from ..registry import MOVEMENT, primitive
from ..types import ShapeError, TensorType, fmt_shape, int32, int64
from .creation import full_like


def _check_index(idx: TensorType) -> None:
    if idx.dtype not in (int64, int32):
        raise ShapeError(f"index must be int64 or int32, got {idx.dtype.name}")


def _take_type(x: TensorType, idx: TensorType, *, dim) -> TensorType:
    _check_index(idx)
    if not (0 <= dim < x.ndim):
        raise ShapeError(f"dimension {dim} out of range for a tensor of shape {fmt_shape(x.shape)}")
    return TensorType(x.dtype, x.shape[:dim] + idx.shape + x.shape[dim + 1:])


def _index_add_type(x: TensorType, idx: TensorType, src: TensorType, *, dim) -> TensorType:
    expect = _take_type(x, idx, dim=dim)
    if src.shape != expect.shape or src.dtype is not x.dtype:
        raise ShapeError(f"source {src} does not match {expect} (x {x}, index {idx}, dim {dim})")
    return x


def _gather_type(x: TensorType, idx: TensorType, *, dim) -> TensorType:
    _check_index(idx)
    if idx.ndim != x.ndim or not (0 <= dim < x.ndim):
        raise ShapeError(f"index {fmt_shape(idx.shape)} must have the rank of input {fmt_shape(x.shape)}"
                         f" and dim {dim} must be in range")
    return TensorType(x.dtype, idx.shape)


def _scatter_add_type(x: TensorType, idx: TensorType, src: TensorType, *, dim) -> TensorType:
    _gather_type(x, idx, dim=dim)
    if src.shape != idx.shape or src.dtype is not x.dtype:
        raise ShapeError(f"source {src} must match index shape {fmt_shape(idx.shape)} and dtype {x.dtype.name}")
    return x


take = primitive("take", _take_type, kind=MOVEMENT, nondiff_inputs=(1,), attrs=("dim",),
                 doc="x.take(idx, dim): output x.shape[:dim] + idx.shape + x.shape[dim+1:]")
index_add = primitive("index_add", _index_add_type, kind=MOVEMENT, nondiff_inputs=(1,), attrs=("dim",),
                      doc="x with src added at take(x, idx, dim)'s positions (duplicates accumulate)")
gather = primitive("gather", _gather_type, kind=MOVEMENT, nondiff_inputs=(1,), attrs=("dim",),
                   doc="torch.gather")
scatter_add = primitive("scatter_add", _scatter_add_type, kind=MOVEMENT, nondiff_inputs=(1,),
                        attrs=("dim",), doc="torch.scatter_add")


@take.def_vjp
def _take_vjp(g, ins, out, needs, attrs):
    x, idx = ins
    return (index_add(full_like(x, 0), idx, g, dim=attrs["dim"]), None)


@index_add.def_vjp
def _index_add_vjp(g, ins, out, needs, attrs):
    _, idx, _ = ins
    return (g if needs[0] else None, None, take(g, idx, dim=attrs["dim"]) if needs[2] else None)


@gather.def_vjp
def _gather_vjp(g, ins, out, needs, attrs):
    x, idx = ins
    return (scatter_add(full_like(x, 0), idx, g, dim=attrs["dim"]), None)


@scatter_add.def_vjp
def _scatter_add_vjp(g, ins, out, needs, attrs):
    _, idx, _ = ins
    return (g if needs[0] else None, None, gather(g, idx, dim=attrs["dim"]) if needs[2] else None)
