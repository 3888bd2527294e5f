"""Relax lowerings of take / index_add / gather / scatter_add.

``index_add`` is ``scatter_elements(reduction="add")`` after flattening the index
and broadcasting it along the other axes; TVM's scatter runs serially, so
duplicate indices accumulate exactly as ``np.add.at``.
"""

from __future__ import annotations

from tvm import relax, te
from tvm import tirx as tir

from ..lower import lowering

R = relax.op


def _normalized(ctx, x_var, idx_var, idx_value, dim):
    """``idx + x.shape[dim]`` where negative: numpy and torch wrap negative indices."""
    itype = idx_value.dtype.name

    def compute(xt, it):
        # the size is read from the TE tensor (not a closure variable): emit_te renames symbolic dims
        size = tir.Cast(itype, xt.shape[dim])
        zero = tir.const(0, itype)
        return te.compute(it.shape, lambda *i: tir.Select(it(*i) < zero, it(*i) + size, it(*i)), name="wrap_index")
    return ctx.emit_te(compute, x_var, idx_var, name="wrap_index")


@lowering("take")
def _take(ctx, args, attrs, node):
    x, idx = args
    dim = attrs["dim"]
    idx = _normalized(ctx, x, idx, node.inputs[1], dim)
    return R.take(x, idx, axis=dim)


@lowering("gather")
def _gather(ctx, args, attrs, node):
    x, idx = args
    dim = attrs["dim"]
    idx = _normalized(ctx, x, idx, node.inputs[1], dim)
    return R.gather_elements(x, idx, axis=dim)


@lowering("scatter_add")
def _scatter_add(ctx, args, attrs, node):
    x, idx, src = args
    dim = attrs["dim"]
    idx = _normalized(ctx, x, idx, node.inputs[1], dim)
    return R.scatter_elements(x, idx, src, axis=dim, reduction="add")


@lowering("index_add")
def _index_add(ctx, args, attrs, node):
    x, idx, src = args
    dim = attrs["dim"]
    xshape = node.inputs[0].shape
    ishape = node.inputs[1].shape
    count = 1
    for d in ishape:
        count = count * d if isinstance(d, int) and isinstance(count, int) else f"({count})*({d})"
    idx = _normalized(ctx, x, idx, node.inputs[1], dim)
    # src: x.shape[:dim] + idx.shape + x.shape[dim+1:] -> x.shape[:dim] + (count,) + x.shape[dim+1:]
    full_shape = tuple(xshape[:dim]) + (count,) + tuple(xshape[dim + 1:])
    src = ctx.bb.emit(R.reshape(src, ctx.shape_expr(full_shape)))
    flat = ctx.bb.emit(R.reshape(idx, ctx.shape_expr([count])))
    lone = tuple(1 if i != dim else count for i in range(len(xshape)))
    flat = ctx.bb.emit(R.reshape(flat, ctx.shape_expr(lone)))
    flat = ctx.bb.emit(R.broadcast_to(flat, ctx.shape_expr(full_shape)))
    return R.scatter_elements(x, flat, src, axis=dim, reduction="add")
