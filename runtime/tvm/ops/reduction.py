"""Relax lowerings of the reductions.

ember's ``dims=()`` reduces nothing (numpy's ``axis=()``) while Relax reads an
empty axis list as "all axes", so that case is the identity. Boolean sum/prod are
any/all, as numpy computes them with ``dtype=bool``.
"""

from __future__ import annotations

from tvm import relax

from ..lower import lowering

R = relax.op
_OPS = {"sum": R.sum, "prod": R.prod, "amax": R.max, "amin": R.min}
_BOOL = {"sum": R.max, "prod": R.min, "amax": R.max, "amin": R.min}


@lowering("sum", "prod", "amax", "amin")
def _reduce(ctx, args, attrs, node):
    (x,) = args
    dims, keepdim = list(attrs["dims"]), attrs["keepdim"]
    if not dims or node.inputs[0].type.ndim == 0:
        return x
    if node.inputs[0].dtype.name == "bool":
        as_int = R.astype(x, "int8")
        return R.astype(_BOOL[node.op](as_int, axis=dims, keepdims=keepdim), "bool")
    return _OPS[node.op](x, axis=dims, keepdims=keepdim)


@lowering("argmax", "argmin")
def _arg(ctx, args, attrs, node):
    (x,) = args
    if node.inputs[0].type.ndim == 0:
        return R.zeros(relax.ShapeExpr([]), "int64")
    op = R.argmax if node.op == "argmax" else R.argmin
    return R.astype(op(x, axis=attrs["dim"], keepdims=attrs["keepdim"]), "int64")
