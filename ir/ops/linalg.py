"""Matrix multiplication: ``[..., M, K] @ [..., K, N]`` with equal batch dims.

The front end handles 1-D operands and batch broadcasting by explicit
reshape/broadcast nodes, so the primitive maps one-to-one onto ONNX MatMul, Relax
matmul and a BLAS call.
"""

from __future__ import annotations

from ..registry import LINALG, primitive
from ..types import ShapeError, TensorType, fmt_shape
from .movement import permute


def _matmul_type(a: TensorType, b: TensorType) -> TensorType:
    if a.ndim < 2 or b.ndim < 2 or a.ndim != b.ndim:
        raise ShapeError(f"expects operands of equal rank >= 2, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}")
    if a.dtype is not b.dtype:
        raise ShapeError(f"dtypes differ: {a.dtype.name} @ {b.dtype.name}")
    if a.shape[:-2] != b.shape[:-2]:
        raise ShapeError(f"batch dimensions differ: {fmt_shape(a.shape)} @ {fmt_shape(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"cannot multiply {fmt_shape(a.shape)} by {fmt_shape(b.shape)}: "
                         f"inner dimensions {a.shape[-1]} and {b.shape[-2]} differ")
    return TensorType(a.dtype, a.shape[:-1] + b.shape[-1:])


matmul = primitive("matmul", _matmul_type, kind=LINALG, saves="inputs")


def transpose_last(x):
    n = len(x.shape)
    return permute(x, dims=tuple(range(n - 2)) + (n - 1, n - 2))


@matmul.def_vjp
def _matmul_vjp(g, ins, out, needs, attrs):
    a, b = ins
    # d/db as (g^T a)^T rather than a^T g: the same products, but for nn.Linear's x @ W.T the weight's
    # gradient then comes out row-major like the weight (the transposes cancel), so optimizer updates
    # run over contiguous memory instead of a column-major gradient (graph backends fold the transposes)
    return (matmul(g, transpose_last(b)) if needs[0] else None,
            transpose_last(matmul(transpose_last(g), a)) if needs[1] else None)
