"""``parameters_to_vector`` and ``vector_to_parameters``."""

from __future__ import annotations

from typing import Iterable

from ... import _ops as O
from ..._tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    return O.cat([O.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Write slices of ``vec`` into each parameter's data (no autograd history, as PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for param in parameters:
        n = param.numel()
        param.data = O.reshape(O.narrow(vec, 0, pointer, n), tuple(param.shape)).detach().clone()
        pointer += n
