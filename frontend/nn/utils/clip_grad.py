"""Gradient clipping, with PyTorch's semantics and messages (composed from ember ops, so traceable)."""

from __future__ import annotations

import math
from typing import Iterable

from ... import _ops as O
from ..._tensor import Tensor
from ...autograd import no_grad


def _grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors: Iterable[Tensor] | Tensor, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        from ..._creation import tensor
        return tensor(0.0)
    with no_grad():
        if norm_type == math.inf:
            norms = [O.amax(O.abs(g)) for g in tensors]
            total = norms[0] if len(norms) == 1 else O.amax(O.stack(norms))
        else:
            norms = [O.norm(O.reshape(g, (-1,)), norm_type) for g in tensors]
            total = O.norm(O.stack(norms), norm_type)
    if error_if_nonfinite and total._value is None and not math.isfinite(float(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale gradients in place so their total norm is at most ``max_norm``; return the total norm."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    if not grads:
        return total
    with no_grad():
        # PyTorch: coef = max_norm / (total + 1e-6), clamped to 1 (so small gradients are left alone)
        clip_coef = O.clamp(O.div(float(max_norm), O.add(total, 1e-6)), max=1.0)
        for g in grads:
            g.mul_(O.cast(clip_coef, g.dtype))
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    import warnings
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach: bool | None = None) -> None:
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
