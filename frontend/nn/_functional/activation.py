"""Activation functions as compositions of ember primitives (autodiff, export and fusion come free)."""

from __future__ import annotations

import math
import warnings

from ... import _ops as O
from ... import _state
from ..._tensor import Tensor


def _apply(input: Tensor, fn, inplace: bool, name: str) -> Tensor:
    """``fn(input)``, or its in-place form: ember's in-place machinery applies ``fn`` to a stand-in that keeps
    the old value and history, so the gradient never reads the overwritten tensor."""
    if not inplace:
        return fn(input)
    from ..._tensor_methods import inplace as _inplace_op
    return _inplace_op(input, fn, name)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else O.relu(input)


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.where(O.gt(x, 0), x, O.mul(x, negative_slope)), inplace, "leaky_relu_")


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.where(O.gt(x, 0), x, O.mul(O.expm1(x), alpha)), inplace, "elu_")


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return _apply(input, lambda x: O.mul(elu(x, alpha), scale), inplace, "selu_")


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.where(O.gt(x, 0), x, O.mul(O.expm1(O.div(x, alpha)), alpha)), inplace,
                  "celu_")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "none":
        return O.mul(O.mul(input, 0.5), O.add(O.erf(O.mul(input, 1.0 / math.sqrt(2.0))), 1.0))
    if approximate == "tanh":
        inner = O.mul(O.add(input, O.mul(O.mul(O.mul(input, input), input), 0.044715)), math.sqrt(2.0 / math.pi))
        return O.mul(O.mul(input, 0.5), O.add(O.tanh(inner), 1.0))
    raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.mul(x, O.sigmoid(x)), inplace, "silu_")


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.mul(x, O.tanh(softplus(x))), inplace, "mish_")


def sigmoid(input: Tensor) -> Tensor:
    return O.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return O.tanh(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # the gradient is zero on the boundaries themselves, as PyTorch's hardtanh_backward
    return _apply(input, lambda x: O.where(O.le(x, min_val), min_val, O.where(O.ge(x, max_val), max_val, x)),
                  inplace, "hardtanh_")


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.div(hardtanh(O.add(x, 3.0), 0.0, 6.0), 6.0), inplace, "hardsigmoid_")


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.mul(x, O.div(hardtanh(O.add(x, 3.0), 0.0, 6.0), 6.0)), inplace, "hardswish_")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    scaled = O.mul(input, beta) if beta != 1 else input
    soft = O.log1p(O.exp(O.clamp(scaled, max=float(threshold))))
    if beta != 1:
        soft = O.div(soft, beta)
    return O.where(O.gt(scaled, threshold), input, soft)


def softsign(input: Tensor) -> Tensor:
    return O.div(input, O.add(O.abs(input), 1.0))


def logsigmoid(input: Tensor) -> Tensor:
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for large |x|
    return O.sub(O.minimum(input, 0.0), O.log1p(O.exp(O.neg(O.abs(input)))))


def tanhshrink(input: Tensor) -> Tensor:
    return O.sub(input, O.tanh(input))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    return _apply(input, lambda x: O.where(O.gt(x, threshold), x, value), inplace, "threshold_")


def glu(input: Tensor, dim: int = -1) -> Tensor:
    a, b = O.chunk(input, 2, dim)
    return O.mul(a, O.sigmoid(b))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = O.reshape(weight, (weight.numel(),) + (1,) * (input.ndim - 2))
    return O.where(O.gt(input, 0), input, O.mul(input, w))


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _shifted(input: Tensor, dim: int) -> Tensor:
    # subtracting the (detached) max keeps exp in range; softmax is shift-invariant, so no gradient is lost
    m = O.detach(O.amax(input, dim, keepdim=True))
    return O.sub(input, m)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: softmax in float32
        input, = _state.autocast_hook("fp32", input)
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    x = input if dtype is None else O.cast(input, dtype)
    if x.ndim == 0:
        return O.exp(O.sub(x, O.detach(x)))
    e = O.exp(_shifted(x, dim))
    return O.div(e, O.sum(e, dim, keepdim=True))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return softmax(O.neg(input), dim, _stacklevel + 1, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: softmax in float32
        input, = _state.autocast_hook("fp32", input)
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    x = input if dtype is None else O.cast(input, dtype)
    if x.ndim == 0:
        return O.sub(x, x)
    s = _shifted(x, dim)
    return O.sub(s, O.log(O.sum(O.exp(s), dim, keepdim=True)))
