"""linear, dropout, embedding, padding and normalization, composed from ember primitives."""

from __future__ import annotations

from ember.ir import ops as P
from ember.ir.types import int64

from ... import _ops as O
from ... import _state
from ..._creation import rand
from ..._dispatch import apply
from ..._tensor import Tensor
from .activation import _apply


# ----------------------------------------------------------------- linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``: one matmul over the flattened leading dims (one BLAS call)."""
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: linear in low precision
        input, weight, bias = _state.autocast_hook("lower", input, weight, bias)
    shape = tuple(input.shape)
    if len(shape) > 2:
        x = O.reshape(input, (-1, shape[-1]))
        y = O.matmul(x, O.t(weight))
        if bias is not None:
            y = O.add(y, bias)
        return O.reshape(y, shape[:-1] + (weight.shape[0],))
    y = O.matmul(input, O.t(weight))
    return O.add(y, bias) if bias is not None else y


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    # y_k = x1^T W_k x2 + b_k  ==  sum_i x1_i * (W x2)_ki
    out_f, in1, in2 = weight.shape
    lead = tuple(input1.shape[:-1])
    x1 = O.reshape(input1, (-1, in1))
    x2 = O.reshape(input2, (-1, in2))
    w2 = O.matmul(x2, O.t(O.reshape(weight, (out_f * in1, in2))))  # [B, out*in1]
    y = O.sum(O.mul(O.reshape(w2, (-1, out_f, in1)), O.unsqueeze(x1, 1)), -1)
    if bias is not None:
        y = O.add(y, bias)
    return O.reshape(y, lead + (out_f,))


# ----------------------------------------------------------------- dropout
def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _mask_scale(shape, p: float, dtype) -> Tensor:
    """Keep-mask scaled by 1/(1-p), drawn with ember's RNG (a ``uniform`` op in a trace)."""
    keep = O.ge(rand(*shape, dtype=dtype), p)
    return O.mul(O.cast(keep, dtype), 1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _apply(input, lambda x: O.mul(x, 0.0), inplace, "dropout_")
    mask = _mask_scale(tuple(input.shape), p, input.dtype)
    return _apply(input, lambda x: O.mul(x, mask), inplace, "dropout_")


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, spatial: int) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape)
    batched = len(shape) == spatial + 2
    mask_shape = shape[:len(shape) - spatial] + (1,) * spatial
    if not batched and len(shape) != spatial + 1:
        raise RuntimeError(f"dropout{spatial}d: expected {spatial + 1}D or {spatial + 2}D input, got {len(shape)}D")
    if p == 1.0:
        return _apply(input, lambda x: O.mul(x, 0.0), inplace, f"dropout{spatial}d_")
    mask = _mask_scale(mask_shape, p, input.dtype)
    return _apply(input, lambda x: O.mul(x, mask), inplace, f"dropout{spatial}d_")


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 3)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    alpha_p = -1.7580993408473766
    keep = O.cast(O.ge(rand(*input.shape, dtype=input.dtype), p), input.dtype)
    a = ((1 - p) * (1 + p * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * p
    return _apply(input, lambda x: O.add(O.mul(O.add(O.mul(x, keep), O.mul(O.rsub(keep, 1.0), alpha_p)), a), b),
                  inplace, "alpha_dropout_")


# ----------------------------------------------------------------- embedding
def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    if input.dtype.is_floating_point:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.type()} instead (while checking arguments for embedding)")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    idx = O.cast(input, int64)
    flat = O.reshape(idx, (-1,))
    rows = O.index_select(weight, 0, flat)
    out = O.reshape(rows, tuple(idx.shape) + (weight.shape[1],))
    if padding_idx is not None and weight.requires_grad:
        # the padding row gets no gradient: route it through a detached copy
        is_pad = O.unsqueeze(O.eq(idx, padding_idx), -1)
        out = O.where(is_pad, O.detach(out), out)
    return out


def _embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    from ...autograd import no_grad
    import numpy as np
    with no_grad():
        rows = np.unique(input._data.reshape(-1))
        w = weight._data
        norms = np.linalg.norm(w[rows].astype(np.float64), ord=norm_type, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = (w[rows] * scale[:, None]).astype(w.dtype)
        weight._version[0] += 1


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    return O.one_hot(tensor, num_classes)


# ----------------------------------------------------------------- padding
def pad(input: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """``F.pad``: ``pad`` lists (left, right) pairs starting from the last dimension."""
    if len(pad) % 2 != 0:
        raise RuntimeError("Padding length must be divisible by 2")
    ndim = input.ndim
    if len(pad) // 2 > ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but "
                           f"got padding length {len(pad)} and input of dimension {ndim}")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        x = input
        # negative padding crops
        if any(lo < 0 or hi < 0 for lo, hi in pairs):
            for d, (lo, hi) in enumerate(pairs):
                if lo < 0 or hi < 0:
                    size = x.shape[d]
                    x = O.narrow(x, d, max(-lo, 0), size - max(-lo, 0) - max(-hi, 0))
            pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
        if all(p == (0, 0) for p in pairs):
            return x
        return apply(P.pad, (x,), {"pads": tuple(pairs), "value": 0 if value is None else value})
    if value not in (None, 0, 0.0):
        raise NotImplementedError(f"Padding mode \"{mode}\" doesn't take in value argument.")
    x = input
    for d, (lo, hi) in enumerate(pairs):
        if lo == hi == 0:
            continue
        n = x.shape[d]
        if mode == "reflect":
            if lo >= n or hi >= n:
                raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input "
                                   f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of input {ndim}")
            left = O.flip(O.narrow(x, d, 1, lo), [d]) if lo else None
            right = O.flip(O.narrow(x, d, n - 1 - hi, hi), [d]) if hi else None
        elif mode == "replicate":
            left = O.cat([O.narrow(x, d, 0, 1)] * lo, d) if lo else None
            right = O.cat([O.narrow(x, d, n - 1, 1)] * hi, d) if hi else None
        elif mode == "circular":
            left = O.narrow(x, d, n - lo, lo) if lo else None
            right = O.narrow(x, d, 0, hi) if hi else None
        else:
            raise NotImplementedError(f"Unrecognised padding mode {mode}")
        x = O.cat([t for t in (left, x, right) if t is not None], d)
    return x


# ----------------------------------------------------------------- normalization
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    denom = O.clamp(O.norm(input, p, dim, keepdim=True), min=eps)
    return O.div(input, denom)


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape) -> Tensor:
    if weight is not None:
        y = O.mul(y, O.reshape(weight, shape) if tuple(weight.shape) != tuple(shape) else weight)
    if bias is not None:
        y = O.add(y, O.reshape(bias, shape) if tuple(bias.shape) != tuple(shape) else bias)
    return y


def _normalize_over(x: Tensor, dims, eps: float):
    mean = O.mean(x, dims, keepdim=True)
    centered = O.sub(x, mean)
    var = O.mean(O.mul(centered, centered), dims, keepdim=True)
    return O.mul(centered, O.rsqrt(O.add(var, eps))), mean, var


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: norms in float32
        input, weight, bias = _state.autocast_hook("fp32", input, weight, bias)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in normalized_shape)}], but got input of size"
                           f"{list(input.shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    y, _, _ = _normalize_over(input, dims, eps)
    return _affine(y, weight, bias, normalized_shape)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    if eps is None:
        import numpy as np
        eps = float(np.finfo(input.dtype.np).eps)
    y = O.mul(input, O.rsqrt(O.add(O.mean(O.mul(input, input), dims, keepdim=True), eps)))
    return _affine(y, weight, None, normalized_shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: norms in float32
        input, weight, bias = _state.autocast_hook("fp32", input, weight, bias)
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    shape = tuple(input.shape)
    n, c = shape[0], shape[1]
    if c % num_groups != 0:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(shape)} and num_groups={num_groups}")
    grouped = O.reshape(input, (n, num_groups, -1))
    y, _, _ = _normalize_over(grouped, (2,), eps)
    y = O.reshape(y, shape)
    return _affine(y, weight, bias, (1, c) + (1,) * (len(shape) - 2))


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch statistics when training (updating the running buffers in place, without grad, as PyTorch);
    running statistics otherwise."""
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: norms in float32
        input, weight, bias = _state.autocast_hook("fp32", input, weight, bias)
    from ...autograd import no_grad
    shape = tuple(input.shape)
    if len(shape) < 2:
        raise ValueError(f"Expected 2D or 3D input (got {len(shape)}D input)")
    c = shape[1]
    bshape = (1, c) + (1,) * (len(shape) - 2)
    dims = (0,) + tuple(range(2, len(shape)))
    if training:
        # an int, or a 0-d tensor when the batch dimension is symbolic (a trace serving every batch size)
        count = O.count_of([shape[i] for i in dims], input.dtype)
        if isinstance(count, int) and count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(shape)}")
        mean = O.mean(input, dims, keepdim=True)
        # Centre on a detached copy k of the mean and restore the mean's dependence through per-channel
        # terms that are exactly zero in value:
        #   var = mean((x - k)^2) - (mean - k)^2,   y = (x - k) * scale + (bias - (mean - k) * scale).
        # Values are those of (x - mean) * scale + bias, first and second derivatives are exact (k is a
        # constant), and the backward needs no full-size reduction for the mean's gradient (two
        # reductions instead of three, no full-size negation).
        k = O.detach(mean)
        centered = O.sub(input, k)
        shift = O.sub(mean, k)
        var = O.sub(O.mean(O.mul(centered, centered), dims, keepdim=True), O.mul(shift, shift))
        if running_mean is not None and running_var is not None:
            m = 0.1 if momentum is None else momentum
            with no_grad():
                batch_mean = O.reshape(k, (c,))
                factor = count / (count - 1) if isinstance(count, int) else O.div(count, O.sub(count, 1.0))
                unbiased = O.mul(O.reshape(O.detach(var), (c,)), factor)
                running_mean.mul_(1 - m).add_(O.mul(O.cast(batch_mean, running_mean.dtype), m))
                running_var.mul_(1 - m).add_(O.mul(O.cast(unbiased, running_var.dtype), m))
        # fold the affine weight into the per-channel scale: one full-size multiply instead of two
        scale = O.rsqrt(O.add(var, eps))
        if weight is not None:
            scale = O.mul(scale, O.reshape(weight, bshape))
        offset = O.neg(O.mul(shift, scale))
        if bias is not None:
            offset = O.add(offset, O.reshape(bias, bshape))
        return O.add(O.mul(centered, scale), offset)
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    # evaluation: y = x * scale + shift with per-channel scale and shift (two full-size ops)
    scale = O.rsqrt(O.add(O.cast(running_var, input.dtype), eps))
    if weight is not None:
        scale = O.mul(scale, weight)
    shift = O.neg(O.mul(O.cast(running_mean, input.dtype), scale))
    if bias is not None:
        shift = O.add(shift, bias)
    return O.add(O.mul(input, O.reshape(scale, bshape)), O.reshape(shift, bshape))


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    shape = tuple(input.shape)
    dims = tuple(range(2, len(shape)))
    y, _, _ = _normalize_over(input, dims, eps)
    return _affine(y, weight, bias, (1, shape[1]) + (1,) * (len(shape) - 2))


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    sq = O.mul(input, input)
    c = input.shape[1]
    padded = pad(sq, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    acc = O.narrow(padded, 1, 0, c)
    for i in range(1, size):
        acc = O.add(acc, O.narrow(padded, 1, i, c))
    div = O.pow(O.add(O.mul(acc, alpha / size), k), beta)
    return O.div(input, div)
