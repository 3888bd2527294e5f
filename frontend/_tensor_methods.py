"""Tensor methods and operators, attached to ``Tensor`` from the functions in ``_ops``.

Also home of in-place semantics: an in-place op computes its result functionally
(so autograd records an ordinary primitive) and the tensor adopts the result,
writing into its own buffer so numpy views and ``from_numpy`` arrays see it.
"""

from __future__ import annotations

import builtins

import numpy as np

from ember.ir.types import (
    SCALAR_TYPE_NAMES, DType, bfloat16, bool_, float16, float32, float64, int8, int16, int32, int64, uint8,
)

from . import _ops as F
from . import _state
from ._indexing import getitem, setitem
from ._tensor import Size, Tensor, _wrap, check_device


# ----------------------------------------------------------------- in-place
def inplace(x: Tensor, functional, name: str) -> Tensor:
    """Make ``x`` hold ``functional(x)``: the result of an in-place op named ``name``.

    With autograd watching, the op is recorded functionally on a *shadow* of ``x`` (a copy
    of its old value carrying its old history, since the buffer is about to be overwritten)
    and ``x`` adopts the new history. When ``x`` is a view, its base adopts a functional
    scatter of the new values, so later uses of the base see the gradient path too.
    """
    if x._value is not None or _state.tracer is not None:  # traced: functionalized by the tracer
        new = functional(x)
        _state.tracer.assign(x, new)
        return x
    if not _state.grad_enabled:
        _write(x, functional(x)._data, name)
        return x
    base = x._base
    if x.requires_grad and x._node is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if base is not None and base.requires_grad and base._node is None:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    new = functional(x if x._node is None else _shadow(x))
    if not new.requires_grad:
        _write(x, new._data, name)
        return x
    if x._node is None:  # recorded against x's own buffer: redo it on a copy of the old value
        new = functional(_shadow(x))
    if base is not None and base is not x:
        lin = _positions_in_base(x, base)
        if lin is not None:
            _update_base(base, lin, new)  # writes the new values through the shared buffer
            return _adopt_history(x, new, write=False)
    return _adopt_history(x, new)


def _shadow(x: Tensor) -> Tensor:
    shadow = _wrap(x._data.copy())
    shadow.requires_grad = x.requires_grad
    shadow._node = x._node
    return shadow


def _positions_in_base(view: Tensor, base: Tensor):
    """Flat (C-order) positions in ``base`` of each element of ``view``, or None if not a view."""
    b, v = base._data, view._data
    if not np.may_share_memory(b, v) or b.size == 0:
        return None

    def offsets(a):
        off = np.zeros(a.shape, np.int64)
        for d, (n, st) in enumerate(zip(a.shape, a.strides)):
            off = off + (np.arange(n, dtype=np.int64) * st).reshape((n,) + (1,) * (a.ndim - d - 1))
        return off.reshape(-1)

    bo = offsets(b)
    vo = offsets(v) + (v.__array_interface__["data"][0] - b.__array_interface__["data"][0])
    order = np.argsort(bo, kind="stable")
    pos = order[np.clip(np.searchsorted(bo, vo, sorter=order), 0, bo.size - 1)]
    if not np.array_equal(bo[pos], vo):
        return None
    return pos.reshape(v.shape)


def _update_base(base: Tensor, lin: np.ndarray, new: Tensor) -> None:
    """``base`` adopts ``base`` with ``new`` written at flat positions ``lin`` (recorded)."""
    from ember.ir import ops as P
    from ._dispatch import apply
    src = _shadow(base) if base._node is not None else base
    flat = F.reshape(src, (-1,))
    zeros = apply(P.full, (), {"shape": tuple(flat.shape), "value": 0, "dtype": base.dtype})
    idx = _wrap(np.ascontiguousarray(lin.reshape(-1)))
    placed = apply(P.index_add, (zeros, idx, F.reshape(F.cast(new, base.dtype), (-1,))), {"dim": 0})
    mask = np.zeros(flat.shape, dtype=bool)
    mask[lin.reshape(-1)] = True
    out = F.reshape(F.where(_wrap(mask), placed, flat), tuple(base.shape))
    _adopt_history(base, out)


def _adopt_history(x: Tensor, new: Tensor, write: bool = True) -> Tensor:
    if write:
        _write(x, new._data, "in-place")
    x._node = new._node
    x.requires_grad = new.requires_grad
    if x._node is not None:
        import weakref
        x._node.out_ref = weakref.ref(x)
        x._node.out_data = x._data
        x._node.out_version = x._version[0]
    return x


def _write(x: Tensor, data: np.ndarray, name: str) -> None:
    if data.shape != x._data.shape:
        raise RuntimeError(f"{name}: output with shape {list(x._data.shape)} doesn't match the broadcast "
                           f"shape {list(data.shape)}")
    if data.dtype != x._data.dtype:
        src, dst = F._dtype_of(data.dtype), x.dtype
        if src.category > dst.category:
            raise RuntimeError(f"result type {SCALAR_TYPE_NAMES[src]} can't be cast to the desired output type "
                               f"{SCALAR_TYPE_NAMES[dst]}")
    if not x._data.flags.writeable:
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor "
                           "refers to a single memory location (it is an expanded view). Please clone() the "
                           "tensor before performing the operation.")
    if data is not x._data:
        np.copyto(x._data, data, casting="unsafe")
    x._version[0] += 1


def _dtype_of(np_dtype):
    from ember.ir.types import from_numpy
    return from_numpy(np_dtype)


F._dtype_of = _dtype_of


_INPLACE_UFUNCS = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.true_divide,
                   "__iadd__": np.add, "__isub__": np.subtract, "__imul__": np.multiply,
                   "__itruediv__": np.true_divide}


def _ufunc_into(x: Tensor, other, ufunc) -> bool:
    """No-grad eager fast path of ``x.add_(y)`` & co. on float tensors: the ufunc writes straight
    into x's buffer (no temporary, no copy); values are identical to the functional kernel path.
    Returns False when the general path is needed (other dtypes, broadcasting, views that can't be
    written, traced tensors)."""
    xd = x._data
    if xd is None or x._value is not None or xd.dtype.kind != "f" or not xd.flags.writeable:
        return False
    if isinstance(other, Tensor):
        od = other._data
        if od is None or other._value is not None or od.dtype is not xd.dtype or (od.shape != xd.shape and od.ndim):
            return False
    elif type(other) is float or type(other) is int:
        od = other  # numpy rounds the Python number to x's dtype (NEP 50), as the kernel path's const does
    else:
        return False
    ufunc(xd, od, out=xd)
    x._version[0] += 1
    return True


def _binary_inplace(fn, name):
    ufunc = _INPLACE_UFUNCS.get(name)

    def method(self, other, *args, **kwargs):
        if (ufunc is not None and not _state.grad_enabled and _state.tracer is None and not args and not kwargs
                and _ufunc_into(self, other, ufunc)):
            return self
        return inplace(self, lambda x: fn(x, other, *args, **kwargs), name)
    method.__name__ = name
    return method


def _unary_inplace(fn, name):
    def method(self, *args, **kwargs):
        return inplace(self, lambda x: fn(x, *args, **kwargs), name)
    method.__name__ = name
    return method


def zero_(self):
    if self._value is None and _state.tracer is None and not (_state.grad_enabled and self.requires_grad):
        _write_scalar(self, 0, "zero_")
        return self
    return inplace(self, lambda x: _overwrite(x, 0), "zero_")


def fill_(self, value):
    if isinstance(value, Tensor):
        value = value.item() if value._value is None else value
    if self._value is None and _state.tracer is None and not isinstance(value, Tensor) and not (
            _state.grad_enabled and self.requires_grad):
        _write_scalar(self, value, "fill_")
        return self
    return inplace(self, lambda x: _overwrite(x, value), "fill_")


def _write_scalar(x: Tensor, value, name: str) -> None:
    if not x._data.flags.writeable:
        raise RuntimeError(f"{name}: cannot write into an expanded (read-only) view")
    x._data[...] = value
    x._version[0] += 1


def copy_(self, src, non_blocking=False):
    src = F.to_tensor(src)
    if self._value is None and src._value is None and _state.tracer is None and not (
            _state.grad_enabled and (self.requires_grad or src.requires_grad)):
        if not self._data.flags.writeable:
            raise RuntimeError("copy_: cannot write into an expanded (read-only) view")
        np.copyto(self._data, np.broadcast_to(src._data, self._data.shape), casting="unsafe")
        self._version[0] += 1
        return self
    return inplace(self, lambda x: _overwrite(x, F.cast(F.broadcast_to(src, tuple(x.shape)), x.dtype)), "copy_")


def _overwrite(x: Tensor, value) -> Tensor:
    """``value`` in place of every element of ``x``, keeping ``x`` in the autograd graph (zero gradient).

    A select rather than ``x * 0 + value``: NaN or inf already in ``x`` must not survive the write.
    """
    return F.where(F.ones_like_bool(x), value, x)


def requires_grad_(self, requires_grad: bool = True):
    if requires_grad and not self.dtype.is_floating_point:
        raise RuntimeError("only Tensors of floating point dtype can require gradients")
    if not requires_grad and self._node is not None:
        raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                           "computed variable in a subgraph that doesn't require differentiation use "
                           "var_no_grad = var.detach().")
    self.requires_grad = requires_grad
    return self


# ----------------------------------------------------------------- conversion
def numpy(self, *, force: bool = False) -> np.ndarray:
    if self._value is not None:
        _state.tracer.concretize(self, "numpy()")
    if self.requires_grad and not force:
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
    return self._data


def item(self):
    if self._value is not None:
        _state.tracer.concretize(self, "item()")
    if self._data.size != 1:
        raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
    return self._data.reshape(()).item() if self._data.dtype != bfloat16.np else float(self._data.reshape(()))


def tolist(self):
    if self._value is not None:
        _state.tracer.concretize(self, "tolist()")
    if self._data.dtype == bfloat16.np:
        return self._data.astype(np.float32).tolist()
    return self._data.tolist()


def _bool(self) -> bool:
    if self._value is not None:
        _state.tracer.concretize(self, "bool()")
    if self._data.size != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(self._data.reshape(()))


def _float(self) -> float:
    if self._value is not None:
        _state.tracer.concretize(self, "float()")
    if self._data.size != 1:
        raise TypeError("only one element tensors can be converted to Python scalars")
    return float(self._data.reshape(()))


def _int(self) -> int:
    if self._value is not None:
        _state.tracer.concretize(self, "int()")
    if self._data.size != 1:
        raise TypeError("only one element tensors can be converted to Python scalars")
    return int(self._data.reshape(()))


def _index(self) -> int:
    if self.dtype.category != 1 or self.numel() != 1:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return _int(self)


def to(self, *args, **kwargs):
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    for a in args:
        if isinstance(a, DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, bool):
            continue
        else:
            device = a
    check_device(device)
    out = self if dtype is None or dtype is self.dtype else F.cast(self, dtype)
    return out.clone() if copy and out is self else out


def cpu(self, memory_format=None):
    return self


def cuda(self, device=None, non_blocking=False):
    check_device("cuda" if device is None else device)
    return self


def type_(self, dtype=None, non_blocking=False):
    if dtype is None:
        return {float32: "ember.FloatTensor", float64: "ember.DoubleTensor", int64: "ember.LongTensor",
                int32: "ember.IntTensor", bool_: "ember.BoolTensor", float16: "ember.HalfTensor",
                uint8: "ember.ByteTensor", int8: "ember.CharTensor", int16: "ember.ShortTensor",
                bfloat16: "ember.BFloat16Tensor"}[self.dtype]
    if isinstance(dtype, str):
        from ember.ir.types import from_name
        dtype = from_name(dtype.split(".")[-1].replace("Tensor", "").lower()
                          .replace("long", "int64").replace("byte", "uint8").replace("char", "int8"))
    return F.cast(self, dtype)


def _astype(dtype):
    def method(self, memory_format=None):
        return F.cast(self, dtype)
    return method


def numel(self) -> int:
    n = 1
    for d in self.shape:
        n *= d
    return n


def size(self, dim=None):
    shape = self.shape
    if dim is None:
        return shape
    return shape[F.norm_dim(dim, len(shape))]


def dim(self) -> int:
    return len(self.shape)


def element_size(self) -> int:
    return self.dtype.itemsize


def nbytes(self) -> int:
    return self.numel() * self.dtype.itemsize


def stride(self, dim=None):
    st = tuple(s // self._data.itemsize for s in self._data.strides)
    return st if dim is None else st[dim]


def is_contiguous(self, memory_format=None) -> bool:
    return bool(self._data.flags.c_contiguous)


def contiguous(self, memory_format=None):
    if self._value is not None or self._data.flags.c_contiguous:
        return self
    if F._explicit(self):
        out = F._copy_op(self)  # recorded identity; numpy keeps the input's layout, so fix it here
        if not out._data.flags.c_contiguous:
            out._data = np.ascontiguousarray(out._data)
        return out
    return _wrap(np.ascontiguousarray(self._data))


def data_ptr(self) -> int:
    return self._data.ctypes.data


def untyped_storage(self):
    return self._data.base if self._data.base is not None else self._data


def resize_(self, *shape):
    shape = F._shape_args(shape)
    self._data = np.resize(self._data, shape)
    self._version[0] += 1
    return self


def detach_(self):
    self._node = None
    self.requires_grad = False
    return self


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    from .autograd import backward as _backward
    _backward(self, gradient, retain_graph, create_graph, inputs=inputs)


def register_hook(self, hook):
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self._node is not None:
        node = self._node
        node.hooks = (node.hooks or []) + [hook]
        return _Handle(node, "hooks", hook)
    self._hooks = (self._hooks or []) + [hook]
    return _Handle(self, "_hooks", hook)


class _Handle:
    def __init__(self, owner, attr, hook):
        self.owner, self.attr, self.hook = owner, attr, hook

    def remove(self):
        hooks = getattr(self.owner, self.attr) or []
        setattr(self.owner, self.attr, [h for h in hooks if h is not self.hook] or None)


def retain_grad(self):
    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self._node is not None:
        import weakref
        self._node.retained = (self._node.retained or []) + [weakref.ref(self)]


def retains_grad(self) -> bool:
    return self._node is not None and bool(self._node.retained) and any(r() is self for r in self._node.retained)


def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from ._creation import tensor
    return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_fill(value):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        from ._creation import _fill, _size
        return _fill(_size(size), value, dtype or self.dtype, requires_grad)
    return method


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    from ._creation import _fill, _size
    return _fill(_size((size,)), fill_value, dtype or self.dtype, requires_grad)


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    from ._creation import rand
    r = rand(*self.shape, generator=generator, dtype=self.dtype if self.dtype.is_floating_point else float64)
    return copy_(self, F.add(F.mul(r, b - a), a) if (a, b) != (0.0, 1.0) else r)


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    from ._creation import randn
    r = randn(*self.shape, generator=generator, dtype=self.dtype)
    return copy_(self, F.add(F.mul(r, std), mean) if (mean, std) != (0.0, 1.0) else r)


def bernoulli_(self, p=0.5, *, generator=None):
    from ._creation import rand
    r = rand(*self.shape, generator=generator)
    return copy_(self, F.lt(r, p))


def random_(self, low=0, high=None, *, generator=None):
    from ._creation import randint
    if high is None:
        low, high = 0, low if low else 2 ** 24
    return copy_(self, randint(low, high, tuple(self.shape), generator=generator))


def exponential_(self, lambd=1.0, *, generator=None):
    from ._creation import rand
    u = rand(*self.shape, generator=generator, dtype=self.dtype)
    return copy_(self, F.div(F.neg(F.log1p(F.neg(u))), lambd))


def apply_(self, fn):
    self._data[...] = np.vectorize(fn)(self._data)
    return self


def map_(self, other, fn):
    self._data[...] = np.vectorize(fn)(self._data, other._data)
    return self


# ----------------------------------------------------------------- repr
def _format(self) -> str:
    from ._printing import tensor_repr
    return tensor_repr(self)


def __array__(self, dtype=None, copy=None):
    arr = numpy(self, force=True)
    return arr if dtype is None else arr.astype(dtype)


def __iter__(self):
    if len(self.shape) == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(F.unbind(self, 0))


def __reversed__(self):
    return F.flip(self, 0)


def __contains__(self, element):
    return bool(F.any(F.eq(self, element)))


def __format__(self, spec):
    if len(self.shape) == 0 and self._value is None:
        return format(self.item(), spec)
    return object.__format__(self, spec) if spec == "" and False else (_format(self) if not spec else
                                                                        format(str(self), spec))


def __getstate__(self):
    return {"data": self._data, "requires_grad": self.requires_grad, "grad": self.grad,
            "dict": getattr(self, "__dict__", {})}


def __setstate__(self, state):
    from ._tensor import _init_from
    _init_from(self, state["data"], state["requires_grad"])
    self.grad = state.get("grad")
    for k, v in state.get("dict", {}).items():
        setattr(self, k, v)


def __deepcopy__(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    if self._node is not None:
        raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                           "protocol at the moment.")
    new = object.__new__(type(self))
    from ._tensor import _init_from
    _init_from(new, np.array(self._data, copy=True), self.requires_grad)
    memo[id(self)] = new
    import copy as _copy
    if self.grad is not None:
        new.grad = _copy.deepcopy(self.grad, memo)
    for k, v in getattr(self, "__dict__", {}).items():
        setattr(new, k, _copy.deepcopy(v, memo))
    return new


def __reduce_ex__(self, protocol):
    return (_rebuild_tensor, (type(self), self._data, self.requires_grad, getattr(self, "__dict__", {})))


def _rebuild_tensor(cls, data, requires_grad, extra=None):
    from ._tensor import _init_from
    t = object.__new__(cls)
    _init_from(t, data, requires_grad)
    for k, v in (extra or {}).items():
        setattr(t, k, v)
    return t


# ----------------------------------------------------------------- attach
def _rev(fn):
    return lambda self, other: fn(other, self)


def _attach() -> None:
    T = Tensor
    methods = {
        # arithmetic
        "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "true_divide": F.div, "divide": F.div,
        "multiply": F.mul, "subtract": F.sub, "floor_divide": F.floor_divide, "remainder": F.remainder,
        "fmod": F.fmod, "pow": F.pow, "neg": F.neg, "negative": F.neg, "abs": F.abs, "absolute": F.abs,
        "exp": F.exp, "log": F.log, "log1p": F.log1p, "log2": F.log2, "log10": F.log10, "expm1": F.expm1,
        "sqrt": F.sqrt, "rsqrt": F.rsqrt, "sin": F.sin, "cos": F.cos, "tan": F.tan, "tanh": F.tanh,
        "sigmoid": F.sigmoid, "relu": F.relu, "erf": F.erf, "sign": F.sign, "floor": F.floor, "ceil": F.ceil,
        "round": F.round, "trunc": F.trunc, "frac": F.frac, "reciprocal": F.reciprocal, "square": F.square,
        "clamp": F.clamp, "clip": F.clamp, "clamp_min": F.clamp_min, "clamp_max": F.clamp_max,
        "maximum": F.maximum, "minimum": F.minimum, "lerp": F.lerp, "addcmul": F.addcmul, "addcdiv": F.addcdiv,
        "where": lambda self, condition, other: F.where(condition, self, other),
        "isnan": F.isnan, "isinf": F.isinf, "isfinite": F.isfinite, "nan_to_num": F.nan_to_num,
        # comparison / logic
        "eq": F.eq, "ne": F.ne, "lt": F.lt, "le": F.le, "gt": F.gt, "ge": F.ge, "greater": F.gt,
        "less": F.lt, "equal": F.equal, "allclose": F.allclose, "isclose": F.isclose,
        "logical_and": F.logical_and, "logical_or": F.logical_or, "logical_xor": F.logical_xor,
        "logical_not": F.logical_not, "bitwise_not": F.bitwise_not,
        # linear algebra
        "matmul": F.matmul, "mm": F.mm, "bmm": F.bmm, "dot": F.dot, "mv": F.mv, "outer": F.outer,
        # reductions
        "sum": F.sum, "mean": F.mean, "prod": F.prod, "std": F.std, "var": F.var, "max": F.max, "min": F.min,
        "amax": F.amax, "amin": F.amin, "argmax": F.argmax, "argmin": F.argmin, "all": F.all, "any": F.any,
        "logsumexp": F.logsumexp, "norm": F.norm, "cumsum": F.cumsum,
        # shape
        "reshape": lambda self, *shape: F.reshape(self, F._shape_args(shape)), "view": F.view,
        "view_as": lambda self, other: F.view(self, *other.shape),
        "reshape_as": lambda self, other: F.reshape(self, tuple(other.shape)),
        "permute": F.permute, "transpose": F.transpose, "swapaxes": F.transpose, "swapdims": F.transpose,
        "t": F.t, "movedim": F.movedim, "moveaxis": F.movedim, "squeeze": F.squeeze, "unsqueeze": F.unsqueeze,
        "flatten": F.flatten, "unflatten": F.unflatten, "expand": F.expand, "expand_as": F.expand_as,
        "repeat": F.repeat, "tile": F.tile, "repeat_interleave": F.repeat_interleave, "split": F.split,
        "chunk": F.chunk, "tensor_split": F.tensor_split, "unbind": F.unbind, "narrow": F.narrow, "flip": F.flip,
        "roll": F.roll, "tril": F.tril, "triu": F.triu, "diag": F.diag,
        # indexing
        "gather": F.gather, "scatter_add": F.scatter_add, "index_select": F.index_select,
        "index_add": F.index_add, "take": F.take, "masked_fill": F.masked_fill, "masked_select": F.masked_select,
        "nonzero": F.nonzero, "argwhere": F.argwhere, "sort": F.sort, "argsort": F.argsort, "topk": F.topk,
        "unique": F.unique, "bincount": F.bincount,
        # misc
        "detach": F.detach, "clone": F.clone, "zero_": zero_, "fill_": fill_, "copy_": copy_,
        "requires_grad_": requires_grad_, "numpy": numpy, "item": item, "tolist": tolist, "to": to, "cpu": cpu,
        "cuda": cuda, "type": type_, "numel": numel, "nelement": numel, "size": size, "dim": dim,
        "ndimension": dim, "element_size": element_size, "stride": stride, "is_contiguous": is_contiguous,
        "contiguous": contiguous, "data_ptr": data_ptr, "untyped_storage": untyped_storage, "resize_": resize_,
        "detach_": detach_, "backward": backward, "register_hook": register_hook, "retain_grad": retain_grad,
        "new_tensor": new_tensor, "new_zeros": _new_fill(0), "new_ones": _new_fill(1), "new_empty": _new_fill(0),
        "new_full": new_full, "uniform_": uniform_, "normal_": normal_, "bernoulli_": bernoulli_,
        "random_": random_, "exponential_": exponential_, "apply_": apply_, "map_": map_,
        "float": _astype(float32), "double": _astype(float64), "half": _astype(float16),
        "bfloat16": _astype(bfloat16), "long": _astype(int64), "int": _astype(int32), "short": _astype(int16),
        "char": _astype(int8), "byte": _astype(uint8), "bool": _astype(bool_),
        "is_floating_point": F.is_floating_point, "softmax": None, "log_softmax": None,
        "__repr__": _format, "__str__": _format, "__array__": __array__, "__iter__": __iter__,
        "__reversed__": __reversed__, "__contains__": __contains__, "__format__": __format__,
        "__getstate__": __getstate__, "__setstate__": __setstate__, "__deepcopy__": __deepcopy__,
        "__reduce_ex__": __reduce_ex__,
        "__bool__": _bool, "__float__": _float, "__int__": _int, "__index__": _index,
        "__getitem__": getitem, "__setitem__": setitem,
        # operators
        "__add__": F.add, "__radd__": _rev(F.add), "__sub__": F.sub, "__rsub__": _rev(F.sub),
        "__mul__": F.mul, "__rmul__": _rev(F.mul), "__truediv__": F.div, "__rtruediv__": _rev(F.div),
        "__floordiv__": F.floor_divide, "__rfloordiv__": _rev(F.floor_divide), "__mod__": F.remainder,
        "__rmod__": _rev(F.remainder), "__pow__": F.pow, "__rpow__": _rev(F.pow), "__matmul__": F.matmul,
        "__rmatmul__": _rev(F.matmul), "__neg__": F.neg, "__pos__": lambda self: self, "__abs__": F.abs,
        "__invert__": F.bitwise_not, "__and__": F.logical_and, "__or__": F.logical_or,
        "__xor__": F.logical_xor, "__rand__": _rev(F.logical_and), "__ror__": _rev(F.logical_or),
        "__eq__": F.eq, "__ne__": F.ne, "__lt__": F.lt, "__le__": F.le, "__gt__": F.gt, "__ge__": F.ge,
    }
    for name, fn in methods.items():
        if fn is not None:
            setattr(T, name, fn)
    T.__hash__ = lambda self: id(self)
    # numpy defers to Tensor's reflected operators (np.float32(2) * t is a Tensor), as with torch
    T.__array_priority__ = 1000
    # in-place variants
    for name in ("add", "sub", "mul", "div", "pow", "clamp", "clamp_min", "clamp_max", "maximum", "minimum",
                 "remainder", "fmod", "floor_divide", "lerp", "addcmul", "addcdiv", "masked_fill", "true_divide",
                 "index_add", "scatter_add"):
        setattr(T, name + "_", _binary_inplace(getattr(F, name), name + "_"))
    for name in ("neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                 "relu", "sign", "floor", "ceil", "round", "trunc", "reciprocal", "square", "t", "squeeze",
                 "unsqueeze", "erf", "expm1", "nan_to_num"):
        setattr(T, name + "_", _unary_inplace(getattr(F, name), name + "_"))
    T.clip_ = T.clamp_
    for op, fn in (("__iadd__", F.add), ("__isub__", F.sub), ("__imul__", F.mul), ("__itruediv__", F.div),
                   ("__ifloordiv__", F.floor_divide), ("__imod__", F.remainder), ("__ipow__", F.pow)):
        setattr(T, op, _binary_inplace(fn, op))
    T.T = property(lambda self: F.permute(self, tuple(reversed(range(len(self.shape))))))
    T.mT = property(lambda self: F.transpose(self, -2, -1))
    T.H = T.T
    T.mH = T.mT
    T.is_sparse = False
    T.is_quantized = False
    T.is_meta = False
    T.itemsize = property(element_size)
    T.nbytes = property(nbytes)
    T.output_nr = 0
    T.names = property(lambda self: (None,) * len(self.shape))


_attach()
_ = builtins
_ = Size


# softmax/log_softmax are compositions defined once in ember.nn.functional; imported on first use
def _softmax_method(self, dim=None, dtype=None):
    from .nn.functional import softmax
    return softmax(self, dim, dtype=dtype)


def _log_softmax_method(self, dim=None, dtype=None):
    from .nn.functional import log_softmax
    return log_softmax(self, dim, dtype=dtype)


Tensor.softmax = _softmax_method
Tensor.log_softmax = _log_softmax_method
