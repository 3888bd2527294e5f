"""Relax lowerings of the convolution and pooling primitives (``ember.ir.ops.nn``).

Convolutions (matmul option ``"blas"``, the CPU default): im2col as one TVM kernel,
then one (batched over groups) BLAS matmul through ``ember.matmul``, then a layout
kernel back to NCHW that TVM fuses with what follows. A transposed convolution is
the same convolution over a *virtual* zero-inserted, re-padded input (never
materialized: the im2col kernel reads through the index map) with the flipped,
transposed kernel. With ``matmul="tvm"`` (GPUs) they are ``R.nn.conv2d`` /
``R.nn.conv2d_transpose``.

Pooling is written in TE from the node's own output size (PyTorch's ceil-mode rule,
already in the type): a NaN-aware max (NaN wins, as in PyTorch), a window sum times
the divisors of ``avg_pool_divisor`` (the rule the numpy kernel and the gradient
share), and the max-pool gradient as a first-maximum argmax per window followed by
a gather over the windows that cover each input pixel.
"""

from __future__ import annotations

import numpy as np
from tvm import relax, te
from tvm import tirx as tir

from ember.ir.ops.nn import avg_pool_divisor

from ..extern import MATMUL_FN
from ..lower import lowering, tvm_dtype
from .linalg import _uses_blas

R = relax.op


def _lowest(dtype: str):
    return tir.min_value(dtype) if not dtype.startswith("float") else tir.const(-np.inf, dtype)


# ------------------------------------------------------------------ convolution via im2col + BLAS
def _im2col(ctx, x, dt, channels_per_group, groups, in_hw, out_hw, k, conv_stride, dilation, lo, zero_stride,
            k_major=False):
    """cols[g, n, oh, ow, c, kh, kw] = v[n, g*Cg + c, oh*S + kh*D - lo, ow*S + kw*D - lo'] (0 outside),
    where v is x with ``zero_stride - 1`` zeros inserted between its pixels (1: x itself);
    ``k_major``: the same values as cols[g, c, kh, kw, n, oh, ow].

    Two kernels: the (small) padded / zero-inserted input first, so the (kh*kw times larger)
    gather of windows has no bounds checks at all.
    """
    (h, w), (ho, wo), (kh, kw) = in_hw, out_hw, k
    cg = channels_per_group
    # extent of the padded input that the windows read
    hp = (ho - 1) * conv_stride[0] + (kh - 1) * dilation[0] + 1
    wp = (wo - 1) * conv_stride[1] + (kw - 1) * dilation[1] + 1
    plain = zero_stride == (1, 1) and lo == (0, 0) and (hp, wp) == (h, w)
    if not plain:
        def source(i, size, s):
            # (in range, index into x) of virtual coordinate i along an axis of x's size
            if s == 1:
                return tir.all(i >= 0, i < size), i
            return tir.all(i >= 0, tir.floormod(i, s) == 0, tir.floordiv(i, s) < size), tir.floordiv(i, s)

        def padded(xt):
            def body(b, c, p, q):
                ok_i, ii = source(p - lo[0], h, zero_stride[0])
                ok_j, jj = source(q - lo[1], w, zero_stride[1])
                return tir.if_then_else(tir.all(ok_i, ok_j), xt[b, c, ii, jj], tir.const(0, dt))
            return te.compute((xt.shape[0], xt.shape[1], hp, wp), body, name="pad_input")
        x = ctx.emit_te(padded, x, name="pad_input")

    def windows(xt):
        def body(g, b, oh, ow, c, r, q):
            return xt[b, g * cg + c, oh * conv_stride[0] + r * dilation[0], ow * conv_stride[1] + q * dilation[1]]
        if k_major:
            return te.compute((groups, cg, kh, kw, xt.shape[0], ho, wo),
                              lambda g, c, r, q, b, oh, ow: body(g, b, oh, ow, c, r, q), name="im2col")
        return te.compute((groups, xt.shape[0], ho, wo, cg, kh, kw), body, name="im2col")
    # standalone: fused with the reshape to the GEMM's 3-D operand, its loops would be the flat ones of the
    # reshape (div/mod in every index, measured 2-3x slower); alone, the reshape is a free view
    return ctx.emit_te(windows, x, name="im2col", standalone=True)


def _conv_via_blas(ctx, node, x, wmat, *, groups, cg, og, k, conv_stride, dilation, lo, zero_stride):
    """x [N, C, H, W] (virtually re-strided/padded), wmat [G, Og, Cg*kh*kw] -> [N, G*Og, Ho, Wo]."""
    n, _, h, w = node.inputs[0].shape
    ho, wo = node.output.shape[2], node.output.shape[3]
    dt = tvm_dtype(node.output.dtype)
    # the im2col gather's innermost loop is what gets vectorized: output columns (contiguous reads of the
    # padded input) when the output is at least as wide as the kernel, else the kernel's columns (a weight
    # gradient, whose "kernel" is the whole output map)
    k_major = wo >= k[1]
    cols = _im2col(ctx, x, dt, cg, groups, (h, w), (ho, wo), k, conv_stride, dilation, lo, zero_stride, k_major)
    rows, depth = ctx.dim(n) * (ho * wo), cg * (k[0] * k[1])
    if k_major:  # y[g, Og, N*Ho*Wo] = w[g, Og, K] @ cols[g, K, N*Ho*Wo]; to NCHW in runs of Ho*Wo
        cols = ctx.bb.emit(R.reshape(cols, relax.ShapeExpr([groups, depth, rows])))
        out_t = relax.TensorType([groups, og, rows], dt)
        y = ctx.bb.emit(R.call_dps_packed(MATMUL_FN, [wmat, cols, relax.prim_value(0), relax.prim_value(0)], out_t))
        y = ctx.bb.emit(R.reshape(y, relax.ShapeExpr([groups, og, ctx.dim(n), ho, wo])))
        y = ctx.bb.emit(R.permute_dims(y, [2, 0, 1, 3, 4]))  # [N, G, Og, Ho, Wo]
    else:
        cols = ctx.bb.emit(R.reshape(cols, relax.ShapeExpr([groups, rows, depth])))
        out_t = relax.TensorType([groups, rows, og], dt)
        y = ctx.bb.emit(R.call_dps_packed(MATMUL_FN, [cols, wmat, relax.prim_value(0), relax.prim_value(1)], out_t))
        y = ctx.bb.emit(R.reshape(y, relax.ShapeExpr([groups, ctx.dim(n), ho, wo, og])))
        y = ctx.bb.emit(R.permute_dims(y, [1, 0, 4, 2, 3]))  # [N, G, Og, Ho, Wo]
    return R.reshape(y, ctx.shape_expr(node.output.shape))


@lowering("conv2d", opaque=_uses_blas)
def _conv2d(ctx, args, attrs, node):
    x, w = args
    (pt, pb), (pl, pr) = attrs["padding"]
    if not _uses_blas(node, ctx):
        return R.nn.conv2d(x, w, strides=attrs["stride"], padding=(pt, pl, pb, pr), dilation=attrs["dilation"],
                           groups=attrs["groups"])
    o, cg, kh, kw = node.inputs[1].shape
    cg = ctx.dim(cg)  # symbolic in a weight gradient, whose "channels" are the batch
    g = attrs["groups"]
    wmat = ctx.bb.emit(R.reshape(w, relax.ShapeExpr([g, o // g, cg * (kh * kw)])))
    return _conv_via_blas(ctx, node, x, wmat, groups=g, cg=cg, og=o // g, k=(kh, kw),
                          conv_stride=attrs["stride"], dilation=attrs["dilation"], lo=(pt, pl), zero_stride=(1, 1))


@lowering("conv_transpose2d", opaque=_uses_blas)
def _conv_transpose2d(ctx, args, attrs, node):
    x, w = args
    (pt, pb), (pl, pr) = attrs["padding"]
    stride, dilation, g = attrs["stride"], attrs["dilation"], attrs["groups"]
    cin, cog, kh, kw = node.inputs[1].shape
    if not _uses_blas(node, ctx):
        return R.nn.conv2d_transpose(x, w, strides=stride, padding=(pt, pl, pb, pr),
                                     output_padding=attrs["output_padding"], dilation=dilation, groups=g)
    cig = cin // g

    # the equivalent convolution's kernel: wc[g, o, c, r, q] = w[g*Cig + c, o, kh-1-r, kw-1-q]
    def flip(wt):
        return te.compute((g, cog, cig, kh, kw),
                          lambda gg, o, c, r, q: wt[gg * cig + c, o, kh - 1 - r, kw - 1 - q], name="flip_kernel")
    wc = ctx.emit_te(flip, w, name="flip_kernel")
    wmat = ctx.bb.emit(R.reshape(wc, relax.ShapeExpr([g, cog, cig * kh * kw])))
    lo = (dilation[0] * (kh - 1) - pt, dilation[1] * (kw - 1) - pl)
    return _conv_via_blas(ctx, node, x, wmat, groups=g, cg=cig, og=cog, k=(kh, kw), conv_stride=(1, 1),
                          dilation=dilation, lo=lo, zero_stride=stride)


# ------------------------------------------------------------------ pooling
def _window(oh, ow, r, q, stride, dilation, pads):
    return oh * stride[0] + r * dilation[0] - pads[0][0], ow * stride[1] + q * dilation[1] - pads[1][0]


def _nan_max_reducer(dt: str):
    is_float = dt.startswith("float")

    def combine(a, b):
        best = tir.max(a, b)
        return tir.Select(tir.isnan(a), a, tir.Select(tir.isnan(b), b, best)) if is_float else best
    return te.comm_reducer(combine, lambda t: _lowest(t), name="nan_max")


@lowering("max_pool2d")
def _max_pool2d(ctx, args, attrs, node):
    k, s, d, pads = attrs["kernel_size"], attrs["stride"], attrs["dilation"], attrs["padding"]
    _, _, h, w = node.inputs[0].shape
    dt = tvm_dtype(node.output.dtype)
    ho, wo = node.output.shape[2], node.output.shape[3]
    reducer = _nan_max_reducer(dt)

    def compute(xt):
        r = te.reduce_axis((0, k[0]), "r")
        q = te.reduce_axis((0, k[1]), "q")

        def body(b, c, oh, ow):
            i, j = _window(oh, ow, r, q, s, d, pads)
            inside = tir.all(i >= 0, i < h, j >= 0, j < w)
            return reducer(tir.if_then_else(inside, xt[b, c, i, j], _lowest(dt)), axis=[r, q])
        return te.compute((xt.shape[0], xt.shape[1], ho, wo), body, name="max_pool2d")
    return ctx.emit_te(compute, args[0], name="max_pool2d")


@lowering("avg_pool2d")
def _avg_pool2d(ctx, args, attrs, node):
    k, s, pads = attrs["kernel_size"], attrs["stride"], attrs["padding"]
    _, _, h, w = node.inputs[0].shape
    ho, wo = node.output.shape[2], node.output.shape[3]
    dt = tvm_dtype(node.output.dtype)
    div = avg_pool_divisor(h, w, ho, wo, kernel_size=k, stride=s, padding=pads,
                           count_include_pad=attrs["count_include_pad"], divisor_override=attrs["divisor_override"])
    divisor = relax.const(div.astype(node.output.dtype.np), dt)

    def compute(xt, dv):
        r = te.reduce_axis((0, k[0]), "r")
        q = te.reduce_axis((0, k[1]), "q")

        def window_sum(b, c, oh, ow):
            i, j = _window(oh, ow, r, q, s, (1, 1), pads)
            inside = tir.all(i >= 0, i < h, j >= 0, j < w)
            return te.sum(tir.if_then_else(inside, xt[b, c, i, j], tir.const(0, dt)), axis=[r, q])
        acc = te.compute((xt.shape[0], xt.shape[1], ho, wo), window_sum, name="window_sum")
        return te.compute(acc.shape, lambda b, c, oh, ow: acc[b, c, oh, ow] / dv[oh, ow], name="avg_pool2d")
    return ctx.emit_te(compute, args[0], divisor, name="avg_pool2d")


@lowering("max_pool2d_backward")
def _max_pool2d_backward(ctx, args, attrs, node):
    gy, x = args
    k, s, d, pads = attrs["kernel_size"], attrs["stride"], attrs["dilation"], attrs["padding"]
    _, _, h, w = node.inputs[1].shape
    ho, wo = node.inputs[0].shape[2], node.inputs[0].shape[3]
    dt = tvm_dtype(node.output.dtype)
    is_float = dt.startswith("float")
    never = k[0] * k[1]  # tap index of a padded position: loses every tie

    def combine(a, b):
        # a, b: (tap, value); the larger value wins, a NaN beats any number, ties go to the first tap
        a_tap, a_val = a
        b_tap, b_val = b
        better = b_val > a_val
        if is_float:
            better = tir.Or(better, tir.And(tir.isnan(b_val), tir.Not(tir.isnan(a_val))))
            same = tir.Or(b_val == a_val, tir.And(tir.isnan(b_val), tir.isnan(a_val)))
        else:
            same = b_val == a_val
        take = tir.Or(better, tir.And(same, b_tap < a_tap))
        return tir.Select(take, b_tap, a_tap), tir.Select(take, b_val, a_val)

    first_max = te.comm_reducer(combine, lambda t0, t1: (tir.const(never + 1, t0), _lowest(t1)), name="first_max")

    def compute(gt, xt):
        r = te.reduce_axis((0, k[0]), "r")
        q = te.reduce_axis((0, k[1]), "q")

        def arg_body(b, c, oh, ow):
            i, j = _window(oh, ow, r, q, s, d, pads)
            inside = tir.all(i >= 0, i < h, j >= 0, j < w)
            tap = tir.Select(inside, (r * k[1] + q).astype("int32"), tir.const(never, "int32"))
            val = tir.if_then_else(inside, xt[b, c, i, j], _lowest(dt))
            return first_max((tap, val), axis=[r, q])
        arg, _ = te.compute((xt.shape[0], xt.shape[1], ho, wo), arg_body, name="first_max")

        if tuple(s) == tuple(k) and tuple(d) == (1, 1):
            # windows that tile the input (the common 2x2 / stride 2): each pixel lies in exactly one window
            # (or none, past the last), at a tap given by its position; a select instead of a sum over taps
            def tiled_body(b, c, i, j):
                ni, nj = i + pads[0][0], j + pads[1][0]
                oh, ow = tir.floordiv(ni, s[0]), tir.floordiv(nj, s[1])
                tap = (tir.floormod(ni, s[0]) * k[1] + tir.floormod(nj, s[1])).astype("int32")
                ohc, owc = tir.min(oh, ho - 1), tir.min(ow, wo - 1)  # in range for the read; masked below
                hit = tir.all(oh < ho, ow < wo, arg[b, c, ohc, owc] == tap)
                return tir.if_then_else(hit, gt[b, c, ohc, owc], tir.const(0, dt))
            return te.compute(xt.shape, tiled_body, name="max_pool2d_backward")

        rr = te.reduce_axis((0, k[0]), "rr")
        qq = te.reduce_axis((0, k[1]), "qq")

        def grad_body(b, c, i, j):
            # the windows (oh, ow) whose tap (rr, qq) lands on pixel (i, j)
            ni, nj = i + pads[0][0] - rr * d[0], j + pads[1][0] - qq * d[1]
            oh, ow = tir.floordiv(ni, s[0]), tir.floordiv(nj, s[1])
            hit = tir.all(ni >= 0, nj >= 0, tir.floormod(ni, s[0]) == 0, tir.floormod(nj, s[1]) == 0,
                          oh < ho, ow < wo)
            routed = tir.if_then_else(hit, tir.if_then_else(arg[b, c, oh, ow] == (rr * k[1] + qq).astype("int32"),
                                                            gt[b, c, oh, ow], tir.const(0, dt)),
                                      tir.const(0, dt))
            return te.sum(routed, axis=[rr, qq])
        return te.compute(xt.shape, grad_body, name="max_pool2d_backward")
    return ctx.emit_te(compute, gy, x, name="max_pool2d_backward")
