"""Op-database samples of the conv/pooling primitives, with naive loop references.

The references loop over output positions and kernel taps directly from the
definitions (independent of the im2col/col2im kernels); shapes are small.
"""

from __future__ import annotations

import numpy as np

from ember.ir import PRIMITIVES as P
from tests.opdb import F64, PrimCase, noncontig, uniform


def _pad(x, pads, value=0.0):
    (pt, pb), (pl, pr) = pads
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def ref_conv2d(x, w, *, stride, padding, dilation, groups):
    x, w = x.astype(F64), w.astype(F64)
    xp = _pad(x, padding)
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r, s = i * stride[0], j * stride[1]
            patch = xp[:, :, r:r + dilation[0] * (kh - 1) + 1:dilation[0], s:s + dilation[1] * (kw - 1) + 1:dilation[1]]
            for g in range(groups):
                out[:, g * og:(g + 1) * og, i, j] = np.einsum(
                    "nckl,ockl->no", patch[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og])
    return out


def ref_conv_transpose2d(x, w, *, stride, padding, output_padding, dilation, groups):
    x, w = x.astype(F64), w.astype(F64)
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    cig = cin // groups
    full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    out = np.zeros((n, cog * groups, full_h, full_w))
    for y in range(h):
        for xx in range(wd):
            for i in range(kh):
                for j in range(kw):
                    r, s = y * stride[0] + i * dilation[0], xx * stride[1] + j * dilation[1]
                    for g in range(groups):
                        out[:, g * cog:(g + 1) * cog, r, s] += x[:, g * cig:(g + 1) * cig, y, xx] @ \
                            w[g * cig:(g + 1) * cig, :, i, j]
    (pt, pb), (pl, pr) = padding
    return out[:, :, pt:full_h - pb, pl:full_w - pr]


def _pool_out(size, k, s, lo, hi, d, ceil):
    span = size + lo + hi - d * (k - 1) - 1
    out = (int(np.ceil(span / s)) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + lo:
        out -= 1
    return out


def _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    n, c, h, w = x.shape
    ho = _pool_out(h, kernel_size[0], stride[0], *padding[0], dilation[0], ceil_mode)
    wo = _pool_out(w, kernel_size[1], stride[1], *padding[1], dilation[1], ceil_mode)
    for i in range(ho):
        for j in range(wo):
            rows = [i * stride[0] - padding[0][0] + a * dilation[0] for a in range(kernel_size[0])]
            cols = [j * stride[1] - padding[1][0] + b * dilation[1] for b in range(kernel_size[1])]
            yield i, j, ho, wo, [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]


def ref_max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    out = None
    for i, j, ho, wo, cells in _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode):
        if out is None:
            out = np.zeros(x.shape[:2] + (ho, wo), x.dtype)
        out[:, :, i, j] = np.max(np.stack([x[:, :, r, q] for r, q in cells]), axis=0)
    return out


def ref_max_pool2d_backward(g, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    dx = np.zeros(x.shape)
    for i, j, ho, wo, cells in _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode):
        vals = np.stack([x[:, :, r, q] for r, q in cells])          # [cells, N, C]
        first = np.argmax(vals, axis=0)
        for k, (r, q) in enumerate(cells):
            dx[:, :, r, q] += np.where(first == k, g[:, :, i, j], 0.0)
    return dx


def ref_avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    h, w = x.shape[2:]
    out = None
    for i, j, ho, wo, cells in _pool_windows(x.astype(F64), kernel_size, stride, padding, (1, 1), ceil_mode):
        if out is None:
            out = np.zeros(x.shape[:2] + (ho, wo))
        hs = i * stride[0] - padding[0][0]
        he = min(hs + kernel_size[0], h + padding[0][1])
        ws = j * stride[1] - padding[1][0]
        we = min(ws + kernel_size[1], w + padding[1][1])
        pool_size = (he - hs) * (we - ws)
        real = (min(he, h) - max(hs, 0)) * (min(we, w) - max(ws, 0))
        div = divisor_override or (pool_size if count_include_pad else real)
        out[:, :, i, j] = sum(x[:, :, r, q].astype(F64) for r, q in cells) / div
    return out


def _conv_attrs(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _pool_attrs(k, s, padding=((0, 0), (0, 0)), dilation=(1, 1), ceil_mode=False):
    return dict(kernel_size=k, stride=s, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def primitive_cases():
    conv = P["conv2d"]
    p1 = ((1, 1), (1, 1))
    yield PrimCase(conv, (uniform((2, 3, 5, 5), 1), uniform((4, 3, 3, 3), 2)), _conv_attrs(), ref_conv2d, "basic",
                   rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((2, 3, 6, 5), 3), uniform((4, 3, 3, 2), 4)),
                   _conv_attrs(stride=(2, 1), padding=p1), ref_conv2d, "stride-pad", rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((1, 2, 7, 7), 5), uniform((2, 2, 3, 3), 6)),
                   _conv_attrs(dilation=(2, 2), padding=((2, 1), (0, 2))), ref_conv2d, "dilation-asym-pad",
                   rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((2, 4, 5, 5), 7), uniform((6, 2, 3, 3), 8)),
                   _conv_attrs(groups=2, padding=p1, stride=(2, 2)), ref_conv2d, "groups", rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((2, 3, 4, 4), 9), uniform((3, 1, 3, 3), 10)),
                   _conv_attrs(groups=3, padding=p1), ref_conv2d, "depthwise", rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((2, 3, 4, 4), 11), uniform((5, 3, 1, 1), 12)), _conv_attrs(), ref_conv2d, "1x1",
                   rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (noncontig(uniform((1, 2, 4, 4), 13)), uniform((2, 2, 2, 2), 14)), _conv_attrs(),
                   ref_conv2d, "noncontig", rtol=1e-5, atol=1e-5)
    yield PrimCase(conv, (uniform((2, 2, 5, 4), 15, dtype=F64), uniform((3, 2, 2, 3), 16, dtype=F64)),
                   _conv_attrs(stride=(2, 2), padding=((0, 1), (1, 0))), ref_conv2d, "f64-stride-remainder")

    convt = P["conv_transpose2d"]
    yield PrimCase(convt, (uniform((2, 3, 4, 4), 21), uniform((3, 2, 3, 3), 22)),
                   dict(_conv_attrs(), output_padding=(0, 0)), ref_conv_transpose2d, "basic", rtol=1e-5, atol=1e-5)
    yield PrimCase(convt, (uniform((2, 3, 3, 4), 23), uniform((3, 2, 3, 3), 24)),
                   dict(_conv_attrs(stride=(2, 2), padding=p1), output_padding=(1, 1)), ref_conv_transpose2d,
                   "stride-pad-outpad", rtol=1e-5, atol=1e-5)
    yield PrimCase(convt, (uniform((1, 4, 3, 3), 25), uniform((4, 1, 2, 3), 26)),
                   dict(_conv_attrs(groups=2, dilation=(2, 1), padding=((1, 0), (0, 1))), output_padding=(0, 0)),
                   ref_conv_transpose2d, "groups-dilation", rtol=1e-5, atol=1e-5)

    mp = P["max_pool2d"]
    yield PrimCase(mp, (uniform((2, 3, 6, 6), 31),), _pool_attrs((2, 2), (2, 2)), ref_max_pool2d, "2x2")
    yield PrimCase(mp, (uniform((2, 2, 7, 6), 32),), _pool_attrs((3, 3), (2, 2), p1), ref_max_pool2d, "3x3-s2-p1")
    yield PrimCase(mp, (uniform((1, 2, 7, 7), 33),), _pool_attrs((2, 2), (2, 2), ceil_mode=True), ref_max_pool2d,
                   "ceil")
    yield PrimCase(mp, (uniform((1, 2, 7, 7), 34),), _pool_attrs((2, 3), (1, 2), ((1, 1), (0, 0)), (2, 1)),
                   ref_max_pool2d, "dilation")

    yield PrimCase(P["max_pool2d_backward"], (uniform((2, 2, 4, 3), 35), uniform((2, 2, 7, 6), 36)),
                   _pool_attrs((3, 3), (2, 2), p1), ref_max_pool2d_backward, "3x3-s2-p1")
    yield PrimCase(P["max_pool2d_backward"], (uniform((1, 2, 4, 4), 37), uniform((1, 2, 7, 7), 38)),
                   _pool_attrs((2, 2), (2, 2), ceil_mode=True), ref_max_pool2d_backward, "ceil")
    # windows that do not overlap (backends may route g without a scatter-add); whole numbers make
    # ties, which go to the first maximum of each window as in PyTorch
    ties = np.round(uniform((2, 3, 6, 8), 39, lo=0.0, hi=2.0))
    yield PrimCase(P["max_pool2d_backward"], (uniform((2, 3, 3, 4), 40), ties),
                   _pool_attrs((2, 2), (2, 2)), ref_max_pool2d_backward, "2x2-ties")
    yield PrimCase(P["max_pool2d_backward"], (uniform((2, 3, 2, 4), 46), ties),
                   _pool_attrs((3, 2), (3, 2)), ref_max_pool2d_backward, "3x2-tiles-ties")
    yield PrimCase(P["max_pool2d_backward"], (uniform((1, 2, 2, 2), 44), uniform((1, 2, 7, 8), 45)),
                   _pool_attrs((2, 3), (3, 4)), ref_max_pool2d_backward, "stride-gt-kernel")

    ap = P["avg_pool2d"]

    def avg(k, s, padding=((0, 0), (0, 0)), ceil_mode=False, count_include_pad=True, divisor_override=0):
        return dict(kernel_size=k, stride=s, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override)
    yield PrimCase(ap, (uniform((2, 3, 6, 6), 41),), avg((2, 2), (2, 2)), ref_avg_pool2d, "2x2", rtol=1e-5)
    yield PrimCase(ap, (uniform((2, 2, 5, 6), 42),), avg((3, 3), (2, 2), p1), ref_avg_pool2d, "pad-include",
                   rtol=1e-5)
    yield PrimCase(ap, (uniform((2, 2, 5, 6), 43),), avg((3, 3), (2, 2), p1, count_include_pad=False),
                   ref_avg_pool2d, "pad-exclude", rtol=1e-5)
    yield PrimCase(ap, (uniform((1, 2, 7, 7), 44),), avg((3, 3), (2, 2), p1, ceil_mode=True), ref_avg_pool2d,
                   "ceil", rtol=1e-5)
    yield PrimCase(ap, (uniform((1, 2, 5, 5), 45),), avg((2, 2), (1, 1), divisor_override=3), ref_avg_pool2d,
                   "divisor", rtol=1e-5)
    yield PrimCase(ap, (uniform((1, 1, 7, 5), 46),), avg((2, 2), (2, 2)), ref_avg_pool2d, "floor-remainder",
                   rtol=1e-5)
