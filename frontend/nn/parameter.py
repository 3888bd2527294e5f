"""``nn.Parameter``: a tensor that a ``Module`` registers as a learnable weight."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _init_from


class Parameter(Tensor):
    """A ``Tensor`` subclass; assigning one to a ``Module`` attribute registers it.

    Like PyTorch, the parameter shares ``data``'s storage and requires grad by default.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        t = object.__new__(cls)
        if data is None:
            arr = np.empty((0,), dtype=np.float32)
        elif isinstance(data, Tensor):
            if data._value is not None:
                raise RuntimeError("nn.Parameter cannot wrap a traced tensor; create parameters outside tracing")
            arr = data._data
        else:
            arr = np.asarray(data)
        if requires_grad and arr.dtype.kind not in "fc" and arr.dtype.name != "bfloat16":
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        _init_from(t, arr, requires_grad)
        return t

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything happens in __new__ (the Tensor constructor must not run again)

    # repr: ember._printing prefixes "Parameter containing:" for this class, as PyTorch does


class Buffer(Tensor):
    """``nn.Buffer``: marks a tensor to be registered as a buffer when assigned to a module."""

    def __new__(cls, data: Tensor | None = None, *, persistent: bool = True):
        t = object.__new__(cls)
        arr = np.empty((0,), dtype=np.float32) if data is None else (
            data._data if isinstance(data, Tensor) else np.asarray(data))
        _init_from(t, arr, False)
        t.persistent = persistent
        return t

    def __init__(self, data=None, *, persistent: bool = True) -> None:
        pass


def is_lazy(param) -> bool:
    return False
