"""Adadelta (Zeiler 2012)."""

from __future__ import annotations

from .._creation import zeros_like
from ._functional import grads_of, nonzero, scaled
from .optimizer import Optimizer, _step_tensor


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        return self._step_with_hooks(closure, self._update_group)

    def _update_group(self, group: dict) -> None:
        lr, rho, eps, weight_decay = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        for p, grad in grads_of(group, group["maximize"]):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _step_tensor()
                state["square_avg"] = zeros_like(p)
                state["acc_delta"] = zeros_like(p)
            state["step"].add_(1)
            if nonzero(weight_decay):
                grad = grad + scaled(p, weight_decay)
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg.mul_(rho).add_(scaled(grad * grad, 1 - rho))
            std = (square_avg + eps).sqrt_()
            delta = (acc_delta + eps).sqrt_().div_(std).mul_(grad)
            acc_delta.mul_(rho).add_(scaled(delta * delta, 1 - rho))
            p.sub_(scaled(delta, lr))
