"""RNN, LSTM and GRU against PyTorch with the same weights: outputs, final states and gradients, across
layers, directions, batch_first, unbatched input, given initial states, and a compiled training step."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn

torch = pytest.importorskip("torch")


def _pair(cls, **kw):
    ember.manual_seed(0)
    em = getattr(nn, cls)(5, 4, **kw)
    tm = getattr(torch.nn, cls)(5, 4, **kw)
    assert sorted(em.state_dict()) == sorted(tm.state_dict())
    tm.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in em.state_dict().items()})
    return em, tm


def _flat(h):
    return list(h) if isinstance(h, tuple) else [h]


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kw", [{}, {"num_layers": 2, "bidirectional": True}, {"batch_first": True, "bias": False},
                                {"nonlinearity": "relu"}], ids=["one", "deep_bi", "batch_first_nobias", "relu"])
def test_recurrent_layer_matches_torch(cls, kw):
    if "nonlinearity" in kw and cls != "RNN":
        pytest.skip("only RNN takes a nonlinearity")
    em, tm = _pair(cls, **kw)
    x = np.random.default_rng(0).standard_normal((3, 6, 5) if kw.get("batch_first") else (6, 3, 5)).astype(np.float32)
    ex, tx = ember.from_numpy(x).requires_grad_(), torch.from_numpy(x).requires_grad_()
    eo, eh = em(ex)
    to, th = tm(tx)
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(_flat(eh), _flat(th)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5)
    (eo.sum() + sum(h.sum() for h in _flat(eh))).backward()
    (to.sum() + sum(h.sum() for h in _flat(th))).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, p), (_, tp) in zip(sorted(em.named_parameters()), sorted(tm.named_parameters())):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_unbatched_input_and_given_initial_state(cls):
    em, tm = _pair(cls, num_layers=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    eh0 = (ember.from_numpy(h0), ember.from_numpy(h0 * 0.5)) if cls == "LSTM" else ember.from_numpy(h0)
    th0 = (torch.from_numpy(h0), torch.from_numpy(h0 * 0.5)) if cls == "LSTM" else torch.from_numpy(h0)
    with ember.no_grad(), torch.no_grad():
        eo, eh = em(ember.from_numpy(x), eh0)
        to, th = tm(torch.from_numpy(x), th0)
    np.testing.assert_allclose(eo.numpy(), to.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(_flat(eh), _flat(th)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_bad_input_size_is_refused_clearly():
    with pytest.raises(RuntimeError, match="input_size"):
        nn.LSTM(5, 4)(ember.randn(3, 2, 7))


def test_compiled_lstm_training_step_matches_eager():
    def losses(compiled):
        ember.manual_seed(0)
        model = nn.LSTM(5, 4, batch_first=True)
        head = nn.Linear(4, 3)
        opt = ember.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-2)
        x = ember.from_numpy(np.random.default_rng(2).standard_normal((3, 6, 5)).astype(np.float32))
        y = ember.from_numpy(np.array([0, 1, 2]))

        def step(a, b):
            opt.zero_grad()
            out, _ = model(a)
            loss = nn.functional.cross_entropy(head(out[:, -1]), b)
            loss.backward()
            opt.step()
            return loss
        fn = ember.compile(step, backend="onnxruntime") if compiled else step
        return [float(fn(x, y)) for _ in range(4)]
    np.testing.assert_allclose(losses(True), losses(False), rtol=1e-4, atol=1e-6)
