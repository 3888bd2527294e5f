"""Converters for ONNX's loss, normalization, dropout and layout operators.

Each is a composition of ember primitives (no new primitive), so an imported
model differentiates through them: the losses pick ``log p[target]`` with
``gather`` (whose gradient is ``scatter_add``), normalizations are reductions
and broadcasts, SpaceToDepth/DepthToSpace are reshape + permute.
"""

from __future__ import annotations

import numpy as np

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _axis, _full, _ins, _ints, _numel, _opt, _scalar_like, bcast
from .importer import OnnxImportError, converter, onnx_dtype


def _static_shape(ctx, x: Value, what: str) -> tuple:
    if _numel(x.shape) is None:
        raise OnnxImportError(ctx.where(f"{what} needs static shapes, got {list(x.shape)}"))
    return tuple(x.shape)


def _bcast_to(v: Value, shape: tuple) -> Value:
    return v if tuple(v.shape) == tuple(shape) else P.broadcast_to(v, shape=tuple(shape))


# ------------------------------------------------------------------ losses
def _nll(ctx, logp: Value, target: Value, weight, reduction: str, ignore_index) -> Value:
    """ONNX NegativeLogLikelihoodLoss of log-probabilities ``logp`` [N, C, d1...] at ``target`` [N, d1...]."""
    if logp.type.ndim < 2:
        raise OnnxImportError(ctx.where(f"input must be [N, C, ...], got shape {list(logp.shape)}"))
    if target.dtype not in (T.int64, T.int32):
        raise OnnxImportError(ctx.where(f"target must be int32/int64, got {target.dtype.name}"))
    want = (logp.shape[0],) + tuple(logp.shape[2:])
    if tuple(target.shape) != want:
        raise OnnxImportError(ctx.where(f"target shape {list(target.shape)} must be {list(want)} for input "
                                        f"{list(logp.shape)}"))
    if reduction not in ("none", "sum", "mean"):
        raise OnnxImportError(ctx.where(f"reduction {reduction!r} is not one of none/sum/mean"))
    tshape = tuple(target.shape)
    ignored = None
    safe = target
    if ignore_index is not None:
        # ignored positions may hold any value (even out of [0, C)): gather class 0 there, weight it 0
        ignored = P.eq(target, _full(int(ignore_index), target.dtype, tshape))
        safe = P.where(ignored, _scalar_like(target, 0), target)
    idx = P.reshape(safe, shape=(tshape[0], 1) + tshape[1:])
    picked = P.reshape(P.gather(logp, idx, dim=1), shape=tshape)
    loss = P.neg(picked)
    w = None
    if weight is not None:
        if weight.dtype is not logp.dtype:
            raise OnnxImportError(ctx.where(f"weight dtype {weight.dtype.name} differs from input "
                                            f"{logp.dtype.name}"))
        w = P.take(weight, safe, dim=0)
    if ignored is not None:
        zero = _full(0, logp.dtype, tshape)
        w = P.where(ignored, zero, _full(1, logp.dtype, tshape) if w is None else w)
    if w is not None:
        loss = P.mul(loss, w)
    if reduction == "none":
        return loss
    dims = tuple(range(len(tshape)))
    total = P.sum_(loss, dims=dims, keepdim=False)
    if reduction == "sum":
        return total
    if w is not None:
        return P.div(total, P.sum_(w, dims=dims, keepdim=False))
    n = _numel(tshape)
    if n is None:
        raise OnnxImportError(ctx.where("mean reduction over symbolic dimensions is not supported"))
    return P.div(total, _full(n, logp.dtype, ()))


def _loss_inputs(ctx, node):
    x, target = ctx.value(node.input[0]), ctx.value(node.input[1])
    weight = ctx.value(node.input[2]) if _opt(ctx, 2) else None
    return x, target, weight, ctx.attr("reduction", "mean"), ctx.attr("ignore_index")


@converter("NegativeLogLikelihoodLoss")
def _nll_loss(ctx, node):
    x, target, weight, reduction, ignore_index = _loss_inputs(ctx, node)
    return [_nll(ctx, x, target, weight, reduction, ignore_index)]


@converter("SoftmaxCrossEntropyLoss")
def _softmax_cross_entropy(ctx, node):
    from .import_ops import _log_softmax_last
    x, target, weight, reduction, ignore_index = _loss_inputs(ctx, node)
    if x.type.ndim < 2:
        raise OnnxImportError(ctx.where(f"scores must be [N, C, ...], got shape {list(x.shape)}"))
    logp = _log_softmax_last(x, 1)
    return [_nll(ctx, logp, target, weight, reduction, ignore_index), logp]


# ------------------------------------------------------------------ normalizations
@converter("RMSNormalization")
def _rms_norm(ctx, node):
    x, scale = _ins(ctx)[:2]
    axis = _axis(ctx.attr("axis", -1), x.type.ndim, ctx)
    eps = float(ctx.attr("epsilon", 1e-5))
    stash = onnx_dtype(int(ctx.attr("stash_type", 1)), ctx.where("stash_type"))
    dims = tuple(range(axis, x.type.ndim))
    n = _numel([x.shape[d] for d in dims])
    if n is None:
        raise OnnxImportError(ctx.where("RMSNormalization over symbolic dimensions is not supported"))
    xs = P.cast(x, dtype=stash) if x.dtype is not stash else x
    ms = P.div(P.sum_(P.mul(xs, xs), dims=dims, keepdim=True),
               _full(n, stash, [1 if i in dims else d for i, d in enumerate(x.shape)]))
    inv = P.rsqrt(P.add(ms, _scalar_like(ms, eps)))
    y = P.mul(xs, _bcast_to(inv, tuple(x.shape)))
    if y.dtype is not x.dtype:
        y = P.cast(y, dtype=x.dtype)
    return [P.mul(*bcast(ctx, y, scale))]


@converter("LpNormalization")
def _lp_norm(ctx, node):
    (x,) = _ins(ctx)
    axis = _axis(ctx.attr("axis", -1), x.type.ndim, ctx)
    p = int(ctx.attr("p", 2))
    if p == 1:
        norm = P.sum_(P.abs_(x), dims=(axis,), keepdim=True)
    elif p == 2:
        norm = P.sqrt(P.sum_(P.mul(x, x), dims=(axis,), keepdim=True))
    else:
        raise OnnxImportError(ctx.where(f"p must be 1 or 2, got {p}"))
    norm = _bcast_to(norm, tuple(x.shape))
    zero = _scalar_like(x, 0)
    is_zero = P.eq(norm, zero)
    # a zero norm gives 0 (not 0/0): divide by 1 there
    safe = P.where(is_zero, _scalar_like(x, 1), norm)
    return [P.where(is_zero, zero, P.div(x, safe))]


# ------------------------------------------------------------------ dropout
@converter("Dropout")
def _dropout(ctx, node):
    x = ctx.value(node.input[0])
    if ctx.opset < 12:
        # opset 7-11: inference only (is_test in opset < 7 changes nothing at inference either)
        training, ratio = False, float(ctx.attr("ratio", 0.5))
    else:
        ratio = float(np.asarray(ctx.const(node.input[1], "ratio")).ravel()[0]) if _opt(ctx, 1) else 0.5
        training = bool(np.asarray(ctx.const(node.input[2], "training_mode")).ravel()[0]) if _opt(ctx, 2) \
            else False
    want_mask = len(node.output) > 1 and bool(node.output[1])
    if not training or ratio == 0.0:
        return [x] + ([_full(True, T.bool_, x.shape)] if want_mask else [])
    if not 0.0 <= ratio < 1.0:
        raise OnnxImportError(ctx.where(f"ratio must be in [0, 1), got {ratio}"))
    if not x.dtype.is_floating_point:
        raise OnnxImportError(ctx.where(f"training-mode Dropout needs a floating-point input, got {x.dtype.name}"))
    # ember's generator draws the mask (the node's seed attribute is not honoured: ember has one generator)
    u = P.uniform(shape=tuple(x.shape), low=0.0, high=1.0, dtype=T.float32)
    keep = P.ge(u, _scalar_like(u, ratio))
    y = P.where(keep, P.mul(x, _scalar_like(x, 1.0 / (1.0 - ratio))), _scalar_like(x, 0))
    return [y] + ([keep] if want_mask else [])


# ------------------------------------------------------------------ one-hot
@converter("OneHot")
def _one_hot(ctx, node):
    idx = ctx.value(node.input[0])
    depth_arr = np.asarray(ctx.const(node.input[1], "depth")).ravel()
    if depth_arr.size != 1:
        raise OnnxImportError(ctx.where(f"depth must hold one value, got {depth_arr.size}"))
    depth = int(depth_arr[0])
    if depth < 1:
        raise OnnxImportError(ctx.where(f"depth must be positive, got {depth}"))
    values = ctx.value(node.input[2])
    if _numel(values.shape) != 2:
        raise OnnxImportError(ctx.where(f"values must hold [off_value, on_value], got shape {list(values.shape)}"))
    r = idx.type.ndim
    axis = int(ctx.attr("axis", -1))
    axis = axis + r + 1 if axis < 0 else axis
    if not 0 <= axis <= r:
        raise OnnxImportError(ctx.where(f"axis {ctx.attr('axis')} out of range for indices of rank {r}"))
    out_shape = tuple(idx.shape[:axis]) + (depth,) + tuple(idx.shape[axis:])
    # negative in-range indices wrap; out-of-range ones match no class (all off_value)
    zero = _scalar_like(idx, 0)
    wrapped = P.where(P.lt(idx, zero), P.add(idx, _scalar_like(idx, depth)), idx)
    wrapped = P.reshape(wrapped, shape=tuple(idx.shape[:axis]) + (1,) + tuple(idx.shape[axis:]))
    classes = np.arange(depth).astype(idx.dtype.np).reshape([depth if i == axis else 1 for i in range(r + 1)])
    hit = P.eq(_bcast_to(wrapped, out_shape), _bcast_to(P.constant(value=classes), out_shape))
    flat = P.reshape(values, shape=(2,))
    off = P.reshape(P.slice_(flat, starts=(0,), stops=(1,), steps=(1,)), shape=(1,) * (r + 1))
    on = P.reshape(P.slice_(flat, starts=(1,), stops=(2,), steps=(1,)), shape=(1,) * (r + 1))
    return [P.where(hit, _bcast_to(on, out_shape), _bcast_to(off, out_shape))]


# ------------------------------------------------------------------ layout
def _blocks(ctx, x: Value):
    if x.type.ndim != 4:
        raise OnnxImportError(ctx.where(f"input must be 4-D NCHW, got shape {list(x.shape)}"))
    b = int(ctx.attr("blocksize"))
    if b < 1:
        raise OnnxImportError(ctx.where(f"blocksize must be positive, got {b}"))
    return (b,) + _static_shape(ctx, x, ctx.node.op_type)


@converter("SpaceToDepth")
def _space_to_depth(ctx, node):
    (x,) = _ins(ctx)
    b, n, c, h, w = _blocks(ctx, x)
    if h % b or w % b:
        raise OnnxImportError(ctx.where(f"spatial size {h}x{w} is not divisible by blocksize {b}"))
    mode = ctx.attr("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise OnnxImportError(ctx.where(f"mode {mode!r} is not DCR or CRD"))
    y = P.reshape(x, shape=(n, c, h // b, b, w // b, b))
    y = P.permute(y, dims=(0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4))
    return [P.reshape(y, shape=(n, c * b * b, h // b, w // b))]


@converter("DepthToSpace")
def _depth_to_space(ctx, node):
    (x,) = _ins(ctx)
    b, n, c, h, w = _blocks(ctx, x)
    if c % (b * b):
        raise OnnxImportError(ctx.where(f"channels {c} are not divisible by blocksize^2 = {b * b}"))
    mode = ctx.attr("mode", "DCR")
    if mode == "DCR":
        y = P.permute(P.reshape(x, shape=(n, b, b, c // (b * b), h, w)), dims=(0, 3, 4, 1, 5, 2))
    elif mode == "CRD":
        y = P.permute(P.reshape(x, shape=(n, c // (b * b), b, b, h, w)), dims=(0, 1, 4, 2, 5, 3))
    else:
        raise OnnxImportError(ctx.where(f"mode {mode!r} is not DCR or CRD"))
    return [P.reshape(y, shape=(n, c // (b * b), h * b, w * b))]


@converter("CenterCropPad")
def _center_crop_pad(ctx, node):
    x = ctx.value(node.input[0])
    shape = _ints(ctx, node.input[1], "the target shape")
    r = x.type.ndim
    axes = ctx.attr("axes")
    axes = list(range(r)) if axes is None else [_axis(a, r, ctx) for a in axes]
    if len(axes) != len(shape) or len(set(axes)) != len(axes):
        raise OnnxImportError(ctx.where(f"shape {shape} does not match axes {axes}"))
    starts, stops, pads = [0] * r, list(x.shape), [(0, 0)] * r
    for a, size in zip(axes, shape):
        dim = x.shape[a]
        if not isinstance(dim, int) or not isinstance(size, int) or size < 0:
            raise OnnxImportError(ctx.where(f"cannot crop/pad dimension {dim} to {size}"))
        if size < dim:  # crop: the extra element (odd difference) comes off the end
            lo = (dim - size) // 2
            starts[a], stops[a] = lo, lo + size
        elif size > dim:  # pad: the extra element goes at the end
            lo = (size - dim) // 2
            pads[a] = (lo, size - dim - lo)
    if starts != [0] * r or stops != list(x.shape):
        x = P.slice_(x, starts=tuple(starts), stops=tuple(stops), steps=(1,) * r)
    if any(p != (0, 0) for p in pads):
        zero = False if x.dtype is T.bool_ else (0.0 if x.dtype.is_floating_point else 0)
        x = P.pad(x, pads=tuple(pads), value=zero)
    return [x]


# ------------------------------------------------------------------ linear attention (recurrent form)
def _heads(x: Value, heads: int) -> Value:
    """(B, T, H*D) -> (B, H, T, D)."""
    b, t, hd = x.shape
    return P.permute(P.reshape(x, shape=(b, t, heads, hd // heads)), dims=(0, 2, 1, 3))


def _step(x4: Value, i: int) -> Value:
    """Time step ``i`` of a (B, H, T, D) tensor as (B, H, D)."""
    b, h, _, d = x4.shape
    return P.reshape(P.slice_(x4, starts=(0, 0, i, 0), stops=(b, h, i + 1, d), steps=(1, 1, 1, 1)), shape=(b, h, d))


@converter("LinearAttention")
def _linear_attention(ctx, node):
    q, k, v = (ctx.value(node.input[i]) for i in range(3))
    past = ctx.value(node.input[3]) if _opt(ctx, 3) else None
    decay = ctx.value(node.input[4]) if _opt(ctx, 4) else None
    beta = ctx.value(node.input[5]) if _opt(ctx, 5) else None
    rule = ctx.attr("update_rule", "gated_delta")
    hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if rule not in ("linear", "gated", "delta", "gated_delta") or not hq or not hkv or int(hq) % int(hkv):
        raise OnnxImportError(ctx.where(f"bad update_rule {rule!r} / heads {hq}, {hkv}"))
    hq, hkv = int(hq), int(hkv)
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gating != (decay is not None) or delta != (beta is not None):
        raise OnnxImportError(ctx.where(f"update_rule {rule!r} needs decay: {gating}, beta: {delta}"))
    for x in (q, k, v):
        _static_shape(ctx, x, "LinearAttention")
        if x.type.ndim != 3:
            raise OnnxImportError(ctx.where(f"query/key/value must be (B, T, H*D), got {list(x.shape)}"))
    f32 = T.float32

    def as32(x):
        return x if x.dtype is f32 else P.cast(x, dtype=f32)
    b, t, _ = q.shape
    dk, dv, group = q.shape[2] // hq, v.shape[2] // hkv, hq // hkv
    q4, k4, v4 = _heads(as32(q), hq), _heads(as32(k), hkv), _heads(as32(v), hkv)
    scale = ctx.attr("scale")
    scale = 1.0 / np.sqrt(dk) if not scale else float(scale)
    state = as32(past) if past is not None else _full(0.0, f32, (b, hkv, dk, dv))
    state_dtype = past.dtype if past is not None else q.dtype
    if decay is not None:
        dl = decay.shape[-1]
        g4 = _heads(as32(decay), hkv) if dl == hkv * dk else \
            P.permute(P.reshape(as32(decay), shape=(b, t, hkv, 1)), dims=(0, 2, 1, 3))
    if beta is not None:
        bl = beta.shape[-1]
        b4 = P.permute(P.reshape(as32(beta), shape=(b, t, bl, 1)), dims=(0, 2, 1, 3))
    full = (b, hkv, dk, dv)
    outs = []
    for i in range(t):
        qt, kt, vt = _step(q4, i), _step(k4, i), _step(v4, i)
        if gating:
            g = P.exp(_step(g4, i))                                          # (B, Hkv, dk or 1)
            state = P.mul(state, _bcast_to(P.reshape(g, shape=(b, hkv, g.shape[2], 1)), full))
        if delta:
            got = P.reshape(P.matmul(P.reshape(kt, shape=(b * hkv, 1, dk)), P.reshape(state, shape=(b * hkv, dk, dv))),
                            shape=(b, hkv, dv))                              # S^T k
            bt = _bcast_to(_step(b4, i), (b, hkv, 1)) if b4.shape[1] != hkv else _step(b4, i)
            vt = P.mul(_bcast_to(bt, (b, hkv, dv)), P.sub(vt, got))
        state = P.add(state, P.mul(_bcast_to(P.reshape(kt, shape=(b, hkv, dk, 1)), full),
                                   _bcast_to(P.reshape(vt, shape=(b, hkv, 1, dv)), full)))
        read = state
        if group > 1:   # each kv head serves `group` consecutive query heads
            read = P.reshape(_bcast_to(P.reshape(state, shape=(b, hkv, 1, dk, dv)), (b, hkv, group, dk, dv)),
                             shape=(b, hq, dk, dv))
        o = P.matmul(P.reshape(qt, shape=(b * hq, 1, dk)), P.reshape(read, shape=(b * hq, dk, dv)))
        outs.append(P.reshape(P.mul(o, _scalar_like(o, scale)), shape=(b, hq, 1, dv)))
    y = outs[0] if t == 1 else P.concat(*outs, dim=2)                       # (B, Hq, T, dv)
    y = P.reshape(P.permute(y, dims=(0, 2, 1, 3)), shape=(b, t, hq * dv))
    y = y if y.dtype is q.dtype else P.cast(y, dtype=q.dtype)
    return [y, state if state.dtype is state_dtype else P.cast(state, dtype=state_dtype)]


# ------------------------------------------------------------------ random generators
def _random_dtype(ctx, default):
    from .importer import onnx_dtype
    dt = ctx.attr("dtype")
    return default if dt is None else onnx_dtype(int(dt), ctx.where("dtype"))


def _draw(ctx, node, shape, dtype):
    """ember's generator draws (the node's seed attribute is not honoured: ember has one generator)."""
    if not dtype.is_floating_point:
        raise OnnxImportError(ctx.where(f"random draws of {dtype.name} are not supported"))
    if node.op_type.startswith("RandomUniform"):
        return P.uniform(shape=tuple(shape), low=float(ctx.attr("low", 0.0)), high=float(ctx.attr("high", 1.0)),
                         dtype=dtype)
    return P.normal(shape=tuple(shape), mean=float(ctx.attr("mean", 0.0)), std=float(ctx.attr("scale", 1.0)),
                    dtype=dtype)


@converter("RandomUniform", "RandomNormal")
def _random(ctx, node):
    return [_draw(ctx, node, [int(d) for d in ctx.attr("shape")], _random_dtype(ctx, T.float32))]


@converter("RandomUniformLike", "RandomNormalLike")
def _random_like(ctx, node):
    x = ctx.value(node.input[0])
    return [_draw(ctx, node, x.shape, _random_dtype(ctx, x.dtype))]


@converter("Bernoulli")
def _bernoulli(ctx, node):
    p = ctx.value(node.input[0])
    u = P.uniform(shape=tuple(p.shape), low=0.0, high=1.0, dtype=p.dtype)
    hit = P.lt(u, p)
    dt = _random_dtype(ctx, p.dtype)
    return [P.cast(hit, dtype=dt)]


# ------------------------------------------------------------------ FlexAttention (ai.onnx.preview)
@converter("ai.onnx.preview::FlexAttention")
def _flex_attention(ctx, node):
    from .importer import inline_graph, onnx_dtype
    q, k, v = (ctx.value(node.input[i]) for i in range(3))
    for x in (q, k, v):
        _static_shape(ctx, x, "FlexAttention")
        if x.type.ndim != 4:
            raise OnnxImportError(ctx.where(f"Q, K, V must be rank 4, got {list(x.shape)}"))
    b, hq, length, e = q.shape
    _, hkv, s, ek = k.shape
    if hq % hkv or ek != e or v.shape[1] != hkv or v.shape[2] != s:
        raise OnnxImportError(ctx.where(f"incompatible Q {list(q.shape)}, K {list(k.shape)}, V {list(v.shape)}"))
    scale = ctx.attr("scale")
    scale = 1.0 / np.sqrt(e) if scale is None else float(scale)
    prec = ctx.attr("softmax_precision")
    if prec is not None:
        work = onnx_dtype(int(prec), ctx.where("softmax_precision"))
    else:
        work = T.float32 if q.dtype in (T.float16, T.bfloat16) else q.dtype

    def heads(x):   # GQA: each kv head serves consecutive query heads
        r = hq // hkv
        if r == 1:
            return x
        _, _, n, d = x.shape
        return P.reshape(_bcast_to(P.reshape(x, shape=(b, hkv, 1, n, d)), (b, hkv, r, n, d)), shape=(b, hq, n, d))
    # Q and K pre-scaled by sqrt(scale), in the input dtype, as ONNX's definition
    root = float(np.sqrt(np.float32(scale)))
    qs = P.mul(q, _scalar_like(q, root))
    ks = P.mul(heads(k), _full(root, k.dtype, (b, hq, s, e)))
    scores = P.matmul(qs, P.permute(ks, dims=(0, 1, 3, 2)))                   # (B, Hq, L, S)
    scores = scores if scores.dtype is work else P.cast(scores, dtype=work)
    prefix = f"{node.name or node.output[0]}/"
    mod = ctx.attr("score_mod")
    if mod is not None:
        (scores,) = inline_graph(ctx, mod, {mod.input[0].name: scores}, prefix + "score_mod/")
        scores = scores if scores.dtype is work else P.cast(scores, dtype=work)
    m = P.amax(scores, dims=(3,), keepdim=True)
    ex = P.exp(P.sub(scores, _bcast_to(m, scores.shape)))
    probs = P.div(ex, _bcast_to(P.sum_(ex, dims=(3,), keepdim=True), scores.shape))
    mod = ctx.attr("prob_mod")
    if mod is not None:
        (probs,) = inline_graph(ctx, mod, {mod.input[0].name: probs}, prefix + "prob_mod/")
        probs = probs if probs.dtype is work else P.cast(probs, dtype=work)
    vv = heads(v)
    out = P.matmul(probs, vv if vv.dtype is work else P.cast(vv, dtype=work))
    return [out if out.dtype is v.dtype else P.cast(out, dtype=v.dtype)]
