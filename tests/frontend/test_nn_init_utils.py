"""nn.init distributions, default layer initialization, nn.utils, DataParallel, tracing of nn layers."""

import copy
import math
import pickle

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.nn import init


def _stats(t):
    a = t.detach().numpy().astype(np.float64).ravel()
    return a.mean(), a.std(), a.min(), a.max()


def test_uniform_normal_constant():
    w = ember.empty(400, 300)
    mean, std, lo, hi = _stats(init.uniform_(w, -2.0, 3.0))
    assert -2.0 <= lo and hi < 3.0 and abs(mean - 0.5) < 0.02 and abs(std - 5 / math.sqrt(12)) < 0.02
    mean, std, _, _ = _stats(init.normal_(w, 1.0, 0.5))
    assert abs(mean - 1.0) < 0.01 and abs(std - 0.5) < 0.01
    assert np.all(init.constant_(w, 0.25).numpy() == 0.25)
    assert np.all(init.zeros_(w).numpy() == 0) and np.all(init.ones_(w).numpy() == 1)


def test_xavier_and_kaiming_match_formulas():
    w = ember.empty(256, 128, 3, 3)
    fan_in, fan_out = 128 * 9, 256 * 9
    _, std, lo, hi = _stats(init.xavier_uniform_(w, gain=2.0))
    bound = 2.0 * math.sqrt(6.0 / (fan_in + fan_out))
    assert -bound <= lo and hi <= bound and abs(std - bound / math.sqrt(3)) / std < 0.02
    _, std, _, _ = _stats(init.xavier_normal_(w))
    assert abs(std - math.sqrt(2.0 / (fan_in + fan_out))) / std < 0.02
    _, std, lo, hi = _stats(init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"))
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
    assert -bound <= lo and hi <= bound and abs(std - bound / math.sqrt(3)) / std < 0.02
    _, std, _, _ = _stats(init.kaiming_normal_(w, mode="fan_out"))
    assert abs(std - math.sqrt(2.0 / (1 + 0.01 ** 2)) / math.sqrt(fan_out)) / std < 0.02


def test_trunc_normal_and_orthogonal():
    w = ember.empty(300, 300)
    mean, std, lo, hi = _stats(init.trunc_normal_(w, mean=0.5, std=1.0, a=-1.0, b=2.0))
    assert -1.0 <= lo and hi <= 2.0
    scipy_stats = pytest.importorskip("scipy.stats")
    dist = scipy_stats.truncnorm(-1.5, 1.5, loc=0.5, scale=1.0)
    assert abs(mean - dist.mean()) < 0.01 and abs(std - dist.std()) < 0.01
    q = init.orthogonal_(ember.empty(6, 10), gain=2.0).numpy().astype(np.float64)
    np.testing.assert_allclose(q @ q.T, 4.0 * np.eye(6), atol=1e-5)
    q = init.orthogonal_(ember.empty(10, 6)).numpy().astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(6), atol=1e-5)


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in (("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("selu", None),
                        ("conv2d", None), ("sigmoid", None)):
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)
    with pytest.raises(ValueError):
        init.calculate_gain("nope")


@pytest.mark.parametrize("build,fan_in", [
    (lambda: nn.Linear(200, 300), 200),
    (lambda: nn.Conv2d(16, 64, 3), 16 * 9),
    (lambda: nn.Conv1d(8, 64, 5, groups=2), 4 * 5),
    (lambda: nn.ConvTranspose2d(64, 16, 3, groups=2), 8 * 9),
])
def test_default_init_is_pytorchs(build, fan_in):
    """weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_ with a=sqrt(5))."""
    layer = build()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        _, std, lo, hi = _stats(p)
        assert -bound <= lo and hi <= bound
    _, std, _, _ = _stats(layer.weight)
    assert abs(std - bound / math.sqrt(3)) / std < 0.05


def test_default_init_of_norms_and_embedding():
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight.detach().numpy() == 1) and np.all(bn.bias.detach().numpy() == 0)
    assert np.all(bn.running_var.numpy() == 1) and bn.num_batches_tracked.dtype is ember.int64
    ln = nn.LayerNorm(5)
    assert np.all(ln.weight.detach().numpy() == 1)
    mean, std, _, _ = _stats(nn.Embedding(500, 200).weight)
    assert abs(mean) < 0.01 and abs(std - 1) < 0.01


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in ((4, 3), (5,), (2, 2, 2))]
    for norm_type, max_norm in ((2.0, 1.0), (1.0, 2.5), (math.inf, 0.5), (2.0, 1e6)):
        eps, tps = [], []
        for g in grads:
            ep = nn.Parameter(ember.zeros(*g.shape))
            ep.grad = ember.tensor(g)
            eps.append(ep)
            tp = torch.nn.Parameter(torch.zeros(*g.shape))
            tp.grad = torch.tensor(g)
            tps.append(tp)
        en = nn.utils.clip_grad_norm_(eps, max_norm, norm_type)
        tn = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
        np.testing.assert_allclose(en.item(), tn.item(), rtol=1e-5)
        for ep, tp in zip(eps, tps):
            np.testing.assert_allclose(ep.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_nonfinite_and_value():
    p = nn.Parameter(ember.zeros(3))
    p.grad = ember.tensor([1.0, float("inf"), 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    q = nn.Parameter(ember.zeros(4))
    q.grad = ember.tensor([-3.0, -0.5, 0.5, 3.0])
    nn.utils.clip_grad_value_([q], 1.0)
    np.testing.assert_array_equal(q.grad.numpy(), [-1.0, -0.5, 0.5, 1.0])
    assert nn.utils.clip_grad_norm_([nn.Parameter(ember.zeros(2))], 1.0).item() == 0.0


def test_parameters_vector_round_trip():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert tuple(vec.shape) == (3 * 2 + 2 + 2 + 1,)
    nn.utils.vector_to_parameters(ember.arange(11, dtype=ember.float32), m.parameters())
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(m[1].bias.detach().numpy(), [10.0])
    assert isinstance(m[0].weight, nn.Parameter) and m[0].weight.requires_grad


def test_data_parallel_single_device_and_split_path():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    dp = nn.DataParallel(m)
    x = ember.randn(6, 4)
    np.testing.assert_array_equal(dp(x).detach().numpy(), m(x).detach().numpy())
    assert list(dp.state_dict()) == ["module.0.weight", "module.0.bias"]
    assert repr(dp).startswith("DataParallel(\n  (module): Sequential(")
    # the multi-device path: scatter 6 rows over 3 replicas, gather them back, gradients accumulate
    dp.device_ids, dp.output_device = [0, 1, 2], 0
    y = dp(x)
    np.testing.assert_allclose(y.detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    y.sum().backward()
    g_split = m[0].weight.grad.numpy().copy()
    m.zero_grad()
    m(x).sum().backward()
    np.testing.assert_allclose(g_split, m[0].weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    parts = nn.parallel.scatter((x, {"k": x}), [0, 1])
    assert len(parts) == 2 and tuple(parts[0][0].shape) == (3, 4) and tuple(parts[1][1]["k"].shape) == (3, 4)


def test_module_deepcopy_and_pickle():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2)).eval()
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert repr(clone) == repr(m)
        assert clone[0].weight is not m[0].weight and isinstance(clone[0].weight, nn.Parameter)
        for (k, a), (_, b) in zip(m.state_dict().items(), clone.state_dict().items()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
        x = ember.randn(2, 1, 3, 3)
        np.testing.assert_allclose(clone(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)


def test_traced_dropout_contains_random_op_and_batchnorm_state_is_functionalized():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 3))
    traced = ember.jit.trace(m, (ember.randn(2, 1, 4, 4),))
    text = str(traced.graph)
    for op in ("conv2d(", "max_pool2d(", "uniform(", "matmul("):
        assert op in text, op
    before = m[1].running_mean.numpy().copy()
    x = ember.randn(2, 1, 4, 4) * 2 + 3
    traced(x)
    assert not np.allclose(m[1].running_mean.numpy(), before)  # the graph returned new state, written back


def test_traced_conv_net_gradients_match_eager():
    """A traced training step (backward captured through the conv/pool VJPs) gives eager autograd's gradients."""
    m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2),
                      nn.Flatten(), nn.Linear(3, 2))
    x = ember.randn(2, 1, 4, 4)

    def step(inp):
        m.zero_grad()
        loss = m(inp).sum()
        loss.backward()
        return loss

    traced = ember.jit.trace(step, (x,))
    ops = {n.op for n in traced.graph.nodes}
    assert {"conv_transpose2d", "max_pool2d_backward", "conv2d"} <= ops
    traced(x)
    got = [p.grad.numpy().copy() for p in m.parameters()]
    step(x)
    for g, p in zip(got, m.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_traced_grouped_conv_step_with_symbolic_batch():
    """dynamic=True makes the batch symbolic: the grouped weight gradient and the pooling VJPs still trace,
    and a second batch size gives eager autograd's gradients."""
    m = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(6 * 4, 3))

    def step(inp):
        m.zero_grad()
        loss = m(inp).sum()
        loss.backward()
        return loss

    traced = ember.jit.trace(step, (ember.randn(3, 4, 8, 8),), dynamic=True)
    assert "B" in str(traced.graph.inputs[0].type)
    x = ember.randn(5, 4, 8, 8)
    traced(x)
    got = [p.grad.numpy().copy() for p in m.parameters()]
    step(x)
    for g, p in zip(got, m.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-6)
