"""The training step the compiled-training tests share: ``zero_grad; cross_entropy; backward; step``."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn as nn
import ember.optim as optim


def classification_step(model, optimizer):
    """A step function ``step(x, y) -> loss`` over ``model`` and ``optimizer``, as users write it."""
    def step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


def train_small_cnn(make_model, backend=None, options=None, steps: int = 10):
    """SGD-momentum training of ``make_model()`` (input [8, 1, 8, 8], 5 classes) for ``steps`` steps, eagerly
    or compiled for ``backend``: (losses, final parameter and buffer arrays, the step function)."""
    ember.manual_seed(0)
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    x = ember.from_numpy(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 5, size=(8,)))
    step = classification_step(model, opt)
    fn = ember.compile(step, backend=backend, options=options) if backend else step
    losses = [float(fn(x, y)) for _ in range(steps)]
    return losses, [t.detach().numpy().copy() for t in model.state_dict().values()], fn
