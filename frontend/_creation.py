"""Tensor creation: ``tensor``, ``zeros``, ``rand``, ``arange``, ... with PyTorch's signatures.

Under a trace, fills and random draws become graph nodes (so a captured graph
draws fresh randomness and follows symbolic shapes); otherwise numpy builds the
array directly.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ember.ir import ops as P
from ember.ir.types import DType, bool_, float32, float64, int64
from ember.runtime import random as _random
from ember.runtime.random import generator_or_default as _numpy_generator

from . import _state
from ._allocator import aligned_full
from ._ops import get_default_dtype
from ._tensor import Tensor, _init_from, _wrap, check_device

Generator = _random.Generator
default_generator = _random.default_generator


def manual_seed(seed: int) -> Generator:
    """Seed ember's default generator (eager ops and graph runs draw from it)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return _wrap(default_generator.get_state())


def set_rng_state(state) -> None:
    default_generator.set_state(state)


def _infer_dtype(data) -> DType:
    """PyTorch's dtype for Python data: bool, int64, or the default float."""
    kinds = set()

    def walk(x):
        if isinstance(x, Tensor):
            kinds.add(("t", x.dtype))
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, (bool, np.bool_)):
            kinds.add(0)
        elif isinstance(x, (int, np.integer)):
            kinds.add(1)
        elif isinstance(x, (float, np.floating)):
            kinds.add(2)
        elif isinstance(x, complex):
            raise TypeError("ember has no complex dtypes")
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    walk(data)
    tds = [k[1] for k in kinds if isinstance(k, tuple)]
    if tds:
        from ember.ir.types import promote_types
        dt = tds[0]
        for d in tds[1:]:
            dt = promote_types(dt, d)
        return dt
    if 2 in kinds:
        return get_default_dtype()
    if 1 in kinds:
        return int64
    if 0 in kinds:
        return bool_
    return get_default_dtype()


def _to_numpy(data, dtype: DType | None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data._data
        return arr.astype(dtype.np) if dtype is not None and arr.dtype != dtype.np else arr
    if isinstance(data, np.generic):  # numpy scalars keep their dtype, as in torch.tensor
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if dtype is None:
            _dtype_of(data.dtype)  # refuses dtypes ember lacks
            return data
        return data.astype(dtype.np)
    if dtype is None:
        dtype = _infer_dtype(data)
    if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in _flatten(data)):
        data = _nested_tensor_to_list(data)
    try:
        return np.array(data, dtype=dtype.np)
    except OverflowError:  # torch wraps out-of-range integers (tensor([-1], dtype=uint8) -> 255)
        return np.array(data, dtype=np.int64).astype(dtype.np)
    except ValueError as err:
        raise ValueError(f"tensor(): cannot build a tensor from ragged or malformed data ({err})") from None


def _flatten(data):
    for v in data:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


def _nested_tensor_to_list(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_nested_tensor_to_list(v) for v in data]
    return data


def tensor(data, *, dtype: DType | None = None, device=None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """``torch.tensor``: always copies ``data``."""
    check_device(device)
    _check_dtype_arg("tensor", dtype)
    if isinstance(data, Tensor) and data._value is not None:
        return data.clone()
    arr = np.array(_to_numpy(data, dtype), copy=True)
    if arr.dtype == np.float64 and dtype is None and not isinstance(data, (np.ndarray, np.generic, Tensor)):
        arr = arr.astype(get_default_dtype().np)
    t = _wrap(arr)
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad = True
    return t


def as_tensor(data, dtype: DType | None = None, device=None) -> Tensor:
    """``torch.as_tensor``: shares memory with a numpy array or tensor when it can."""
    check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype is dtype else data.to(dtype)
    if isinstance(data, np.ndarray):
        return _wrap(data if dtype is None else data.astype(dtype.np, copy=False))
    return tensor(data, dtype=dtype)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor:
    t = tensor(obj, dtype=dtype) if copy else as_tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """``torch.from_numpy``: the tensor and the array share memory."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    try:
        _dtype_of(ndarray.dtype)
    except TypeError:
        raise TypeError(f"can't convert np.ndarray of type numpy.{ndarray.dtype}. The only supported types "
                        "are: float64, float32, float16, int64, int32, int16, int8, uint8, and bool.") from None
    return _wrap(ndarray)


def _dtype_of(np_dtype) -> DType:
    from ember.ir.types import from_numpy as _fn
    return _fn(np_dtype)


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if len(size) == 1 and hasattr(size[0], "__iter__") and not isinstance(size[0], (str, Tensor)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (int, np.integer, str)):
            raise TypeError(f"size must be a tuple of ints, but got {type(s).__name__}")
        if isinstance(s, (int, np.integer)) and s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s) if not isinstance(s, str) else s)
    return tuple(out)


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t.requires_grad = True
    return t


def _fill(shape, value, dtype: DType | None, requires_grad: bool, device=None) -> Tensor:
    check_device(device)
    if dtype is None:
        dtype = get_default_dtype() if isinstance(value, float) or value is None else \
            (bool_ if isinstance(value, bool) else int64 if isinstance(value, int) else get_default_dtype())
    if _state.tracer is not None or any(isinstance(d, str) for d in shape):
        from ._dispatch import apply
        return _finish(apply(P.full, (), {"shape": shape, "value": value, "dtype": dtype}), requires_grad)
    return _finish(_wrap(aligned_full(shape, value, dtype.np)), requires_grad)  # 64-byte aligned: see _allocator


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None) -> Tensor:
    return _fill(_size(size), 0, dtype or get_default_dtype(), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None) -> Tensor:
    return _fill(_size(size), 1, dtype or get_default_dtype(), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None,
          pin_memory=False) -> Tensor:
    return _fill(_size(size), 0, dtype or get_default_dtype(), requires_grad, device)


def _check_dtype_arg(fn: str, dtype) -> None:
    if dtype is not None and not isinstance(dtype, DType):
        raise TypeError(f"{fn}(): argument 'dtype' must be ember.dtype, not {type(dtype).__name__}")


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if not isinstance(fill_value, (bool, int, float, np.number)):
        raise TypeError(f"full(): argument 'fill_value' (position 2) must be Number, not {type(fill_value).__name__}")
    return _fill(_size((size,)), fill_value, dtype, requires_grad, device)


def _like(input: Tensor, dtype):
    return tuple(input.shape), (dtype or input.dtype)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    shape, dt = _like(input, dtype)
    return _fill(shape, 0, dt, requires_grad, device)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    shape, dt = _like(input, dtype)
    return _fill(shape, 1, dt, requires_grad, device)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    shape, dt = _like(input, dtype)
    return _fill(shape, fill_value, dt, requires_grad, device)


def _random(prim, shape, attrs, dtype, generator, requires_grad, device) -> Tensor:
    check_device(device)
    dtype = dtype or get_default_dtype()
    from ._dispatch import apply
    if _state.tracer is not None:
        t = apply(prim, (), dict(attrs, shape=shape, dtype=dtype))
    else:
        from ember.runtime.kernels import KERNELS
        t = _wrap(KERNELS[prim.name](shape=shape, dtype=dtype, generator=generator, **attrs))
    return _finish(t, requires_grad)


def _float_only(fn: str, dtype) -> None:
    _check_dtype_arg(fn, dtype)
    if dtype is not None and not dtype.is_floating_point:
        raise NotImplementedError(f"{fn}(): drawing {dtype.name} values is not supported; "
                                  "use a floating-point dtype (or randint for integers)")


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    _float_only("rand", dtype)
    return _random(P.uniform, _size(size), {"low": 0.0, "high": 1.0}, dtype, generator, requires_grad, device)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    _float_only("randn", dtype)
    return _random(P.normal, _size(size), {"mean": 0.0, "std": 1.0}, dtype, generator, requires_grad, device)


def rand_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _random(P.randint, _size((size,)), {"low": int(low), "high": int(high)}, dtype or int64,
                   generator, requires_grad, device)


def randint_like(input, low, high=None, *, dtype=None) -> Tensor:
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    check_device(device)
    gen = _numpy_generator(generator)
    return _wrap(gen.permutation(n).astype((dtype or int64).np))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, out=None) -> Tensor:
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        from . import _ops
        shape = tuple(mean.shape if isinstance(mean, Tensor) else std.shape)
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(*shape, generator=generator, dtype=ref.dtype)
        return _ops.add(_ops.mul(z, std), mean)
    if size is None:
        raise TypeError("normal() with scalar mean and std needs a size")
    return _random(P.normal, _size((size,)), {"mean": float(mean), "std": float(std)}, dtype, generator, False, None)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    from . import _ops
    probs = input if p is None else _ops.const(p, input.dtype)
    u = rand(*input.shape, generator=generator, dtype=input.dtype)
    return _ops.cast(_ops.lt(u, probs), input.dtype)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    gen = _numpy_generator(generator)
    p = input._data.astype(np.float64)
    rows = p.reshape(-1, p.shape[-1])
    out = np.stack([gen.choice(rows.shape[1], size=num_samples, replace=replacement, p=r / r.sum()) for r in rows])
    return _wrap(out.reshape(p.shape[:-1] + (num_samples,)).astype(np.int64))


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    check_device(device)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        dtype = get_default_dtype() if any(isinstance(v, float) for v in vals) else int64
    start, end, step = vals
    n = max(0, math.ceil((end - start) / step))
    arr = (np.arange(n, dtype=np.float64) * step + start).astype(dtype.np) if dtype.is_floating_point \
        else np.arange(start, end, step, dtype=dtype.np)
    return _finish(_const(arr), requires_grad)


def range_(start, end, step=1, *, dtype=None) -> Tensor:
    return arange(start, end + step / 2 if step > 0 else end - 1e-9, step, dtype=dtype or get_default_dtype())


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    check_device(device)
    dtype = dtype or get_default_dtype()
    if int(steps) < 0:
        raise RuntimeError("number of steps must be non-negative")
    arr = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    if dtype.is_floating_point:
        return _finish(_const(arr.astype(dtype.np)), requires_grad)
    return _const(np.trunc(arr).astype(dtype.np))


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None) -> Tensor:
    dtype = dtype or get_default_dtype()
    return _const(np.logspace(float(start), float(end), int(steps), base=base).astype(dtype.np))


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    check_device(device)
    if n < 0 or (m is not None and m < 0):
        raise RuntimeError(f"n must be greater or equal to 0, got {n if n < 0 else m}")
    return _finish(_const(np.eye(n, m, dtype=(dtype or get_default_dtype()).np)), requires_grad)


def _const(arr: np.ndarray) -> Tensor:
    if _state.tracer is not None:
        from ._dispatch import apply
        return apply(P.constant, (), {"value": arr})
    return _wrap(arr)


def legacy_tensor_init(self: Tensor, *args, **kwargs) -> None:
    """``torch.Tensor(2, 3)`` (uninitialized float32) and ``torch.Tensor([1, 2])`` (float32 data)."""
    if kwargs and set(kwargs) - {"device"}:
        raise TypeError(f"Tensor() got unexpected keyword arguments {sorted(kwargs)}")
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)):
        arr = np.array(args[0], dtype=np.float32)
    elif len(args) == 1 and isinstance(args[0], Tensor):
        arr = args[0]._data
    elif all(isinstance(a, int) for a in args):
        arr = np.zeros(args, dtype=np.float32)
    else:
        raise TypeError(f"Tensor(): could not build a tensor from {args!r}")
    _init_from(self, arr)


def scalar_tensor(value, *, dtype=None) -> Tensor:
    return tensor(value, dtype=dtype or get_default_dtype())


def is_nonzero(input: Tensor) -> bool:
    return bool(input.item())


def set_default_dtype(d: DType) -> None:
    from ._ops import _state_default_dtype
    if d not in (float32, float64) and not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _state_default_dtype[0] = d


def ones_tensor(shape: Sequence[int]) -> Tensor:
    return _wrap(np.ones(shape, dtype=get_default_dtype().np))


__all__ = ["float64"]
