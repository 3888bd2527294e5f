"""Packed functions ember registers with TVM, called from compiled modules by name.

Compiled modules refer to them as strings (``call_dps_packed("ember.matmul", ...)``),
so importing ``ember.runtime.tvm`` registers them before any module, built now or
loaded from the cache, runs. Arguments follow TVM's destination-passing style:
inputs, then the output buffer to fill. Buffers arrive as ``tvm.runtime.Tensor``
and are viewed as numpy arrays without copying (DLPack).
"""

from __future__ import annotations

import json

import numpy as np
import tvm

from ember.ir.types import from_numpy
from ember.runtime.kernels import KERNELS

MATMUL_FN = "ember.matmul"
RANDOM_FN = "ember.random"


def _np(t) -> np.ndarray:
    return np.from_dlpack(t)


@tvm.register_global_func(MATMUL_FN, override=True)
def _matmul(a, b, trans_a, trans_b, out) -> None:
    """``out = op(a) @ op(b)`` on numpy's BLAS; ``op`` transposes the last two dims when asked."""
    x, y, out_arr = _np(a), _np(b), _np(out)
    while x.ndim > 2 and x.shape[0] == 1:  # numpy's 2-D path goes straight to BLAS; its batched loop does not
        x, y, out_arr = x[0], y[0], out_arr[0]
    if trans_a:
        x = np.swapaxes(x, -1, -2)
    if trans_b:
        y = np.swapaxes(y, -1, -2)
    np.matmul(x, y, out=out_arr)


@tvm.register_global_func(RANDOM_FN, override=True)
def _random(kind, params, uid, out) -> None:
    """Fill ``out`` with ember's kernel for ``kind`` on ember's default generator."""
    attrs = json.loads(params)
    shape, dtype = tuple(int(d) for d in out.shape), np.dtype(str(out.dtype))
    values = KERNELS[kind](shape=shape, dtype=from_numpy(dtype), **attrs)
    if out.device.dlpack_device_type() == tvm.cpu().dlpack_device_type():
        _np(out)[...] = values
    else:  # a GPU buffer: draw on the host (ember's generator), copy over
        out.copyfrom(np.ascontiguousarray(values))
