"""Reductions over a set of dimensions (``dims`` sorted, non-negative; ``keepdim``)."""

from __future__ import annotations

from ..registry import REDUCTION, primitive
from ..types import ShapeError, TensorType, int64
from ._rules import check_dims, reduced_shape
from .creation import full_like
from .elementwise import div, eq, logical_and, mul, where
from .movement import broadcast_to, reshape


def _reduce_type(x: TensorType, *, dims, keepdim) -> TensorType:
    check_dims(dims, x.ndim)
    return TensorType(x.dtype, reduced_shape(x.shape, dims, keepdim))


def _arg_type(x: TensorType, *, dim, keepdim) -> TensorType:
    if x.ndim and not (0 <= dim < x.ndim):
        raise ShapeError(f"dimension {dim} out of range for a tensor of rank {x.ndim}")
    if x.ndim == 0:
        return TensorType(int64, ())
    return TensorType(int64, reduced_shape(x.shape, (dim,), keepdim))


sum_ = primitive("sum", _reduce_type, kind=REDUCTION, attrs=("dims", "keepdim"))
prod = primitive("prod", _reduce_type, kind=REDUCTION, saves="inputs", attrs=("dims", "keepdim"))
amax = primitive("amax", _reduce_type, kind=REDUCTION, saves="inputs,output", attrs=("dims", "keepdim"))
amin = primitive("amin", _reduce_type, kind=REDUCTION, saves="inputs,output", attrs=("dims", "keepdim"))
argmax = primitive("argmax", _arg_type, kind=REDUCTION, attrs=("dim", "keepdim"),
                   doc="index of the first maximum along dim")
argmin = primitive("argmin", _arg_type, kind=REDUCTION, attrs=("dim", "keepdim"),
                   doc="index of the first minimum along dim")


argmax.mark_nondifferentiable()
argmin.mark_nondifferentiable()


def expand_back(g, x_shape, dims, keepdim):
    """Broadcast a reduced cotangent back to the shape of the reduced input."""
    if not keepdim:
        g = reshape(g, shape=reduced_shape(x_shape, dims, True))
    return broadcast_to(g, shape=tuple(x_shape))


@sum_.def_vjp
def _sum_vjp(g, ins, out, needs, attrs):
    return (expand_back(g, ins[0].shape, attrs["dims"], attrs["keepdim"]),)


@prod.def_vjp
def _prod_vjp(g, ins, out, needs, attrs):
    # d prod / d x_i = product of the other elements. Dividing out by x_i fails at zeros, so
    # divide the product of the non-zero elements instead: with no zero in the group this is
    # out / x_i; with exactly one zero, that element gets the product of the others and the
    # rest get 0; with two or more zeros everything gets 0 (as PyTorch).
    (x,) = ins
    dims, keepdim = attrs["dims"], attrs["keepdim"]
    zero, one = full_like(x, 0), full_like(x, 1)
    is_zero = eq(x, zero)
    nonzero = where(is_zero, one, x)
    prod_nz = prod(nonzero, dims=dims, keepdim=True)
    zeros_in_group = sum_(where(is_zero, one, zero), dims=dims, keepdim=True)
    ob = broadcast_to(prod_nz, shape=tuple(x.shape))
    nzb = broadcast_to(zeros_in_group, shape=tuple(x.shape))
    others = where(eq(nzb, zero), div(ob, nonzero), where(logical_and(is_zero, eq(nzb, one)), ob, zero))
    return (mul(expand_back(g, x.shape, dims, keepdim), others),)


def _extremum_vjp(g, ins, out, needs, attrs):
    # ties share the gradient evenly, as PyTorch's amax/amin
    (x,) = ins
    dims, keepdim = attrs["dims"], attrs["keepdim"]
    ob = expand_back(out, x.shape, dims, keepdim)
    mask = where(eq(x, ob), full_like(x, 1), full_like(x, 0))
    count = expand_back(sum_(mask, dims=dims, keepdim=keepdim), x.shape, dims, keepdim)
    gb = expand_back(g, x.shape, dims, keepdim)
    return (div(mul(gb, mask), count),)


amax.def_vjp(_extremum_vjp)
amin.def_vjp(_extremum_vjp)
