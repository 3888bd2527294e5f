"""DCE, CSE, constant folding, algebraic simplification, fusion, partition: values unchanged, nodes gone."""

import numpy as np
import pytest

import ember
from ember.ir import ops as P
from ember.ir.graph import Graph, GraphBuilder
from ember.ir.types import TensorType, float32, float64
from ember.passes import autodiff, cse, dce, fold, fuse, partition, simplify, unfuse
from ember.passes.simplify import lossless

from ._graphs import build, run

rng = np.random.default_rng(1)


def _r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def ops_of(g):
    return [n.op for n in g.nodes]


def test_dce_removes_dead_nodes_but_keeps_random_draws():
    x = _r(3, 4)

    def f(a):
        P.exp(a)  # dead
        P.uniform(shape=(2,), low=0.0, high=1.0, dtype=float32)  # dead, but advances the generator
        return P.neg(a)
    g = dce(build(f, [x]))
    assert ops_of(g) == ["uniform", "neg"]
    np.testing.assert_array_equal(run(g, [x])[0], -x)


def test_cse_merges_identical_nodes_not_random_ones():
    x = _r(3, 4)

    def f(a):
        u1 = P.uniform(shape=(3, 4), low=0.0, high=1.0, dtype=float32)
        u2 = P.uniform(shape=(3, 4), low=0.0, high=1.0, dtype=float32)
        e1, e2 = P.exp(a), P.exp(a)
        return P.add(P.add(e1, e2), P.sub(u1, u2))
    g = dce(cse(build(f, [x])))
    assert ops_of(g).count("exp") == 1 and ops_of(g).count("uniform") == 2
    ember.manual_seed(3)
    out = run(g, [x])[0]
    ember.manual_seed(3)
    ref = run(build(f, [x]), [x])[0]
    np.testing.assert_array_equal(out, ref)


def test_fold_evaluates_constant_subgraphs():
    x = _r(4)

    def f(a):
        two = P.full(shape=(4,), value=2.0, dtype=float32)
        three = P.add(two, P.full(shape=(4,), value=1.0, dtype=float32))   # -> full 3
        c = P.constant(value=np.arange(4, dtype=np.float32))
        k = P.mul(c, three)                                                   # -> constant [0,3,6,9]
        return P.add(P.mul(a, three), k)
    g = dce(fold(build(f, [x])))
    assert ops_of(g).count("add") == 1 and "constant" in ops_of(g)
    fills = [n for n in g.nodes if n.op == "full"]
    assert fills and fills[0].attrs["value"] == 3.0
    np.testing.assert_allclose(run(g, [x])[0], x * 3 + np.arange(4) * 3, rtol=1e-6)


def test_simplify_identities():
    x = _r(2, 3)

    def f(a):
        t = P.permute(P.permute(a, dims=(1, 0)), dims=(1, 0))           # identity
        r = P.reshape(P.reshape(t, shape=(3, 2)), shape=(6,))            # one reshape
        c = P.cast(P.cast(r, dtype=float64), dtype=float32)              # lossless round trip: gone
        one = P.broadcast_to(P.full(shape=(), value=1.0, dtype=float32), shape=(6,))
        zero = P.full(shape=(6,), value=0.0, dtype=float32)
        y = P.add(P.mul(c, one), zero)                                   # x*1 + 0
        return P.neg(P.neg(y))
    g0 = build(f, [x])
    g = dce(simplify(g0))
    assert ops_of(g) == ["reshape"]
    np.testing.assert_array_equal(run(g, [x])[0], run(g0, [x])[0])


def test_simplify_keeps_lossy_cast_chains():
    x = np.array([1.2345678, 2.5], dtype=np.float32)
    g = dce(simplify(build(lambda a: P.cast(P.cast(a, dtype=ember.float16), dtype=float32), [x])))
    assert ops_of(g) == ["cast", "cast"]
    assert lossless(ember.float16, float32) and not lossless(float32, ember.bfloat16)
    assert lossless(ember.int32, float64) and not lossless(ember.int64, float64)


def test_simplify_fills_become_broadcast_scalars():
    x = _r(3, 4)
    g = dce(simplify(build(lambda a: P.mul(P.mul(a, P.broadcast_to(P.full(shape=(1,), value=2.0, dtype=float32),
                                                                    shape=(3, 4))),
                                           P.full(shape=(3, 4), value=3.0, dtype=float32)), [x]), fill_views=True))
    assert ops_of(g) == ["full", "broadcast_to", "mul", "full", "broadcast_to", "mul"]
    assert all(n.attrs["shape"] == () for n in g.nodes if n.op == "full")
    np.testing.assert_array_equal(run(g, [x])[0], x * 2 * 3)


def _mlp_loss(x, w1, b1, w2, b2):
    h = P.relu(P.add(P.matmul(x, w1), P.broadcast_to(b1, shape=(8, 16))))
    z = P.add(P.matmul(h, w2), P.broadcast_to(b2, shape=(8, 4)))
    m = P.amax(z, dims=(1,), keepdim=True)
    e = P.exp(P.sub(z, P.broadcast_to(m, shape=(8, 4))))
    s = P.sum_(e, dims=(1,), keepdim=True)
    sm = P.div(e, P.broadcast_to(s, shape=(8, 4)))
    return P.sum_(P.mul(sm, sm), dims=(0, 1), keepdim=False)


def _mlp_arrays():
    return [_r(8, 5), _r(5, 16), _r(16), _r(16, 4), _r(4)]


def test_fuse_forms_linear_relu_and_softmax_groups():
    arrays = _mlp_arrays()
    g = build(_mlp_loss, arrays)
    f = fuse(g)
    patterns = [n.attrs["pattern"] for n in f.nodes if n.op == "fused"]
    assert patterns == ["linear_relu", "softmax"]
    assert len(f.nodes) < len(g.nodes)
    np.testing.assert_array_equal(run(f, arrays)[0], run(g, arrays)[0])
    np.testing.assert_array_equal(run(unfuse(f), arrays)[0], run(g, arrays)[0])
    assert ops_of(unfuse(f)) == ops_of(g)


def test_fuse_softmax_alone():
    x = _r(4, 6)

    def f(z):
        m = P.amax(z, dims=(1,), keepdim=True)
        e = P.exp(P.sub(z, P.broadcast_to(m, shape=(4, 6))))
        return P.div(e, P.broadcast_to(P.sum_(e, dims=(1,), keepdim=True), shape=(4, 6)))
    fz = fuse(build(f, [x]))
    assert ops_of(fz) == ["fused"] and fz.nodes[0].attrs["pattern"] == "softmax"
    ref = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(run(fz, [x])[0], ref / ref.sum(1, keepdims=True), rtol=1e-6)


def test_fused_joint_graph_matches_unfused_bitwise():
    arrays = _mlp_arrays()
    joint = autodiff(build(_mlp_loss, arrays), wrt=["x1", "x2", "x3", "x4"])
    opt = fuse(dce(cse(fold(simplify(joint)))))
    assert len(opt.nodes) < len(joint.nodes) / 2
    for a, b in zip(run(opt, arrays), run(joint, arrays, inplace=False)):
        np.testing.assert_array_equal(a, b)


def test_inplace_execution_never_clobbers_inputs():
    x = _r(3, 4)
    g = fuse(build(lambda a: P.exp(P.neg(P.add(a, a))), [x]))
    before = x.copy()
    out = run(g, [x])[0]
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(out, np.exp(-(2 * before)), rtol=1e-6)


def test_inplace_respects_live_views():
    x = _r(3, 4)

    def f(a):
        e = P.exp(a)
        v = P.reshape(e, shape=(12,))      # a view of e's buffer
        n = P.neg(e)                         # last use of e: must not overwrite it (v still live)
        return P.add(P.reshape(n, shape=(12,)), v)
    np.testing.assert_allclose(run(build(f, [x]), [x])[0], np.zeros(12), atol=1e-6)


def test_partition_splits_joint_graph():
    arrays = _mlp_arrays()
    g = build(_mlp_loss, arrays, roles={1: "param", 2: "param", 3: "param", 4: "param"})
    joint = autodiff(g)
    part = partition(joint)
    fwd_out = run(part.forward, arrays)
    n = part.forward.meta["forward_outputs"]
    saved = fwd_out[n:]
    grads = run(part.backward, saved)
    ref = run(joint, arrays)
    np.testing.assert_array_equal(fwd_out[0], ref[0])
    for a, b in zip(grads, ref[1:]):
        np.testing.assert_array_equal(a, b)
    assert not any(n.op == "matmul" and n.output.name in part.saved for n in part.backward.nodes)
    assert set(part.saved) <= {v.name for v in joint.inputs} | {n.output.name for n in joint.nodes}


def test_partition_with_cotangent_input():
    x = _r(3, 4)
    joint = autodiff(build(lambda a: P.tanh(a), [x]), wrt="x0")
    part = partition(joint)
    assert [v.name for v in part.backward.inputs][-1].startswith("grad_")
    y, *saved = run(part.forward, [x])
    ct = _r(3, 4)
    (gx,) = run(part.backward, saved + [ct])
    np.testing.assert_allclose(gx, ct * (1 - np.tanh(x) ** 2), rtol=1e-5, atol=1e-6)


def test_symbolic_batch_graph_runs_for_several_sizes():
    g = Graph("sym")
    x = g.add_input(TensorType(float32, ("B", 3)), "x")
    with GraphBuilder(g):
        y = P.mul(x, P.full(shape=("B", 3), value=1.0, dtype=float32))
        z = P.add(P.exp(y), P.full(shape=("B", 3), value=0.0, dtype=float32))
        g.outputs = [P.sum_(z, dims=(0, 1), keepdim=False)]
    opt = fuse(dce(simplify(g)))
    for b in (2, 5):
        a = _r(b, 3)
        np.testing.assert_allclose(run(opt, [a])[0], np.exp(a).sum(), rtol=1e-5)


@pytest.mark.parametrize("passes", ["simplify,dce", "fold,cse,dce", "fuse", "simplify,fold,cse,dce,fuse"])
def test_pipelines_preserve_gradients(passes):
    from ember.passes import run_pipeline
    arrays = _mlp_arrays()
    joint = autodiff(build(_mlp_loss, arrays), wrt=["x1", "x3"])
    opt = run_pipeline(joint, passes).graph
    for a, b in zip(run(opt, arrays), run(joint, arrays)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_remat_recomputes_cheap_values_and_lowers_peak_memory():
    from ember.passes import peak_bytes, remat
    x, y = _r(256, 256), _r(256, 256)

    def f(a, b):
        t = P.tanh(a)                       # read by the backward: saved across the whole forward
        u = P.exp(P.mul(t, b))
        v = P.sin(P.mul(u, u))
        return P.sum_(P.mul(v, b), dims=(0, 1), keepdim=False)
    joint = autodiff(build(f, [x, y]), wrt=["x0"])
    r = remat(joint)
    assert any(n.output.name.endswith("_remat") for n in r.nodes)
    assert peak_bytes(r) < peak_bytes(joint)
    for a, b in zip(run(r, [x, y]), run(joint, [x, y])):
        np.testing.assert_array_equal(a, b)


def test_interpreter_inplace_option_reuses_dead_buffers():
    import tracemalloc

    from ember.runtime.interpreter import Interpreter
    x = np.ones(1 << 20, np.float32)

    def f(a):
        v = a
        for _ in range(4):
            v = P.exp(P.neg(v))
        return v
    g = build(f, [x])

    def peak(interp):
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        out = interp([x])[0]
        p = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return p, out
    p_plain, ref = peak(Interpreter(g))
    p_inplace, out = peak(Interpreter(g, {"inplace": True}))
    np.testing.assert_array_equal(out, ref)
    assert p_inplace < 0.75 * p_plain  # one buffer for the whole chain instead of two alive at a time
