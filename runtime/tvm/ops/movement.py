"""Relax lowerings of the movement primitives (shapes may hold symbolic dims)."""

from __future__ import annotations

from tvm import relax

from ..lower import lowering
from .linalg import transposed_matmul

R = relax.op


@lowering("reshape")
def _reshape(ctx, args, attrs, node):
    return R.reshape(args[0], ctx.shape_expr(node.output.shape))


@lowering("permute")
def _permute(ctx, args, attrs, node):
    dims = list(attrs["dims"])
    if dims == sorted(dims):
        return args[0]
    folded = transposed_matmul(ctx, node.inputs[0], node)
    if folded is not None:
        return folded
    return R.permute_dims(args[0], dims)


@lowering("broadcast_to")
def _broadcast_to(ctx, args, attrs, node):
    if tuple(node.inputs[0].shape) == tuple(node.output.shape):
        return args[0]
    return R.broadcast_to(args[0], ctx.shape_expr(node.output.shape))


@lowering("slice")
def _slice(ctx, args, attrs, node):
    axes, begin, end, strides = [], [], [], []
    for axis, (dim, a, b, c) in enumerate(zip(node.inputs[0].shape, attrs["starts"], attrs["stops"],
                                              attrs["steps"])):
        if a == 0 and c == 1 and b == dim:
            continue  # the whole axis (possibly symbolic)
        axes.append(axis)
        begin.append(a)
        end.append(b)
        strides.append(c)
    if not axes:
        return args[0]
    return R.strided_slice(args[0], axes, begin, end, strides, assume_inbound=True)


@lowering("flip")
def _flip(ctx, args, attrs, node):
    x = args[0]
    for d in attrs["dims"]:
        x = ctx.bb.emit(R.flip(x, d))
    return x


@lowering("concat")
def _concat(ctx, args, attrs, node):
    if len(args) == 1:
        return args[0]
    return R.concat(args, axis=attrs["dim"])


@lowering("pad")
def _pad(ctx, args, attrs, node):
    pads = attrs["pads"]
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return args[0]
    width = [p for lo_hi in pads for p in lo_hi]
    return R.nn.pad(args[0], width, "constant", float(attrs["value"]))
