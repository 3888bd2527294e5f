"""scaled_dot_product_attention, MultiheadAttention and TransformerEncoder(Layer) against PyTorch, same
weights: values, gradients, masks, layouts; and a compiled transformer step against eager."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn

torch = pytest.importorskip("torch")


def _t(a):
    return torch.from_numpy(np.array(a))


def _copy_weights(em, tm):
    tm.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in em.state_dict().items()})


@pytest.mark.parametrize("case", ["plain", "causal", "bool_mask", "float_mask", "scale"])
def test_sdpa_matches_torch_values_and_gradients(case):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    kw = {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool_mask":
        kw["attn_mask"] = rng.random((5, 5)) > 0.3
        kw["attn_mask"][:, 0] = True  # every query sees at least one key
    elif case == "float_mask":
        kw["attn_mask"] = rng.standard_normal((5, 5)).astype(np.float32)
    elif case == "scale":
        kw["scale"] = 0.3
    eq, ek, ev = (ember.from_numpy(a).requires_grad_() for a in (q, k, v))
    tq, tk, tv = (_t(a).requires_grad_() for a in (q, k, v))
    ekw = {n: (ember.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    tkw = {n: (_t(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    eo = nn.functional.scaled_dot_product_attention(eq, ek, ev, **ekw)
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(eo.shape).astype(np.float32)
    eo.backward(ember.from_numpy(g))
    to.backward(_t(g))
    for a, b in ((eq, tq), (ek, tk), (ev, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_refuses_a_mask_with_is_causal():
    x = ember.randn(1, 2, 3)
    with pytest.raises(RuntimeError, match="attn_mask"):
        nn.functional.scaled_dot_product_attention(x, x, x, attn_mask=ember.ones(2, 2), is_causal=True)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kdim", [None, 6])
def test_multihead_attention_matches_torch(batch_first, kdim):
    ember.manual_seed(0)
    em = nn.MultiheadAttention(8, 2, kdim=kdim, vdim=kdim, batch_first=batch_first)
    tm = torch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=kdim, batch_first=batch_first)
    assert sorted(em.state_dict()) == sorted(tm.state_dict())
    _copy_weights(em, tm)
    rng = np.random.default_rng(1)
    l, s, n = 4, 5, 3
    shape = (lambda t, b: (b, t) if batch_first else (t, b))
    q = rng.standard_normal(shape(l, n) + (8,)).astype(np.float32)
    k = rng.standard_normal(shape(s, n) + (kdim or 8,)).astype(np.float32)
    v = rng.standard_normal(shape(s, n) + (kdim or 8,)).astype(np.float32)
    pad = np.zeros((n, s), bool)
    pad[0, -2:] = True
    mask = np.triu(np.ones((l, s), bool), 2)
    eo, ew = em(ember.from_numpy(q), ember.from_numpy(k), ember.from_numpy(v), key_padding_mask=ember.from_numpy(pad),
                attn_mask=ember.from_numpy(mask))
    to, tw = tm(_t(q), _t(k), _t(v), key_padding_mask=_t(pad), attn_mask=_t(mask))
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ew.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    eo.sum().backward()
    to.sum().backward()
    for (name, p), (_, tp) in zip(em.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_matches_torch_in_eval_and_trains_compiled(norm_first):
    ember.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True, norm_first=norm_first,
                                       activation="gelu")
    enc = nn.TransformerEncoder(layer, num_layers=2)
    tl = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, batch_first=True,
                                          norm_first=norm_first, activation="gelu")
    tenc = torch.nn.TransformerEncoder(tl, num_layers=2, enable_nested_tensor=False)
    assert sorted(enc.state_dict()) == sorted(tenc.state_dict())
    _copy_weights(enc, tenc)
    enc.eval()
    tenc.eval()
    x = np.random.default_rng(2).standard_normal((3, 5, 8)).astype(np.float32)
    causal = np.triu(np.full((5, 5), -np.inf, np.float32), 1)
    with ember.no_grad(), torch.no_grad():
        for mask in (None, causal):
            eo = enc(ember.from_numpy(x), mask=None if mask is None else ember.from_numpy(mask))
            to = tenc(_t(x), mask=None if mask is None else _t(mask))
            np.testing.assert_allclose(eo.numpy(), to.numpy(), rtol=1e-4, atol=1e-5)
    # a compiled training step (dropout off for a deterministic comparison) matches eager
    for m in enc.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        elif isinstance(m, nn.MultiheadAttention):
            m.dropout = 0.0

    def losses(step_fn, model):
        opt = ember.optim.Adam(model.parameters(), lr=1e-3)

        def step(a):
            opt.zero_grad()
            loss = (model(a) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        fn = step_fn(step)
        return [float(fn(ember.from_numpy(x))) for _ in range(4)]
    import copy
    enc.train()
    twin = copy.deepcopy(enc)
    want = losses(lambda f: f, enc)
    got = losses(lambda f: ember.compile(f, backend="onnxruntime"), twin)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32"])
def test_tril_and_triu_keep_the_dtype(dtype):
    a = np.ones((3, 4), dtype=dtype)
    for name in ("tril", "triu"):
        got = getattr(ember.from_numpy(a), name)(1)
        want = getattr(torch.from_numpy(a), name)(1)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert (~ember.from_numpy(np.ones((2, 2), bool)).tril()).numpy().tolist() == [[False, True], [False, False]]
