"""A traced module saved with its weights loads back as a callable giving the same results."""

import numpy as np

import ember
import ember.nn as nn
from ember.ir.serialize import load


def test_traced_module_save_and_load(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    x = ember.randn(2, 1, 6, 6)
    traced = ember.jit.trace(model, x, dynamic=True)
    path = tmp_path / "net.eir"
    traced.save(str(path))
    graph, weights = load(path)
    assert str(graph) == str(traced.graph)
    assert set(weights) == {n for n, _ in model.named_parameters()}
    fn = ember.jit.load(str(path))
    for n in (2, 5):
        x = ember.randn(n, 1, 6, 6)
        np.testing.assert_array_equal(fn(x).numpy(), model(x).detach().numpy())


def test_weights_are_a_snapshot(tmp_path):
    lin = nn.Linear(2, 2)
    traced = ember.jit.trace(lin, ember.randn(1, 2))
    traced.save(str(tmp_path / "a.eir"))
    with ember.no_grad():
        lin.weight.mul_(0)
    fn = ember.jit.load(str(tmp_path / "a.eir"))
    x = ember.ones(1, 2)
    assert not np.array_equal(fn(x).numpy(), lin(x).detach().numpy())
    np.testing.assert_array_equal(traced(x).numpy(), lin(x).detach().numpy())  # traced reads live weights
