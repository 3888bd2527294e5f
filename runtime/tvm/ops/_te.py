"""Small TE helpers for lowerings whose semantics no Relax op matches exactly."""

from __future__ import annotations

from typing import Callable

from tvm import te
from tvm import tirx as tir

from ..lower import LowerCtx


def const(value, dtype: str) -> tir.PrimExpr:
    return tir.const(value, dtype)


def ewise(ctx: LowerCtx, name: str, scalar_fn: Callable, args: list, shape) -> object:
    """An elementwise kernel: ``out[i] = scalar_fn(*(a[i] for a in args))`` (one TIR PrimFunc)."""
    def compute(*tensors):
        return te.compute(tensors[0].shape, lambda *i: scalar_fn(*[t(*i) for t in tensors]), name=name)
    return ctx.emit_te(compute, *args, name=name)
