"""Loss functions as compositions of ember primitives, with PyTorch's reductions and edge cases."""

from __future__ import annotations

import warnings

from ember.ir.types import int64

from ... import _ops as O
from ... import _state
from ..._tensor import Tensor
from .activation import log_softmax


def legacy_reduction(size_average, reduce, emit_warning: bool = True) -> str:
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` pair to ``reduction``."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = ("mean" if size_average else "sum") if reduce else "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                      stacklevel=3)
    return ret


def _resolve(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return O.mean(loss)
    return O.sum(loss)


def _check_same_size(name: str, input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)


def _class_view(t: Tensor, ndim: int) -> Tensor:
    """A per-class vector shaped to broadcast along dim 1 of an [N, C, d1, ...] tensor."""
    return O.reshape(t, (1, -1) + (1,) * (ndim - 2)) if ndim >= 2 else t


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: losses in float32
        input, weight = _state.autocast_hook("fp32", input, weight)
    reduction = _resolve(size_average, reduce, reduction)
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:  # a single sample of C classes
        if target.ndim != 0:
            raise ValueError(f"Expected input batch_size ({1}) to match target batch_size ({target.shape[0]}).")
        input, target = O.unsqueeze(input, 0), O.unsqueeze(target, 0)
    elif input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if target.dtype is not int64:
        raise RuntimeError(f"expected scalar type Long but found {target.dtype.name.capitalize()}")
    n_classes = input.shape[1]
    valid = O.ne(target, ignore_index)
    safe = O.where(valid, target, 0)
    picked = O.squeeze(O.gather(input, 1, O.unsqueeze(safe, 1)), 1)
    w = O.cast(valid, input.dtype)
    if weight is not None:
        if weight.ndim != 1 or weight.shape[0] != n_classes:
            raise RuntimeError(f"weight tensor should be defined either for all {n_classes} classes or no classes "
                               f"but got weight tensor of shape: {list(weight.shape)}")
        w = O.mul(w, O.reshape(O.index_select(weight, 0, O.reshape(safe, (-1,))), tuple(safe.shape)))
    loss = O.neg(O.mul(picked, w))
    if reduction == "none":
        return loss if input.ndim > 1 and target.ndim > 0 else loss
    if reduction == "sum":
        return O.sum(loss)
    return O.div(O.sum(loss), O.sum(w))


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    reduction = _resolve(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, class_dim)
    n_classes = input.shape[class_dim]
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected target size {list(input.shape)}, got {list(target.shape)}")
        if label_smoothing > 0:
            target = O.add(O.mul(target, 1 - label_smoothing), label_smoothing / n_classes)
        terms = O.mul(logp, target)
        if weight is not None:
            terms = O.mul(terms, _class_view(weight, input.ndim))
        loss = O.neg(O.sum(terms, class_dim))
        if reduction == "mean":
            return O.div(O.sum(loss), max(input.numel() // n_classes, 1) if input.ndim > 1 else 1)
        return _reduce(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing <= 0:
        return nll
    # PyTorch: (1 - eps) * nll + eps / C * (-sum_c w_c * logp_c), ignored targets contribute nothing
    terms = logp if weight is None else O.mul(logp, _class_view(weight, input.ndim))
    smooth = O.neg(O.sum(terms, class_dim))
    valid = O.ne(target, ignore_index)
    smooth = O.where(valid, smooth, 0.0)
    if reduction == "sum":
        smooth = O.sum(smooth)
    elif reduction == "mean":
        if weight is not None:
            safe = O.where(valid, target, 0)
            denom = O.sum(O.mul(O.index_select(weight, 0, O.reshape(safe, (-1,))),
                                O.cast(O.reshape(valid, (-1,)), weight.dtype)))
        else:
            denom = O.sum(O.cast(valid, input.dtype))
        smooth = O.div(O.sum(smooth), denom)
    return O.add(O.mul(nll, 1 - label_smoothing), O.mul(smooth, label_smoothing / n_classes))


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: losses in float32
        input, target = _state.autocast_hook("fp32", input, target)
    reduction = _resolve(size_average, reduce, reduction)
    _check_same_size("mse_loss", input, target)
    d = O.sub(input, target)
    loss = O.mul(d, d)
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: losses in float32
        input, target = _state.autocast_hook("fp32", input, target)
    reduction = _resolve(size_average, reduce, reduction)
    _check_same_size("l1_loss", input, target)
    loss = O.abs(O.sub(input, target))
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    reduction = _resolve(size_average, reduce, reduction)
    _check_same_size("smooth_l1_loss", input, target)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = O.abs(O.sub(input, target))
    if beta == 0:
        return _reduce(d, reduction)
    loss = O.where(O.lt(d, beta), O.div(O.mul(O.mul(d, d), 0.5), beta), O.sub(d, 0.5 * beta))
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    reduction = _resolve(None, None, reduction)
    _check_same_size("huber_loss", input, target)
    d = O.abs(O.sub(input, target))
    loss = O.where(O.lt(d, delta), O.mul(O.mul(d, d), 0.5), O.mul(O.sub(d, 0.5 * delta), delta))
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: losses in float32
        input, target, weight = _state.autocast_hook("fp32", input, target, weight)
    reduction = _resolve(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    # PyTorch clamps each log at -100 so that 0 * log(0) stays finite
    log_p = O.clamp(O.log(input), min=-100.0)
    log_1mp = O.clamp(O.log(O.rsub(input, 1.0)), min=-100.0)
    loss = O.neg(O.add(O.mul(target, log_p), O.mul(O.rsub(target, 1.0), log_1mp)))
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: losses in float32
        input, target, weight, pos_weight = _state.autocast_hook("fp32", input, target, weight, pos_weight)
    reduction = _resolve(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    # log(1 + exp(-x)) computed stably as max(-x, 0) + log1p(exp(-|x|))
    softplus_neg = O.add(O.clamp(O.neg(input), min=0.0), O.log1p(O.exp(O.neg(O.abs(input)))))
    if pos_weight is not None:
        log_weight = O.add(O.mul(O.sub(pos_weight, 1.0), target), 1.0)
        loss = O.add(O.mul(O.rsub(target, 1.0), input), O.mul(log_weight, softplus_neg))
    else:
        loss = O.add(O.mul(O.rsub(target, 1.0), input), softplus_neg)
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if log_target:
        loss = O.mul(O.exp(target), O.sub(target, input))
    else:
        # xlogy(t, t) - t * input: the first term is 0 where target == 0
        positive = O.gt(target, 0)
        safe = O.where(positive, target, 1.0)
        loss = O.sub(O.mul(target, O.log(safe)), O.mul(target, input))
    if reduction == "batchmean":
        return O.div(O.sum(loss), input.shape[0]) if input.ndim else O.sum(loss)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _resolve(size_average, reduce, reduction)
    if log_input:
        loss = O.sub(O.exp(input), O.mul(target, input))
    else:
        loss = O.sub(input, O.mul(target, O.log(O.add(input, eps))))
    if full:
        stirling = O.add(O.sub(O.mul(target, O.log(target)), target),
                         O.mul(O.log(O.mul(target, 2 * 3.141592653589793)), 0.5))
        loss = O.add(loss, O.where(O.gt(target, 1), stirling, O.mul(target, 0.0)))
    return _reduce(loss, reduction)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    n1 = O.clamp(O.norm(x1, 2, dim), min=eps)
    n2 = O.clamp(O.norm(x2, 2, dim), min=eps)
    return O.div(O.sum(O.mul(x1, x2), dim), O.mul(n1, n2))


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _resolve(size_average, reduce, reduction)
    loss = O.clamp(O.add(O.mul(O.neg(target), O.sub(input1, input2)), margin), min=0.0)
    return _reduce(loss, reduction)
