"""Converters for ONNX's index-driven operators: Compress, ReverseSequence, MaxUnpool,
Col2Im, TensorScatter, DFT. Positions known at import time become constant indices
for ``take`` / ``gather`` / ``index_add``; run-time positions (TensorScatter's write
indices, MaxUnpool's indices) are computed with elementwise primitives.
"""

from __future__ import annotations

import numpy as np

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _axis, _ints, _numel, _opt, _scalar_like
from .importer import OnnxImportError, converter


def _bcast_to(v: Value, shape) -> Value:
    return v if tuple(v.shape) == tuple(shape) else P.broadcast_to(v, shape=tuple(shape))


def _static(ctx, x: Value, what: str) -> tuple:
    if _numel(x.shape) is None:
        raise OnnxImportError(ctx.where(f"{what} needs static shapes, got {list(x.shape)}"))
    return tuple(x.shape)


@converter("Compress")
def _compress(ctx, node):
    x = ctx.value(node.input[0])
    cond = np.asarray(ctx.const(node.input[1], "the condition")).ravel().astype(bool)
    axis = ctx.attr("axis")
    if axis is None:
        x = P.reshape(x, shape=(_numel(_static(ctx, x, "Compress")),))
        axis = 0
    else:
        axis = _axis(axis, x.type.ndim, ctx)
    n = x.shape[axis]
    if isinstance(n, int) and cond.size > n:
        raise OnnxImportError(ctx.where(f"condition of length {cond.size} is longer than dimension {n}"))
    keep = np.nonzero(cond)[0].astype(np.int64)
    return [P.take(x, P.constant(value=keep), dim=axis)]


@converter("ReverseSequence")
def _reverse_sequence(ctx, node):
    x = ctx.value(node.input[0])
    lens = np.asarray(ctx.const(node.input[1], "sequence_lens")).ravel().astype(np.int64)
    shape = _static(ctx, x, "ReverseSequence")
    t_ax = _axis(ctx.attr("time_axis", 0), x.type.ndim, ctx)
    b_ax = _axis(ctx.attr("batch_axis", 1), x.type.ndim, ctx)
    if t_ax == b_ax or lens.size != shape[b_ax] or (lens > shape[t_ax]).any() or (lens < 0).any():
        raise OnnxImportError(ctx.where(f"bad sequence_lens {lens.tolist()} / axes for shape {list(shape)}"))
    steps = np.arange(shape[t_ax])[:, None]
    src = np.where(steps < lens[None, :], lens[None, :] - 1 - steps, steps)      # [time, batch]
    if t_ax > b_ax:
        src = src.T
    idx_shape = [1] * x.type.ndim
    idx_shape[t_ax], idx_shape[b_ax] = shape[t_ax], shape[b_ax]
    idx = _bcast_to(P.constant(value=src.reshape(idx_shape)), shape)
    return [P.gather(x, idx, dim=t_ax)]


@converter("MaxUnpool")
def _max_unpool(ctx, node):
    x, idx = ctx.value(node.input[0]), ctx.value(node.input[1])
    shape = _static(ctx, x, "MaxUnpool")
    k = [int(v) for v in ctx.attr("kernel_shape")]
    nd = len(k)
    strides = [int(v) for v in (ctx.attr("strides") or [1] * nd)]
    pads = [int(v) for v in (ctx.attr("pads") or [0] * (2 * nd))]
    inferred = list(shape[:2]) + [(shape[2 + i] - 1) * strides[i] - (pads[i] + pads[nd + i]) + k[i]
                                  for i in range(nd)]
    total = int(np.prod(inferred))
    flat = P.full(shape=(total,), value=0, dtype=x.dtype)
    ii = idx if idx.dtype is T.int64 else P.cast(idx, dtype=T.int64)
    y = P.reshape(P.index_add(flat, P.reshape(ii, shape=(int(np.prod(shape)),)),
                              P.reshape(x, shape=(int(np.prod(shape)),)), dim=0), shape=tuple(inferred))
    if _opt(ctx, 2):
        out = [int(v) for v in _ints(ctx, node.input[2], "output_shape")]
        if len(out) != len(inferred) or any(o < i for o, i in zip(out, inferred)):
            raise OnnxImportError(ctx.where(f"output_shape {out} is smaller than {inferred}"))
        y = P.pad(y, pads=tuple((0, o - i) for o, i in zip(out, inferred)), value=0.0)
    return [y]


@converter("Col2Im")
def _col2im(ctx, node):
    x = ctx.value(node.input[0])
    image = [int(v) for v in _ints(ctx, node.input[1], "image_shape")]
    block = [int(v) for v in _ints(ctx, node.input[2], "block_shape")]
    nd = len(image)
    dil = [int(v) for v in (ctx.attr("dilations") or [1] * nd)]
    pads = [int(v) for v in (ctx.attr("pads") or [0] * (2 * nd))]
    strides = [int(v) for v in (ctx.attr("strides") or [1] * nd)]
    n, ck, length = _static(ctx, x, "Col2Im")
    kk = int(np.prod(block))
    if ck % kk:
        raise OnnxImportError(ctx.where(f"{ck} channels are not a multiple of the block size {kk}"))
    c = ck // kk
    padded = [image[i] + pads[i] + pads[nd + i] for i in range(nd)]
    counts = [(padded[i] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1 for i in range(nd)]
    if int(np.prod(counts)) != length:
        raise OnnxImportError(ctx.where(f"{length} blocks do not tile image {image} (expected {counts})"))
    # the padded-image position of each (kernel offset, block) column entry
    offs = np.stack(np.meshgrid(*[np.arange(b) for b in block], indexing="ij"), -1).reshape(kk, nd)
    starts = np.stack(np.meshgrid(*[np.arange(m) for m in counts], indexing="ij"), -1).reshape(length, nd)
    pos = starts[None, :, :] * np.asarray(strides) + offs[:, None, :] * np.asarray(dil)      # [kk, L, nd]
    flat_pos = np.ravel_multi_index(tuple(pos.reshape(-1, nd).T), padded).astype(np.int64)
    cols = P.reshape(x, shape=(n, c, kk * length))
    img = P.index_add(P.full(shape=(n, c, int(np.prod(padded))), value=0, dtype=x.dtype),
                      P.constant(value=flat_pos), cols, dim=2)
    img = P.reshape(img, shape=(n, c) + tuple(padded))
    if any(pads):
        img = P.slice_(img, starts=(0, 0) + tuple(pads[:nd]),
                       stops=(n, c) + tuple(pads[i] + image[i] for i in range(nd)), steps=(1,) * (nd + 2))
    return [img]


@converter("TensorScatter")
def _tensor_scatter(ctx, node):
    cache, update = ctx.value(node.input[0]), ctx.value(node.input[1])
    shape = _static(ctx, cache, "TensorScatter")
    ushape = _static(ctx, update, "TensorScatter")
    axis = _axis(ctx.attr("axis", -2), len(shape), ctx)
    mode = ctx.attr("mode", "linear")
    if mode not in ("linear", "circular") or axis == 0:
        raise OnnxImportError(ctx.where(f"mode {mode!r} / axis {axis} is not supported"))
    if any(a != b for i, (a, b) in enumerate(zip(shape, ushape)) if i != axis) or ushape[axis] > shape[axis]:
        raise OnnxImportError(ctx.where(f"update {list(ushape)} does not fit cache {list(shape)}"))
    m, u, b = shape[axis], ushape[axis], shape[0]
    if _opt(ctx, 2):
        w = ctx.value(node.input[2])
        w = w if w.dtype is T.int64 else P.cast(w, dtype=T.int64)
    else:
        w = P.full(shape=(b,), value=0, dtype=T.int64)
    # cache slot s of batch b takes update[s - w_b] (mod m when circular) when that lies in [0, u)
    bshape = [1] * len(shape)
    bshape[0], bshape[axis] = b, m
    wb = _bcast_to(P.reshape(w, shape=(b,) + (1,) * (len(shape) - 1)), tuple(bshape))
    slots = _bcast_to(P.constant(value=np.arange(m, dtype=np.int64).reshape(
        [m if i == axis else 1 for i in range(len(shape))])), tuple(bshape))
    rel = P.sub(slots, wb)
    if mode == "circular":
        rel = P.remainder(rel, _scalar_like(rel, m))
    hit = P.logical_and(P.ge(rel, _scalar_like(rel, 0)), P.lt(rel, _scalar_like(rel, u)))
    src = P.where(hit, rel, _scalar_like(rel, 0))
    gathered = P.gather(update, _bcast_to(src, shape), dim=axis)   # gather's index: the cache's shape
    return [P.where(_bcast_to(hit, shape), gathered, cache)]


# ------------------------------------------------------------------ DFT
@converter("DFT")
def _dft(ctx, node):
    x = ctx.value(node.input[0])
    shape = _static(ctx, x, "DFT")
    r = len(shape)
    if shape[-1] not in (1, 2):
        raise OnnxImportError(ctx.where(f"the last dimension must be 1 (real) or 2 (complex), got {shape[-1]}"))
    if ctx.opset >= 20:
        axis = int(np.asarray(ctx.const(node.input[2], "axis")).ravel()[0]) if _opt(ctx, 2) else -2
    else:
        axis = int(ctx.attr("axis", 1))
    axis = axis + r if axis < 0 else axis
    if not 0 < axis < r - 1:
        raise OnnxImportError(ctx.where(f"axis {axis} must be a signal axis of a rank-{r} input"))
    inverse, onesided = bool(int(ctx.attr("inverse", 0))), bool(int(ctx.attr("onesided", 0)))
    n_in = shape[axis]
    irfft = onesided and inverse   # one-sided spectrum in, real signal out
    default_n = 2 * (n_in - 1) if irfft else n_in
    n = int(np.asarray(ctx.const(node.input[1], "dft_length")).ravel()[0]) if _opt(ctx, 1) else default_n
    if n < 1:
        raise OnnxImportError(ctx.where(f"dft_length must be positive, got {n}"))
    # real / imaginary parts with the signal axis last
    perm = tuple(i for i in range(r - 1) if i != axis) + (axis,)
    parts = []
    for k in range(shape[-1]):
        p = P.slice_(x, starts=(0,) * (r - 1) + (k,), stops=shape[:-1] + (k + 1,), steps=(1,) * r)
        p = P.permute(P.reshape(p, shape=shape[:-1]), dims=perm)
        parts.append(p)
    lead = tuple(shape[i] for i in perm[:-1])
    if irfft:
        # the Hermitian spectrum's other half doubles bins 1..; bin 0 (and n/2) count once, real part only
        use, m = min(n // 2 + 1, n_in), n
        k = np.arange(use)[:, None]
        ang = 2 * np.pi * ((k * np.arange(n)[None, :]) % n) / n
        w = np.where((k == 0) | ((n % 2 == 0) & (k == n // 2)), 1.0, 2.0) / n
        cos, sin = w * np.cos(ang), w * np.sin(ang)
    else:
        m = n // 2 + 1 if onesided else n
        use = min(n, n_in)  # zero padding adds nothing; truncation drops samples
        t = np.arange(use)[:, None] * np.arange(m)[None, :]
        ang = 2 * np.pi * (t % n) / n
        cos, sin = np.cos(ang), np.sin(ang)
        if inverse:
            cos, sin = cos / n, sin / n
    # float64 sums: a float32 matmul leaves ~1e-6 residue where the exact transform is 0
    work = T.float64 if x.dtype in (T.float32, T.float16, T.bfloat16) else x.dtype
    parts = [P.cast(p, dtype=work) for p in parts] if work is not x.dtype else parts

    def mat(a):
        return P.constant(value=a.astype(work.np))

    def flat(p):
        if use < n_in:
            p = P.slice_(p, starts=(0,) * len(p.shape), stops=lead + (use,), steps=(1,) * len(p.shape))
        return P.reshape(p, shape=(int(np.prod(lead, dtype=np.int64)), use))
    xr = flat(parts[0])
    xi = flat(parts[1]) if len(parts) > 1 else None
    sign = 1.0 if inverse else -1.0   # e^{sign * i * angle}
    yr = P.matmul(xr, mat(cos))
    yi = P.matmul(xr, mat(sign * sin))
    if irfft:  # y = sum_k w_k (Re X_k cos - Im X_k sin)
        yr = P.sub(yr, P.matmul(xi, mat(sin))) if xi is not None else yr
    elif xi is not None:
        yr = P.sub(yr, P.matmul(xi, mat(sign * sin)))
        yi = P.add(yi, P.matmul(xi, mat(cos)))
    out = []
    inv = tuple(sorted(range(r - 1), key=lambda d: perm[d]))
    for y in ((yr,) if irfft else (yr, yi)):
        y = y if y.dtype is x.dtype else P.cast(y, dtype=x.dtype)
        y = P.permute(P.reshape(y, shape=lead + (m,)), dims=inv)
        out.append(P.reshape(y, shape=tuple(y.shape) + (1,)))
    return [out[0] if irfft else P.concat(*out, dim=r - 1)]


# ------------------------------------------------------------------ GridSample
def _reflect(v: Value, lo: float, hi: float) -> Value:
    """Fold ``v`` back into [lo, hi] by reflecting at the borders (ONNX's _gs_reflect)."""
    span = hi - lo
    below, above = P.lt(v, _scalar_like(v, lo)), P.gt(v, _scalar_like(v, hi))
    dx = P.where(below, P.sub(_scalar_like(v, lo), v), P.sub(v, _scalar_like(v, hi)))
    dx = P.maximum(dx, _scalar_like(dx, 0))
    n = P.floor(P.div(dx, _scalar_like(dx, span)))
    r = P.sub(dx, P.mul(n, _scalar_like(n, span)))
    even = P.eq(P.remainder(n, _scalar_like(n, 2)), _scalar_like(n, 0))
    lo_r, hi_r = P.add(_scalar_like(r, lo), r), P.sub(_scalar_like(r, hi), r)
    return P.where(below, P.where(even, lo_r, hi_r), P.where(above, P.where(even, hi_r, lo_r), v))


def _cubic_weights(t: Value) -> list[Value]:
    a = -0.75

    def c(v):
        return _scalar_like(t, v)
    t1, q = P.add(t, c(1)), P.sub(c(1), t)
    q1 = P.add(q, c(1))
    w0 = P.sub(P.mul(P.add(P.mul(P.sub(P.mul(c(a), t1), c(5 * a)), t1), c(8 * a)), t1), c(4 * a))
    w1 = P.add(P.mul(P.mul(P.sub(P.mul(c(a + 2), t), c(a + 3)), t), t), c(1))
    w2 = P.add(P.mul(P.mul(P.sub(P.mul(c(a + 2), q), c(a + 3)), q), q), c(1))
    w3 = P.sub(P.mul(P.add(P.mul(P.sub(P.mul(c(a), q1), c(5 * a)), q1), c(8 * a)), q1), c(4 * a))
    return [w0, w1, w2, w3]


@converter("GridSample")
def _grid_sample(ctx, node):
    x, grid = ctx.value(node.input[0]), ctx.value(node.input[1])
    xs, gs = _static(ctx, x, "GridSample"), _static(ctx, grid, "GridSample")
    nd = len(xs) - 2
    if gs[-1] != nd or gs[0] != xs[0] or len(gs) != nd + 2:
        raise OnnxImportError(ctx.where(f"grid {list(gs)} does not match input {list(xs)}"))
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attr("mode", "linear"), ctx.attr("mode", "linear"))
    pad_mode = ctx.attr("padding_mode", "zeros")
    align = bool(int(ctx.attr("align_corners", 0)))
    if mode not in ("nearest", "linear", "cubic") or pad_mode not in ("zeros", "border", "reflection"):
        raise OnnxImportError(ctx.where(f"mode {mode!r} / padding_mode {pad_mode!r} is not supported"))
    n, c, spatial = xs[0], xs[1], xs[2:]
    q = int(np.prod(gs[1:-1]))
    g = grid if grid.dtype is x.dtype else P.cast(grid, dtype=x.dtype)
    g = P.reshape(g, shape=(n, q, nd))
    coords = []
    for d in range(nd):   # the grid lists coordinates innermost (x = width) first
        size = spatial[d]
        gd = P.reshape(P.slice_(g, starts=(0, 0, nd - 1 - d), stops=(n, q, nd - d), steps=(1, 1, 1)), shape=(n, q))
        if align:
            v = P.mul(P.add(gd, _scalar_like(gd, 1)), _scalar_like(gd, (size - 1) / 2))
        else:
            v = P.div(P.sub(P.mul(P.add(gd, _scalar_like(gd, 1)), _scalar_like(gd, size)), _scalar_like(gd, 1)),
                      _scalar_like(gd, 2))
        if mode == "nearest":
            v = P.round_(v)   # half to even, as PyTorch / ONNX
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if pad_mode == "border":
            v = P.minimum(P.maximum(v, _scalar_like(v, 0)), _scalar_like(v, size - 1))
        elif pad_mode == "reflection":
            v = _reflect(v, lo, hi)
        coords.append((v, lo, hi))

    def tap(i: Value, d: int):
        """(int64 index, validity mask or None) of integer-valued position ``i`` along spatial dim d."""
        size = spatial[d]
        mask = None
        if pad_mode == "zeros":
            mask = P.logical_and(P.ge(i, _scalar_like(i, 0)), P.le(i, _scalar_like(i, size - 1)))
        elif pad_mode == "reflection":
            i = _reflect(i, coords[d][1], coords[d][2])
        i = P.minimum(P.maximum(i, _scalar_like(i, 0)), _scalar_like(i, size - 1))
        return P.cast(i, dtype=T.int64), mask

    per_dim = []   # per spatial dim: list of (index, mask, weight)
    for d, (v, _, _) in enumerate(coords):
        if mode == "nearest":
            idx, mask = tap(P.cast(P.cast(v, dtype=T.int64), dtype=v.dtype), d)   # truncation, as the reference
            per_dim.append([(idx, mask, None)])
            continue
        f = P.floor(v)
        t = P.sub(v, f)
        if mode == "linear":
            offs, ws = (0, 1), [P.sub(_scalar_like(t, 1), t), t]
        else:
            offs, ws = (-1, 0, 1, 2), _cubic_weights(t)
        per_dim.append([(*tap(P.add(f, _scalar_like(f, o)), d), w) for o, w in zip(offs, ws)])
    strides = [int(np.prod(spatial[d + 1:])) for d in range(nd)]
    flat_x = P.reshape(x, shape=(n, c, int(np.prod(spatial))))
    acc = None
    for combo in np.ndindex(*[len(p) for p in per_dim]):
        lin, mask, weight = None, None, None
        for d, k in enumerate(combo):
            idx, m, w = per_dim[d][k]
            term = P.mul(idx, _scalar_like(idx, strides[d])) if strides[d] != 1 else idx
            lin = term if lin is None else P.add(lin, term)
            mask = m if mask is None else (mask if m is None else P.logical_and(mask, m))
            weight = w if weight is None else (weight if w is None else P.mul(weight, w))
        vals = P.gather(flat_x, _bcast_to(P.reshape(lin, shape=(n, 1, q)), (n, c, q)), dim=2)
        if mask is not None:
            mw = P.cast(mask, dtype=x.dtype)
            weight = mw if weight is None else P.mul(weight, mw)
        if weight is not None:
            vals = P.mul(vals, _bcast_to(P.reshape(weight, shape=(n, 1, q)), (n, c, q)))
        acc = vals if acc is None else P.add(acc, vals)
    return [P.reshape(acc, shape=(n, c) + tuple(gs[1:-1]))]


@converter("STFT")
def _stft(ctx, node):
    x = ctx.value(node.input[0])
    b, length, k = _static(ctx, x, "STFT")
    step = int(np.asarray(ctx.const(node.input[1], "frame_step")).ravel()[0])
    window = ctx.value(node.input[2]) if _opt(ctx, 2) else None
    if _opt(ctx, 3):
        flen = int(np.asarray(ctx.const(node.input[3], "frame_length")).ravel()[0])
    elif window is not None:
        flen = int(window.shape[0])
    else:
        raise OnnxImportError(ctx.where("STFT needs a window or a frame_length"))
    onesided = bool(int(ctx.attr("onesided", 1)))
    if step < 1 or flen < 1 or flen > length or k not in (1, 2):
        raise OnnxImportError(ctx.where(f"bad frame_step {step} / frame_length {flen} for signal {[b, length, k]}"))
    frames = (length - flen) // step + 1
    idx = (np.arange(frames)[:, None] * step + np.arange(flen)[None, :]).astype(np.int64)
    framed = P.take(x, P.constant(value=idx), dim=1)                               # [b, F, flen, k]
    work = T.float64 if x.dtype in (T.float32, T.float16, T.bfloat16) else x.dtype
    framed = P.cast(framed, dtype=work) if work is not x.dtype else framed
    if window is not None:
        w = P.cast(window, dtype=work) if window.dtype is not work else window
        framed = P.mul(framed, _bcast_to(P.reshape(w, shape=(1, 1, flen, 1)), (b, frames, flen, k)))
    bins = flen // 2 + 1 if onesided else flen
    ang = 2 * np.pi * ((np.arange(flen)[:, None] * np.arange(bins)[None, :]) % flen) / flen
    cos, sin = P.constant(value=np.cos(ang).astype(work.np)), P.constant(value=np.sin(ang).astype(work.np))

    def part(i):
        p = P.slice_(framed, starts=(0, 0, 0, i), stops=(b, frames, flen, i + 1), steps=(1, 1, 1, 1))
        return P.reshape(p, shape=(b * frames, flen))
    xr = part(0)
    yr, yi = P.matmul(xr, cos), P.neg(P.matmul(xr, sin))          # e^{-i angle}
    if k == 2:
        xi = part(1)
        yr, yi = P.add(yr, P.matmul(xi, sin)), P.add(yi, P.matmul(xi, cos))
    out = [P.reshape(y, shape=(b, frames, bins, 1)) for y in (yr, yi)]
    y = P.concat(*out, dim=3)
    return [y if y.dtype is x.dtype else P.cast(y, dtype=x.dtype)]


@converter("Det")
def _det(ctx, node):
    (x,) = [ctx.value(node.input[0])]
    shape = _static(ctx, x, "Det")
    n = shape[-1]
    if len(shape) < 2 or shape[-2] != n:
        raise OnnxImportError(ctx.where(f"Det needs square matrices, got {list(shape)}"))
    if n > 5:
        raise OnnxImportError(ctx.where(f"Det of {n}x{n} matrices is not supported (ember expands up to 5x5)"))
    import itertools
    lead = shape[:-2]
    r = len(shape)

    def entry(i, j):
        e = P.slice_(x, starts=(0,) * (r - 2) + (i, j), stops=lead + (i + 1, j + 1), steps=(1,) * r)
        return P.reshape(e, shape=lead)
    cells = {(i, j): entry(i, j) for i in range(n) for j in range(n)}
    acc = None
    for perm in itertools.permutations(range(n)):   # Leibniz: sum over permutations of signed products
        sign = np.linalg.det(np.eye(n)[list(perm)])
        term = cells[(0, perm[0])]
        for i in range(1, n):
            term = P.mul(term, cells[(i, perm[i])])
        if acc is None:
            acc = term if sign > 0 else P.neg(term)
        else:
            acc = P.add(acc, term) if sign > 0 else P.sub(acc, term)
    return [acc]


# ------------------------------------------------------------------ scatter with mul/max/min reductions
def scatter_reduce_static(ctx, data: Value, updates: Value, positions: np.ndarray, reduction: str) -> Value:
    """``data`` (flattened) with each update element combined into its flat position, in order.

    ``positions`` (import-time, one per update element) are planned in numpy: the r-th update landing
    on each position is one ``take``; duplicates apply in sequence like ONNX's reference."""
    shape = _static(ctx, data, ctx.node.op_type)
    total = int(np.prod(shape))
    positions = positions.astype(np.int64).ravel()
    if positions.size and (positions.min() < 0 or positions.max() >= total):
        raise OnnxImportError(ctx.where("scatter index out of range"))
    combine = {"mul": P.mul, "max": P.maximum, "min": P.minimum}[reduction]
    flat = P.reshape(data, shape=(total,))
    upd = P.reshape(updates, shape=(positions.size,))
    order = np.argsort(positions, kind="stable")
    rank = np.empty_like(order)
    sorted_pos = positions[order]
    starts = np.searchsorted(sorted_pos, sorted_pos, side="left")
    rank[order] = np.arange(positions.size) - starts           # how many earlier updates share the position
    for r in range(int(rank.max()) + 1 if positions.size else 0):
        sel = np.full(total, -1, dtype=np.int64)
        hit = rank == r
        sel[positions[hit]] = np.nonzero(hit)[0]
        vals = P.take(upd, P.constant(value=np.maximum(sel, 0)), dim=0)
        mask = P.constant(value=sel >= 0)
        flat = P.where(mask, combine(flat, vals), flat)
    return P.reshape(flat, shape=shape)


def static_scatter_positions_nd(ctx, idx_arr: np.ndarray, shape: tuple) -> np.ndarray:
    """Flat element positions of ScatterND's index tuples (each addresses a slice)."""
    k = idx_arr.shape[-1]
    idx = idx_arr.reshape(-1, k).astype(np.int64)
    idx = np.where(idx < 0, idx + np.asarray(shape[:k]), idx)
    block = int(np.prod(shape[k:]))
    base = np.ravel_multi_index(tuple(idx.T), shape[:k]) * block
    return (base[:, None] + np.arange(block)[None, :]).ravel()


def static_scatter_positions_elements(ctx, idx_arr: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    idx = np.where(idx_arr < 0, idx_arr + shape[axis], idx_arr).astype(np.int64)
    grids = list(np.indices(idx.shape))
    grids[axis] = idx
    return np.ravel_multi_index(tuple(grids), shape).ravel()


@converter("MelWeightMatrix")
def _mel_weight_matrix(ctx, node):
    """A constant: triangular mel filters over the DFT bins (ONNX's definition, all inputs import-time)."""
    from .importer import onnx_dtype
    n_mel, dft_len, rate = (int(np.asarray(ctx.const(node.input[i], "MelWeightMatrix sizes")).ravel()[0])
                            for i in range(3))
    lo, hi = (float(np.asarray(ctx.const(node.input[i], "MelWeightMatrix edges")).ravel()[0]) for i in (3, 4))
    if n_mel < 1 or dft_len < 1 or rate < 1:
        raise OnnxImportError(ctx.where(f"bad sizes {n_mel}, {dft_len}, {rate}"))
    dt = onnx_dtype(int(ctx.attr("output_datatype", 1)), ctx.where("output_datatype"))
    bins = np.arange(0, n_mel + 2)
    lo_mel, hi_mel = 2595 * np.log1p(lo / 700) / np.log(10), 2595 * np.log1p(hi / 700) / np.log(10)
    freqs = 700 * np.expm1((bins * (hi_mel - lo_mel) / bins.shape[0] + lo_mel) / 2595 * np.log(10))
    freqs = (((dft_len + 1) * freqs) // rate).astype(int)
    out = np.zeros((dft_len // 2 + 1, n_mel))
    for i in range(n_mel):
        left, center, right = freqs[i], freqs[i + 1], freqs[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            for j in range(left, center + 1):
                out[j, i] = (j - left) / (center - left)
        for j in range(center, right):
            out[j, i] = (right - j) / (right - center)
    return [out.astype(dt.np)]


# ------------------------------------------------------------------ ai.onnx.ml
@converter("ai.onnx.ml::Binarizer")
def _binarizer(ctx, node):
    x = ctx.value(node.input[0])
    hit = P.gt(x, _scalar_like(x, float(ctx.attr("threshold", 0.0))))
    return [P.cast(hit, dtype=x.dtype)]


@converter("ai.onnx.ml::ArrayFeatureExtractor")
def _array_feature_extractor(ctx, node):
    x, idx = ctx.value(node.input[0]), ctx.value(node.input[1])
    n = _numel(idx.shape)
    if n is None:
        raise OnnxImportError(ctx.where("indices need a static shape"))
    flat = P.reshape(idx, shape=(n,)) if idx.type.ndim != 1 else idx
    flat = flat if flat.dtype is T.int64 else P.cast(flat, dtype=T.int64)
    y = P.take(x, flat, dim=x.type.ndim - 1)     # selects along the last axis
    return [P.reshape(y, shape=(1, n)) if x.type.ndim == 1 else y]


# ------------------------------------------------------------------ DeformConv
@converter("DeformConv")
def _deform_conv(ctx, node):
    x, w, off = (ctx.value(node.input[i]) for i in range(3))
    bias = ctx.value(node.input[3]) if _opt(ctx, 3) else None
    mask = ctx.value(node.input[4]) if _opt(ctx, 4) else None
    n, c, ih, iw = _static(ctx, x, "DeformConv") if x.type.ndim == 4 else (None,) * 4
    if n is None:
        raise OnnxImportError(ctx.where(f"only 2-D DeformConv is supported, got input {list(x.shape)}"))
    oc, cg, kh, kw = _static(ctx, w, "DeformConv")
    group, og = int(ctx.attr("group", 1)), int(ctx.attr("offset_group", 1))
    sh, sw = [int(v) for v in (ctx.attr("strides") or [1, 1])]
    dh, dw = [int(v) for v in (ctx.attr("dilations") or [1, 1])]
    pt, pl, pb, pr = [int(v) for v in (ctx.attr("pads") or [0, 0, 0, 0])]
    oh, ow = (ih + pt + pb - dh * (kh - 1) - 1) // sh + 1, (iw + pl + pr - dw * (kw - 1) - 1) // sw + 1
    kk, q = kh * kw, oh * ow
    if c % group or c % og or cg * group != c or oc % group or tuple(off.shape) != (n, og * kk * 2, oh, ow):
        raise OnnxImportError(ctx.where(f"inconsistent shapes X {list(x.shape)}, W {list(w.shape)}, "
                                        f"offset {list(off.shape)}"))
    # sampling positions: the kernel tap's place plus its learned offset, per offset group
    o5 = P.reshape(off, shape=(n, og, kk, 2, q))

    def comp(k):
        return P.reshape(P.slice_(o5, starts=(0, 0, 0, k, 0), stops=(n, og, kk, k + 1, q), steps=(1,) * 5),
                         shape=(n, og, kk, q))
    ki, kj = np.divmod(np.arange(kk), kw)
    yy, xx = np.divmod(np.arange(q), ow)
    base_h = (yy[None, :] * sh - pt + ki[:, None] * dh).astype(x.dtype.np)
    base_w = (xx[None, :] * sw - pl + kj[:, None] * dw).astype(x.dtype.np)
    full = (n, og, kk, q)
    hpos = P.add(comp(0), _bcast_to(P.constant(value=base_h.reshape(1, 1, kk, q)), full))
    wpos = P.add(comp(1), _bcast_to(P.constant(value=base_w.reshape(1, 1, kk, q)), full))
    h0, w0 = P.floor(hpos), P.floor(wpos)
    lh, lw = P.sub(hpos, h0), P.sub(wpos, w0)
    xg = P.reshape(x, shape=(n, og, c // og, ih * iw))
    cols = None
    for dy, wy in ((0, P.sub(_scalar_like(lh, 1), lh)), (1, lh)):
        for dx, wx in ((0, P.sub(_scalar_like(lw, 1), lw)), (1, lw)):
            hi, wi = P.add(h0, _scalar_like(h0, dy)), P.add(w0, _scalar_like(w0, dx))
            valid = P.logical_and(P.logical_and(P.ge(hi, _scalar_like(hi, 0)), P.le(hi, _scalar_like(hi, ih - 1))),
                                  P.logical_and(P.ge(wi, _scalar_like(wi, 0)), P.le(wi, _scalar_like(wi, iw - 1))))
            hc = P.minimum(P.maximum(hi, _scalar_like(hi, 0)), _scalar_like(hi, ih - 1))
            wc = P.minimum(P.maximum(wi, _scalar_like(wi, 0)), _scalar_like(wi, iw - 1))
            idx = P.cast(P.add(P.mul(hc, _scalar_like(hc, iw)), wc), dtype=T.int64)
            weight = P.mul(P.mul(wy, wx), P.cast(valid, dtype=x.dtype))
            if mask is not None:
                weight = P.mul(weight, P.reshape(mask, shape=full))
            idx = _bcast_to(P.reshape(idx, shape=(n, og, 1, kk * q)), (n, og, c // og, kk * q))
            vals = P.mul(P.gather(xg, idx, dim=3),
                         _bcast_to(P.reshape(weight, shape=(n, og, 1, kk * q)), (n, og, c // og, kk * q)))
            cols = vals if cols is None else P.add(cols, vals)
    cols = P.reshape(cols, shape=(n, group, cg * kk, q))          # channel-major, kernel taps inner
    wm = P.reshape(w, shape=(1, group, oc // group, cg * kk))
    y = P.matmul(_bcast_to(wm, (n, group, oc // group, cg * kk)), cols)   # (N, group, oc/group, Q)
    y = P.reshape(y, shape=(n, oc, oh, ow))
    if bias is not None:
        y = P.add(y, _bcast_to(P.reshape(bias, shape=(1, oc, 1, 1)), (n, oc, oh, ow)))
    return [y]


# ------------------------------------------------------------------ RoiAlign
def _roi_axis(start: Value, size: Value, bins: int, grid: int, limit: int):
    """Per roi, bin and sample along one axis: (low index, high index, low weight, high weight, in range)."""
    r = start.shape[0]
    frac = ((np.arange(bins)[:, None] + (np.arange(grid)[None, :] + 0.5) / grid)).astype(start.dtype.np)
    pos = P.add(_bcast_to(P.reshape(start, shape=(r, 1, 1)), (r, bins, grid)),
                P.mul(_bcast_to(P.reshape(P.div(size, _scalar_like(size, bins)), shape=(r, 1, 1)), (r, bins, grid)),
                      _bcast_to(P.constant(value=frac.reshape(1, bins, grid)), (r, bins, grid))))
    inside = P.logical_and(P.ge(pos, _scalar_like(pos, -1.0)), P.le(pos, _scalar_like(pos, float(limit))))
    p = P.maximum(pos, _scalar_like(pos, 0))
    low = P.floor(p)
    at_end = P.ge(low, _scalar_like(low, limit - 1))
    low = P.where(at_end, _scalar_like(low, limit - 1), low)
    p = P.where(at_end, low, p)
    high = P.where(at_end, low, P.add(low, _scalar_like(low, 1)))
    lw = P.sub(p, low)
    return low, high, P.sub(_scalar_like(lw, 1), lw), lw, inside


@converter("RoiAlign")
def _roi_align(ctx, node):
    x, rois, bidx = (ctx.value(node.input[i]) for i in range(3))
    n, c, h, w = _static(ctx, x, "RoiAlign") if x.type.ndim == 4 else (None,) * 4
    if n is None or rois.type.ndim != 2 or rois.shape[1] != 4:
        raise OnnxImportError(ctx.where(f"X must be NCHW and rois [R, 4], got {list(x.shape)}, {list(rois.shape)}"))
    r = rois.shape[0]
    oh, ow = int(ctx.attr("output_height", 1)), int(ctx.attr("output_width", 1))
    ratio, scale = int(ctx.attr("sampling_ratio", 0)), float(ctx.attr("spatial_scale", 1.0))
    mode = ctx.attr("mode", "avg")
    half = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 16 else "output_half_pixel")
    if ratio <= 0:
        raise OnnxImportError(ctx.where("sampling_ratio 0 (adaptive, data-dependent sample counts) is not supported"))
    if mode not in ("avg", "max") or half not in ("half_pixel", "output_half_pixel"):
        raise OnnxImportError(ctx.where(f"mode {mode!r} / {half!r} is not supported"))
    off = 0.5 if half == "half_pixel" else 0.0
    rs = rois if rois.dtype is x.dtype else P.cast(rois, dtype=x.dtype)

    def col(i):
        v = P.reshape(P.slice_(rs, starts=(0, i), stops=(r, i + 1), steps=(1, 1)), shape=(r,))
        return P.sub(P.mul(v, _scalar_like(v, scale)), _scalar_like(v, off))
    x1, y1, x2, y2 = col(0), col(1), col(2), col(3)
    rw, rh = P.sub(x2, x1), P.sub(y2, y1)
    if half == "output_half_pixel":   # malformed rois become 1x1
        rw, rh = P.maximum(rw, _scalar_like(rw, 1.0)), P.maximum(rh, _scalar_like(rh, 1.0))
    ylo, yhi, yw0, yw1, yin = _roi_axis(y1, rh, oh, ratio, h)     # [R, oh, g]
    xlo, xhi, xw0, xw1, xin = _roi_axis(x1, rw, ow, ratio, w)     # [R, ow, g]
    grid = (r, oh, ow, ratio, ratio)

    def ys(v):
        return _bcast_to(P.reshape(v, shape=(r, oh, 1, ratio, 1)), grid)

    def xs(v):
        return _bcast_to(P.reshape(v, shape=(r, 1, ow, 1, ratio)), grid)
    valid = P.cast(P.logical_and(ys(yin), xs(xin)), dtype=x.dtype)
    b = bidx if bidx.dtype is T.int64 else P.cast(bidx, dtype=T.int64)
    xr = P.reshape(P.take(x, b, dim=0), shape=(r, c, h * w))
    s = oh * ow * ratio * ratio
    taps = []
    for yy, wy in ((ylo, yw0), (yhi, yw1)):
        for xx, wx in ((xlo, xw0), (xhi, xw1)):
            idx = P.cast(P.add(P.mul(ys(yy), _scalar_like(ys(yy), w)), xs(xx)), dtype=T.int64)
            wt = P.mul(P.mul(ys(wy), xs(wx)), valid)
            vals = P.gather(xr, _bcast_to(P.reshape(idx, shape=(r, 1, s)), (r, c, s)), dim=2)
            taps.append(P.mul(vals, _bcast_to(P.reshape(wt, shape=(r, 1, s)), (r, c, s))))
    if mode == "avg":
        acc = P.add(P.add(taps[0], taps[1]), P.add(taps[2], taps[3]))
        y = P.sum_(P.reshape(acc, shape=(r, c, oh, ow, ratio * ratio)), dims=(4,), keepdim=False)
        return [P.div(y, _scalar_like(y, ratio * ratio))]
    acc = P.maximum(P.maximum(taps[0], taps[1]), P.maximum(taps[2], taps[3]))
    return [P.amax(P.reshape(acc, shape=(r, c, oh, ow, ratio * ratio)), dims=(4,), keepdim=False)]


# ------------------------------------------------------------------ TfIdfVectorizer (integer pools)
@converter("TfIdfVectorizer")
def _tfidf(ctx, node):
    x = ctx.value(node.input[0])
    if ctx.attr("pool_int64s") is None:
        raise OnnxImportError(ctx.where("string pools are not supported (ember has no string tensors)"))
    pool = np.asarray(ctx.attr("pool_int64s"), dtype=np.int64)
    counts_at = [int(v) for v in ctx.attr("ngram_counts")]
    indexes = [int(v) for v in ctx.attr("ngram_indexes")]
    lo, hi = int(ctx.attr("min_gram_length")), int(ctx.attr("max_gram_length"))
    skips = int(ctx.attr("max_skip_count"))
    mode = ctx.attr("mode")
    weights = ctx.attr("weights")
    if x.type.ndim not in (1, 2) or _numel(x.shape) is None or x.dtype not in (T.int32, T.int64):
        raise OnnxImportError(ctx.where(f"input must be a static [L] or [B, L] integer tensor, got {x.type}"))
    xs = x if x.dtype is T.int64 else P.cast(x, dtype=T.int64)
    xs = P.reshape(xs, shape=(1,) + tuple(x.shape)) if x.type.ndim == 1 else xs
    b, length = xs.shape
    out_size = max(indexes) + 1
    # the pool's grams in order: sizes 1, 2, ... each a run of ngram_counts
    grams = []
    for size, start in enumerate(counts_at, start=1):
        end = counts_at[size] if size < len(counts_at) else len(pool)
        grams += [pool[i:i + size] for i in range(start, end, size)]
    if len(grams) != len(indexes):
        raise OnnxImportError(ctx.where(f"{len(grams)} pool grams but {len(indexes)} ngram_indexes"))
    total = None
    for size in range(max(lo, 1), hi + 1):
        ids = [j for j, g in enumerate(grams) if len(g) == size]
        if not ids:
            continue
        gm = np.stack([grams[j] for j in ids])                                 # [G, size]
        cnt = None
        for d in (range(1, 2) if size == 1 else range(1, skips + 2)):   # unigrams are counted once
            m = length - (size - 1) * d
            if m <= 0:
                continue
            hit = None
            for k in range(size):
                part = P.slice_(xs, starts=(0, k * d), stops=(b, k * d + m), steps=(1, 1))        # [B, m]
                eq = P.eq(_bcast_to(P.reshape(part, shape=(b, 1, m)), (b, len(ids), m)),
                          _bcast_to(P.constant(value=gm[:, k].reshape(1, -1, 1)), (b, len(ids), m)))
                hit = eq if hit is None else P.logical_and(hit, eq)
            c = P.sum_(P.cast(hit, dtype=T.float32), dims=(2,), keepdim=False)                 # [B, G]
            cnt = c if cnt is None else P.add(cnt, c)
        if cnt is None:
            continue
        place = np.zeros((len(ids), out_size), dtype=np.float32)
        place[np.arange(len(ids)), [indexes[j] for j in ids]] = 1.0
        y = P.matmul(cnt, P.constant(value=place))
        total = y if total is None else P.add(total, y)
    if total is None:
        total = _full_f32((b, out_size), 0.0)
    w = None if not weights else P.constant(value=np.asarray(weights, dtype=np.float32).reshape(1, -1))
    if mode == "IDF":
        present = P.cast(P.gt(total, _scalar_like(total, 0)), dtype=T.float32)
        total = present if w is None else P.mul(present, _bcast_to(w, (b, out_size)))
    elif mode == "TFIDF" and w is not None:
        total = P.mul(total, _bcast_to(w, (b, out_size)))
    elif mode not in ("TF", "TFIDF"):
        raise OnnxImportError(ctx.where(f"mode {mode!r} is not TF/IDF/TFIDF"))
    return [P.reshape(total, shape=(out_size,)) if x.type.ndim == 1 else total]


def _full_f32(shape, value):
    return P.full(shape=tuple(shape), value=value, dtype=T.float32)
