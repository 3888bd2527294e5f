"""ember.compile: capture on first call, cache per signature, symbolic batch sizes, recompile reasons."""

import copy

import numpy as np
import pytest

import ember
import ember.nn as nn


def _np(t):
    return t.detach().numpy()


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_first_call_captures_then_hits_the_cache():
    model = mlp()
    f = ember.compile(model, backend="eager")
    x = ember.randn(5, 4)
    for _ in range(3):
        np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 1 and f.stats["cache_hits"] == 2 and f.stats["recompiles"] == 0
    assert f.graph is not None and f.graph.inputs[0].type.shape == (5, 4)


def test_new_batch_size_recompiles_once_with_a_symbolic_dimension():
    model = mlp()
    f = ember.compile(model)
    for n in (5, 7, 2, 11, 5, 1):
        x = ember.randn(n, 4)
        np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 2 and f.stats["recompiles"] == 1
    reason = f.stats["recompile_reasons"][0]
    assert "tensor argument 0: shape changed from float32[5, 4] to float32[7, 4]" in reason
    assert reason in ember.jit.recompile_reasons()
    assert f.graph.inputs[0].type.shape == ("B", 4)


def test_dynamic_true_starts_symbolic_and_dynamic_false_always_specializes():
    model = mlp()
    dyn = ember.compile(model, dynamic=True)
    static = ember.compile(model, dynamic=False)
    for n in (3, 4, 6):
        x = ember.randn(n, 4)
        np.testing.assert_array_equal(_np(dyn(x)), _np(model(x)))
        np.testing.assert_array_equal(_np(static(x)), _np(model(x)))
    assert dyn.stats["compiles"] == 1
    assert static.stats["compiles"] == 3


def test_inputs_sharing_a_batch_size_share_a_symbol_and_mismatch_retraces():
    def f(x, y):
        return (x * y).sum(dim=1)

    c = ember.compile(f, dynamic=True)
    a, b = ember.randn(4, 3), ember.randn(4, 3)
    np.testing.assert_array_equal(c(a, b).numpy(), f(a, b).numpy())
    assert [v.type.shape for v in c.graph.inputs] == [("B", 3), ("B", 3)]
    # a different pattern of leading sizes is a different signature, never a wrong answer
    a, b = ember.randn(1, 3), ember.randn(6, 3)
    np.testing.assert_array_equal(c(a, b).numpy(), f(a, b).numpy())
    assert c.stats["compiles"] == 2


def test_symbolic_failure_falls_back_to_static():
    def g(x):
        return x.reshape(2, -1)  # the flattened size depends on the batch

    c = ember.compile(g)
    for n in (4, 6, 8):
        x = ember.randn(n, 3)
        np.testing.assert_array_equal(c(x).numpy(), g(x).numpy())
    assert any("specialized to static shapes" in r for r in c.stats["recompile_reasons"])


def test_training_mode_dtype_and_requires_grad_are_part_of_the_signature():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    f = ember.compile(model)
    x = ember.randn(3, 4)
    model.eval()
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    model.train()
    ember.manual_seed(5)
    got = f(x)
    ember.manual_seed(5)
    np.testing.assert_array_equal(_np(got), _np(model(x)))
    f(x.double().float().requires_grad_())
    reasons = f.stats["recompile_reasons"]
    assert any("training mode" in r for r in reasons)
    assert any("requires_grad" in r for r in reasons)


def test_non_tensor_arguments_are_baked_and_keyed():
    def f(x, k, scale=1.0):
        return x * k + scale

    c = ember.compile(f)
    x = ember.randn(3)
    for k in (2, 3, 2):
        np.testing.assert_array_equal(c(x, k).numpy(), f(x, k).numpy())
    np.testing.assert_array_equal(c(x, 2, scale=0.5).numpy(), f(x, 2, scale=0.5).numpy())
    assert c.stats["compiles"] == 3 and c.stats["cache_hits"] == 1
    assert c.stats["recompile_reasons"][0].endswith("non-tensor value args[1] changed from 2 to 3")
    c(x, 2, scale=0.25)
    assert c.stats["recompile_reasons"][-1].endswith("non-tensor value kwargs['scale'] changed from 0.5 to 0.25")


def test_batchnorm_training_writes_back_running_stats_each_call():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref = copy.deepcopy(model)
    f = ember.compile(model)
    for n in (6, 6, 9):
        x = ember.randn(n, 3)
        np.testing.assert_array_equal(_np(f(x)), _np(ref(x)))
    np.testing.assert_array_equal(model[1].running_var.numpy(), ref[1].running_var.numpy())
    assert model[1].num_batches_tracked.item() == 3


def test_decorator_form_and_unknown_backend():
    @ember.compile(backend="eager")
    def f(x):
        return x.exp()

    x = ember.randn(2)
    np.testing.assert_array_equal(_np(f(x)), x.exp().numpy())
    assert ember.compile(lambda x: x * 2).backend == "eager"
    assert ember.compile(lambda x: x * 2, backend="inductor").backend == "eager"  # PyTorch's default name
    bad = ember.compile(lambda x: x, backend="nope")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        bad(x)


def test_training_step_with_optimizer_matches_eager():
    model = mlp()
    ref = copy.deepcopy(model)
    opt = ember.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def step_ref(x, y):
        opt_ref.zero_grad()
        loss = loss_fn(ref(x), y)
        loss.backward()
        opt_ref.step()
        return loss

    c = ember.compile(step)
    for _ in range(4):
        x, y = ember.randn(6, 4), ember.randint(0, 3, (6,))
        np.testing.assert_allclose(c(x, y).item(), step_ref(x, y).item(), rtol=1e-6)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-6)
