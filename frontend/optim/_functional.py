"""Small helpers shared by the update rules: scalars that may be Python numbers or 0-d tensors."""

from __future__ import annotations

from .._tensor import Tensor


def nonzero(x) -> bool:
    """``x != 0`` for a hyperparameter; a tensor hyperparameter always counts as set (no concretization)."""
    return True if isinstance(x, Tensor) else x != 0


def scaled(t: Tensor, s) -> Tensor:
    """``t * s``, skipping the multiply for a Python 1."""
    if not isinstance(s, Tensor) and s == 1:
        return t
    return t * s


def grads_of(group: dict, maximize: bool = False):
    """(param, grad) pairs of a group with a gradient; the gradient negated under ``maximize``."""
    out = []
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        out.append((p, -g if maximize else g))
    return out
