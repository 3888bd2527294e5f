"""Movement primitives: reshape, permute, broadcast, slice, flip, concat, pad.

Attributes are canonical (non-negative dims, full per-dimension slice specs); the
front end turns PyTorch's flexible arguments into them.
"""

from __future__ import annotations

from ..registry import MOVEMENT, primitive
from ..types import ShapeError, TensorType, fmt_shape
from ._rules import check_dims, numel, same_type
from .creation import full


def _reshape_type(x: TensorType, *, shape) -> TensorType:
    shape = tuple(shape)
    for d in shape:
        if isinstance(d, int) and d < 0:
            raise ShapeError(f"target shape {fmt_shape(shape)} has a negative dimension")
    n_in, n_out = numel(x.shape), numel(shape)
    if n_in is not None and n_out is not None and n_in != n_out:
        raise ShapeError(f"cannot reshape a tensor of shape {fmt_shape(x.shape)} ({n_in} elements) "
                         f"into {fmt_shape(shape)} ({n_out} elements)")
    return TensorType(x.dtype, shape)


def _permute_type(x: TensorType, *, dims) -> TensorType:
    if sorted(dims) != list(range(x.ndim)):
        raise ShapeError(f"dims {list(dims)} are not a permutation of a rank-{x.ndim} tensor's dimensions")
    return TensorType(x.dtype, tuple(x.shape[d] for d in dims))


def _broadcast_type(x: TensorType, *, shape) -> TensorType:
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ShapeError(f"cannot broadcast {fmt_shape(x.shape)} to the lower-rank {fmt_shape(shape)}")
    for i, d in enumerate(x.shape):
        if d != 1 and d != shape[lead + i]:
            raise ShapeError(f"cannot broadcast {fmt_shape(x.shape)} to {fmt_shape(shape)} "
                             f"(dimension {i} is {d}, target {shape[lead + i]})")
    return TensorType(x.dtype, shape)


def slice_len(dim, start, stop, step):
    if start == 0 and step == 1 and stop == dim:
        return dim
    if not all(isinstance(v, int) for v in (dim, start, stop)):
        raise ShapeError(f"cannot slice symbolic dimension {dim} with [{start}:{stop}:{step}]")
    if not (0 <= start <= dim and start <= stop <= dim and step >= 1):
        raise ShapeError(f"slice [{start}:{stop}:{step}] is out of range for a dimension of size {dim}")
    return len(range(start, stop, step))


def _slice_type(x: TensorType, *, starts, stops, steps) -> TensorType:
    if not (len(starts) == len(stops) == len(steps) == x.ndim):
        raise ShapeError(f"slice spec has {len(starts)} entries for a rank-{x.ndim} tensor")
    return TensorType(x.dtype, tuple(slice_len(*a) for a in zip(x.shape, starts, stops, steps)))


def _flip_type(x: TensorType, *, dims) -> TensorType:
    check_dims(dims, x.ndim)
    return x


def _concat_type(*xs: TensorType, dim) -> TensorType:
    if not xs:
        raise ShapeError("needs at least one tensor")
    first = xs[0]
    if not (0 <= dim < first.ndim):
        raise ShapeError(f"dimension {dim} out of range for rank-{first.ndim} tensors")
    total = 0
    for x in xs:
        if x.dtype is not first.dtype:
            raise ShapeError(f"dtypes differ: {', '.join(t.dtype.name for t in xs)}")
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != dim):
            raise ShapeError("shapes " + ", ".join(fmt_shape(t.shape) for t in xs)
                             + f" differ outside dimension {dim}")
        d = x.shape[dim]
        total = d if total == 0 else (total + d if isinstance(total, int) and isinstance(d, int)
                                      else f"{total}+{d}")
    return TensorType(first.dtype, first.shape[:dim] + (total,) + first.shape[dim + 1:])


def _pad_type(x: TensorType, *, pads, value) -> TensorType:
    if len(pads) != x.ndim:
        raise ShapeError(f"pads has {len(pads)} entries for a rank-{x.ndim} tensor")
    out = []
    for d, (lo, hi) in zip(x.shape, pads):
        if lo < 0 or hi < 0:
            raise ShapeError(f"negative padding {list(pads)} (crop with slice instead)")
        out.append(d if lo == hi == 0 else d + lo + hi if isinstance(d, int) else f"{d}+{lo + hi}")
    return TensorType(x.dtype, tuple(out))


reshape = primitive("reshape", _reshape_type, kind=MOVEMENT, attrs=("shape",))
permute = primitive("permute", _permute_type, kind=MOVEMENT, attrs=("dims",))
broadcast_to = primitive("broadcast_to", _broadcast_type, kind=MOVEMENT, attrs=("shape",))
slice_ = primitive("slice", _slice_type, kind=MOVEMENT, attrs=("starts", "stops", "steps"))
flip = primitive("flip", _flip_type, kind=MOVEMENT, attrs=("dims",))
concat = primitive("concat", _concat_type, kind=MOVEMENT, variadic=True, attrs=("dim",))
pad = primitive("pad", _pad_type, kind=MOVEMENT, attrs=("pads", "value"),
                doc="constant padding, (lo, hi) per dimension")


# ------------------------------------------------------------- gradient rules
reshape.def_vjp(lambda g, ins, out, needs, attrs: (reshape(g, shape=tuple(ins[0].shape)),))
flip.def_vjp(lambda g, ins, out, needs, attrs: (flip(g, dims=attrs["dims"]),))


@permute.def_vjp
def _permute_vjp(g, ins, out, needs, attrs):
    dims = attrs["dims"]
    inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
    return (permute(g, dims=inverse),)


def sum_to_shape(g, shape):
    """Sum a broadcast cotangent back down to ``shape`` (the one place this happens)."""
    from .reduction import sum_  # reduction imports movement
    shape = tuple(shape)
    lead = len(g.shape) - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and g.shape[lead + i] != 1)
    if not dims:
        return g
    g = sum_(g, dims=dims, keepdim=False)
    return reshape(g, shape=shape) if tuple(g.shape) != shape else g


broadcast_to.def_vjp(lambda g, ins, out, needs, attrs: (sum_to_shape(g, ins[0].shape),))


def _zeros_shape(like, shape):
    return full(shape=tuple(shape), value=0, dtype=like.dtype)


@slice_.def_vjp
def _slice_vjp(g, ins, out, needs, attrs):
    (x,) = ins
    pads = []
    for axis, (dim, start, stop, step) in enumerate(zip(x.shape, attrs["starts"], attrs["stops"], attrs["steps"])):
        n = g.shape[axis]
        if step > 1 and n > 1:
            # interleave step-1 zeros after each element: [n] -> [n, step] -> [n*step] -> crop
            shape = tuple(g.shape)
            col = reshape(g, shape=shape[:axis + 1] + (1,) + shape[axis + 1:])
            zeros = _zeros_shape(g, shape[:axis + 1] + (step - 1,) + shape[axis + 1:])
            wide = concat(col, zeros, dim=axis + 1)
            flat = reshape(wide, shape=shape[:axis] + (n * step,) + shape[axis + 1:])
            keep = (n - 1) * step + 1
            g = slice_(flat, starts=(0,) * len(shape), steps=(1,) * len(shape),
                       stops=tuple(keep if i == axis else d for i, d in enumerate(flat.shape)))
            n = keep
        if start == 0 and n == dim:
            pads.append((0, 0))
        else:
            pads.append((start, dim - start - n))
    if any(p != (0, 0) for p in pads):
        g = pad(g, pads=tuple(pads), value=0)
    return (g,)


@concat.def_vjp
def _concat_vjp(g, ins, out, needs, attrs):
    dim = attrs["dim"]
    grads, offset = [], 0
    for x, need in zip(ins, needs):
        size = x.shape[dim]
        if need:
            starts = tuple(offset if i == dim else 0 for i in range(len(g.shape)))
            stops = tuple(offset + size if i == dim else d for i, d in enumerate(g.shape))
            grads.append(slice_(g, starts=starts, stops=stops, steps=(1,) * len(g.shape)))
        else:
            grads.append(None)
        offset = offset + size if isinstance(size, int) and isinstance(offset, int) else None
    return tuple(grads)


@pad.def_vjp
def _pad_vjp(g, ins, out, needs, attrs):
    (x,) = ins
    starts = tuple(lo for lo, _ in attrs["pads"])
    stops = tuple(lo + d if isinstance(d, int) else d for (lo, _), d in zip(attrs["pads"], x.shape))
    return (slice_(g, starts=starts, stops=stops, steps=(1,) * len(x.shape)),)


__all__ = ["reshape", "permute", "broadcast_to", "slice_", "flip", "concat", "pad",
           "sum_to_shape", "same_type"]
