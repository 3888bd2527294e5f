"""NumPy kernels for every primitive, keyed by primitive name.

A kernel takes numpy arrays positionally and the op's attributes as keywords and
returns one array. Eager tensors and the graph interpreter both call these, which
is why a graph run is bit-identical to eager execution.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .random import default_generator

Kernel = Callable[..., np.ndarray]
KERNELS: dict[str, Kernel] = {}


def kernel(name: str):
    def deco(fn: Kernel) -> Kernel:
        KERNELS[name] = fn
        return fn
    return deco


try:  # SciPy's erf is exact and fast; fall back to math.erf when it is absent
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the environment
    _erf_vec = np.vectorize(math.erf, otypes=[np.float64])

    def _erf(x):
        return _erf_vec(x).astype(x.dtype)


# ------------------------------------------------------------------ elementwise
KERNELS.update({
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "log1p": np.log1p,
    "expm1": np.expm1, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "logical_not": np.logical_not, "isnan": np.isnan, "isinf": np.isinf,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "remainder": np.remainder,
    "floor_divide": np.floor_divide, "eq": np.equal, "ne": np.not_equal, "lt": np.less,
    "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
    "where": np.where, "matmul": np.matmul,
})


@kernel("matmul")
def _matmul(a, b):
    out = np.matmul(a, b)
    # ml_dtypes' bfloat16 matmul returns float32; keep the operands' dtype, as the type rule says
    return out if out.dtype == a.dtype else out.astype(a.dtype)


@kernel("rsqrt")
def _rsqrt(x):
    return 1 / np.sqrt(x)


@kernel("sigmoid")
def _sigmoid(x):
    # tanh form: no overflow warning for large |x|, and exact to rounding
    return 0.5 + 0.5 * np.tanh(0.5 * x)


@kernel("relu")
def _relu(x):
    return np.maximum(x, 0)


@kernel("erf")
def _erf_kernel(x):
    return np.asarray(_erf(x), dtype=x.dtype)


@kernel("cast")
def _cast(x, *, dtype):
    return x.astype(dtype.np, copy=False)


# ------------------------------------------------------------------ creation
@kernel("constant")
def _constant(*, value):
    return value


@kernel("full")
def _full(*, shape, value, dtype):
    return np.full(shape, value, dtype=dtype.np)


@kernel("uniform")
def _uniform(*, shape, low, high, dtype, generator=None):
    gen = (generator or default_generator).numpy
    rdt = np.float32 if dtype.np == np.float32 else np.float64
    out = gen.random(shape, dtype=rdt)
    if low != 0 or high != 1:
        out = out * rdt(high - low) + rdt(low)
    return out.astype(dtype.np, copy=False)


@kernel("normal")
def _normal(*, shape, mean, std, dtype, generator=None):
    gen = (generator or default_generator).numpy
    rdt = np.float32 if dtype.np == np.float32 else np.float64
    out = gen.standard_normal(shape, dtype=rdt)
    if std != 1 or mean != 0:
        out = out * rdt(std) + rdt(mean)
    return out.astype(dtype.np, copy=False)


@kernel("randint")
def _randint(*, shape, low, high, dtype, generator=None):
    gen = (generator or default_generator).numpy
    return gen.integers(low, high, size=shape, dtype=np.int64).astype(dtype.np, copy=False)


# ------------------------------------------------------------------ reductions
# ufunc.reduce directly: np.sum & co. add several microseconds of Python dispatch per call
@kernel("sum")
def _sum(x, *, dims, keepdim):
    if len(dims) > 1 and x.size >= 16384:  # below, the layout bookkeeping costs more than it saves
        out = _sum_rows_first(x, dims)
        if out is not None:
            return out.reshape(tuple(1 if i in dims else n for i, n in enumerate(x.shape))) if keepdim else out
    return np.add.reduce(x, axis=dims, keepdims=keepdim, dtype=x.dtype)


def _sum_rows_first(x, dims):
    """Sum over ``dims`` by adding whole contiguous rows first, or None when the layout doesn't allow it.

    A sum over (0, 2, 3) of an NCHW batch (batch-norm statistics and gradients, conv bias gradients)
    is a numpy multi-axis reduction over strided axes, ~5x slower than viewing the memory as
    (reduced, kept) rows, adding the rows (one vectorized pass), and reducing the small remainder.
    The axes are taken in memory order, so channels-last arrays (conv outputs) qualify too.
    """
    order = sorted(range(x.ndim), key=lambda i: -x.strides[i]) if x.ndim else []
    xt = x.transpose(order)
    if not xt.flags.c_contiguous:
        return None
    dt = sorted(order.index(d) for d in dims)
    lead = _leading_run(dt)
    if lead == 0 or lead == x.ndim:
        return None
    out = _add_rows(xt.reshape(-1, math.prod(xt.shape[lead:])), x.dtype).reshape(xt.shape[lead:])
    if lead < len(dt):
        out = np.add.reduce(out, axis=tuple(d - lead for d in dt[lead:]), dtype=x.dtype)
    kept = [a for i, a in enumerate(order) if i not in dt]          # original axis of each result axis
    return out.transpose(sorted(range(len(kept)), key=lambda i: kept[i]))


def _add_rows(m, dtype):
    """Sum of the rows of a contiguous 2-D array. Short rows (a channels-last batch: N*H*W rows of C)
    are added as blocks of rows first: numpy pays a per-row cost, so 4096 rows of 32 floats take
    ~100 us one by one and ~15 us as 64 rows of 2048 then 64 of 32 (also more accurate)."""
    r, n = m.shape
    if n < 512 and r >= 64:
        split = next((d for d in range(int(r ** 0.5), 1, -1) if r % d == 0), 1)
        if split > 1:
            m = np.add.reduce(m.reshape(split, -1), axis=0, dtype=dtype).reshape(-1, n)
    return np.add.reduce(m, axis=0, dtype=dtype)


def _leading_run(dims) -> int:
    """How many of the sorted ``dims`` are the leading axes 0, 1, 2, ..."""
    n = 0
    while n < len(dims) and dims[n] == n:
        n += 1
    return n


@kernel("prod")
def _prod(x, *, dims, keepdim):
    return np.multiply.reduce(x, axis=dims, keepdims=keepdim, dtype=x.dtype)


@kernel("amax")
def _amax(x, *, dims, keepdim):
    return np.maximum.reduce(x, axis=dims, keepdims=keepdim)


@kernel("amin")
def _amin(x, *, dims, keepdim):
    return np.minimum.reduce(x, axis=dims, keepdims=keepdim)


@kernel("argmax")
def _argmax(x, *, dim, keepdim):
    if x.ndim == 0:
        return np.zeros((), np.int64)
    return np.argmax(x, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)


@kernel("argmin")
def _argmin(x, *, dim, keepdim):
    if x.ndim == 0:
        return np.zeros((), np.int64)
    return np.argmin(x, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)


# ------------------------------------------------------------------ movement
@kernel("reshape")
def _reshape(x, *, shape):
    return np.reshape(x, shape)


@kernel("permute")
def _permute(x, *, dims):
    return np.transpose(x, dims)


@kernel("broadcast_to")
def _broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


@kernel("slice")
def _slice(x, *, starts, stops, steps):
    return x[tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))]


@kernel("flip")
def _flip(x, *, dims):
    return np.flip(x, dims)


@kernel("concat")
def _concat(*xs, dim):
    return np.concatenate(xs, axis=dim)


@kernel("pad")
def _pad(x, *, pads, value):
    out = np.full(tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, pads)), value, dtype=x.dtype)
    out[tuple(slice(lo, lo + d) for d, (lo, _) in zip(x.shape, pads))] = x
    return out


# ------------------------------------------------------------------ indexing
@kernel("take")
def _take(x, idx, *, dim):
    return np.take(x, idx, axis=dim)


@kernel("index_add")
def _index_add(x, idx, src, *, dim):
    out = np.array(x, copy=True)
    np.add.at(out, (slice(None),) * dim + (idx,), src)
    return out


def _open_index(idx, dim):
    """Full index tuple for torch.gather/scatter: idx along dim, aranges elsewhere."""
    nd = idx.ndim
    return tuple(idx if d == dim else np.arange(idx.shape[d]).reshape((-1,) + (1,) * (nd - d - 1))
                 for d in range(nd))


@kernel("gather")
def _gather(x, idx, *, dim):
    return x[_open_index(idx, dim)]


@kernel("scatter_add")
def _scatter_add(x, idx, src, *, dim):
    out = np.array(x, copy=True)
    np.add.at(out, _open_index(idx, dim), src)
    return out


from . import kernels_nn  # noqa: E402,F401  conv/pooling kernels register themselves
