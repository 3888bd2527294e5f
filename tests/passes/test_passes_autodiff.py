"""The autodiff pass: graph gradients equal eager autograd's (same VJP rules), and finite differences."""

import numpy as np
import pytest

import ember
from ember.ir import ops as P
from ember.ir.types import float64, int64
from ember.passes import AutodiffError, autodiff, fuse

from ._graphs import build, run

rng = np.random.default_rng(0)


def _r(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float64)


def _pos(*shape):
    return _r(*shape, lo=0.5, hi=2.0)


def _idx(n, *shape):
    return rng.integers(0, n, size=shape).astype(np.int64)


def _ty(shape):
    return tuple(shape)


# name -> (fn over primitives, inputs, which inputs are differentiable)
UNARY = ["neg", "abs_", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
         "relu", "erf", "sign", "floor", "ceil", "round_"]
POSITIVE = {"log", "log1p", "sqrt", "rsqrt"}
CASES = {}
for _name in UNARY:
    CASES[_name] = (lambda x, _f=getattr(P, _name): _f(x), [_pos(3, 4) if _name in POSITIVE else _r(3, 4)], [1])
for _name in ["add", "sub", "mul", "div", "maximum", "minimum", "remainder"]:
    CASES[_name] = (lambda a, b, _f=getattr(P, _name): _f(a, b), [_r(3, 4), _pos(3, 4)], [1, 1])
CASES.update({
    "pow": (lambda a, b: P.pow_(a, b), [_pos(3, 4), _r(3, 4)], [1, 1]),
    "where": (lambda a, b: P.where(P.gt(a, b), a, b), [_r(3, 4), _r(3, 4)], [1, 1]),
    "cast": (lambda a: P.cast(P.cast(a, dtype=ember.float32), dtype=float64), [_r(3, 4)], [1]),
    "sum": (lambda a: P.sum_(a, dims=(1,), keepdim=False), [_r(3, 4)], [1]),
    "sum_keepdim": (lambda a: P.sum_(a, dims=(0, 2), keepdim=True), [_r(2, 3, 4)], [1]),
    "prod": (lambda a: P.prod(a, dims=(1,), keepdim=False), [_pos(3, 4)], [1]),
    "amax": (lambda a: P.amax(a, dims=(1,), keepdim=False), [_r(3, 4)], [1]),
    "amin": (lambda a: P.amin(a, dims=(0,), keepdim=True), [_r(3, 4)], [1]),
    "reshape": (lambda a: P.reshape(a, shape=(4, 3)), [_r(3, 4)], [1]),
    "permute": (lambda a: P.permute(a, dims=(2, 0, 1)), [_r(2, 3, 4)], [1]),
    "broadcast_to": (lambda a: P.broadcast_to(a, shape=(2, 3, 4)), [_r(3, 1)], [1]),
    "slice": (lambda a: P.slice_(a, starts=(1, 0), stops=(3, 4), steps=(1, 2)), [_r(3, 4)], [1]),
    "flip": (lambda a: P.flip(a, dims=(0,)), [_r(3, 4)], [1]),
    "concat": (lambda a, b: P.concat(a, b, dim=1), [_r(3, 4), _r(3, 2)], [1, 1]),
    "pad": (lambda a: P.pad(a, pads=((1, 0), (2, 1)), value=0.0), [_r(3, 4)], [1]),
    "take": (lambda a, i: P.take(a, i, dim=0), [_r(5, 3), _idx(5, 7)], [1, 0]),
    "index_add": (lambda a, i, s: P.index_add(a, i, s, dim=0), [_r(5, 3), _idx(5, 4), _r(4, 3)], [1, 0, 1]),
    "gather": (lambda a, i: P.gather(a, i, dim=1), [_r(3, 5), _idx(5, 3, 4)], [1, 0]),
    "scatter_add": (lambda a, i, s: P.scatter_add(a, i, s, dim=1), [_r(3, 5), _idx(5, 3, 4), _r(3, 4)], [1, 0, 1]),
    "matmul": (lambda a, b: P.matmul(a, b), [_r(3, 4), _r(4, 2)], [1, 1]),
    "batched_matmul": (lambda a, b: P.matmul(a, b), [_r(2, 3, 4), _r(2, 4, 5)], [1, 1]),
})


def _weighted_loss(fn):
    def loss(*args):
        *xs, w = args
        out = fn(*xs)
        return P.sum_(P.mul(out, w), dims=tuple(range(len(out.shape))), keepdim=False)
    return loss


def _out_shape(fn, arrays):
    g = build(fn, arrays)
    return g.outputs[0].type.shape


def _graph_and_eager(fn, arrays, diff):
    w = _r(*_out_shape(fn, arrays))
    loss = _weighted_loss(fn)
    g = build(loss, arrays + [w])
    wrt = [f"x{i}" for i, d in enumerate(diff) if d]
    joint = autodiff(g, wrt=wrt)
    outs = run(joint, arrays + [w])
    graph_grads = [outs[joint.meta["grads"][n]] for n in wrt]
    ts = [ember.tensor(a, requires_grad=bool(d)) for a, d in zip(arrays, diff)]
    eager_loss = loss(*ts, ember.tensor(w))
    eager_loss.backward()
    eager = [t.grad.numpy() for t, d in zip(ts, diff) if d]
    np.testing.assert_allclose(outs[0], eager_loss.detach().numpy(), rtol=1e-12)
    return graph_grads, eager


@pytest.mark.parametrize("name", sorted(CASES))
def test_graph_gradient_equals_eager(name):
    fn, arrays, diff = CASES[name]
    graph_grads, eager = _graph_and_eager(fn, arrays, diff)
    for gg, eg in zip(graph_grads, eager):
        assert gg.shape == eg.shape
        np.testing.assert_allclose(gg, eg, rtol=1e-12, atol=1e-12)


def _finite_diff(f, arrays, i, eps=1e-6):
    x = arrays[i]
    grad = np.zeros_like(x)
    for k in range(x.size):
        up = [a.copy() for a in arrays]
        dn = [a.copy() for a in arrays]
        up[i].flat[k] += eps
        dn[i].flat[k] -= eps
        grad.flat[k] = (f(up) - f(dn)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", ["exp", "div", "pow", "prod", "matmul", "slice", "scatter_add", "tanh"])
def test_graph_gradient_matches_finite_differences(name):
    fn, arrays, diff = CASES[name]
    w = _r(*_out_shape(fn, arrays))
    g = build(_weighted_loss(fn), arrays + [w])
    joint = autodiff(g, wrt=[f"x{i}" for i, d in enumerate(diff) if d])
    outs = run(joint, arrays + [w])

    def f(xs):
        return float(run(g, xs + [w])[0])
    for i, d in enumerate(diff):
        if d:
            np.testing.assert_allclose(outs[joint.meta["grads"][f"x{i}"]], _finite_diff(f, arrays, i),
                                       rtol=1e-5, atol=1e-7)


def test_fan_out_sums_cotangents():
    x = _r(5)
    g = build(lambda a: P.sum_(P.add(P.mul(a, a), P.exp(a)), dims=(0,), keepdim=False), [x])
    joint = autodiff(g, wrt="x0")
    (loss, gx) = run(joint, [x])
    np.testing.assert_allclose(gx, 2 * x + np.exp(x), rtol=1e-12)


def test_broadcast_gradient_reduces_to_input_shape():
    x, b = _r(4, 3), _r(3)
    g = build(lambda a, c: P.sum_(P.mul(P.add(a, P.broadcast_to(c, shape=(4, 3))), a), dims=(0, 1),
                                  keepdim=False), [x, b])
    joint = autodiff(g, wrt=["x0", "x1"])
    _, gx, gb = run(joint, [x, b])
    np.testing.assert_allclose(gb, x.sum(0), rtol=1e-12)
    np.testing.assert_allclose(gx, 2 * x + b, rtol=1e-12)


def test_nondifferentiable_paths_are_pruned_and_integer_outputs_allowed():
    x = _r(4, 6)

    def f(a):
        idx = P.argmax(a, dim=1, keepdim=False)  # integer path: no gradient flows through it
        picked = P.take(P.reshape(a, shape=(24,)), idx, dim=0)
        return P.sum_(picked, dims=(0,), keepdim=False), idx
    g = build(f, [x])
    joint = autodiff(g, wrt="x0", of=0)
    loss, idx, gx = run(joint, [x])
    assert idx.dtype == np.int64 and joint.outputs[1].type.dtype is int64
    expect = np.zeros(24)
    np.add.at(expect, np.argmax(x, 1), 1.0)
    np.testing.assert_allclose(gx, expect.reshape(4, 6))
    # no node of the backward touches argmax
    assert sum(n.op == "argmax" for n in joint.nodes) == 1


def test_unused_wrt_gets_zero_gradient():
    x, y = _r(3), _r(3)
    g = build(lambda a, b: P.sum_(a, dims=(0,), keepdim=False), [x, y])
    joint = autodiff(g, wrt=["x0", "x1"])
    out = run(joint, [x, y])
    np.testing.assert_array_equal(out[2], np.zeros(3))
    assert joint.meta["grads_unused"] == ["x1"]


def test_error_lists_every_op_without_a_rule():
    x, y = _pos(3, 4), _pos(3, 4)

    def f(a, b):
        q = P.floor_divide(a, b)
        e = P.tanh(P.exp(P.add(q, a)))  # fuse turns this chain into a fused group (no rule)
        s = P.sum_(P.mul(e, a), dims=(0, 1), keepdim=False)
        return P.add(s, P.sum_(q, dims=(0, 1), keepdim=False)), q  # q is an output: not fused
    fused = fuse(build(f, [x, y]))
    assert any(n.op == "fused" for n in fused.nodes)
    with pytest.raises(AutodiffError) as info:
        autodiff(fused, wrt=["x0", "x1"], of=0)
    msg = str(info.value)
    assert "floor_divide" in msg and "fused" in msg


def test_wrt_must_be_float_input():
    g = build(lambda a, i: P.take(a, i, dim=0), [_r(3), _idx(3, 2)])
    with pytest.raises(AutodiffError, match="not floating point"):
        autodiff(g, wrt="x1", seed="input")


def test_non_scalar_output_gets_cotangent_input():
    x = _r(3, 4)
    g = build(lambda a: P.tanh(a), [x])
    joint = autodiff(g, wrt="x0")
    assert joint.inputs[-1].name == "grad_" + g.outputs[0].name
    ct = _r(3, 4)
    _, gx = run(joint, [x, ct])
    np.testing.assert_allclose(gx, ct * (1 - np.tanh(x) ** 2), rtol=1e-12)


def test_second_order_matches_eager_double_backward():
    x = _r(5)

    def f(a):
        return P.sum_(P.mul(P.sin(a), P.exp(a)), dims=(0,), keepdim=False)
    g = build(f, [x])
    first = autodiff(g, wrt="x0", keep_outputs=False)   # outputs: [df/dx]
    # d/dx sum(df/dx)
    second = autodiff(first, wrt="x0", of=0, seed="ones") if first.outputs[0].type.shape == () else None
    ct_graph = autodiff(first, wrt="x0", of=0, seed="input")
    hv = run(ct_graph, [x, np.ones(5)])[-1]
    t = ember.tensor(x, requires_grad=True)
    (gx,) = ember.autograd.grad(f(t), t, create_graph=True)
    (hx,) = ember.autograd.grad(gx.sum(), t)
    np.testing.assert_allclose(hv, hx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(hv, 2 * np.cos(x) * np.exp(x), rtol=1e-12)
    assert second is None


def test_backward_nodes_carry_provenance():
    from ember.ir.graph import Provenance
    x = _r(3)
    g = build(lambda a: P.sum_(P.exp(a), dims=(0,), keepdim=False), [x])
    g.nodes[0].provenance = Provenance("model.act", "train.py", 12)
    joint = autodiff(g, wrt="x0")
    back = [n for n in joint.nodes[len(g.nodes):] if n.op == "mul"]
    assert back and str(back[0].provenance) == "model.act (backward) @ train.py:12"
