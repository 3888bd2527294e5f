"""Adam and AdamW (decoupled weight decay), with AMSGrad."""

from __future__ import annotations

from .._creation import zeros_like
from ._functional import grads_of, nonzero, scaled
from .optimizer import Optimizer, _get_value, _step_tensor


def _check(lr, eps, betas, weight_decay) -> None:
    from .._tensor import Tensor
    if not isinstance(lr, Tensor) and not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not isinstance(eps, Tensor) and not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not isinstance(betas[0], Tensor) and not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not isinstance(betas[1], Tensor) and not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused=None, decoupled_weight_decay: bool = False) -> None:
        _check(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay or self._decoupled)
        super().__init__(params, defaults)

    def step(self, closure=None):
        return self._step_with_hooks(closure, self._update_group)

    def _update_group(self, group: dict) -> None:
        lr, eps, weight_decay, amsgrad = group["lr"], group["eps"], group["weight_decay"], group["amsgrad"]
        beta1, beta2 = group["betas"]
        decoupled = group.get("decoupled_weight_decay", self._decoupled)
        for p, grad in grads_of(group, group["maximize"]):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _step_tensor()
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = zeros_like(p)
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            # a Linear weight's gradient arrives transposed (column-major); every elementwise op between
            # it and the row-major state would then stride through memory (~20x slower than contiguous):
            # one copy into the state's layout up front is cheaper than two or more such mixed passes
            grad = grad.contiguous()
            step_t.add_(1)
            if nonzero(weight_decay):
                if decoupled:
                    p.mul_(1 - lr * weight_decay)
                else:
                    grad = grad + scaled(p, weight_decay)
            # in-place on state and on fresh temporaries: few full-size allocations (each costs a pass
            # over memory and, for large tensors, page faults)
            exp_avg.mul_(beta1).add_(grad * (1 - beta1))
            sq = grad * grad
            exp_avg_sq.mul_(beta2).add_(sq.mul_(1 - beta2))
            step = _get_value(step_t)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            if amsgrad:
                max_sq = state["max_exp_avg_sq"]
                max_sq.copy_(max_sq.maximum(exp_avg_sq))
                second = max_sq
            else:
                second = exp_avg_sq
            # PyTorch's  p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)  with the scalars folded
            denom = second.sqrt().add_(eps * bias_correction2_sqrt)
            p.sub_((exp_avg / denom).mul_(lr * bias_correction2_sqrt / bias_correction1))


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
