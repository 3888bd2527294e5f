"""ember.amp.autocast: the per-op policy (low precision for matmul/linear/conv, float32 elsewhere)."""

import warnings

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember.amp.autocast_mode import POLICY, cast_inputs


def _bf16_round(a):
    return ember.tensor(a).to(ember.bfloat16).float().numpy().astype(np.float64)


def test_lower_precision_ops_run_in_bfloat16_and_match_reference():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 8), (3, 8), (3,)))
    with ember.amp.autocast("cpu"):
        y = F.linear(ember.tensor(x), ember.tensor(w), ember.tensor(b))
        m = ember.tensor(x) @ ember.tensor(w).t()
    assert y.dtype == ember.bfloat16 and m.dtype == ember.bfloat16
    ref = _bf16_round(x) @ _bf16_round(w).T + _bf16_round(b)
    np.testing.assert_allclose(y.float().numpy(), ref, rtol=2e-2, atol=2e-2)
    img, k = rng.standard_normal((2, 1, 6, 6)).astype(np.float32), rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    with ember.amp.autocast("cpu"):
        c = F.conv2d(ember.tensor(img), ember.tensor(k))
    assert c.dtype == ember.bfloat16 and c.shape == (2, 3, 4, 4)


def test_fp32_ops_run_in_float32():
    y = ember.randn(4, 3).to(ember.bfloat16)
    target = ember.tensor([0, 1, 2, 0])
    with ember.amp.autocast("cpu"):
        outs = {"softmax": F.softmax(y, 1), "log_softmax": F.log_softmax(y, 1), "layer_norm": F.layer_norm(y, (3,)),
                "cross_entropy": F.cross_entropy(y, target), "mse": F.mse_loss(y, ember.zeros(4, 3)),
                "sum": y.sum(), "mean": y.mean(),
                "batch_norm": F.batch_norm(y, None, None, training=True)}
    for name, out in outs.items():
        assert out.dtype == ember.float32, name
    ref = np.exp(y.float().numpy().astype(np.float64))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(outs["softmax"].numpy(), ref, rtol=1e-6)


def test_matches_torch_where_the_policies_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal((4, 6)).astype(np.float32)
    tgt = np.array([0, 1, 2, 3, 0])
    with ember.amp.autocast("cpu"):
        out = F.linear(ember.tensor(x), ember.tensor(w))
        loss = F.cross_entropy(out, ember.tensor(tgt))
    with torch.autocast("cpu"):
        tout = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w))
        tloss = torch.nn.functional.cross_entropy(tout, torch.tensor(tgt))
    assert str(tout.dtype).endswith(out.dtype.name) and str(tloss.dtype).endswith(loss.dtype.name)
    np.testing.assert_allclose(out.float().numpy(), tout.float().numpy(), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-2)


def test_gradients_flow_back_to_float32_parameters():
    lin = ember.nn.Linear(6, 3)
    x = ember.randn(8, 6)
    with ember.amp.autocast("cpu"):
        loss = F.cross_entropy(lin(x), ember.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()
    assert lin.weight.grad.dtype == ember.float32 and lin.weight.grad.shape == (3, 6)
    # same gradient as float32 to bfloat16 accuracy
    g16 = lin.weight.grad.numpy().copy()
    lin.zero_grad()
    F.cross_entropy(lin(x), ember.tensor([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    np.testing.assert_allclose(g16, lin.weight.grad.numpy(), atol=3e-2)


def test_nesting_disable_decorator_and_float64():
    x = ember.randn(2, 2)
    with ember.amp.autocast("cpu"):
        with ember.amp.autocast("cpu", enabled=False):
            assert (x @ x).dtype == ember.float32
        assert (x @ x).dtype == ember.bfloat16
        d = x.double()
        assert (d @ d).dtype == ember.float64  # float64 is never cast
    assert (x @ x).dtype == ember.float32

    @ember.amp.autocast("cpu", dtype=ember.float16)
    def f(a):
        return a @ a

    assert f(x).dtype == ember.float16


def test_weight_cast_is_cached_within_a_region():
    w = ember.randn(3, 3, requires_grad=True)
    with ember.amp.autocast("cpu"):
        a, = cast_inputs("lower", w)
        b, = cast_inputs("lower", w)
    assert a is b and a.dtype == ember.bfloat16
    with ember.amp.autocast("cpu"):
        c, = cast_inputs("lower", w)
    assert c is not a
    assert cast_inputs("lower", w)[0] is w  # outside autocast: untouched


def test_policy_table_and_bad_arguments():
    assert POLICY["matmul"] == "lower" and POLICY["softmax"] == "fp32" and POLICY["cat"] == "promote"
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        ember.amp.autocast("tpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ember.amp.autocast("cpu", dtype=ember.float64):
            assert (ember.ones(2, 2) @ ember.ones(2, 2)).dtype == ember.float32
    assert any("not supported" in str(w.message) for w in caught)


def test_cuda_amp_warns_and_disables_without_cuda():
    if ember.cuda.is_available():
        pytest.skip("CUDA present")
    x = ember.randn(2, 2)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        ctx = ember.cuda.amp.autocast()
    with ctx:
        assert (x @ x).dtype == ember.float32
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = ember.cuda.amp.GradScaler()
    assert not scaler.is_enabled()
    loss = (x * 2).sum()
    assert scaler.scale(loss) is loss
    with pytest.warns(UserWarning, match="CUDA is not available"):
        ember.amp.autocast("cuda")


def test_top_level_autocast_names():
    x = ember.randn(2, 2)
    with ember.autocast(device_type="cpu"):
        assert (x @ x).dtype == ember.bfloat16
        assert ember.is_autocast_enabled("cpu") and ember.get_autocast_dtype("cpu") == ember.bfloat16
    assert not ember.is_autocast_enabled("cpu")
