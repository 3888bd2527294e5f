"""The training step the compiled-training tests share: ``zero_grad; cross_entropy; backward; step``."""

from __future__ import annotations

import ember.nn as nn


def classification_step(model, optimizer):
    """A step function ``step(x, y) -> loss`` over ``model`` and ``optimizer``, as users write it."""
    def step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step
