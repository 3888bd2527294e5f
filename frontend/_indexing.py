"""``tensor[index]`` and ``tensor[index] = value`` with PyTorch/numpy semantics.

Plain eager reads and writes go straight to numpy. When autograd or a trace is
watching, basic indexing becomes ``slice``/``reshape`` primitives and advanced
indexing becomes ``take`` (whose gradient is ``index_add``); assignment becomes a
functional update that the tensor then adopts in place.
"""

from __future__ import annotations

import numpy as np

from ember.ir import ops as P
from ember.ir.types import bool_, int64

from . import _state
from ._ops import _explicit, _view, broadcast_to, cast, const, reshape, to_tensor, where
from ._tensor import Tensor, _wrap


def _normalize(idx) -> tuple:
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, list) or (isinstance(i, np.ndarray) and i.dtype != object):
            arr = np.asarray(i)
            if arr.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            i = _wrap(arr.astype(np.int64) if arr.dtype.kind in "iu" else arr)
        elif isinstance(i, Tensor) and i._value is None and len(i.shape) == 0 and i.dtype.category == 1:
            i = int(i._data)
        elif isinstance(i, Tensor) and i.dtype.is_floating_point:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        elif isinstance(i, np.integer):
            i = int(i)
        elif isinstance(i, range):
            i = _wrap(np.arange(i.start, i.stop, i.step, dtype=np.int64))
        out.append(i)
    return tuple(out)


def _expand_ellipsis(idx: tuple, ndim: int) -> tuple:
    consumed = 0
    for i in idx:
        if i is None or i is Ellipsis:
            continue
        if isinstance(i, Tensor) and i.dtype is bool_:
            consumed += max(len(i.shape), 1) if len(i.shape) else 0
        else:
            consumed += 1
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ell == 0:
        return idx + (slice(None),) * (ndim - consumed)
    k = idx.index(Ellipsis)
    return idx[:k] + (slice(None),) * (ndim - consumed) + idx[k + 1:]


def _numpy_index(idx: tuple):
    return tuple(i._data if isinstance(i, Tensor) else i for i in idx)


def _has_advanced(idx: tuple) -> bool:
    return any(isinstance(i, Tensor) for i in idx)


def _check_bounds(idx: tuple, shape) -> None:
    d = 0
    for i in idx:
        if i is None:
            continue
        if isinstance(i, int):
            n = shape[d]
            if isinstance(n, int) and not (-n <= i < n):
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size {n}")
        if isinstance(i, slice) and i.step is not None and i.step <= 0:
            raise ValueError("step must be greater than zero")
        d += 1 if not (isinstance(i, Tensor) and i.dtype is bool_) else max(len(i.shape), 1)


def getitem(x: Tensor, idx) -> Tensor:
    idx = _normalize(idx)
    if x._value is None and not _explicit(x):
        _check_bounds(_expand_ellipsis(idx, x._data.ndim), x._data.shape)
        try:
            arr = x._data[_numpy_index(idx)]
        except IndexError as err:
            msg = str(err).replace(" axis ", " dimension ")
            raise IndexError(f"{msg} (indexing a tensor of shape {list(x.shape)})") from None
        out = _wrap(arr if isinstance(arr, np.ndarray) else np.asarray(arr))
        if not _has_advanced(idx):
            out._version = x._version
            out._base = x if x._base is None else x._base
        return out
    idx = _expand_ellipsis(idx, len(x.shape))
    _check_bounds(idx, tuple(x.shape))
    if _has_advanced(idx):
        return _advanced_get(x, idx)
    return _basic_get(x, idx)


def _basic_get(x: Tensor, idx: tuple) -> Tensor:
    shape = tuple(x.shape)
    starts, stops, steps, out_shape = [], [], [], []
    d = 0
    for i in idx:
        if i is None:
            out_shape.append(1)
            continue
        n = shape[d]
        if isinstance(i, int):
            j = i + n if i < 0 else i
            starts.append(j)
            stops.append(j + 1)
            steps.append(1)
        else:
            if isinstance(n, int):
                a, b, c = i.indices(n)
                b = max(a, b)
                starts.append(a)
                stops.append(b)
                steps.append(c)
                out_shape.append(len(range(a, b, c)))
            else:
                if i != slice(None):
                    raise IndexError(f"cannot slice symbolic dimension {n} with {i}")
                starts.append(0)
                stops.append(n)
                steps.append(1)
                out_shape.append(n)
        d += 1
    out = x
    if tuple(starts) != (0,) * len(shape) or tuple(stops) != shape or any(s != 1 for s in steps):
        out = _view(P.slice_, x, {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)})
    if tuple(out_shape) != tuple(out.shape):
        out = reshape(out, tuple(out_shape))
    return out


def _linear_index(shape: tuple, idx: tuple) -> np.ndarray:
    """Flat positions selected by ``idx`` (eager: numpy computes them once)."""
    if any(not isinstance(d, int) for d in shape):
        from .jit import TraceError
        raise TraceError(f"indexing with tensors on a tensor of symbolic shape {list(shape)} is not supported; "
                         "index a statically shaped tensor or use index_select/gather")
    positions = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    return positions[_numpy_index(idx)]


def _advanced_get(x: Tensor, idx: tuple) -> Tensor:
    tensors = [i for i in idx if isinstance(i, Tensor)]
    if all(t._value is None for t in tensors):
        lin = _linear_index(tuple(x.shape), idx)
        flat = reshape(x, (-1,))
        from ._ops import const_array
        return apply_take(flat, const_array(lin), 0)
    # traced index tensors: support one integer index tensor among slices (x[:, idx], x[idx])
    if len(tensors) == 1 and tensors[0].dtype is not bool_ and None not in idx:
        dim = next(k for k, i in enumerate(idx) if isinstance(i, Tensor))
        rest = tuple(slice(None) if isinstance(i, Tensor) else i for i in idx)
        base = _basic_get(x, rest) if any(not (isinstance(i, slice) and i == slice(None)) for i in rest) else x
        return apply_take(base, cast(idx[dim], int64), dim)
    if all(isinstance(i, Tensor) and i.dtype is not bool_ for i in idx[:len(tensors)]) and \
            all(isinstance(i, slice) and i == slice(None) for i in idx[len(tensors):]):
        # x[i0, i1, ...]: linearize the leading advanced dims with traced arithmetic
        from . import _ops
        shape = tuple(x.shape)
        k = len(tensors)
        lin = None
        for d, t in enumerate(tensors):
            t = cast(t, int64)
            t = _ops.where(_ops.lt(t, 0), _ops.add(t, shape[d]), t)
            lin = t if lin is None else _ops.add(_ops.mul(lin, shape[d]), t)
        merged = reshape(x, (-1,) + shape[k:])
        return apply_take(merged, lin, 0)
    from .jit import TraceError
    raise TraceError("this combination of traced index tensors is not supported in a graph; "
                     "use index_select, gather or a single index tensor")


def apply_take(x: Tensor, idx: Tensor, dim: int) -> Tensor:
    from ._dispatch import apply
    return apply(P.take, (x, idx), {"dim": dim})


# ----------------------------------------------------------------- assignment
def setitem(x: Tensor, idx, value) -> None:
    idx = _normalize(idx)
    if not isinstance(value, Tensor) and not isinstance(value, (int, float, bool)):
        value = to_tensor(value, x.dtype)
    tracked = x._value is not None or _state.tracer is not None or \
        (isinstance(value, Tensor) and value._value is not None) or \
        (_state.grad_enabled and (x.requires_grad or (isinstance(value, Tensor) and value.requires_grad)))
    if not tracked:
        if x._base is not None and not x._data.flags.writeable:
            raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to "
                               "tensor refer to a single memory location (the tensor is an expanded view)")
        _check_bounds(_expand_ellipsis(idx, x._data.ndim), x._data.shape)
        v = value._data if isinstance(value, Tensor) else value
        try:
            x._data[_numpy_index(idx)] = v
        except ValueError as err:
            raise RuntimeError(f"index_put: cannot assign a value of shape {list(np.shape(v))} to the indexed "
                               f"region of a tensor of shape {list(x.shape)} ({err})") from None
        x._version[0] += 1
        return
    from ._tensor_methods import inplace
    from ._ops import const_array

    def functional(base: Tensor) -> Tensor:
        lin = _linear_index(tuple(base.shape), _expand_ellipsis(idx, len(base.shape)))
        v = cast(value, base.dtype) if isinstance(value, Tensor) else const(value, base.dtype)
        try:
            v = broadcast_to(v, lin.shape) if tuple(v.shape) != lin.shape else v
        except Exception:  # noqa: BLE001
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(v.shape)} cannot be broadcast to "
                               f"indexing result of shape {list(lin.shape)}") from None
        flat = reshape(base, (-1,))
        lin_flat = lin.reshape(-1)
        v = reshape(v, (-1,))
        if np.unique(lin_flat).size != lin_flat.size:
            # a position written twice keeps the last write (numpy's and PyTorch's CPU behaviour)
            _, first_from_end = np.unique(lin_flat[::-1], return_index=True)
            keep = np.sort(lin_flat.size - 1 - first_from_end)
            lin_flat = lin_flat[keep]
            from ._dispatch import apply as _apply
            v = _apply(P.take, (v, const_array(keep.astype(np.int64))), {"dim": 0})
        lin_t = const_array(lin_flat)
        from ._dispatch import apply
        zeros = apply(P.full, (), {"shape": tuple(flat.shape), "value": 0, "dtype": base.dtype})
        placed = apply(P.index_add, (zeros, lin_t, v), {"dim": 0})
        mask_np = np.zeros(flat.shape, dtype=bool)
        mask_np[lin_flat] = True
        out = where(const_array(mask_np), placed, flat)
        return reshape(out, tuple(base.shape))

    inplace(x, functional, "index_put_")
