"""Relax lowering of matmul.

On the CPU (option ``matmul="blas"``, the default for ``llvm``) matmul is an opaque
``call_dps_packed`` to ``ember.matmul``, numpy's BLAS, while TVM compiles and
fuses everything around it; a transpose of the last two dims feeding it is folded
into the call (BLAS reads transposed operands for free), so the backward pass's
``x.T @ g`` and ``g @ w.T`` never materialize a transpose. With ``matmul="tvm"``
(the default for GPUs) it is ``R.matmul``, scheduled by TVM. See ``build.py`` for
why BLAS on the CPU.
"""

from __future__ import annotations

from tvm import relax

from ..extern import MATMUL_FN
from ..lower import lowering

R = relax.op


def _uses_blas(node, ctx) -> bool:
    return ctx.options.get("matmul", "blas") == "blas"


def _look_through_transpose(ctx, value, expr):
    """If ``value`` is a transpose of its last two dims, return (its source, True)."""
    prod, scope = ctx.producers.get(value.name, (None, None))
    if prod is None or prod.op != "permute" or prod.subgraph is not None:
        return expr, False
    dims = tuple(prod.attrs["dims"])
    n = len(dims)
    if n < 2 or dims != tuple(range(n - 2)) + (n - 1, n - 2):
        return expr, False
    src = scope.get(prod.inputs[0].name)
    return (src, True) if src is not None else (expr, False)


@lowering("matmul", opaque=_uses_blas)
def _matmul(ctx, args, attrs, node):
    a, b = args
    if not _uses_blas(node, ctx):
        return R.matmul(a, b)
    a, ta = _look_through_transpose(ctx, node.inputs[0], a)
    b, tb = _look_through_transpose(ctx, node.inputs[1], b)
    out = ctx.tensor_type(node.output.type)
    return R.call_dps_packed(MATMUL_FN, [a, b, relax.prim_value(int(ta)), relax.prim_value(int(tb))], out)


def transposed_matmul(ctx, value, node):
    """``permute`` of a BLAS matmul's result over its last two dims, as one BLAS call, or None.

    ``(op(a) @ op(b)).T == op(b).T @ op(a).T``: the weight gradient of a linear layer,
    ``(x.T @ g).T``, becomes ``g.T @ x`` instead of a matmul plus a transpose kernel over the
    whole weight (measured 1.3 ms of a 3.7 ms MLP step). The original call is left for dead-code
    elimination when nothing else reads it.
    """
    dims = tuple(node.attrs["dims"])
    n = len(dims)
    if n < 2 or dims != tuple(range(n - 2)) + (n - 1, n - 2):
        return None
    prod, scope = ctx.producers.get(value.name, (None, None))
    if prod is None or prod.op != "matmul" or prod.subgraph is not None or scope is not ctx.scope \
            or not _uses_blas(prod, ctx) or len(prod.inputs[0].shape) != n or len(prod.inputs[1].shape) != n:
        return None
    ea, eb = scope.get(prod.inputs[0].name), scope.get(prod.inputs[1].name)
    if ea is None or eb is None:
        return None
    a, ta = _look_through_transpose(ctx, prod.inputs[0], ea)
    b, tb = _look_through_transpose(ctx, prod.inputs[1], eb)
    out = ctx.tensor_type(node.output.type)
    return R.call_dps_packed(MATMUL_FN, [b, a, relax.prim_value(int(not tb)), relax.prim_value(int(not ta))], out)
