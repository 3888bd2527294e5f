"""In-place updates inside traced code are functionalized and written back after each call."""

import copy

import numpy as np

import ember
import ember.nn as nn
from ember.ir.testing import assert_roundtrip


def _np(t):
    return t.detach().numpy()


def test_input_add_inplace_is_written_back():
    def f(x):
        x.add_(1)
        return x * 2

    a = ember.randn(3, 2)
    traced = ember.jit.trace(f, a.clone())
    g = traced.graph
    assert g.meta["writeback"] == [[1, "value", "x"]]
    assert_roundtrip(g)
    b = a.clone()
    out = traced(a)
    want = f(b)
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # the caller's tensor was updated


def test_trace_itself_leaves_the_example_untouched():
    a = ember.zeros(3)
    ember.jit.trace(lambda x: x.add_(5), a)
    assert (a.numpy() == 0).all()


def test_write_through_a_view_updates_base_and_other_views():
    def f(x):
        row = x[0]
        col = x[:, 1]
        row.mul_(10)  # writes x, hence col too
        return x.sum(), col * 1

    a = ember.randn(3, 2)
    traced = ember.jit.trace(f, a.clone())
    b = a.clone()
    got, want = traced(a), f(b)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_setitem_and_fill():
    def f(x):
        x[1] = 7.0
        x[:, 0].fill_(-1.0)
        return x

    a = ember.randn(3, 2)
    b = a.clone()
    traced = ember.jit.trace(f, a.clone())
    np.testing.assert_array_equal(traced(a).numpy(), f(b).numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_batchnorm_running_stats_are_buffers_written_back():
    bn = nn.BatchNorm1d(4)
    ref = copy.deepcopy(bn)
    x0 = ember.randn(8, 4)
    traced = ember.jit.trace(bn, x0)
    g = traced.graph
    roles = {v.name: g.input_roles[v.name] for v in g.inputs}
    assert roles["running_mean"] == "buffer" and roles["weight"] == "param"
    assert {e[2] for e in g.meta["writeback"]} == {"running_mean", "running_var", "num_batches_tracked"}
    assert_roundtrip(g)
    for _ in range(3):
        x = ember.randn(8, 4)
        np.testing.assert_array_equal(_np(traced(x)), _np(ref(x)))
    np.testing.assert_array_equal(bn.running_mean.numpy(), ref.running_mean.numpy())
    np.testing.assert_array_equal(bn.running_var.numpy(), ref.running_var.numpy())
    assert bn.num_batches_tracked.item() == ref.num_batches_tracked.item() == 3


def test_backward_and_sgd_step_inside_a_traced_function():
    w = ember.randn(3, 2, requires_grad=True)
    w_ref = w.detach().clone().requires_grad_()

    def step(x, weight):
        loss = (x @ weight).tanh().sum()
        loss.backward()
        with ember.no_grad():
            weight -= 0.1 * weight.grad
        return loss

    x = ember.randn(4, 3)
    traced = ember.jit.trace(step, (x, w))
    g = traced.graph
    kinds = {(e[1], e[2]) for e in g.meta["writeback"]}
    assert kinds == {("value", "weight"), ("grad", "weight")}
    assert_roundtrip(g)
    assert w.grad is None  # tracing changed nothing
    got = traced(x, w)
    want = step(x, w_ref)
    np.testing.assert_array_equal(got.numpy(), _np(want))
    np.testing.assert_array_equal(_np(w), _np(w_ref))
    np.testing.assert_array_equal(w.grad.numpy(), w_ref.grad.numpy())
    # now w.grad exists: the graph (which creates the gradient) would be wrong, so it refuses
    import pytest
    with pytest.raises(ember.jit.TraceError, match=r"\.grad set"):
        traced(x, w)
    # ember.compile re-traces instead, and accumulates into .grad exactly like eager
    compiled = ember.compile(step)
    for _ in range(3):
        x = ember.randn(4, 3)
        np.testing.assert_array_equal(compiled(x, w).numpy(), _np(step(x, w_ref)))
        np.testing.assert_array_equal(_np(w), _np(w_ref))
        np.testing.assert_array_equal(w.grad.numpy(), w_ref.grad.numpy())
    assert compiled.stats["compiles"] == 1 and compiled.stats["cache_hits"] == 2


def test_module_param_grads_are_functionalized_outputs():
    model = nn.Linear(3, 2)
    ref = copy.deepcopy(model)

    def loss_of(m, x):
        loss = m(x).pow(2).mean()
        loss.backward()
        return loss

    x = ember.randn(5, 3)
    traced = ember.jit.trace(model, x)  # forward only: no grads
    assert "writeback" not in traced.graph.meta
    traced_step = ember.jit.trace(lambda x: loss_of(model, x), x)
    grads = [e[2] for e in traced_step.graph.meta["writeback"] if e[1] == "grad"]
    assert sorted(grads) == ["captured0", "captured1"] or len(grads) == 2
    got = traced_step(x)
    want = loss_of(ref, x)
    np.testing.assert_array_equal(got.numpy(), _np(want))
    np.testing.assert_array_equal(model.weight.grad.numpy(), ref.weight.grad.numpy())
    np.testing.assert_array_equal(model.bias.grad.numpy(), ref.bias.grad.numpy())


def test_free_tensor_state_is_an_input_not_a_frozen_constant():
    counter = ember.zeros(())

    def f(x):
        counter.add_(1)
        return x * counter

    traced = ember.jit.trace(f, ember.ones(2))
    names = {v.name: traced.graph.input_roles[v.name] for v in traced.graph.inputs}
    assert names.get("counter") == "state"
    outs = [traced(ember.ones(2)).numpy()[0] for _ in range(3)]
    assert outs == [1.0, 2.0, 3.0] and counter.item() == 3.0


def test_leaf_requiring_grad_inplace_is_refused_like_eager():
    import pytest
    w = ember.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        ember.jit.trace(lambda x: w.add_(x), ember.ones(3))


def test_backward_nodes_are_labelled_with_their_forward_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))

    def f(x):
        loss = model(x).sum()
        loss.backward()
        return loss

    g = ember.jit.trace(f, ember.randn(2, 3)).graph
    mods = [n.provenance.module for n in g.nodes]
    assert "model.0 (Linear)" in mods and "backward of model.0 (Linear)" in mods
    assert "backward of model.2 (Linear)" in mods
    assert_roundtrip(g)


def test_data_assignment_is_functionalized_and_state_restored():
    w = ember.randn(3, requires_grad=True)
    before = w.detach().numpy().copy()

    def f(x):
        w.data = w.data * 0.5 + x
        return w.sum()

    traced = ember.jit.trace(f, ember.ones(3))
    assert traced.graph.meta["writeback"] == [[1, "value", "w"]]
    np.testing.assert_array_equal(w.detach().numpy(), before)  # tracing restored w (data and all)
    out = traced(ember.ones(3))
    np.testing.assert_array_equal(w.detach().numpy(), (before * np.float32(0.5) + 1).astype(np.float32))
    assert out.item() == float(w.detach().numpy().sum(dtype=np.float32)) and w.requires_grad and w.is_leaf
