"""Convolution and pooling primitives: conv2d, conv_transpose2d, max_pool2d (+ its backward), avg_pool2d.

All work on NCHW tensors; the batch dimension may be symbolic, the others are static.
Attributes are canonical (the front end turns PyTorch's ints, ``"same"``, ``ceil_mode``
... into them):

- ``stride``: ``(sh, sw)``; ``dilation``: ``(dh, dw)``; ``kernel_size``: ``(kh, kw)``
- ``padding``: per side, ``((top, bottom), (left, right))`` (ONNX's ``pads`` reordered)
- ``groups``: channel groups; ``output_padding``: ``(oh, ow)`` extra rows/columns at the
  bottom/right of a transposed convolution's output

The set is kept small on purpose, each maps onto one ONNX/Relax operator:
``conv2d`` -> Conv, ``conv_transpose2d`` -> ConvTranspose, ``max_pool2d`` -> MaxPool,
``avg_pool2d`` -> AveragePool. Gradients are written with these same primitives
(the input gradient of a convolution is a transposed convolution, its weight gradient a
convolution with batch and channels swapped; the gradient of average pooling a
depthwise transposed convolution with a constant kernel), except max pooling, whose
gradient needs the argmax of each window: ``max_pool2d_backward`` (ONNX: MaxPool's
Indices output + ScatterElements).
"""

from __future__ import annotations

import numpy as np

from ..registry import OTHER, primitive
from ..types import ShapeError, TensorType, fmt_shape
from .creation import cast, constant, full
from .elementwise import mul
from .movement import permute, reshape, slice_

# ----------------------------------------------------------------- shape helpers


def _check_pair(name: str, v, minimum: int) -> None:
    if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) and i >= minimum for i in v)):
        raise ShapeError(f"attribute {name} must be a pair of ints >= {minimum}, got {v!r}")


def _check_pads(padding) -> None:
    ok = (isinstance(padding, tuple) and len(padding) == 2
          and all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(i, int) and i >= 0 for i in p)
                  for p in padding))
    if not ok:
        raise ShapeError(f"attribute padding must be ((top, bottom), (left, right)) of ints >= 0, got {padding!r}")


def _spatial(x: TensorType, what: str) -> tuple[int, int]:
    if x.ndim != 4:
        raise ShapeError(f"expects a 4-D {what} [N, C, H, W], got {fmt_shape(x.shape)}")
    h, w = x.shape[2], x.shape[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        raise ShapeError(f"spatial dimensions of {fmt_shape(x.shape)} must be static")
    return h, w


def conv_out_size(size: int, k: int, stride: int, pads: tuple[int, int], dilation: int) -> int:
    return (size + pads[0] + pads[1] - dilation * (k - 1) - 1) // stride + 1


def pool_out_size(size: int, k: int, stride: int, pads: tuple[int, int], dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (a last window must start inside the input or the leading pad)."""
    span = size + pads[0] + pads[1] - dilation * (k - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


def conv_transpose_out_size(size: int, k: int, stride: int, pads: tuple[int, int], dilation: int,
                            output_padding: int) -> int:
    return (size - 1) * stride - pads[0] - pads[1] + dilation * (k - 1) + output_padding + 1


# ----------------------------------------------------------------- type rules
def _check_conv_operands(x: TensorType, w: TensorType, stride, padding, dilation, weight_layout: str):
    """Checks shared by conv2d and conv_transpose2d; returns the input's spatial size."""
    _check_pair("stride", stride, 1)
    _check_pair("dilation", dilation, 1)
    _check_pads(padding)
    h, wd = _spatial(x, "input")
    if w.ndim != 4:
        raise ShapeError(f"expects a 4-D weight {weight_layout}, got {fmt_shape(w.shape)}")
    if x.dtype is not w.dtype:
        raise ShapeError(f"input and weight dtypes differ: {x.dtype.name} and {w.dtype.name}")
    if not x.dtype.is_floating_point:
        raise ShapeError(f"expects floating-point tensors, got {x.dtype.name}")
    return h, wd


def _conv2d_type(x: TensorType, w: TensorType, *, stride, padding, dilation, groups) -> TensorType:
    h, wd = _check_conv_operands(x, w, stride, padding, dilation, "[O, C/groups, kH, kW]")
    o, cg, kh, kw = w.shape
    if not (isinstance(groups, int) and groups >= 1) or o % groups:
        raise ShapeError(f"out_channels {o} must be divisible by groups {groups}")
    if x.shape[1] != cg * groups:
        raise ShapeError(f"input {fmt_shape(x.shape)} has {x.shape[1]} channels, but weight {fmt_shape(w.shape)} "
                         f"with groups={groups} expects {cg * groups}")
    ho = conv_out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[1], dilation[1])
    if ho < 1 or wo < 1:
        raise ShapeError(f"kernel {kh}x{kw} (dilation {dilation}) is larger than the padded input "
                         f"{h + sum(padding[0])}x{wd + sum(padding[1])}: output would be {ho}x{wo}")
    return TensorType(x.dtype, (x.shape[0], o, ho, wo))


def _conv_transpose2d_type(x: TensorType, w: TensorType, *, stride, padding, output_padding, dilation,
                           groups) -> TensorType:
    _check_pair("output_padding", output_padding, 0)
    h, wd = _check_conv_operands(x, w, stride, padding, dilation, "[C_in, C_out/groups, kH, kW]")
    cin, cog, kh, kw = w.shape
    if not (isinstance(groups, int) and groups >= 1) or cin % groups:
        raise ShapeError(f"weight's in_channels {cin} must be divisible by groups {groups}")
    if x.shape[1] != cin:
        raise ShapeError(f"input {fmt_shape(x.shape)} has {x.shape[1]} channels, weight {fmt_shape(w.shape)} "
                         f"expects {cin}")
    ho = conv_transpose_out_size(h, kh, stride[0], padding[0], dilation[0], output_padding[0])
    wo = conv_transpose_out_size(wd, kw, stride[1], padding[1], dilation[1], output_padding[1])
    if ho < 1 or wo < 1:
        raise ShapeError(f"padding {padding} crops the whole output ({ho}x{wo})")
    return TensorType(x.dtype, (x.shape[0], cog * groups, ho, wo))


def _pool_check(x: TensorType, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[int, int]:
    _check_pair("kernel_size", kernel_size, 1)
    _check_pair("stride", stride, 1)
    _check_pair("dilation", dilation, 1)
    _check_pads(padding)
    if not isinstance(ceil_mode, bool):
        raise ShapeError(f"attribute ceil_mode must be a bool, got {ceil_mode!r}")
    h, wd = _spatial(x, "input")
    for (lo, hi), k, d in zip(padding, kernel_size, dilation):
        if max(lo, hi) > (d * (k - 1) + 1) // 2:
            raise ShapeError(f"pad should be at most half of effective kernel size, but got pad={max(lo, hi)}, "
                             f"kernel_size={k} and dilation={d}")
    ho = pool_out_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    wo = pool_out_size(wd, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    if ho < 1 or wo < 1:
        raise ShapeError(f"input {fmt_shape(x.shape)} is too small for kernel {kernel_size}: output {ho}x{wo}")
    return ho, wo


def _max_pool2d_type(x: TensorType, *, kernel_size, stride, padding, dilation, ceil_mode) -> TensorType:
    ho, wo = _pool_check(x, kernel_size, stride, padding, dilation, ceil_mode)
    return TensorType(x.dtype, x.shape[:2] + (ho, wo))


def _max_pool2d_backward_type(g: TensorType, x: TensorType, *, kernel_size, stride, padding, dilation,
                              ceil_mode) -> TensorType:
    ho, wo = _pool_check(x, kernel_size, stride, padding, dilation, ceil_mode)
    want = x.shape[:2] + (ho, wo)
    if tuple(g.shape) != want or g.dtype is not x.dtype:
        raise ShapeError(f"gradient {g.dtype.name}{fmt_shape(g.shape)} does not match the pooled output "
                         f"{x.dtype.name}{fmt_shape(want)}")
    return x


def _avg_pool2d_type(x: TensorType, *, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override) -> TensorType:
    if not isinstance(count_include_pad, bool):
        raise ShapeError(f"attribute count_include_pad must be a bool, got {count_include_pad!r}")
    if not (isinstance(divisor_override, int) and divisor_override >= 0):
        raise ShapeError(f"attribute divisor_override must be an int >= 0 (0: none), got {divisor_override!r}")
    if not x.dtype.is_floating_point:
        raise ShapeError(f"expects a floating-point tensor, got {x.dtype.name}")
    ho, wo = _pool_check(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    return TensorType(x.dtype, x.shape[:2] + (ho, wo))


conv2d = primitive(
    "conv2d", _conv2d_type, kind=OTHER, saves="inputs",
    attrs=("stride", "padding", "dilation", "groups"),
    doc="cross-correlation of x [N, C, H, W] with w [O, C/groups, kH, kW] -> [N, O, Ho, Wo]; no bias "
        "(added by a separate add); attrs stride (sh, sw), padding ((top, bottom), (left, right)), "
        "dilation (dh, dw), groups")
conv_transpose2d = primitive(
    "conv_transpose2d", _conv_transpose2d_type, kind=OTHER, saves="inputs",
    attrs=("stride", "padding", "output_padding", "dilation", "groups"),
    doc="transposed convolution (the adjoint of conv2d in its input) of x [N, C_in, H, W] with "
        "w [C_in, C_out/groups, kH, kW]; Ho = (H-1)*sh - top - bottom + dh*(kH-1) + oh + 1; attrs as conv2d "
        "plus output_padding (oh, ow)")
max_pool2d = primitive(
    "max_pool2d", _max_pool2d_type, kind=OTHER, saves="inputs",
    attrs=("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    doc="maximum over each kH x kW window (padding never wins); attrs kernel_size, stride, "
        "padding ((top, bottom), (left, right)), dilation, ceil_mode (PyTorch's output-size rule)")
max_pool2d_backward = primitive(
    "max_pool2d_backward", _max_pool2d_backward_type, kind=OTHER,
    attrs=("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    doc="gradient of max_pool2d: routes g [N, C, Ho, Wo] to the first maximum of each window of x; "
        "attrs those of the forward max_pool2d")
avg_pool2d = primitive(
    "avg_pool2d", _avg_pool2d_type, kind=OTHER,
    attrs=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    doc="mean over each window; attrs kernel_size, stride, padding ((top, bottom), (left, right)), "
        "ceil_mode, count_include_pad (whether explicit padding counts in the divisor), "
        "divisor_override (0: none)")

# double backward through max pooling is not supported (the op would need its own adjoint)
max_pool2d_backward.mark_nondifferentiable()


# ----------------------------------------------------------------- gradient rules
def _crop(x, shape):
    """Slice x [N, C, H', W'] down to its top-left [N, C, H, W] when it came out larger."""
    if tuple(x.shape[2:]) == tuple(shape[2:]):
        return x
    return slice_(x, starts=(0, 0, 0, 0), stops=tuple(x.shape[:2]) + tuple(shape[2:]), steps=(1, 1, 1, 1))


def conv2d_weight_grad(x, gy, weight_shape, *, stride, padding, dilation, groups):
    """d conv2d(x, w) / d w, as one conv2d with the batch and channel axes swapped.

    dW[o, c, i, j] = sum_{n, y, x} xpad[n, c, y*s + i*d, x*s + j*d] * gy[n, o, y, x]: a convolution
    of x (batch = channels of a group) with gy (kernel = the output map), stride d and dilation s.
    Groups become the groups of that convolution, with the batch folded into its channels.
    """
    n = x.shape[0]
    c = x.shape[1]
    o = gy.shape[1]
    g = groups
    kh, kw = weight_shape[2], weight_shape[3]
    attrs = dict(stride=tuple(dilation), padding=tuple(padding), dilation=tuple(stride), groups=g)
    if g == 1:
        xt = permute(x, dims=(1, 0, 2, 3))      # [C, N, H, W]
        gt = permute(gy, dims=(1, 0, 2, 3))     # [O, N, Ho, Wo]
        dw = conv2d(xt, gt, **attrs)            # [C, O, kh', kw']
    elif isinstance(n, int):
        cg, og = c // g, o // g
        h, w = x.shape[2], x.shape[3]
        ho, wo = gy.shape[2], gy.shape[3]
        xt = reshape(permute(reshape(x, shape=(n, g, cg, h, w)), dims=(2, 1, 0, 3, 4)), shape=(cg, g * n, h, w))
        gt = reshape(permute(reshape(gy, shape=(n, g, og, ho, wo)), dims=(1, 2, 0, 3, 4)),
                     shape=(g * og, n, ho, wo))
        dw = conv2d(xt, gt, **attrs)            # [C/g, O, kh', kw']
    else:
        # symbolic batch: the batch cannot be folded into channels, so run one ungrouped weight gradient per
        # group (channel slices are static) and stack the results along O
        from .movement import concat
        cg, og = c // g, o // g
        parts = []
        for k in range(g):
            xk = _channel_slice(x, k * cg, (k + 1) * cg)
            gk = _channel_slice(gy, k * og, (k + 1) * og)
            parts.append(conv2d_weight_grad(xk, gk, (og, cg, kh, kw), stride=stride, padding=padding,
                                            dilation=dilation, groups=1))
        return concat(*parts, dim=0)
    dw = _crop(dw, (0, 0, kh, kw))
    return permute(dw, dims=(1, 0, 2, 3))       # [O, C/g, kh, kw]


def _channel_slice(x, start: int, stop: int):
    shape = tuple(x.shape)
    return slice_(x, starts=(0, start, 0, 0), stops=(shape[0], stop) + shape[2:], steps=(1, 1, 1, 1))


@conv2d.def_vjp
def _conv2d_vjp(g, ins, out, needs, attrs):
    x, w = ins
    stride, padding, dilation, groups = attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"]
    gx = gw = None
    if needs[0]:
        kh, kw = w.shape[2], w.shape[3]
        ho, wo = g.shape[2], g.shape[3]
        opad = tuple(size + lo + hi - ((o - 1) * s + d * (k - 1) + 1)
                     for size, (lo, hi), o, s, d, k in zip(x.shape[2:], padding, (ho, wo), stride, dilation, (kh, kw)))
        gx = conv_transpose2d(g, w, stride=stride, padding=padding, output_padding=opad, dilation=dilation,
                              groups=groups)
    if needs[1]:
        gw = conv2d_weight_grad(x, g, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return gx, gw


@conv_transpose2d.def_vjp
def _conv_transpose2d_vjp(g, ins, out, needs, attrs):
    x, w = ins
    stride, padding, dilation, groups = attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"]
    gx = gw = None
    if needs[0]:
        gx = _crop(conv2d(g, w, stride=stride, padding=padding, dilation=dilation, groups=groups), x.shape)
    if needs[1]:
        # y = conv_transpose(x, w)  <=>  x is the output-gradient of a conv2d whose input-gradient is y
        gw = conv2d_weight_grad(g, x, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
        gw = _crop(gw, w.shape) if tuple(gw.shape) != tuple(w.shape) else gw
    return gx, gw


@max_pool2d.def_vjp
def _max_pool2d_vjp(g, ins, out, needs, attrs):
    return (max_pool2d_backward(g, ins[0], **attrs),)


def avg_pool_divisor(h: int, w: int, ho: int, wo: int, *, kernel_size, stride, padding, count_include_pad,
                     divisor_override) -> np.ndarray:
    """[Ho, Wo] divisors of average pooling, by PyTorch's rule (shared by the kernel and the gradient)."""
    if divisor_override:
        return np.full((ho, wo), float(divisor_override))

    def sizes(n_out, size, k, s, lo, hi):
        start = np.arange(n_out) * s - lo
        end = np.minimum(start + k, size + hi)
        padded = end - start
        real = np.minimum(end, size) - np.maximum(start, 0)
        return padded if count_include_pad else real

    dh = sizes(ho, h, kernel_size[0], stride[0], *padding[0])
    dw = sizes(wo, w, kernel_size[1], stride[1], *padding[1])
    return np.outer(dh, dw).astype(np.float64)


@avg_pool2d.def_vjp
def _avg_pool2d_vjp(g, ins, out, needs, attrs):
    (x,) = ins
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    ho, wo = g.shape[2], g.shape[3]
    k, s, padding = attrs["kernel_size"], attrs["stride"], attrs["padding"]
    div = avg_pool_divisor(h, w, ho, wo, kernel_size=k, stride=s, padding=padding,
                           count_include_pad=attrs["count_include_pad"], divisor_override=attrs["divisor_override"])
    inv = cast(constant(value=(1.0 / div).reshape(1, 1, ho, wo)), dtype=g.dtype)
    from .movement import broadcast_to
    scaled = mul(g, broadcast_to(inv, shape=tuple(g.shape)))
    ones = full(shape=(c, 1) + tuple(k), value=1.0, dtype=g.dtype)
    # spread each output's share back over its window; crop the leading pad and whatever lies past the input
    pads, opad = [], []
    for size, n_out, kk, ss, (lo, _) in zip((h, w), (ho, wo), k, s, padding):
        full_len = (n_out - 1) * ss + kk
        hi = full_len - lo - size
        pads.append((lo, max(hi, 0)))
        opad.append(max(-hi, 0))
    gx = conv_transpose2d(scaled, ones, stride=tuple(s), padding=tuple(pads), output_padding=tuple(opad),
                          dilation=(1, 1), groups=c)
    return (gx,)


__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "conv2d_weight_grad", "conv_out_size", "pool_out_size", "conv_transpose_out_size",
           "avg_pool_divisor"]
