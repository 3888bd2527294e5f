"""Converters for ONNX's math, activation, normalization and selection operators
that compose from ember primitives (second batch).

Inverse trigonometric functions have no primitive: ``atan`` is Cephes' rational
approximation (double precision, evaluated in float64 and cast back), and
asin/acos follow from it. TopK ranks elements by pairwise comparison (O(n^2) in
the axis length), CumProd takes a product under a triangular mask (O(n^2) too):
both are exact, and sized for the short axes such models carry.
"""

from __future__ import annotations

import numpy as np

from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Value

from .import_ops import _axis, _full, _ins, _numel, _scalar_like, bcast
from .importer import OnnxImportError, converter, onnx_dtype


def _bcast_to(v: Value, shape) -> Value:
    return v if tuple(v.shape) == tuple(shape) else P.broadcast_to(v, shape=tuple(shape))


def _c(x: Value, value) -> Value:
    return _scalar_like(x, value)


def _in_f64(fn):
    """Evaluate ``fn`` in float64 and cast back (accuracy for float16/32 inputs)."""
    def wrapped(x: Value) -> Value:
        if x.dtype is T.float64:
            return fn(x)
        return P.cast(fn(P.cast(x, dtype=T.float64)), dtype=x.dtype)
    return wrapped


def _float_unary(ctx, x: Value) -> None:
    if not x.dtype.is_floating_point:
        raise OnnxImportError(ctx.where(f"needs a floating-point input, got {x.dtype.name}"))


# ------------------------------------------------------------------ hyperbolic / inverse trig
def _sinh(x):
    return P.mul(P.sub(P.expm1(x), P.expm1(P.neg(x))), _c(x, 0.5))


def _cosh(x):
    return P.mul(P.add(P.exp(x), P.exp(P.neg(x))), _c(x, 0.5))


def _asinh(x):
    a = P.abs_(x)
    return P.mul(P.sign(x), P.log(P.add(a, P.sqrt(P.add(P.mul(a, a), _c(x, 1))))))


def _acosh(x):
    return P.log(P.add(x, P.sqrt(P.mul(P.sub(x, _c(x, 1)), P.add(x, _c(x, 1))))))


def _atanh(x):
    return P.mul(P.sub(P.log1p(x), P.log1p(P.neg(x))), _c(x, 0.5))


_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_MOREBITS = 6.123233995736765886130e-17


def _atan(x):
    """Cephes atan: reduce |x| to [0, 0.66], then a rational approximation (float64 accurate)."""
    a = P.abs_(x)
    big = P.gt(a, _c(a, 2.41421356237309504880))            # tan(3 pi / 8)
    mid = P.logical_and(P.logical_not(big), P.gt(a, _c(a, 0.66)))
    one = _c(a, 1)
    # the reduced argument; denominators made safe where their branch is not taken
    r_big = P.neg(P.div(one, P.where(big, a, one)))
    r_mid = P.div(P.sub(a, one), P.add(a, one))
    r = P.where(big, r_big, P.where(mid, r_mid, a))
    base = P.where(big, _c(a, np.pi / 2 + _MOREBITS), P.where(mid, _c(a, np.pi / 4 + 0.5 * _MOREBITS), _c(a, 0)))
    z = P.mul(r, r)
    num = _c(z, _ATAN_P[0])
    for coef in _ATAN_P[1:]:
        num = P.add(P.mul(num, z), _c(z, coef))
    den = P.add(z, _c(z, _ATAN_Q[0]))
    for coef in _ATAN_Q[1:]:
        den = P.add(P.mul(den, z), _c(z, coef))
    y = P.add(base, P.add(r, P.mul(r, P.div(P.mul(z, num), den))))
    return P.mul(P.sign(x), y)


def _asin(x):
    one = _c(x, 1)
    a = P.abs_(x)
    c = P.sqrt(P.mul(P.sub(one, x), P.add(one, x)))   # cos(asin x), accurate near |x| = 1
    # asin x = atan(x / c) near 0, sign(x) (pi/2 - atan(c / |x|)) near +-1: no division by zero
    small = P.le(a, _c(a, 0.7))
    near0 = _atan(P.div(x, P.where(small, c, one)))
    near1 = P.mul(P.sign(x), P.sub(_c(x, np.pi / 2), _atan(P.div(c, P.where(small, one, a)))))
    return P.where(small, near0, near1)


def _acos(x):
    return P.sub(_c(x, np.pi / 2), _asin(x))


for _name, _fn in {"Sinh": _sinh, "Cosh": _cosh, "Asinh": _asinh, "Acosh": _acosh, "Atanh": _atanh,
                   "Atan": _atan, "Asin": _asin, "Acos": _acos}.items():
    def _make(fn):
        f64 = _in_f64(fn)

        def conv(ctx, node):
            (x,) = _ins(ctx)
            _float_unary(ctx, x)
            return [f64(x)]
        return conv
    converter(_name)(_make(_fn))


# ------------------------------------------------------------------ activations
def _swish(x: Value, alpha: float) -> Value:
    # half-precision inputs: the gate is computed in float32 and rounded once, as ONNX's reference does
    xf = P.cast(x, dtype=T.float32) if x.dtype in (T.float16, T.bfloat16) else x
    gate = P.sigmoid(P.mul(xf, _c(xf, alpha)) if alpha != 1.0 else xf)
    return P.mul(x, gate if gate.dtype is x.dtype else P.cast(gate, dtype=x.dtype))


@converter("Swish")
def _swish_conv(ctx, node):
    (x,) = _ins(ctx)
    return [_swish(x, float(ctx.attr("alpha", 1.0)))]


@converter("SwiGLU")
def _swiglu(ctx, node):
    a, b = _ins(ctx)
    if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
        raise OnnxImportError(ctx.where(f"A and B must have one shape and dtype, got {a.type} and {b.type}"))
    return [P.mul(_swish(a, float(ctx.attr("alpha", 1.0))), b)]


@converter("Mish")
def _mish(ctx, node):
    (x,) = _ins(ctx)
    softplus = P.add(P.relu(x), P.log1p(P.exp(P.neg(P.abs_(x)))))
    return [P.mul(x, P.tanh(softplus))]


@converter("Shrink")
def _shrink(ctx, node):
    (x,) = _ins(ctx)
    lambd, bias = float(ctx.attr("lambd", 0.5)), float(ctx.attr("bias", 0.0))
    xf = x if x.dtype.is_floating_point else P.cast(x, dtype=T.float64)
    y = P.where(P.lt(xf, _c(xf, -lambd)), P.add(xf, _c(xf, bias)),
                P.where(P.gt(xf, _c(xf, lambd)), P.sub(xf, _c(xf, bias)), _c(xf, 0)))
    return [y if y.dtype is x.dtype else P.cast(y, dtype=x.dtype)]


# ------------------------------------------------------------------ normalizations
def _moments(x: Value, dims: tuple, n: int):
    """Mean and population variance over ``dims`` (kept), both shaped for broadcasting."""
    keep = tuple(1 if i in dims else d for i, d in enumerate(x.shape))
    mean = P.div(P.sum_(x, dims=dims, keepdim=True), _full(n, x.dtype, keep))
    d = P.sub(x, _bcast_to(mean, x.shape))
    var = P.div(P.sum_(P.mul(d, d), dims=dims, keepdim=True), _full(n, x.dtype, keep))
    return mean, var, d


def _count(ctx, x: Value, dims) -> int:
    n = _numel([x.shape[d] for d in dims])
    if n is None:
        raise OnnxImportError(ctx.where(f"normalizing over symbolic dimensions {list(x.shape)} is not supported"))
    return n


def _per_channel(v: Value, x: Value) -> Value:
    shape = (1, v.shape[0]) + (1,) * (x.type.ndim - 2)
    return _bcast_to(P.reshape(v, shape=shape), x.shape)


@converter("InstanceNormalization")
def _instance_norm(ctx, node):
    x, scale, bias = _ins(ctx)
    if x.type.ndim < 3:
        raise OnnxImportError(ctx.where(f"input must be [N, C, D1, ...], got {list(x.shape)}"))
    eps = float(ctx.attr("epsilon", 1e-5))
    dims = tuple(range(2, x.type.ndim))
    _, var, d = _moments(x, dims, _count(ctx, x, dims))
    y = P.mul(d, _bcast_to(P.rsqrt(P.add(var, _c(var, eps))), x.shape))
    return [P.add(P.mul(y, _per_channel(scale, x)), _per_channel(bias, x))]


@converter("GroupNormalization")
def _group_norm(ctx, node):
    x, scale, bias = _ins(ctx)
    if x.type.ndim < 3:
        raise OnnxImportError(ctx.where(f"input must be [N, C, D1, ...], got {list(x.shape)}"))
    groups = int(ctx.attr("num_groups"))
    eps = float(ctx.attr("epsilon", 1e-5))
    n, c = x.shape[0], x.shape[1]
    if not isinstance(c, int) or groups < 1 or c % groups:
        raise OnnxImportError(ctx.where(f"channels {c} are not divisible by num_groups {groups}"))
    stash = onnx_dtype(int(ctx.attr("stash_type", 1)), ctx.where("stash_type")) if ctx.opset >= 21 else x.dtype
    grouped = P.reshape(x, shape=(n, groups, c // groups) + tuple(x.shape[2:]))
    if grouped.dtype is not stash:
        grouped = P.cast(grouped, dtype=stash)
    dims = tuple(range(2, grouped.type.ndim))
    _, var, d = _moments(grouped, dims, _count(ctx, grouped, dims))
    y = P.mul(d, _bcast_to(P.rsqrt(P.add(var, _c(var, eps))), grouped.shape))
    if y.dtype is not x.dtype:
        y = P.cast(y, dtype=x.dtype)
    if ctx.opset < 21:
        # opset 18: scale and bias hold one value per group
        gshape = (1, groups) + (1,) * (grouped.type.ndim - 2)
        y = P.add(P.mul(y, _bcast_to(P.reshape(scale, shape=gshape), y.shape)),
                  _bcast_to(P.reshape(bias, shape=gshape), y.shape))
        return [P.reshape(y, shape=tuple(x.shape))]
    y = P.reshape(y, shape=tuple(x.shape))
    return [P.add(P.mul(y, _per_channel(scale, x)), _per_channel(bias, x))]


@converter("MeanVarianceNormalization")
def _mvn(ctx, node):
    (x,) = _ins(ctx)
    axes = ctx.attr("axes")
    axes = [0, 2, 3] if axes is None else [int(a) for a in axes]
    dims = tuple(sorted({_axis(a, x.type.ndim, ctx) for a in axes}))
    n = _count(ctx, x, dims)
    keep = tuple(1 if i in dims else d for i, d in enumerate(x.shape))
    mean = P.div(P.sum_(x, dims=dims, keepdim=True), _full(n, x.dtype, keep))
    mean_sq = P.div(P.sum_(P.mul(x, x), dims=dims, keepdim=True), _full(n, x.dtype, keep))
    # ONNX's function body: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)
    std = P.sqrt(P.sub(mean_sq, P.mul(mean, mean)))
    return [P.div(P.sub(x, _bcast_to(mean, x.shape)), _bcast_to(P.add(std, _c(std, 1e-9)), x.shape))]


@converter("LRN")
def _lrn(ctx, node):
    (x,) = _ins(ctx)
    if x.type.ndim < 3:
        raise OnnxImportError(ctx.where(f"input must be [N, C, D1, ...], got {list(x.shape)}"))
    size = int(ctx.attr("size"))
    alpha, beta = float(ctx.attr("alpha", 1e-4)), float(ctx.attr("beta", 0.75))
    bias = float(ctx.attr("bias", 1.0))
    c = x.shape[1]
    if size < 1 or not isinstance(c, int):
        raise OnnxImportError(ctx.where(f"bad size {size} for {c} channels"))
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    sq = P.mul(x, x)
    padded = P.pad(sq, pads=((0, 0), (lo, hi)) + ((0, 0),) * (x.type.ndim - 2), value=0.0)
    r = x.type.ndim
    acc = None
    for k in range(size):  # the channel window, one shifted slice per offset
        part = P.slice_(padded, starts=(0, k) + (0,) * (r - 2), stops=tuple(x.shape[:1]) + (k + c,) +
                        tuple(x.shape[2:]), steps=(1,) * r)
        acc = part if acc is None else P.add(acc, part)
    denom = P.pow_(P.add(P.mul(acc, _c(acc, alpha / size)), _c(acc, bias)), _c(acc, beta))
    return [P.div(x, denom)]


# ------------------------------------------------------------------ scans
@converter("CumProd")
def _cumprod(ctx, node):
    x = ctx.value(node.input[0])
    axis = _axis(int(np.asarray(ctx.const(node.input[1], "axis")).ravel()[0]), x.type.ndim, ctx)
    n = x.shape[axis]
    if not isinstance(n, int):
        raise OnnxImportError(ctx.where("CumProd along a symbolic dimension is not supported"))
    exclusive, reverse = int(ctx.attr("exclusive", 0)), int(ctx.attr("reverse", 0))
    # y[i] = prod_j x[j] over the j the mask keeps for i (j <= i, or j >= i reversed; j != i exclusive)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    mask = (j >= i) if reverse else (j <= i)
    if exclusive:
        mask = mask & (i != j)
    r = x.type.ndim
    perm = tuple(d for d in range(r) if d != axis) + (axis,)
    xt = P.permute(x, dims=perm) if perm != tuple(range(r)) else x
    lead = tuple(xt.shape[:-1])
    full = lead + (n, n)
    rows = _bcast_to(P.reshape(xt, shape=lead + (1, n)), full)
    m = _bcast_to(P.constant(value=mask), full)
    y = P.prod(P.where(m, rows, _full(1, x.dtype, full)), dims=(r,), keepdim=False)
    inv = tuple(sorted(range(r), key=lambda d: perm[d]))
    return [P.permute(y, dims=inv) if perm != tuple(range(r)) else y]


# ------------------------------------------------------------------ selection
@converter("TopK")
def _topk(ctx, node):
    x = ctx.value(node.input[0])
    if ctx.opset < 10:
        k = int(ctx.attr("k"))
    else:
        k = int(np.asarray(ctx.const(node.input[1], "K")).ravel()[0])
    axis = _axis(ctx.attr("axis", -1), x.type.ndim, ctx)
    largest = bool(int(ctx.attr("largest", 1)))
    n = x.shape[axis]
    if not isinstance(n, int):
        raise OnnxImportError(ctx.where("TopK along a symbolic dimension is not supported"))
    if not 0 <= k <= n:
        raise OnnxImportError(ctx.where(f"K = {k} is out of range for an axis of size {n}"))
    r = x.type.ndim
    perm = tuple(d for d in range(r) if d != axis) + (axis,)
    xt = P.permute(x, dims=perm) if perm != tuple(range(r)) else x
    lead = tuple(xt.shape[:-1])
    pair = lead + (n, n)
    xi = _bcast_to(P.reshape(xt, shape=lead + (n, 1)), pair)   # [.., i, j] = x_i
    xj = _bcast_to(P.reshape(xt, shape=lead + (1, n)), pair)   # [.., i, j] = x_j
    # rank of x_i: how many x_j come before it (strictly better, or equal with a smaller index)
    better = P.gt(xj, xi) if largest else P.lt(xj, xi)
    earlier = _bcast_to(P.constant(value=np.arange(n)[None, :] < np.arange(n)[:, None]), pair)
    before = P.logical_or(better, P.logical_and(P.eq(xj, xi), earlier))
    rank = P.sum_(P.cast(before, dtype=T.int64), dims=(r,), keepdim=False)     # lead + (n,)
    slots = lead + (k, n)
    want = _bcast_to(P.constant(value=np.arange(k, dtype=np.int64).reshape(k, 1)), slots)
    hit = P.eq(_bcast_to(P.reshape(rank, shape=lead + (1, n)), slots), want)
    idx = P.argmax(P.cast(hit, dtype=T.int32), dim=r, keepdim=False)      # lead + (k,)
    vals = P.gather(xt, idx, dim=r - 1)
    inv = tuple(sorted(range(r), key=lambda d: perm[d]))
    if perm != tuple(range(r)):
        vals, idx = P.permute(vals, dims=inv), P.permute(idx, dims=inv)
    return [vals, idx]


def _linear_index(ctx, idx: Value, data_shape: tuple, batch: int) -> tuple[Value, tuple]:
    """Flat positions of ``idx[..., :]`` into ``data`` flattened over its batch and indexed dims."""
    k = idx.shape[-1]
    if not isinstance(k, int) or k > len(data_shape) - batch:
        raise OnnxImportError(ctx.where(f"indices' last dimension {k} exceeds data rank {len(data_shape)}"))
    indexed = data_shape[batch:batch + k]
    if _numel(data_shape) is None or _numel(idx.shape) is None:
        raise OnnxImportError(ctx.where("GatherND/ScatterND need static shapes"))
    if idx.dtype is not T.int64:
        idx = P.cast(idx, dtype=T.int64)
    sizes = np.asarray(indexed, dtype=np.int64)
    sizes_v = _bcast_to(P.constant(value=sizes), idx.shape)
    idx = P.where(P.lt(idx, _c(idx, 0)), P.add(idx, sizes_v), idx)      # negative indices wrap
    strides = np.ones(k, dtype=np.int64)
    for d in range(k - 2, -1, -1):
        strides[d] = strides[d + 1] * indexed[d + 1]
    lin = P.sum_(P.mul(idx, _bcast_to(P.constant(value=strides), idx.shape)), dims=(idx.type.ndim - 1,),
                 keepdim=False)
    if batch:
        bshape = tuple(data_shape[:batch])
        block = int(np.prod(indexed, dtype=np.int64))
        offs = (np.arange(int(np.prod(bshape)), dtype=np.int64) * block).reshape(
            bshape + (1,) * (lin.type.ndim - batch))
        lin = P.add(lin, _bcast_to(P.constant(value=offs), lin.shape))
    flat_shape = (int(np.prod(data_shape[:batch + k], dtype=np.int64)),) + tuple(data_shape[batch + k:])
    return lin, flat_shape


@converter("GatherND")
def _gather_nd(ctx, node):
    data, idx = _ins(ctx)
    batch = int(ctx.attr("batch_dims", 0))
    lin, flat_shape = _linear_index(ctx, idx, tuple(data.shape), batch)
    return [P.take(P.reshape(data, shape=flat_shape), lin, dim=0)]


@converter("ScatterND")
def _scatter_nd(ctx, node):
    data, idx, updates = _ins(ctx)
    red = ctx.attr("reduction", "none")
    if red in ("mul", "max", "min"):
        # no scatter-max primitive: planned from indices known at import time
        from .import_ops_index import scatter_reduce_static, static_scatter_positions_nd
        shape = tuple(data.shape)
        pos = static_scatter_positions_nd(ctx, np.asarray(ctx.const(node.input[1], "the indices")), shape)
        return [scatter_reduce_static(ctx, data, updates, pos, red)]
    if red not in ("none", "add"):
        raise OnnxImportError(ctx.where(f"reduction {red!r} is not one of none/add/mul/max/min"))
    lin, flat_shape = _linear_index(ctx, idx, tuple(data.shape), 0)
    flat = P.reshape(data, shape=flat_shape)
    upd = P.reshape(updates, shape=tuple(lin.shape) + flat_shape[1:])
    if red == "add":
        return [P.reshape(P.index_add(flat, lin, upd, dim=0), shape=tuple(data.shape))]
    # replace: positions hit by an index take the update (ONNX requires unique indices)
    work = T.float64 if data.dtype is T.bool_ else data.dtype
    placed = P.index_add(_full(0, work, flat_shape), lin,
                         upd if work is data.dtype else P.cast(upd, dtype=work), dim=0)
    hits = P.index_add(_full(0, T.float32, flat_shape[:1]), lin, _full(1, T.float32, tuple(lin.shape)), dim=0)
    hit = _bcast_to(P.reshape(P.gt(hits, _full(0, T.float32, flat_shape[:1])),
                              shape=flat_shape[:1] + (1,) * (len(flat_shape) - 1)), flat_shape)
    if work is not data.dtype:
        placed = P.cast(placed, dtype=data.dtype)
    return [P.reshape(P.where(hit, placed, flat), shape=tuple(data.shape))]


# ------------------------------------------------------------------ batch norm (training mode)
def batch_norm_training(ctx, node, x, scale, bias, mean, var):
    """Normalize with the batch's statistics; running stats updated with ``momentum``."""
    eps = float(ctx.attr("epsilon", 1e-5))
    momentum = float(ctx.attr("momentum", 0.9))
    dims = (0,) + tuple(range(2, x.type.ndim))
    bmean, bvar, d = _moments(x, dims, _count(ctx, x, dims))
    y = P.mul(d, _bcast_to(P.rsqrt(P.add(bvar, _c(bvar, eps))), x.shape))
    y = P.add(P.mul(y, _per_channel(scale, x)), _per_channel(bias, x))
    c = x.shape[1]
    bmean, bvar = P.reshape(bmean, shape=(c,)), P.reshape(bvar, shape=(c,))
    if mean.dtype is not x.dtype:
        bmean, bvar = P.cast(bmean, dtype=mean.dtype), P.cast(bvar, dtype=mean.dtype)
    run_mean = P.add(P.mul(mean, _c(mean, momentum)), P.mul(bmean, _c(bmean, 1 - momentum)))
    run_var = P.add(P.mul(var, _c(var, momentum)), P.mul(bvar, _c(bvar, 1 - momentum)))
    return [y, run_mean, run_var]



# ------------------------------------------------------------------ einsum
def _einsum_terms(ctx, eq: str, ranks: list[int]):
    """Operand and output subscripts, with each '...' expanded into placeholder letters."""
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise OnnxImportError(ctx.where(f"equation {eq!r} has {len(terms)} operands, the node {len(ranks)}"))
    n_ell = max([r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t] or [0])
    ell = [chr(0x391 + i) for i in range(n_ell)]   # Greek capitals: never a user subscript
    out_terms = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            k = r - (len(t) - 3)
            t = t.replace("...", "".join(ell[n_ell - k:]))
        if len(t) != r or not all(c.isalpha() for c in t):
            raise OnnxImportError(ctx.where(f"subscripts {t!r} do not match an operand of rank {r}"))
        out_terms.append(t)
    if arrow:
        out = rhs.replace("...", "".join(ell))
    else:
        counts: dict = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = "".join(ell) + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


def _diagonal(x: Value, term: str):
    """Collapse repeated subscripts ('ii' -> 'i') by masking with the identity and summing."""
    while True:
        dup = next((c for c in term if term.count(c) > 1), None)
        if dup is None:
            return x, term
        i = term.index(dup)
        j = term.index(dup, i + 1)
        n = x.shape[i]
        eye = np.eye(n, dtype=x.dtype.np).reshape([n if a in (i, j) else 1 for a in range(x.type.ndim)])
        x = P.sum_(P.mul(x, _bcast_to(P.constant(value=eye), x.shape)), dims=(j,), keepdim=False)
        term = term[:j] + term[j + 1:]


def _contract(a: Value, ta: str, b: Value, tb: str, keep: set, sizes: dict):
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    a_only = [c for c in ta if c not in tb]
    b_only = [c for c in tb if c not in ta]

    def arrange(x, t, order):
        perm = tuple(t.index(c) for c in order)
        x = P.permute(x, dims=perm) if perm != tuple(range(len(t))) else x
        full = tuple(sizes[c] for c in order)
        return _bcast_to(x, full)
    a3 = arrange(a, ta, batch + a_only + summed)
    b3 = arrange(b, tb, batch + summed + b_only)
    nb = int(np.prod([sizes[c] for c in batch], dtype=np.int64))
    m = int(np.prod([sizes[c] for c in a_only], dtype=np.int64))
    k = int(np.prod([sizes[c] for c in summed], dtype=np.int64))
    n = int(np.prod([sizes[c] for c in b_only], dtype=np.int64))
    y = P.matmul(P.reshape(a3, shape=(nb, m, k)), P.reshape(b3, shape=(nb, k, n)))
    out = batch + a_only + b_only
    return P.reshape(y, shape=tuple(sizes[c] for c in out)), "".join(out)


@converter("Einsum")
def _einsum(ctx, node):
    xs = _ins(ctx)
    eq = ctx.attr("equation")
    if not eq:
        raise OnnxImportError(ctx.where("missing equation"))
    for x in xs:
        if _numel(x.shape) is None:
            raise OnnxImportError(ctx.where("Einsum needs static shapes"))
    terms, out = _einsum_terms(ctx, eq, [x.type.ndim for x in xs])
    sizes: dict = {}
    for x, t in zip(xs, terms):
        for c, d in zip(t, x.shape):
            if sizes.get(c, 1) not in (1, d) and d != 1:
                raise OnnxImportError(ctx.where(f"subscript {c!r} has sizes {sizes[c]} and {d}"))
            sizes[c] = max(sizes.get(c, 1), d)
    if any(c not in sizes for c in out) or len(set(out)) != len(out):
        raise OnnxImportError(ctx.where(f"bad output subscripts {out!r}"))
    ops = []
    for i, (x, t) in enumerate(zip(xs, terms)):
        x, t = _diagonal(x, t)
        # subscripts used by no other operand and not in the output are summed right away
        others = set(out).union(*[set(u) for j, u in enumerate(terms) if j != i])
        lone = [a for a, c in enumerate(t) if c not in others]
        if lone:
            x = P.sum_(x, dims=tuple(lone), keepdim=False)
            t = "".join(c for c in t if c in others)
        ops.append((x, t))
    acc, ta = ops[0]
    for j in range(1, len(ops)):
        keep = set(out).union(*[set(t) for _, t in ops[j + 1:]])
        acc, ta = _contract(acc, ta, ops[j][0], ops[j][1], keep, sizes)
    extra = tuple(a for a, c in enumerate(ta) if c not in out)
    if extra:
        acc = P.sum_(acc, dims=extra, keepdim=False)
        ta = "".join(c for c in ta if c in out)
    perm = tuple(ta.index(c) for c in out)
    if perm != tuple(range(len(ta))):
        acc = P.permute(acc, dims=perm)
    return [_bcast_to(acc, tuple(sizes[c] for c in out))]


# ------------------------------------------------------------------ Lp pooling
def _lp_pool2d(ctx, node):
    from .import_ops import _spatial_attrs
    (x,) = _ins(ctx)
    k = tuple(int(v) for v in ctx.attr("kernel_shape"))
    strides, padding, dilations = _spatial_attrs(ctx, x, k)
    p = float(ctx.attr("p", 2))
    c = x.shape[1]
    if not isinstance(c, int):
        raise OnnxImportError(ctx.where("LpPool needs a static channel count"))
    if int(ctx.attr("ceil_mode", 0)):
        pads = []
        for size, kk, s, d, (lo, hi) in zip(x.shape[2:], k, strides, dilations, padding):
            span = size + lo + hi - d * (kk - 1) - 1
            extra = (-(-span // s) - span // s) * s  # the partial last window of ceil mode, zero-padded
            pads.append((lo, hi + extra))
        padding = tuple(pads)
    # sum of |x|^p over each window: a depthwise convolution with a kernel of ones
    ones = P.constant(value=np.ones((c, 1) + k, dtype=x.dtype.np))
    powered = P.mul(P.abs_(x), P.abs_(x)) if p == 2 else P.pow_(P.abs_(x), _c(x, p))
    s = P.nn.conv2d(powered, ones, stride=strides, padding=padding, dilation=dilations, groups=c)
    return [P.sqrt(s) if p == 2 else P.pow_(s, _c(s, 1.0 / p))]


def _global_lp_pool(ctx, node):
    (x,) = _ins(ctx)
    p = float(ctx.attr("p", 2))
    dims = tuple(range(2, x.type.ndim))
    s = P.sum_(P.pow_(P.abs_(x), _c(x, p)), dims=dims, keepdim=True)
    return [P.pow_(s, _c(s, 1.0 / p))]


def _register_pools():
    from .import_ops import _one_d_as_2d
    converter("LpPool")(_one_d_as_2d(_lp_pool2d))
    converter("GlobalLpPool")(_global_lp_pool)


_register_pools()


# ------------------------------------------------------------------ N-d pooling from slices
def max_pool_with_indices(ctx, x: Value, k: tuple, storage_order: int) -> list[Value]:
    """MaxPool's values and flat argmax indices (ONNX: over the whole N*C*spatial tensor, row-major
    or, with storage_order 1, column-major spatially). Axes are reduced innermost first, taps in
    increasing order with a strict comparison, so ties go to the first position in row-major order."""
    strides, dil, lo, hi, outs, extra = _pool_geometry(ctx, x, k)
    nd, r = len(k), x.type.ndim
    if not x.dtype.is_floating_point:
        raise OnnxImportError(ctx.where("MaxPool indices need a floating-point input"))
    y = P.pad(x, pads=((0, 0), (0, 0)) + tuple((a, b + e) for a, b, e in zip(lo, hi, extra)),
              value=float("-inf"))
    coords: dict = {}   # spatial axis -> int64 input coordinate of the running argmax
    for i in reversed(range(nd)):
        axis, o = 2 + i, outs[i]
        acc, acc_coords = None, None
        for j in range(k[i]):
            starts = tuple(j * dil[i] if a == axis else 0 for a in range(r))
            stops = tuple(j * dil[i] + (o - 1) * strides[i] + 1 if a == axis else n for a, n in enumerate(y.shape))
            steps = tuple(strides[i] if a == axis else 1 for a in range(r))
            part = P.slice_(y, starts=starts, stops=stops, steps=steps)
            pc = {a: P.slice_(c, starts=starts, stops=stops, steps=steps) for a, c in coords.items()}
            here = (np.arange(o) * strides[i] + j * dil[i] - lo[i]).astype(np.int64)
            pc[i] = _bcast_to(P.constant(value=here.reshape([o if a == axis else 1 for a in range(r)])),
                              tuple(part.shape))
            if acc is None:
                acc, acc_coords = part, pc
                continue
            better = P.gt(part, acc)
            acc = P.where(better, part, acc)
            acc_coords = {a: P.where(better, pc[a], acc_coords[a]) for a in pc}
        y, coords = acc, acc_coords
    n, c = x.shape[0], x.shape[1]
    spatial = list(x.shape[2:])
    order = list(range(nd)) if not storage_order else list(reversed(range(nd)))
    flat = None
    for a in order:   # spatial offset, then the batch and channel blocks in front
        flat = coords[a] if flat is None else P.add(P.mul(flat, _full(spatial[a], T.int64, tuple(y.shape))),
                                                      coords[a])
    nc = np.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * nd)) * int(np.prod(spatial))
    flat = P.add(flat, _bcast_to(P.constant(value=nc), tuple(y.shape)))
    return [y, flat]



def _pool_geometry(ctx, x: Value, k: tuple):
    """Strides, dilations, (lo, hi) pads, output sizes and ceil-mode extension per spatial axis (ONNX rules)."""
    nd = len(k)
    spatial = tuple(x.shape[2:])
    if any(not isinstance(d, int) for d in spatial):
        raise OnnxImportError(ctx.where("pooling over symbolic spatial sizes is not supported"))
    strides = [int(s) for s in (ctx.attr("strides") or [1] * nd)]
    dil = [int(d) for d in (ctx.attr("dilations") or [1] * nd)]
    pads = [int(p) for p in (ctx.attr("pads") or [0] * (2 * nd))]
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    ceil = bool(int(ctx.attr("ceil_mode", 0)))
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise OnnxImportError(ctx.where(f"attributes do not match a {nd}-D kernel"))
    lo, hi = pads[:nd], pads[nd:]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for i, (n, kk, s, d) in enumerate(zip(spatial, k, strides, dil)):
            total = max((-(-n // s) - 1) * s + (kk - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            lo[i], hi[i] = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        lo, hi = [0] * nd, [0] * nd
    outs, extra = [], []
    for n, kk, s, d, a, b in zip(spatial, k, strides, dil, lo, hi):
        span = n + a + b - d * (kk - 1) - 1
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= n + a:
            o -= 1  # the last window would start in the right padding
        if o < 1:
            raise OnnxImportError(ctx.where(f"kernel {list(k)} does not fit spatial size {list(spatial)}"))
        outs.append(o)
        extra.append(max(0, (o - 1) * s + d * (kk - 1) + 1 - (n + a + b)))
    return strides, dil, lo, hi, outs, extra


def _window_reduce(y: Value, axis: int, k: int, s: int, d: int, o: int, combine) -> Value:
    r = y.type.ndim
    acc = None
    for j in range(k):  # one strided slice per kernel tap
        starts = tuple(j * d if a == axis else 0 for a in range(r))
        stops = tuple(j * d + (o - 1) * s + 1 if a == axis else n for a, n in enumerate(y.shape))
        steps = tuple(s if a == axis else 1 for a in range(r))
        part = P.slice_(y, starts=starts, stops=stops, steps=steps)
        acc = part if acc is None else combine(acc, part)
    return acc


def pool_nd(ctx, x: Value, kind: str, k: tuple, *, count_include_pad: bool = False, p: float = 2.0) -> Value:
    """Max / average / Lp pooling of any rank, any pads and dilations: pad, then per axis combine the
    kernel's strided slices (pooling over a box is separable)."""
    strides, dil, lo, hi, outs, extra = _pool_geometry(ctx, x, k)
    nd = len(k)
    pads = ((0, 0), (0, 0)) + tuple((a, b + e) for a, b, e in zip(lo, hi, extra))
    if kind == "max":
        if x.dtype.is_floating_point:
            fill = float("-inf")
        else:
            fill = bool(False) if x.dtype is T.bool_ else int(np.iinfo(x.dtype.np).min)
        y, combine = P.pad(x, pads=pads, value=fill), P.maximum
    else:
        base = P.pow_(P.abs_(x), _c(x, p)) if kind == "lp" else x
        y, combine = P.pad(base, pads=pads, value=0.0), P.add
    for i in range(nd):
        y = _window_reduce(y, 2 + i, k[i], strides[i], dil[i], outs[i], combine)
    if kind == "lp":
        return P.pow_(y, _c(y, 1.0 / p))
    if kind == "avg":
        # the divisor per output position: how many taps hit the input (or the explicit pads)
        div = np.ones((), dtype=np.float64)
        for i in range(nd):
            n = x.shape[2 + i]
            valid = np.concatenate([np.full(lo[i], float(count_include_pad)), np.ones(n),
                                    np.full(hi[i], float(count_include_pad)), np.zeros(extra[i])])
            cnt = np.array([valid[o * strides[i]: o * strides[i] + dil[i] * (k[i] - 1) + 1: dil[i]].sum()
                            for o in range(outs[i])])
            div = np.multiply.outer(div, cnt)
        div = div.reshape((1, 1) + tuple(outs)).astype(x.dtype.np)
        y = P.div(y, _bcast_to(P.constant(value=div), y.shape))
    return y


def _register_general_pools():
    from .import_ops import _one_d_as_2d
    from .importer import CONVERTERS

    def with_fallback(primary, kind):
        def conv(ctx, node):
            x = ctx.value(node.input[0])
            if kind == "max" and len(node.output) > 1 and node.output[1]:
                k = tuple(int(v) for v in ctx.attr("kernel_shape"))
                return max_pool_with_indices(ctx, x, k, int(ctx.attr("storage_order", 0)))
            if x.type.ndim in (3, 4):
                try:
                    return primary(ctx, node)
                except OnnxImportError:
                    pass  # large pads, dilated average: the general path below
            k = tuple(int(v) for v in ctx.attr("kernel_shape"))
            if len(k) != x.type.ndim - 2:
                raise OnnxImportError(ctx.where(f"kernel_shape {list(k)} does not match input rank {x.type.ndim}"))
            return [pool_nd(ctx, x, kind, k, count_include_pad=bool(int(ctx.attr("count_include_pad", 0))),
                            p=float(ctx.attr("p", 2)))]
        return conv
    converter("MaxPool")(with_fallback(CONVERTERS["MaxPool"], "max"))
    converter("AveragePool")(with_fallback(CONVERTERS["AveragePool"], "avg"))
    converter("LpPool")(with_fallback(_one_d_as_2d(_lp_pool2d), "lp"))


_register_general_pools()


# ------------------------------------------------------------------ bit shifts
@converter("BitShift")
def _bitshift(ctx, node):
    from .import_ops import _same_dtype
    a, b = _ins(ctx)
    _same_dtype(ctx, a, b)
    a, b = bcast(ctx, a, b)
    direction = ctx.attr("direction")
    if direction not in ("LEFT", "RIGHT") or a.dtype.is_floating_point or a.dtype is T.bool_:
        raise OnnxImportError(ctx.where(f"direction {direction!r} on {a.dtype.name} is not supported"))
    info = np.iinfo(a.dtype.np)
    width, signed = info.bits, info.min < 0
    # 2**s for each valid shift, in a's dtype; 2**(width-1) wraps to the minimum for signed types, which
    # still gives the wrapped left shift (a * 2**(width-1) mod 2**width)
    table = np.array([1 << s for s in range(width)], dtype=object)
    table = np.array([int(v) - (1 << width) if signed and v > info.max else int(v) for v in table],
                     dtype=a.dtype.np)
    out = P.logical_or(P.lt(b, _c(b, 0)), P.ge(b, _c(b, width)))
    s = P.cast(P.minimum(P.maximum(b, _c(b, 0)), _c(b, width - 1)), dtype=T.int64)
    factor = P.take(P.constant(value=table), s, dim=0)
    neg = P.lt(a, _c(a, 0)) if signed else None
    if direction == "LEFT":
        y = P.where(out, _c(a, 0), P.mul(a, factor))
    else:
        y = P.floor_divide(a, factor)   # arithmetic shift: floor division by 2**s
        sign_fill = P.where(neg, _c(a, -1), _c(a, 0)) if signed else _c(a, 0)
        if signed:  # a shift by width-1 (the wrapped factor) or more leaves only the sign
            out = P.logical_or(out, P.eq(b, _c(b, width - 1)))
        y = P.where(out, sign_fill, y)
    return [y]


# ------------------------------------------------------------------ bitwise logic (no bitwise primitive)
@converter("BitwiseNot")
def _bitwise_not(ctx, node):
    (a,) = _ins(ctx)
    if a.dtype.is_floating_point or a.dtype is T.bool_:
        raise OnnxImportError(ctx.where(f"BitwiseNot of {a.dtype.name} is not supported"))
    info = np.iinfo(a.dtype.np)
    # two's complement: ~a = -a - 1 (signed), max - a (unsigned)
    return [P.sub(P.neg(a), _c(a, 1)) if info.min < 0 else P.sub(_c(a, int(info.max)), a)]


def _bitwise(op_type):
    def conv(ctx, node):
        from .import_ops import _same_dtype
        a, b = _ins(ctx)
        _same_dtype(ctx, a, b)
        a, b = bcast(ctx, a, b)
        if a.dtype.is_floating_point or a.dtype is T.bool_:
            raise OnnxImportError(ctx.where(f"{op_type} of {a.dtype.name} is not supported"))
        info = np.iinfo(a.dtype.np)
        width, signed = info.bits, info.min < 0
        # bit by bit: floor division is an arithmetic shift, so bit k of a is (a // 2**k) mod 2 even for
        # negative a; the top bit's weight wraps to the type's minimum for signed types
        acc = None
        for k in range(width):
            div = _c(a, int(info.min) if signed and k == width - 1 else 1 << k)   # the bit's weight
            if k == width - 1 and signed:
                ba, bb = P.lt(a, _c(a, 0)), P.lt(b, _c(b, 0))                  # the sign bit
            else:
                two = _c(a, 2)
                ba = P.eq(P.remainder(P.floor_divide(a, _c(a, 1 << k)), two), _c(a, 1))
                bb = P.eq(P.remainder(P.floor_divide(b, _c(b, 1 << k)), two), _c(b, 1))
            bit = {"BitwiseAnd": P.logical_and, "BitwiseOr": P.logical_or, "BitwiseXor": P.logical_xor}[op_type](ba, bb)
            term = P.where(bit, div, _c(a, 0))
            acc = term if acc is None else P.add(acc, term)
        return [acc]
    return conv


for _op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    converter(_op)(_bitwise(_op))


# ------------------------------------------------------------------ 3-D transposed convolution
def _conv_transpose3d(ctx, node):
    """conv_transpose over (H, W) per depth tap, each placed at its output depths with index_add."""
    xs = _ins(ctx)
    x, w = xs[0], xs[1]
    n, c, d, h, wd = x.shape
    cw, og, kd, kh, kw = w.shape
    if any(not isinstance(v, int) for v in (n, c, d, h, wd)):
        raise OnnxImportError(ctx.where("3-D ConvTranspose needs static shapes"))
    group = int(ctx.attr("group", 1))
    s = [int(v) for v in (ctx.attr("strides") or [1, 1, 1])]
    dil = [int(v) for v in (ctx.attr("dilations") or [1, 1, 1])]
    opad = [int(v) for v in (ctx.attr("output_padding") or [0, 0, 0])]
    pads = [int(v) for v in (ctx.attr("pads") or [0] * 6)]
    if ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or ctx.attr("output_shape") is not None:
        raise OnnxImportError(ctx.where("3-D ConvTranspose with auto_pad SAME or output_shape is not supported"))
    if ctx.attr("auto_pad", "NOTSET") == "VALID":
        pads = [0] * 6
    full_d = (d - 1) * s[0] + (kd - 1) * dil[0] + 1 + opad[0]
    planes = P.reshape(P.permute(x, dims=(0, 2, 1, 3, 4)), shape=(n * d, c, h, wd))
    acc = None
    for t in range(kd):
        wt = P.reshape(P.slice_(w, starts=(0, 0, t, 0, 0), stops=(cw, og, t + 1, kh, kw), steps=(1,) * 5),
                       shape=(cw, og, kh, kw))
        y = P.nn.conv_transpose2d(planes, wt, stride=(s[1], s[2]), padding=((pads[1], pads[4]), (pads[2], pads[5])),
                                  output_padding=(opad[1], opad[2]), dilation=(dil[1], dil[2]), groups=group)
        o, ho, wo = y.shape[1], y.shape[2], y.shape[3]
        y = P.reshape(y, shape=(n, d, o, ho, wo))
        if acc is None:
            acc = P.full(shape=(n, full_d, o, ho, wo), value=0, dtype=x.dtype)
        pos = (np.arange(d) * s[0] + t * dil[0]).astype(np.int64)
        acc = P.index_add(acc, P.constant(value=pos), y, dim=1)
    out_d = full_d - pads[0] - pads[3]
    acc = P.slice_(acc, starts=(0, pads[0], 0, 0, 0), stops=(n, pads[0] + out_d) + tuple(acc.shape[2:]),
                   steps=(1,) * 5)
    y = P.permute(acc, dims=(0, 2, 1, 3, 4))
    if len(xs) > 2:
        y = P.add(y, _bcast_to(P.reshape(xs[2], shape=(1, xs[2].shape[0], 1, 1, 1)), tuple(y.shape)))
    return [y]


def _register_conv_transpose3d():
    from .importer import CONVERTERS
    two_d = CONVERTERS["ConvTranspose"]

    def conv(ctx, node):
        if ctx.value(node.input[0]).type.ndim == 5:
            return _conv_transpose3d(ctx, node)
        return two_d(ctx, node)
    converter("ConvTranspose")(conv)


_register_conv_transpose3d()
