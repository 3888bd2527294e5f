"""Convolution and pooling functions: PyTorch's arguments -> the canonical primitives of ``ember.ir.ops.nn``.

1-D variants run as 2-D ones on a height-1 image; adaptive pooling is composed
(one pooling primitive when the sizes divide, separable slices otherwise).
"""

from __future__ import annotations


from ember.ir.ops import nn as NP
from ember.ir.types import ShapeError

from ... import _ops as O
from ... import _state
from ..._dispatch import apply
from ..._tensor import Tensor


def _apply(prim, inputs: tuple, attrs: dict) -> Tensor:
    """Run a conv/pool primitive after its type rule: a bad shape fails here, naming the op and the user's line
    (the kernels themselves would silently return empty maps)."""
    try:
        prim.infer(*[t._type() for t in inputs], **attrs)
    except ShapeError as err:
        from ..._dispatch import user_frame
        where = user_frame()
        shapes = ", ".join(f"{t.dtype.name}{list(t.shape)}" for t in inputs)
        raise RuntimeError(f"{prim.name}: {err}\n  operands: {shapes}" + (f"\n  at {where}" if where else "")) \
            from None
    return apply(prim, inputs, attrs)


def _pair(v, name: str = "argument") -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        if len(v) != 2:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of 2 values, got {list(v)}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _single(v) -> int:
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise RuntimeError(f"expected a single integer value or a list of 1 value, got {list(v)}")
        return int(v[0])
    return int(v)


def _sym(p: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    return (p[0], p[0]), (p[1], p[1])


def _batched(input: Tensor, ndim: int, name: str) -> tuple[Tensor, bool]:
    """(input with a batch dimension, whether one was added) for ``ndim``-d batched ops."""
    if input.ndim == ndim:
        return input, False
    if input.ndim == ndim - 1:
        return O.unsqueeze(input, 0), True
    raise RuntimeError(f"Expected {ndim - 1}D (unbatched) or {ndim}D (batched) input to {name}, but got input of "
                       f"size: {list(input.shape)}")


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int]):
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _conv_padding(padding, kernel, dilation, stride, name: str):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            return _same_padding(kernel, dilation)
        raise RuntimeError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    return _sym(_pair(padding, "padding"))


def _check_conv_channels(x: Tensor, weight: Tensor, groups: int) -> None:
    if weight.ndim != 4:
        raise RuntimeError(f"Expected 4-dimensional weight for 4-dimensional input {list(x.shape)}, but got "
                           f"{weight.ndim}-dimensional weight of size {list(weight.shape)} instead")
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(x.shape)} to have {weight.shape[1] * groups} channels, but got {x.shape[1]} "
                           "channels instead")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size {list(weight.shape)} instead")


def _add_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    if bias is None:
        return y
    return O.add(y, O.reshape(bias, (1, -1, 1, 1)))


def _same_dtype(x: Tensor, weight: Tensor, name: str) -> None:
    if x.dtype is not weight.dtype:
        raise RuntimeError(f"Input type ({x.type()}) and weight type ({weight.type()}) should be the same "
                           f"(in {name})")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: conv in low precision
        input, weight, bias = _state.autocast_hook("lower", input, weight, bias)
    x, added = _batched(input, 4, "conv2d")
    _same_dtype(x, weight, "conv2d")
    _check_conv_channels(x, weight, groups)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _conv_padding(padding, tuple(weight.shape[2:]), dilation, stride, "conv2d")
    y = _apply(NP.conv2d, (x, weight), {"stride": stride, "padding": pads, "dilation": dilation,
                                       "groups": int(groups)})
    y = _add_bias(y, bias)
    return O.squeeze(y, 0) if added else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    x, added = _batched(input, 3, "conv1d")
    if weight.ndim != 3:
        raise RuntimeError(f"Expected 3-dimensional weight for 3-dimensional input {list(x.shape)}, but got "
                           f"{weight.ndim}-dimensional weight of size {list(weight.shape)} instead")
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, _single(padding))
    y = conv2d(O.unsqueeze(x, 2), O.unsqueeze(weight, 2), bias, (1, _single(stride)), pad2, (1, _single(dilation)),
               groups)
    y = O.squeeze(y, 2)
    return O.squeeze(y, 0) if added else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    if _state.autocast_dtype is not None:  # ember.amp.autocast policy: conv in low precision
        input, weight, bias = _state.autocast_hook("lower", input, weight, bias)
    x, added = _batched(input, 4, "conv_transpose2d")
    _same_dtype(x, weight, "conv_transpose2d")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
                           f"to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    output_padding = _pair(output_padding, "output_padding")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                               f"output_padding_height: {output_padding[0]} output_padding_width: "
                               f"{output_padding[1]} stride_height: {stride[0]} stride_width: {stride[1]} "
                               f"dilation_height: {dilation[0]} dilation_width: {dilation[1]}")
    y = _apply(NP.conv_transpose2d, (x, weight), {"stride": stride, "padding": _sym(_pair(padding, "padding")),
                                                 "output_padding": output_padding, "dilation": dilation,
                                                 "groups": int(groups)})
    y = _add_bias(y, bias)
    return O.squeeze(y, 0) if added else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    x, added = _batched(input, 3, "conv_transpose1d")
    y = conv_transpose2d(O.unsqueeze(x, 2), O.unsqueeze(weight, 2), bias, (1, _single(stride)),
                         (0, _single(padding)), (0, _single(output_padding)), groups, (1, _single(dilation)))
    y = O.squeeze(y, 2)
    return O.squeeze(y, 0) if added else y


# ----------------------------------------------------------------- pooling
def _pool_args(kernel_size, stride, padding, dilation):
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride, "stride")
    p = _pair(padding, "padding")
    d = _pair(dilation, "dilation")
    for pp, kk in zip(p, k):
        if pp > kk // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={pp}, "
                               f"kernel_size={kk} and dilation={d[0]}")
    return k, s, p, d


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    x, added = _batched(input, 4, "max_pool2d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation)
    attrs = {"kernel_size": k, "stride": s, "padding": _sym(p), "dilation": d, "ceil_mode": bool(ceil_mode)}
    y = _apply(NP.max_pool2d, (x,), attrs)
    y = O.squeeze(y, 0) if added else y
    if return_indices:
        idx = _max_pool2d_indices(x, attrs)
        return y, (O.squeeze(idx, 0) if added else idx)
    return y


def _max_pool2d_indices(x: Tensor, attrs: dict) -> Tensor:
    """Flat (h * W + w) index of each window's first maximum, computed eagerly (PyTorch's indices)."""
    if x._value is not None:
        raise RuntimeError("max_pool2d(return_indices=True) cannot be traced; ember records only the values")
    from ember.runtime.kernels_nn import max_pool2d_indices
    from ..._tensor import _wrap
    return _wrap(max_pool2d_indices(x._data, **attrs))


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    x, added = _batched(input, 3, "max_pool1d")
    s = None if stride is None or (isinstance(stride, (list, tuple)) and not stride) else (1, _single(stride))
    res = max_pool2d(O.unsqueeze(x, 2), (1, _single(kernel_size)), s, (0, _single(padding)),
                     (1, _single(dilation)), ceil_mode, return_indices)
    if return_indices:
        y, idx = res
        y, idx = O.squeeze(y, 2), O.squeeze(idx, 2)
        return (O.squeeze(y, 0), O.squeeze(idx, 0)) if added else (y, idx)
    y = O.squeeze(res, 2)
    return O.squeeze(y, 0) if added else y


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    x, added = _batched(input, 4, "avg_pool2d")
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    y = _apply(NP.avg_pool2d, (x,), {"kernel_size": k, "stride": s, "padding": _sym(p),
                                    "ceil_mode": bool(ceil_mode), "count_include_pad": bool(count_include_pad),
                                    "divisor_override": int(divisor_override or 0)})
    return O.squeeze(y, 0) if added else y


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    x, added = _batched(input, 3, "avg_pool1d")
    s = None if stride is None or (isinstance(stride, (list, tuple)) and not stride) else (1, _single(stride))
    y = O.squeeze(avg_pool2d(O.unsqueeze(x, 2), (1, _single(kernel_size)), s, (0, _single(padding)), ceil_mode,
                             count_include_pad), 2)
    return O.squeeze(y, 0) if added else y


def _adaptive_sizes(output_size, in_hw) -> tuple[int, int]:
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    return (in_hw[0] if oh is None else int(oh)), (in_hw[1] if ow is None else int(ow))


def _adaptive_1axis(x: Tensor, dim: int, out: int, reduce) -> Tensor:
    """Pool axis ``dim`` down to ``out`` cells [floor(i*n/out), ceil((i+1)*n/out)), as PyTorch."""
    n = x.shape[dim]
    if out == n:
        return x
    cells = []
    for i in range(out):
        start = (i * n) // out
        end = -(-((i + 1) * n) // out)
        cells.append(reduce(O.narrow(x, dim, start, end - start), dim))
    return O.stack(cells, dim)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    x, added = _batched(input, 4, "adaptive_avg_pool2d")
    h, w = x.shape[2], x.shape[3]
    oh, ow = _adaptive_sizes(output_size, (h, w))
    if oh == 1 and ow == 1:
        y = O.mean(x, (2, 3), keepdim=True)
    elif h % oh == 0 and w % ow == 0:
        y = avg_pool2d(x, (h // oh, w // ow), (h // oh, w // ow))
    else:
        y = _adaptive_1axis(x, 2, oh, lambda t, d: O.mean(t, d))
        y = _adaptive_1axis(y, 3, ow, lambda t, d: O.mean(t, d))
    return O.squeeze(y, 0) if added else y


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    x, added = _batched(input, 3, "adaptive_avg_pool1d")
    y = O.squeeze(adaptive_avg_pool2d(O.unsqueeze(x, 2), (1, _single(output_size))), 2)
    return O.squeeze(y, 0) if added else y


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d(return_indices=True) is not supported by ember")
    x, added = _batched(input, 4, "adaptive_max_pool2d")
    h, w = x.shape[2], x.shape[3]
    oh, ow = _adaptive_sizes(output_size, (h, w))
    if h % oh == 0 and w % ow == 0:
        y = max_pool2d(x, (h // oh, w // ow), (h // oh, w // ow))
    else:
        y = _adaptive_1axis(x, 2, oh, lambda t, d: O.amax(t, d))
        y = _adaptive_1axis(y, 3, ow, lambda t, d: O.amax(t, d))
    return O.squeeze(y, 0) if added else y


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    x, added = _batched(input, 3, "adaptive_max_pool1d")
    y = O.squeeze(adaptive_max_pool2d(O.unsqueeze(x, 2), (1, _single(output_size)), return_indices), 2)
    return O.squeeze(y, 0) if added else y


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    kh, kw = _pair(kernel_size)
    out = avg_pool2d(O.pow(input, norm_type), (kh, kw), stride, 0, ceil_mode)
    return O.pow(O.mul(O.mul(O.sign(out), O.relu(O.abs(out))), kh * kw), 1.0 / norm_type)

