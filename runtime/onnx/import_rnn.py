"""ONNX RNN / GRU / LSTM, unrolled over the (static) sequence length into ember primitives.

The input projection of every time step is one matmul; each step adds the
recurrent matmul and the gate activations. ``sequence_lens`` masks the steps
past a sequence's end: the state stays, the output is zero (processing a
reversed direction from the last step therefore starts at each sequence's end).
"""

from __future__ import annotations

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _opt, _scalar_like
from .importer import OnnxImportError, converter


def _act(ctx, name: str, alpha, beta):
    name = name.lower() if isinstance(name, str) else name

    def c(x, v):
        return _scalar_like(x, v)
    acts = {
        "sigmoid": P.sigmoid, "tanh": P.tanh, "relu": P.relu,
        "hardsigmoid": lambda x: P.minimum(P.maximum(P.add(P.mul(x, c(x, 0.2 if alpha is None else alpha)),
                                                              c(x, 0.5 if beta is None else beta)), c(x, 0)),
                                           c(x, 1)),
        "leakyrelu": lambda x: P.where(P.ge(x, c(x, 0)), x, P.mul(x, c(x, 0.01 if alpha is None else alpha))),
        "thresholdedrelu": lambda x: P.where(P.gt(x, c(x, 1.0 if alpha is None else alpha)), x, c(x, 0)),
        "affine": lambda x: P.add(P.mul(x, c(x, 1.0 if alpha is None else alpha)), c(x, 0.0 if beta is None else beta)),
        "scaledtanh": lambda x: P.mul(c(x, 1.0 if alpha is None else alpha),
                                      P.tanh(P.mul(x, c(x, 1.0 if beta is None else beta)))),
        "elu": lambda x: P.where(P.gt(x, c(x, 0)), x, P.mul(c(x, 1.0 if alpha is None else alpha), P.expm1(x))),
        "softsign": lambda x: P.div(x, P.add(c(x, 1), P.abs_(x))),
        "softplus": lambda x: P.add(P.relu(x), P.log1p(P.exp(P.neg(P.abs_(x))))),
    }
    if name not in acts:
        raise OnnxImportError(ctx.where(f"activation {name!r} is not supported"))
    return acts[name]


def _activations(ctx, defaults: list[str], n_dir: int):
    names = ctx.attr("activations") or defaults * n_dir
    names = [n.decode() if isinstance(n, bytes) else n for n in names]
    alphas = list(ctx.attr("activation_alpha") or [])
    betas = list(ctx.attr("activation_beta") or [])
    # activation_alpha/beta list one value per activation that takes one, in order
    fns, ai, bi = [], 0, 0
    takes_alpha = {"hardsigmoid", "leakyrelu", "thresholdedrelu", "affine", "scaledtanh", "elu"}
    takes_beta = {"hardsigmoid", "affine", "scaledtanh"}
    for n in names:
        a = b = None
        if n.lower() in takes_alpha and ai < len(alphas):
            a, ai = alphas[ai], ai + 1
        if n.lower() in takes_beta and bi < len(betas):
            b, bi = betas[bi], bi + 1
        fns.append(_act(ctx, n, a, b))
    k = len(defaults)
    if len(fns) != k * n_dir:
        raise OnnxImportError(ctx.where(f"expected {k * n_dir} activations, got {len(fns)}"))
    return [fns[d * k:(d + 1) * k] for d in range(n_dir)]


def _cols(v: Value, i: int, h: int) -> Value:
    """Gate ``i`` of a [rows, G*h] matrix."""
    rows = v.shape[0]
    return P.slice_(v, starts=(0, i * h), stops=(rows, (i + 1) * h), steps=(1, 1))


def _dir_slice(v: Value, d: int) -> Value:
    """[num_dir, ...] -> the ``d``-th direction's [...]."""
    rest = tuple(v.shape[1:])
    s = P.slice_(v, starts=(d,) + (0,) * len(rest), stops=(d + 1,) + rest, steps=(1,) * (len(rest) + 1))
    return P.reshape(s, shape=rest)


def _recurrent(ctx, node, kind: str):
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    x = ctx.value(node.input[0])
    w, r = ctx.value(node.input[1]), ctx.value(node.input[2])
    layout = int(ctx.attr("layout", 0))
    if x.type.ndim != 3 or any(not isinstance(d, int) for d in x.shape):
        raise OnnxImportError(ctx.where(f"{kind} needs a static 3-D input, got {list(x.shape)}"))
    if layout:
        x = P.permute(x, dims=(1, 0, 2))
    seq, batch, n_in = x.shape
    direction = ctx.attr("direction", "forward")
    n_dir = 2 if direction == "bidirectional" else 1
    h = int(ctx.attr("hidden_size") or r.shape[-1])
    clip = ctx.attr("clip")
    dt = x.dtype
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    acts = _activations(ctx, defaults, n_dir)
    if kind == "RNN" and ctx.attr("activations") is None:
        acts = [[P.tanh]] * n_dir

    def opt_value(i):
        return ctx.value(node.input[i]) if _opt(ctx, i) else None
    bias, seq_lens, h0 = opt_value(3), opt_value(4), opt_value(5)
    c0 = opt_value(6) if kind == "LSTM" else None
    peep = opt_value(7) if kind == "LSTM" else None
    if layout:
        h0 = None if h0 is None else P.permute(h0, dims=(1, 0, 2))
        c0 = None if c0 is None else P.permute(c0, dims=(1, 0, 2))
    masks = None
    if seq_lens is not None:
        lens = seq_lens if seq_lens.dtype is T.int64 else P.cast(seq_lens, dtype=T.int64)
        lens = P.broadcast_to(P.reshape(lens, shape=(batch, 1)), shape=(batch, h))
        masks = [P.lt(P.full(shape=(batch, h), value=t, dtype=T.int64), lens) for t in range(seq)]
    linear_before_reset = int(ctx.attr("linear_before_reset", 0))
    couple = int(ctx.attr("input_forget", 0))
    zero = P.full(shape=(batch, h), value=0.0, dtype=dt)

    def clipped(v):
        if clip is None:
            return v
        return P.minimum(P.maximum(v, _scalar_like(v, -float(clip))), _scalar_like(v, float(clip)))

    x2 = P.reshape(x, shape=(seq * batch, n_in))
    ys, hs, cs = [], [], []
    for d in range(n_dir):
        wd, rd = _dir_slice(w, d), _dir_slice(r, d)                  # [G*h, in], [G*h, h]
        xw = P.matmul(x2, P.permute(wd, dims=(1, 0)))               # all steps' input projections
        rt = P.permute(rd, dims=(1, 0))
        wb = rb = None
        if bias is not None:
            bd = _dir_slice(bias, d)
            wb = P.broadcast_to(P.reshape(P.slice_(bd, starts=(0,), stops=(gates * h,), steps=(1,)),
                                          shape=(1, gates * h)), shape=(batch, gates * h))
            rb = P.broadcast_to(P.reshape(P.slice_(bd, starts=(gates * h,), stops=(2 * gates * h,), steps=(1,)),
                                          shape=(1, gates * h)), shape=(batch, gates * h))
        pd = None
        if peep is not None:
            pv = _dir_slice(peep, d)
            pd = [P.broadcast_to(P.reshape(P.slice_(pv, starts=(i * h,), stops=((i + 1) * h,), steps=(1,)),
                                           shape=(1, h)), shape=(batch, h)) for i in range(3)]
        H = zero if h0 is None else _dir_slice(h0, d)
        C = zero if c0 is None else _dir_slice(c0, d)
        f, g = acts[d][0], acts[d][1] if gates > 1 else None
        hact = acts[d][2] if kind == "LSTM" else None
        order = range(seq) if (direction == "forward" or (direction == "bidirectional" and d == 0)) \
            else range(seq - 1, -1, -1)
        out = [None] * seq
        for t in order:
            xt = P.slice_(xw, starts=(t * batch, 0), stops=((t + 1) * batch, gates * h), steps=(1, 1))
            if wb is not None:
                xt = P.add(xt, wb)
            hr = P.matmul(H, rt)
            if rb is not None:
                hr = P.add(hr, rb)
            if kind == "RNN":
                Hn = f(clipped(P.add(xt, hr)))
            elif kind == "GRU":
                z = f(clipped(P.add(_cols(xt, 0, h), _cols(hr, 0, h))))
                rg = f(clipped(P.add(_cols(xt, 1, h), _cols(hr, 1, h))))
                if linear_before_reset:
                    cand = P.add(_cols(xt, 2, h), P.mul(rg, _cols(hr, 2, h)))
                else:
                    rh = P.matmul(P.mul(rg, H), P.slice_(rt, starts=(0, 2 * h), stops=(h, 3 * h), steps=(1, 1)))
                    if rb is not None:
                        rh = P.add(rh, _cols(rb, 2, h))
                    cand = P.add(_cols(xt, 2, h), rh)
                hc = g(clipped(cand))
                Hn = P.add(P.mul(P.sub(_scalar_like(z, 1), z), hc), P.mul(z, H))
            else:
                pre = [P.add(_cols(xt, i, h), _cols(hr, i, h)) for i in range(4)]   # i, o, f, c
                if pd is not None:
                    pre[0] = P.add(pre[0], P.mul(pd[0], C))
                    pre[2] = P.add(pre[2], P.mul(pd[2], C))
                ig = f(clipped(pre[0]))
                fg = P.sub(_scalar_like(ig, 1), ig) if couple else f(clipped(pre[2]))
                cg = g(clipped(pre[3]))
                Cn = P.add(P.mul(fg, C), P.mul(ig, cg))
                if pd is not None:
                    pre[1] = P.add(pre[1], P.mul(pd[1], Cn))
                og = f(clipped(pre[1]))
                Hn = P.mul(og, hact(Cn))
                C = Cn if masks is None else P.where(masks[t], Cn, C)
            if masks is not None:
                out[t] = P.where(masks[t], Hn, zero)
                H = P.where(masks[t], Hn, H)
            else:
                out[t] = H = Hn
        ys.append(P.reshape(P.concat(*out, dim=0), shape=(seq, 1, batch, h)) if seq > 1 else
                  P.reshape(out[0], shape=(1, 1, batch, h)))
        hs.append(P.reshape(H, shape=(1, batch, h)))
        cs.append(P.reshape(C, shape=(1, batch, h)))
    Y = ys[0] if n_dir == 1 else P.concat(*ys, dim=1)                  # [seq, dir, batch, h]
    Yh = hs[0] if n_dir == 1 else P.concat(*hs, dim=0)                 # [dir, batch, h]
    Yc = cs[0] if n_dir == 1 else P.concat(*cs, dim=0)
    if layout:
        Y = P.permute(Y, dims=(2, 0, 1, 3))
        Yh, Yc = P.permute(Yh, dims=(1, 0, 2)), P.permute(Yc, dims=(1, 0, 2))
    outs = [Y, Yh] + ([Yc] if kind == "LSTM" else [])
    return outs


for _kind in ("RNN", "GRU", "LSTM"):
    converter(_kind)(lambda ctx, node, _k=_kind: _recurrent(ctx, node, _k))
