"""NumPy kernels of the convolution and pooling primitives (``ember.ir.ops.nn``).

Convolution is im2col by stride tricks (a zero-copy window view, one gather copy)
followed by one BLAS matmul per call (a batched one for grouped convolutions); the
transposed convolution is one matmul followed by a col2im scatter that loops over
the kH*kW kernel taps only, each tap a whole-array strided add. Pooling loops over
kernel taps the same way. No Python loop ever runs over pixels, channels or batch.

Intermediate layouts are channels-last ([N, H, W, C]) because that is what the matmul
produces; results are returned as NCHW views of them (numpy handles any strides).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ember.ir.ops.nn import avg_pool_divisor, conv_transpose_out_size, pool_out_size

from .kernels import kernel


def _pad_nchw(x: np.ndarray, pads, value=0) -> np.ndarray:
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _windows(xp: np.ndarray, ho: int, wo: int, kh: int, kw: int, stride, dilation) -> np.ndarray:
    """Zero-copy view [N, Ho, Wo, C, kh, kw] of the kH x kW windows of a padded NCHW array."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (n, ho, wo, c, kh, kw),
                      (sn, sh * stride[0], sw * stride[1], sc, sh * dilation[0], sw * dilation[1]),
                      writeable=False)


@kernel("conv2d")
def conv2d(x, w, *, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = _pad_nchw(x, padding)
    ho = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    rows = n * ho * wo
    if groups == 1:
        if kh == kw == 1 and stride == (1, 1):
            cols = xp.transpose(0, 2, 3, 1).reshape(rows, c)
        else:
            cols = _windows(xp, ho, wo, kh, kw, stride, dilation).reshape(rows, c * kh * kw)
        out = cols @ w.reshape(o, c * kh * kw).T                        # [N*Ho*Wo, O]
    else:
        g, og = groups, o // groups
        cols = _windows(xp, ho, wo, kh, kw, stride, dilation).reshape(rows, g, cg * kh * kw)
        out = np.matmul(cols.transpose(1, 0, 2), w.reshape(g, og, cg * kh * kw).transpose(0, 2, 1))
        out = out.transpose(1, 0, 2).reshape(rows, o)                  # [N*Ho*Wo, O], channel = g*og + j
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


@kernel("conv_transpose2d")
def conv_transpose2d(x, w, *, stride, padding, output_padding, dilation, groups):
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    g = groups
    cout, cig, taps = cog * g, cin // g, kh * kw
    rows = n * h * wd
    xt = x.transpose(0, 2, 3, 1).reshape(rows, cin)
    # cols[p, t, co] = sum_ci x[p, ci] * w[ci, co, t]   (t = kernel tap)
    if g == 1:
        wt = w.reshape(cin, cout, taps).transpose(0, 2, 1).reshape(cin, taps * cout)
        cols = (xt @ wt).reshape(n, h, wd, taps, cout)
    else:
        wt = w.reshape(g, cig, cog, taps).transpose(0, 1, 3, 2).reshape(g, cig, taps * cog)
        cols = np.matmul(xt.reshape(rows, g, cig).transpose(1, 0, 2), wt)          # [G, P, taps*cog]
        cols = cols.reshape(g, n, h, wd, taps, cog).transpose(1, 2, 3, 4, 0, 5).reshape(n, h, wd, taps, cout)
    full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    out = np.zeros((n, full_h, full_w, cout), dtype=np.result_type(x.dtype, w.dtype))
    span_h, span_w = (h - 1) * stride[0] + 1, (wd - 1) * stride[1] + 1
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            out[:, r:r + span_h:stride[0], s:s + span_w:stride[1], :] += cols[:, :, :, i * kw + j, :]
    (pt, pb), (pl, pr) = padding
    ho = conv_transpose_out_size(h, kh, stride[0], padding[0], dilation[0], output_padding[0])
    wo = conv_transpose_out_size(wd, kw, stride[1], padding[1], dilation[1], output_padding[1])
    return out[:, pt:pt + ho, pl:pl + wo, :].transpose(0, 3, 1, 2)


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Output size and the padding (including any ceil-mode overhang) that covers every window."""
    h, w = x.shape[2], x.shape[3]
    ho = pool_out_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    wo = pool_out_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    need_h = (ho - 1) * stride[0] + dilation[0] * (kernel_size[0] - 1) + 1
    need_w = (wo - 1) * stride[1] + dilation[1] * (kernel_size[1] - 1) + 1
    pads = ((padding[0][0], max(need_h - h - padding[0][0], 0)), (padding[1][0], max(need_w - w - padding[1][0], 0)))
    return ho, wo, pads


def _taps(xp, ho, wo, kernel_size, stride, dilation):
    """(tap index, strided view [N, C, Ho, Wo]) for every kernel tap."""
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            r, s = i * dilation[0], j * dilation[1]
            yield i * kernel_size[1] + j, (slice(None), slice(None),
                                           slice(r, r + (ho - 1) * stride[0] + 1, stride[0]),
                                           slice(s, s + (wo - 1) * stride[1] + 1, stride[1]))


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" or dtype.name == "bfloat16" else np.iinfo(dtype).min


@kernel("max_pool2d")
def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad_nchw(x, pads, _lowest(x.dtype))
    out = None
    for _, idx in _taps(xp, ho, wo, kernel_size, stride, dilation):
        if out is None:
            out = xp[idx].copy()
        else:
            np.maximum(out, xp[idx], out=out)  # propagates NaN, as PyTorch
    return out


@kernel("max_pool2d_backward")
def max_pool2d_backward(g, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad_nchw(x, pads, _lowest(x.dtype))
    best = arg = None
    for t, idx in _taps(xp, ho, wo, kernel_size, stride, dilation):
        v = xp[idx]
        if best is None:
            best, arg = v.copy(), np.zeros(v.shape, dtype=np.int32)
            continue
        # the first maximum wins; a NaN beats everything (PyTorch's rule)
        take = (v > best) | (np.isnan(v) & ~np.isnan(best)) if v.dtype.kind == "f" else v > best
        best[take] = v[take]
        arg[take] = t
    dxp = np.zeros(xp.shape, dtype=g.dtype)
    for t, idx in _taps(xp, ho, wo, kernel_size, stride, dilation):
        dxp[idx] += np.where(arg == t, g, 0)
    (pt, _), (pl, _) = pads
    return dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]


@kernel("avg_pool2d")
def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    xp = _pad_nchw(x, pads, 0)
    acc = None
    for _, idx in _taps(xp, ho, wo, kernel_size, stride, (1, 1)):
        acc = xp[idx].copy() if acc is None else np.add(acc, xp[idx], out=acc)
    div = avg_pool_divisor(x.shape[2], x.shape[3], ho, wo, kernel_size=kernel_size, stride=stride,
                           padding=padding, count_include_pad=count_include_pad, divisor_override=divisor_override)
    return (acc / div.astype(acc.dtype)).astype(x.dtype, copy=False)
