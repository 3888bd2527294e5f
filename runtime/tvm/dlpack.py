"""Arrays across the ember/TVM boundary: zero-copy through DLPack when TVM accepts the layout.

TVM's ``from_dlpack`` requires C-contiguous data aligned to 64 bytes (its kernels
assume aligned buffers); a numpy view at an odd offset, a transposed view or a
small allocation from numpy's 16-byte-aligned allocator would be refused (older
builds crashed), so ember checks first and copies into an aligned buffer otherwise.
TVM's own outputs are aligned, so a compiled training step's new parameters go
back in next call without a copy.
"""

from __future__ import annotations

import numpy as np
import tvm

ALIGNMENT = 64
_DLPACK_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                        "uint8", "bool")}


def can_share(a: np.ndarray) -> bool:
    """True when TVM can use ``a``'s memory directly."""
    return (a.flags.c_contiguous and a.ctypes.data % ALIGNMENT == 0 and a.dtype in _DLPACK_DTYPES
            and a.size > 0)


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array whose data is 64-byte aligned."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    off = (-buf.ctypes.data) % ALIGNMENT
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def to_tvm(a, device=None) -> "tvm.runtime.Tensor":
    """A TVM tensor over ``a``: shared memory when ``can_share``, else an aligned copy."""
    if isinstance(a, tvm.runtime.Tensor):
        return a
    a = np.asarray(a)
    dev = device or tvm.cpu()
    if dev.dlpack_device_type() != tvm.cpu().dlpack_device_type():
        return tvm.runtime.tensor(np.array(a, order="C", copy=True), dev)
    if can_share(a):
        return tvm.runtime.from_dlpack(a)
    return tvm.runtime.tensor(a if a.flags.c_contiguous else np.array(a, order="C"), dev)  # one copy


def to_numpy(t) -> np.ndarray:
    """A numpy view of a CPU TVM tensor (no copy); GPU tensors are copied to the host."""
    if t.device.dlpack_device_type() != tvm.cpu().dlpack_device_type():
        return t.numpy()
    try:
        return np.from_dlpack(t)
    except (TypeError, BufferError, RuntimeError):
        return t.numpy()
