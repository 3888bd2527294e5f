"""Whole training steps compiled by TVM (forward, backward, optimizer in one graph) against eager training,
dynamic batch sizes without recompiling, and the tvm backend options."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")

import ember  # noqa: E402
import ember.nn as nn  # noqa: E402
from ember.runtime.tvm import TVMCompiledGraph  # noqa: E402

STEPS = 20
OPTIMIZERS = {
    "sgd_momentum": lambda p: ember.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: ember.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: ember.optim.AdamW(p, lr=1e-2, weight_decay=0.05),
}


def _model(kind):
    # no bias before BatchNorm: its gradient is rounding noise (BN removes it), which Adam's
    # normalization would amplify into different-but-equally-valid trajectories
    if kind == "mlp":
        return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 5))
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 2 * 2, 5))


def _batch(kind, n=16, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, 12) if kind == "mlp" else (n, 1, 8, 8)).astype(np.float32)
    return ember.tensor(x), ember.tensor(g.integers(0, 5, size=n))


def _train(kind, opt_name, backend):
    ember.manual_seed(0)
    model = _model(kind)
    opt = OPTIMIZERS[opt_name](model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    x, y = _batch(kind)

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    fn = ember.compile(step, backend=backend) if backend else step
    losses = [float(fn(x, y).detach()) for _ in range(STEPS)]
    return model, opt, losses, fn


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_compiled_training_step_matches_eager(kind, opt_name):
    m_e, o_e, l_e, _ = _train(kind, opt_name, None)
    m_c, o_c, l_c, fn = _train(kind, opt_name, "tvm")
    assert fn.stats["compiles"] == 1 and fn.stats["recompiles"] == 0, fn.stats
    assert isinstance(fn._last.compiled, TVMCompiledGraph)
    assert l_e[-1] < l_e[0]  # it does train
    np.testing.assert_allclose(l_c, l_e, rtol=1e-4, atol=1e-4)
    for (name, pe), (_, pc) in zip(m_e.named_parameters(), m_c.named_parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    for (name, be), (_, bc) in zip(m_e.named_buffers(), m_c.named_buffers()):
        np.testing.assert_allclose(bc.numpy(), be.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        for key, value in o_e.state[pe].items():
            got = o_c.state[pc][key]
            np.testing.assert_allclose(np.asarray(got.numpy() if hasattr(got, "numpy") else got),
                                       np.asarray(value.numpy() if hasattr(value, "numpy") else value),
                                       rtol=1e-4, atol=1e-4, err_msg=key)


def test_dynamic_batch_runs_every_size_from_one_build():
    ember.manual_seed(0)
    model = _model("cnn").eval()
    fn = ember.compile(model, backend="tvm", dynamic=True)
    for n in (3, 8, 5, 1):
        x, _ = _batch("cnn", n, seed=n)
        np.testing.assert_allclose(fn(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert fn.stats["compiles"] == 1, fn.stats
    assert "B" in str(fn.graph.inputs[0].type)
