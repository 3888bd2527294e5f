"""The ``Tensor`` class: a numpy array plus autograd metadata.

Methods are attached in ``_tensor_methods`` (they are thin wrappers over the
functions of ``_ops``); this module keeps the data layout and the few properties
everything else relies on. A tensor being traced by ``ember.jit`` carries a graph
value in ``_value`` and no data.
"""

from __future__ import annotations

import numpy as np

from ember.ir.types import TensorType, from_numpy

from . import _state

_NP_TO_DTYPE: dict = {}


class Size(tuple):
    """``torch.Size``: a tuple of dimensions."""

    def __repr__(self) -> str:
        return f"ember.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


class device:  # noqa: N801 - PyTorch's name
    """``torch.device``: a device type and optional index."""

    __slots__ = ("type", "index")

    def __init__(self, type: "str | device", index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string like 'cpu' or 'cuda:0', got {type!r}")
        if ":" in type:
            type, idx = type.split(":", 1)  # noqa: A001
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = int(idx)
        if type not in ("cpu", "cuda", "meta"):
            raise RuntimeError(f"Expected one of cpu, cuda, meta device type at start of device string: {type}")
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def check_device(dev) -> device:
    """Accept cpu; refuse cuda clearly when no GPU backend is present."""
    if dev is None:
        return CPU
    d = dev if isinstance(dev, device) else device(dev) if isinstance(dev, str) else None
    if d is None:
        if isinstance(dev, int):
            d = device("cuda", dev)
        else:
            raise TypeError(f"expected a device, got {dev!r}")
    if d.type == "cuda":
        from . import cuda
        cuda._lazy_init()
    return CPU if d.type == "cpu" else d


class Tensor:
    """A multi-dimensional array with PyTorch's API, backed by numpy on the CPU."""

    __slots__ = ("_data", "requires_grad", "grad", "_node", "_version", "_base", "_value", "_hooks",
                 "__weakref__", "__dict__")

    # ``ember.Tensor(...)`` builds a float tensor like ``torch.Tensor(...)`` does
    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        if hasattr(self, "_data") and (args == () or args[0] is None) and not kwargs:
            return
        from ._creation import legacy_tensor_init
        legacy_tensor_init(self, *args, **kwargs)

    # --- core properties -------------------------------------------------------
    @property
    def dtype(self):
        if self._value is not None:
            return self._value.type.dtype
        dt = _NP_TO_DTYPE.get(self._data.dtype)
        if dt is None:
            dt = _NP_TO_DTYPE[self._data.dtype] = from_numpy(self._data.dtype)
        return dt

    @property
    def shape(self) -> Size:
        if self._value is not None:
            return Size(self._value.type.shape)
        return Size(self._data.shape)

    def _type(self) -> TensorType:
        if self._value is not None:
            return self._value.type
        return TensorType(self.dtype, tuple(self._data.shape))

    @property
    def device(self) -> device:
        return CPU

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, other: "Tensor") -> None:
        if _state.tracer is not None:  # ember.jit functionalizes the storage swap
            _state.tracer.set_data(self, other)
            return
        self._data = other._data
        self._version[0] += 1

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def layout(self) -> str:
        return "strided"

    @property
    def is_tracer(self) -> bool:
        return self._value is not None

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __hash__(self) -> int:
        return id(self)


def _new_tensor(cls=Tensor):
    return object.__new__(cls)


def _wrap(arr: np.ndarray, requires_grad: bool = False) -> Tensor:
    """Wrap a numpy array (no copy) as a tensor with fresh autograd metadata.

    The body repeats ``_init_from`` on purpose: this runs once per eager op, and the
    extra call would be measurable per-op overhead.
    """
    t = object.__new__(Tensor)
    t._data = arr
    t.requires_grad = requires_grad
    t.grad = None
    t._node = None
    t._version = [0]
    t._base = None
    t._value = None
    t._hooks = None
    return t


def _init_from(t: Tensor, arr: np.ndarray, requires_grad: bool = False) -> Tensor:
    t._data = arr
    t.requires_grad = requires_grad
    t.grad = None
    t._node = None
    t._version = [0]
    t._base = None
    t._value = None
    t._hooks = None
    return t


def grad_enabled() -> bool:
    return _state.grad_enabled
