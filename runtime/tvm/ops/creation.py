"""Relax lowerings of constants, fills and random draws.

Random draws are opaque calls (``call_dps_packed``) to a packed function that runs
ember's own numpy kernel on ember's default generator, so a compiled graph draws
from the same stream, in the same order, as eager execution and the interpreter
(``ember.manual_seed`` reproduces both). Each call carries a unique id so Relax
never merges two draws with equal arguments as common subexpressions.
"""

from __future__ import annotations

import json

import numpy as np
import tvm
from tvm import relax, te
from tvm import tirx as tir

from ..extern import RANDOM_FN
from ..lower import lowering, tvm_dtype

R = relax.op


def _always(node, ctx) -> bool:
    return True


# constants are opaque: FuseTIR takes no tensor constants inside a Primitive function, so a constant in a
# fused group is bound in main and passed in as a parameter (what TVM's own FuseOps does)
@lowering("constant", opaque=_always)
def _constant(ctx, args, attrs, node):
    value = np.asarray(attrs["value"])
    dt = tvm_dtype(node.output.dtype)
    if value.ndim == 0 or value.size == 1:
        return relax.const(value.reshape(()).item(), dt) if value.ndim == 0 else relax.const(value, dt)
    return relax.const(np.ascontiguousarray(value), dt)


@lowering("full")
def _full(ctx, args, attrs, node):
    dt = tvm_dtype(node.output.dtype)
    value = attrs["value"]
    shape = ctx.shape(node.output.shape)
    if isinstance(value, str):  # the runtime size of a symbolic dimension
        fill = _dim_value(ctx, value, dt)
        return R.full(relax.ShapeExpr(shape), fill, dt)
    if node.output.dtype.name == "bool":
        value = bool(value)
    return R.full(relax.ShapeExpr(shape), relax.const(value, dt), dt)


def _dim_value(ctx, dim: str, dt: str):
    """A 0-d tensor holding the runtime size of symbolic dimension ``dim``."""
    src = ctx.symbol_sources.get(dim)
    if src is not None:  # read it off a tensor's shape inside the kernel
        tensor, axis = src
        return ctx.emit_te(lambda t: te.compute((), lambda: tir.Cast(dt, t.shape[axis]), name="dim_size"),
                           tensor, name="dim_size")
    # a compound dimension (B+2) or one no tensor carries: a shape value turned into a tensor
    size = ctx.bb.emit(R.shape_to_tensor(relax.ShapeExpr([ctx.dim(dim)])))
    return ctx.bb.emit(R.reshape(R.astype(size, dt), relax.ShapeExpr([])))


@lowering("uniform", "normal", "randint", opaque=_always)
def _random(ctx, args, attrs, node):
    params = {k: v for k, v in attrs.items() if k not in ("shape", "dtype")}
    out = ctx.tensor_type(node.output.type)
    return R.call_dps_packed(RANDOM_FN, [tvm.ir.StringImm(node.op), tvm.ir.StringImm(json.dumps(params)),
                                         relax.prim_value(ctx.uid())], out)
