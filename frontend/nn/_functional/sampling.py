"""``interpolate`` (nearest, nearest-exact, linear, bilinear): separable gathers and a lerp per spatial axis.

Each axis is resampled by ``index_select`` with precomputed source indices (the ``take``
primitive) and, for the linear modes, a blend with constant weights, so the op traces,
differentiates (the adjoint of ``take`` is ``index_add``) and exports with no new primitive.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _ops as O
from ..._tensor import Tensor


def _out_sizes(in_sizes, size, scale_factor):
    n = len(in_sizes)
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * n
        if len(sizes) != n:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(in_sizes)} and output size of {sizes}. Please provide "
                             "input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) "
                             "format.")
        return [int(s) for s in sizes], [None] * n
    factors = list(scale_factor) if isinstance(scale_factor, (list, tuple)) else [scale_factor] * n
    return [int(math.floor(float(i) * float(f))) for i, f in zip(in_sizes, factors)], [float(f) for f in factors]


def _scale(in_size: int, out_size: int, factor, align_corners: bool) -> float:
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / factor if factor is not None else in_size / out_size


def _resample_axis(x: Tensor, dim: int, out_size: int, factor, mode: str, align_corners: bool) -> Tensor:
    in_size = x.shape[dim]
    if in_size == out_size and mode != "nearest-exact" and factor in (None, 1.0):
        return x
    scale = _scale(in_size, out_size, factor, bool(align_corners))
    dst = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        src = np.minimum(np.floor(dst * scale).astype(np.int64), in_size - 1)
        return O.index_select(x, dim, O.const_array(src))
    if mode == "nearest-exact":
        src = np.minimum(np.floor((dst + 0.5) * scale).astype(np.int64), in_size - 1)
        return O.index_select(x, dim, O.const_array(src))
    src = dst * scale if align_corners else np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0).astype(x.dtype.np)
    shape = [1] * x.ndim
    shape[dim] = out_size
    w1 = O.const_array(lam.reshape(shape))
    w0 = O.const_array((1 - lam).reshape(shape))
    a = O.index_select(x, dim, O.const_array(i0))
    b = O.index_select(x, dim, O.const_array(i1))
    return O.add(O.mul(a, w0), O.mul(b, w1))


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    spatial = input.ndim - 2
    linear_modes = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif mode in linear_modes:
        if linear_modes[mode] != spatial:
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {linear_modes[mode] + 2}D input")
        align_corners = bool(align_corners)
    else:
        raise NotImplementedError(f"interpolate mode {mode!r} is not supported by ember")
    if antialias:
        raise NotImplementedError("antialias=True is not supported by ember")
    out_sizes, factors = _out_sizes(tuple(input.shape[2:]), size, scale_factor)
    if recompute_scale_factor:
        factors = [None] * spatial
    x = input
    for i in range(spatial):
        x = _resample_axis(x, 2 + i, out_sizes[i], factors[i], mode, bool(align_corners))
    return x


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)
