"""A compiled CNN training step (batch norm included) serves every batch size from one symbolic graph.

Batch norm's element count and unbiased-variance factor, and the convolution weight gradient
(whose "channels" are the batch), depend on the batch size; they must stay graph values so the
trace does not fall back to one static graph per batch size (the last, smaller batch of an epoch).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.optim as optim
from tests.steps import classification_step

BATCHES = (8, 5, 8, 3)


def _train(backend):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    step = classification_step(model, opt)

    fn = ember.compile(step, backend=backend) if backend else step
    rng = np.random.default_rng(0)
    losses = []
    for b in BATCHES:
        x = ember.from_numpy(rng.standard_normal((b, 1, 8, 8)).astype(np.float32))
        y = ember.from_numpy(rng.integers(0, 5, size=(b,)))
        losses.append(float(fn(x, y)))
    state = [p.detach().numpy().copy() for p in model.parameters()]
    state += [model[1].running_mean.numpy().copy(), model[1].running_var.numpy().copy()]
    return losses, state, fn


@pytest.mark.parametrize("backend", ["eager", "onnxruntime", "tvm"])
def test_batch_norm_cnn_step_compiles_once_for_every_batch_size(backend):
    le, se, _ = _train(None)
    lc, sc, fn = _train(backend)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-4)
    for a, b in zip(se, sc):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)  # running_var's unbiased factor included
    # the first call traces static shapes, the second a symbolic batch that serves the rest
    assert fn.stats["compiles"] == 2, fn.stats["recompile_reasons"]
    assert not any("not possible" in r for r in fn.stats["recompile_reasons"])


def test_unbiased_var_over_a_symbolic_batch_matches_numpy():
    f = ember.compile(lambda t: t.var(0))
    rng = np.random.default_rng(1)
    for n in (4, 6, 9):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        np.testing.assert_allclose(f(ember.from_numpy(x)).numpy(), x.var(0, ddof=1), rtol=1e-5)
    assert f.stats["compiles"] == 2
