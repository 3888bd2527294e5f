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


def _channels_last(x: np.ndarray) -> bool:
    return x.transpose(0, 2, 3, 1).flags.c_contiguous and not x.flags.c_contiguous


def _pad_nchw(x: np.ndarray, pads, value=0) -> np.ndarray:
    """Constant-pad the spatial dims, keeping x's memory layout (channels-last stays channels-last).

    Layout matters more than anything on small images: numpy runs elementwise loops along the
    innermost memory axis, which is C (long) for channels-last data but W (a few pixels) otherwise.
    """
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    n, c, h, w = x.shape
    if _channels_last(x):
        out = np.full((n, h + pt + pb, w + pl + pr, c), value, dtype=x.dtype).transpose(0, 3, 1, 2)
    else:
        out = np.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _nhwc_padded(x: np.ndarray, pads) -> np.ndarray:
    """x [N, C, H, W] as a C-contiguous channels-last [N, H', W', C] array with the zero padding applied.

    Free when x is already a channels-last view (every conv output is one) and needs no padding.
    """
    xl = x.transpose(0, 2, 3, 1)
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return np.ascontiguousarray(xl)
    n, h, w, c = xl.shape
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    out[:, pt:pt + h, pl:pl + w, :] = xl
    return out


@kernel("conv2d")
def conv2d(x, w, *, stride, padding, dilation, groups):
    if x.strides[0] < x.strides[1] and x.shape[0] > 1:
        # the batch axis is the fast one in memory: this is the weight gradient of a convolution (conv2d_weight_grad
        # swaps batch and channels); gather the other way round so no big transpose is needed
        return _conv2d_batch_inner(x, w, stride, padding, dilation, groups)
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    xp = _nhwc_padded(x, padding)                                     # [N, H', W', C]
    ho = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    rows, g, og = n * ho * wo, groups, o // groups
    sn, sh, sw, sc = xp.strides
    # im2col: columns ordered (kh, kw, c) so the innermost copy runs over contiguous channels
    win = as_strided(xp, (n, ho, wo, g, kh, kw, cg),
                     (sn, sh * stride[0], sw * stride[1], sc * cg, sh * dilation[0], sw * dilation[1], sc),
                     writeable=False)
    wmat = w.reshape(g, og, cg, kh, kw).transpose(0, 1, 3, 4, 2).reshape(g, og, kh * kw * cg)
    if g == 1:
        out = win.reshape(rows, kh * kw * cg) @ wmat[0].T               # [N*Ho*Wo, O]
    else:
        cols = win.reshape(rows, g, kh * kw * cg).transpose(1, 0, 2)
        out = np.matmul(cols, wmat.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(rows, o)
    # astype: ml_dtypes' bfloat16 matmul returns float32 (a no-op for other dtypes)
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2).astype(x.dtype, copy=False)  # NCHW view, channels-last


def _conv2d_batch_inner(x, w, stride, padding, dilation, groups):
    """conv2d for an input whose batch axis is innermost in memory: im2col over (channel, kernel tap) rows
    and (output position, batch) columns, so every gather copies contiguous runs of the batch axis."""
    b, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g, og = groups, o // groups
    xm = x.transpose(1, 2, 3, 0)                                      # [C, H, W, B], contiguous here
    (pt, pb), (pl, pr) = padding
    if pt or pb or pl or pr:
        xp = np.zeros((c, h + pt + pb, wd + pl + pr, b), dtype=x.dtype)
        xp[:, pt:pt + h, pl:pl + wd, :] = xm
    else:
        xp = np.ascontiguousarray(xm)
    ho = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    sc, sh, sw, sb = xp.strides
    t = as_strided(xp, (g, cg, kh, kw, ho, wo, b),
                   (sc * cg, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1], sb),
                   writeable=False).reshape(g, cg * kh * kw, ho * wo * b)
    wt = w.transpose(1, 2, 3, 0).reshape(cg * kh * kw, g, og).transpose(1, 0, 2)   # [G, cg*kh*kw, og]
    out = np.matmul(t.transpose(0, 2, 1), wt)                        # [G, Ho*Wo*B, og]
    out = out.reshape(g, ho, wo, b, og).transpose(3, 0, 4, 1, 2)     # [B, G, og, Ho, Wo]
    return out.reshape(b, o, ho, wo)


@kernel("conv_transpose2d")
def conv_transpose2d(x, w, *, stride, padding, output_padding, dilation, groups):
    return _conv_transpose2d_col2im(x, w, stride, padding, output_padding, dilation, groups)


def _conv_transpose2d_col2im(x, w, stride, padding, output_padding, dilation, groups):
    """One (batched) matmul to per-tap columns, then a strided add per kernel tap (col2im).

    Columns are tap-major ([taps, N*H*W, C_out]) so each tap's add reads a contiguous block. (Measured
    against the "full convolution with the flipped kernel" formulation: that one pays a larger im2col and
    the flops of the zero border, and was ~1.8x slower on the digits CNN shapes.)"""
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    g = groups
    cout, cig, taps = cog * g, cin // g, kh * kw
    rows = n * h * wd
    xt = x.transpose(0, 2, 3, 1).reshape(rows, cin)
    # cols[t, p, co] = sum_ci x[p, ci] * w[ci, co, t]   (t = kernel tap)
    if g == 1:
        cols = np.matmul(xt, w.reshape(cin, cout, taps).transpose(2, 0, 1))             # [taps, P, C_out]
    else:
        wt = w.reshape(g, cig, cog, taps).transpose(0, 3, 1, 2)                         # [G, taps, cig, cog]
        cols = np.matmul(xt.reshape(rows, g, cig).transpose(1, 0, 2)[:, None], wt)      # [G, taps, P, cog]
        cols = cols.transpose(1, 2, 0, 3).reshape(taps, rows, cout)
    cols = cols.reshape(taps, n, h, wd, cout)
    full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    out = np.zeros((n, full_h, full_w, cout), dtype=np.result_type(x.dtype, w.dtype))
    span_h, span_w = (h - 1) * stride[0] + 1, (wd - 1) * stride[1] + 1
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            out[:, r:r + span_h:stride[0], s:s + span_w:stride[1], :] += cols[i * kw + j]
    (pt, pb), (pl, pr) = padding
    ho = conv_transpose_out_size(h, kh, stride[0], padding[0], dilation[0], output_padding[0])
    wo = conv_transpose_out_size(wd, kw, stride[1], padding[1], dilation[1], output_padding[1])
    return out[:, pt:pt + ho, pl:pl + wo, :].transpose(0, 3, 1, 2).astype(x.dtype, copy=False)


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
            out = xp[idx].copy(order="K")
        else:
            np.maximum(out, xp[idx], out=out)  # propagates NaN, as PyTorch
    return out


def _first_max_taps(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(padded x, its padding, [N, C, Ho, Wo] tap index of each window's first maximum)."""
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad_nchw(x, pads, _lowest(x.dtype))
    nan_aware = x.dtype.kind == "f" and bool(np.isnan(x).any())
    best = arg = None
    for t, idx in _taps(xp, ho, wo, kernel_size, stride, dilation):
        v = xp[idx]
        if best is None:
            taps = kernel_size[0] * kernel_size[1]
            best, arg = v.copy(order="K"), np.zeros_like(v, dtype=np.int8 if taps < 128 else np.int32)
            continue
        # the first maximum wins; any NaN replaces the running max (PyTorch's rule: the last NaN wins)
        take = np.greater(v, best)
        if nan_aware:
            take |= np.isnan(v)
        best = np.where(take, v, best)
        arg = np.where(take, np.int8(t) if arg.dtype == np.int8 else t, arg)
    return xp, pads, arg


@kernel("max_pool2d_backward")
def max_pool2d_backward(g, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad_nchw(x, pads, _lowest(x.dtype))
    best = max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                      ceil_mode=ceil_mode)
    nan_aware = x.dtype.kind == "f" and bool(np.isnan(best).any())
    gl = np.empty_like(best, dtype=g.dtype)  # g in x's memory layout, so every loop below streams
    gl[...] = g
    dxp = np.zeros_like(xp, dtype=g.dtype)
    # the gradient goes to each window's first maximum in tap order, or to its last NaN if it holds one
    # (PyTorch's rule: a later NaN replaces the running max); NaN never equals best, so the passes don't overlap
    taps = list(_taps(xp, ho, wo, kernel_size, stride, dilation))
    passes = [(taps, lambda v: v == best)]
    if nan_aware:
        passes.append((taps[::-1], np.isnan))
    for order, matches in passes:
        taken = None
        for _, idx in order:
            v = xp[idx]
            hit = matches(v)
            if taken is None:
                taken = hit
            else:
                hit &= ~taken
                taken |= hit
            dxp[idx] += gl * hit
    (pt, _), (pl, _) = pads
    return dxp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]


def max_pool2d_indices(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """PyTorch's ``return_indices``: flat index (h * W + w) of each window's first maximum (eager only)."""
    _, _, arg = _first_max_taps(x, kernel_size, stride, padding, dilation, ceil_mode)
    ho, wo = arg.shape[2], arg.shape[3]
    rows = (np.arange(ho) * stride[0] - padding[0][0])[:, None] + (arg // kernel_size[1]) * dilation[0]
    cols = (np.arange(wo) * stride[1] - padding[1][0])[None, :] + (arg % kernel_size[1]) * dilation[1]
    return (rows * x.shape[3] + cols).astype(np.int64)


@kernel("avg_pool2d")
def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    ho, wo, pads = _pool_geometry(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    xp = _pad_nchw(x, pads, 0)
    acc = None
    for _, idx in _taps(xp, ho, wo, kernel_size, stride, (1, 1)):
        acc = xp[idx].copy(order="K") if acc is None else np.add(acc, xp[idx], out=acc)
    div = avg_pool_divisor(x.shape[2], x.shape[3], ho, wo, kernel_size=kernel_size, stride=stride,
                           padding=padding, count_include_pad=count_include_pad, divisor_override=divisor_override)
    return (acc / div.astype(acc.dtype)).astype(x.dtype, copy=False)
