"""ONNX's training-preview optimizers (domain ai.onnx.preview.training): Adagrad, Adam,
Momentum, as elementwise compositions. The step count ``T`` is a run-time input, so
its tests (T > 0, bias correction) are ``where`` / ``pow`` on values."""

from __future__ import annotations

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _scalar_like
from .importer import OnnxImportError, converter

DOMAIN = "ai.onnx.preview.training"


def _groups(ctx, node, k: int):
    names = [x for x in node.input]
    if len(names) < 2 or (len(names) - 2) % k:
        raise OnnxImportError(ctx.where(f"expects R, T and {k} groups of tensors, got {len(names)} inputs"))
    n = (len(names) - 2) // k
    vals = [ctx.value(x) for x in names]
    return vals[0], vals[1], [vals[2 + i * n: 2 + (i + 1) * n] for i in range(k)], n


def _like(s: Value, x: Value) -> Value:
    """A scalar input as x's dtype, broadcast to x's shape."""
    s = s if s.dtype is x.dtype else P.cast(s, dtype=x.dtype)
    return P.broadcast_to(P.reshape(s, shape=(1,) * x.type.ndim), shape=tuple(x.shape))


def _reg(x: Value, g: Value, coef: float) -> Value:
    return P.add(P.mul(x, _scalar_like(x, coef)), g) if coef else g


@converter(f"{DOMAIN}::Adagrad")
def _adagrad(ctx, node):
    r, t, (xs, gs, hs), n = _groups(ctx, node, 3)
    decay, eps = float(ctx.attr("decay_factor", 0.0)), float(ctx.attr("epsilon", 1e-6))
    norm = float(ctx.attr("norm_coefficient", 0.0))
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        rt = P.div(_like(r, x), P.add(_scalar_like(x, 1), P.mul(_like(t, x), _scalar_like(x, decay))))
        gr = _reg(x, g, norm)
        h2 = P.add(h, P.mul(gr, gr))
        new_x.append(P.sub(x, P.div(P.mul(rt, gr), P.add(P.sqrt(h2), _scalar_like(h2, eps)))))
        new_h.append(h2)
    return new_x + new_h


@converter(f"{DOMAIN}::Momentum")
def _momentum(ctx, node):
    r, t, (xs, gs, vs), n = _groups(ctx, node, 3)
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    mode, norm = ctx.attr("mode", "standard"), float(ctx.attr("norm_coefficient", 0.0))
    if mode not in ("standard", "nesterov"):
        raise OnnxImportError(ctx.where(f"mode {mode!r} is not standard/nesterov"))
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        gr = _reg(x, g, norm)
        first = P.le(_like(t, x) if t.dtype.is_floating_point else _like(P.cast(t, dtype=T.float64), x),
                     _scalar_like(x, 0))
        b = P.where(first, _scalar_like(x, 1), _scalar_like(x, beta))   # the first step takes the whole gradient
        v2 = P.add(P.mul(v, _scalar_like(v, alpha)), P.mul(b, gr))
        step = v2 if mode == "standard" else P.add(gr, P.mul(v2, _scalar_like(v2, alpha)))
        new_x.append(P.sub(x, P.mul(_like(r, x), step)))
        new_v.append(v2)
    return new_x + new_v


@converter(f"{DOMAIN}::Adam")
def _adam(ctx, node):
    r, t, (xs, gs, vs, hs), n = _groups(ctx, node, 4)
    alpha, beta = float(ctx.attr("alpha", 0.9)), float(ctx.attr("beta", 0.999))
    eps = float(ctx.attr("epsilon", 1e-6))
    norm, post = float(ctx.attr("norm_coefficient", 0.0)), float(ctx.attr("norm_coefficient_post", 0.0))
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        gr = _reg(x, g, norm)
        v2 = P.add(P.mul(v, _scalar_like(v, alpha)), P.mul(gr, _scalar_like(gr, 1 - alpha)))
        h2 = P.add(P.mul(h, _scalar_like(h, beta)), P.mul(P.mul(gr, gr), _scalar_like(gr, 1 - beta)))
        tf = _like(t, x)
        # bias correction once T > 0: r * sqrt(1 - beta^T) / (1 - alpha^T)
        safe_t = P.maximum(tf, _scalar_like(tf, 1))
        corr = P.div(P.sqrt(P.sub(_scalar_like(tf, 1), P.pow_(_scalar_like(tf, beta), safe_t))),
                     P.sub(_scalar_like(tf, 1), P.pow_(_scalar_like(tf, alpha), safe_t)))
        rr = P.where(P.gt(tf, _scalar_like(tf, 0)), P.mul(_like(r, x), corr), _like(r, x))
        x2 = P.sub(x, P.mul(rr, P.div(v2, P.add(P.sqrt(h2), _scalar_like(h2, eps)))))
        new_x.append(P.mul(x2, _scalar_like(x2, 1 - post)) if post else x2)
        new_v.append(v2)
        new_h.append(h2)
    return new_x + new_v + new_h
