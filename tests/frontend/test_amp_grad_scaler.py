"""ember.amp.GradScaler on the CPU: scaling, unscaling, skipped steps, growth/backoff, state dicts."""

import numpy as np
import pytest

import ember
from ember.amp import GradScaler


def _setup():
    w = ember.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = ember.optim.SGD([w], lr=0.1)
    return w, opt


def test_scale_unscale_and_step():
    w, opt = _setup()
    scaler = GradScaler("cpu", init_scale=1024.0)
    loss = (w * w).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == pytest.approx(1024.0 * 14.0)
    scaled.backward()
    np.testing.assert_allclose(w.grad.numpy(), 1024.0 * 2 * np.array([1.0, -2.0, 3.0]))
    scaler.unscale_(opt)
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.array([1.0, -2.0, 3.0]))
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    np.testing.assert_allclose(w.detach().numpy(), np.array([1.0, -2.0, 3.0]) * 0.8, rtol=1e-6)
    scaler.update()
    assert scaler.get_scale() == 1024.0


def test_inf_gradients_skip_the_step_and_back_off():
    w, opt = _setup()
    scaler = GradScaler(init_scale=2.0 ** 10, backoff_factor=0.25)
    before = w.detach().numpy().copy()
    loss = (w * ember.tensor([float("inf"), 1.0, 1.0])).sum()
    scaler.scale(loss).backward()
    assert scaler.step(opt) is None
    np.testing.assert_array_equal(w.detach().numpy(), before)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 8
    # NaN is caught the same way
    opt.zero_grad()
    scaler.scale((w * ember.tensor([float("nan"), 1.0, 1.0])).sum()).backward()
    scaler.step(opt)
    np.testing.assert_array_equal(w.detach().numpy(), before)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 6


def test_growth_after_interval():
    w, opt = _setup()
    scaler = GradScaler(init_scale=8.0, growth_factor=3.0, growth_interval=3)
    scales = []
    for _ in range(7):
        opt.zero_grad()
        scaler.scale((w * w).sum()).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    assert scales == [8.0, 8.0, 24.0, 24.0, 24.0, 72.0, 72.0]


def test_state_dict_roundtrip_and_update_with_new_scale():
    w, opt = _setup()
    scaler = GradScaler(init_scale=16.0, growth_interval=5)
    scaler.scale((w * w).sum()).backward()
    scaler.step(opt)
    scaler.update()
    sd = scaler.state_dict()
    assert sd == {"scale": 16.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                  "_growth_tracker": 1}
    other = GradScaler()
    other.load_state_dict(sd)
    assert other.get_scale() == 16.0 and other._get_growth_tracker() == 1
    scaler.update(new_scale=4.0)
    assert scaler.get_scale() == 4.0


def test_disabled_scaler_is_transparent():
    w, opt = _setup()
    scaler = GradScaler(enabled=False)
    loss = (w * w).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(w.detach().numpy(), np.array([1.0, -2.0, 3.0]) * 0.8, rtol=1e-6)
    assert scaler.state_dict() == {} and scaler.get_scale() == 1.0


def test_mixed_precision_training_step_matches_fp32_closely():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, wt = rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    results = []
    for lib in (ember, torch):
        lin = lib.nn.Linear(5, 3)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(wt))
            lin.bias.zero_()
        opt = lib.optim.SGD(lin.parameters(), lr=0.5)
        scaler = lib.amp.GradScaler("cpu", init_scale=256.0)
        for _ in range(5):
            opt.zero_grad()
            with lib.autocast("cpu") if lib is torch else lib.amp.autocast("cpu"):
                loss = lib.nn.functional.cross_entropy(lin(lib.tensor(x)), lib.tensor(y))
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        results.append(lin.weight.detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], atol=2e-2)
