"""Optimizer bookkeeping: state dicts and bit-identical resume, zero_grad, groups, tensor hyperparameters."""

import copy

import numpy as np
import pytest

import ember
from ember import optim


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    w = ember.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    b = ember.tensor(np.zeros(3, np.float32), requires_grad=True)
    x = ember.tensor(rng.standard_normal((10, 4)).astype(np.float32))
    y = ember.tensor(rng.standard_normal((10, 3)).astype(np.float32))
    return [w, b], x, y


def _step(opt, params, x, y):
    opt.zero_grad()
    loss = ((x @ params[0] + params[1] - y) ** 2).mean()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    lambda p: optim.AdamW(p, lr=0.01),
    lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01),
    lambda p: optim.Adadelta(p),
])
def test_resume_is_bit_identical(make):
    params, x, y = _problem()
    opt = make(params)
    for _ in range(5):
        _step(opt, params, x, y)
    saved_params = [p.detach().clone() for p in params]
    saved_state = copy.deepcopy(opt.state_dict())
    for _ in range(5):
        _step(opt, params, x, y)
    expected = [p.detach().numpy().copy() for p in params]

    params2 = [ember.tensor(p.numpy().copy(), requires_grad=True) for p in saved_params]
    opt2 = make(params2)
    opt2.load_state_dict(saved_state)
    for _ in range(5):
        _step(opt2, params2, x, y)
    for a, b in zip(params2, expected):
        assert np.array_equal(a.detach().numpy(), b)


def test_state_dict_layout_and_step_tensor():
    params, x, y = _problem()
    opt = optim.Adam(params, lr=0.01)
    _step(opt, params, x, y)
    _step(opt, params, x, y)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][0]["lr"] == 0.01
    step = sd["state"][0]["step"]
    assert isinstance(step, ember.Tensor) and step.dtype == ember.float32 and step.shape == () and step.item() == 2.0
    assert sd["state"][1]["exp_avg"].shape == (3,)


def test_load_state_dict_validates_group_sizes():
    params, _, _ = _problem()
    opt = optim.SGD(params, lr=0.1)
    other = optim.SGD([params[0]], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        other.load_state_dict(opt.state_dict())


def test_zero_grad_set_to_none_and_zero():
    params, x, y = _problem()
    opt = optim.SGD(params, lr=0.1)
    ((x @ params[0]).sum()).backward()
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is not None and float(params[0].grad.abs().sum()) == 0.0
    opt.zero_grad()
    assert params[0].grad is None


def test_add_param_group_and_errors():
    params, x, y = _problem()
    opt = optim.SGD([params[0]], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[1], "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam(params, lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)


def test_params_without_grad_are_skipped():
    params, x, y = _problem()
    opt = optim.Adam(params, lr=0.1)
    loss = (x @ params[0]).sum()
    loss.backward()
    before = params[1].detach().clone()
    opt.step()
    assert np.array_equal(params[1].detach().numpy(), before.numpy())
    assert params[1] not in opt.state


def test_tensor_lr_matches_float_lr():
    results = []
    for lr in (0.01, ember.tensor(0.01)):
        params, x, y = _problem()
        opt = optim.Adam(params, lr=lr)
        for _ in range(3):
            _step(opt, params, x, y)
        results.append(params[0].detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_scheduler_updates_tensor_lr_in_place():
    params, x, y = _problem()
    lr = ember.tensor(0.1)
    opt = optim.SGD(params, lr=lr)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _step(opt, params, x, y)
    sched.step()
    assert opt.param_groups[0]["lr"] is lr
    assert abs(lr.item() - 0.05) < 1e-7


def test_closure_is_called_with_grad_enabled():
    params, x, y = _problem()
    opt = optim.SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = ((x @ params[0] - y) ** 2).mean()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    assert isinstance(loss, ember.Tensor) and loss.item() > 0


def test_scheduler_state_dict_roundtrip():
    params, _, _ = _problem()
    opt = optim.SGD(params, lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 3
    opt2 = optim.SGD(params, lr=1.0)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(sd)
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == [0.5]


def test_load_state_dict_fills_keys_an_older_state_dict_lacks():
    params, x, y = _problem()
    opt = optim.Adam(params, lr=0.01)
    _step(opt, params, x, y)
    sd = copy.deepcopy(opt.state_dict())
    for key in ("maximize", "amsgrad", "foreach"):
        del sd["param_groups"][0][key]
    opt2 = optim.Adam(params, lr=0.01, amsgrad=False)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["maximize"] is False and opt2.param_groups[0]["amsgrad"] is False
    _step(opt2, params, x, y)


def test_no_grad_inplace_fast_path_matches_functional_results():
    """Optimizers lean on x.add_/sub_/mul_/div_ under no_grad writing straight into x's buffer."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    for name, fn in (("add_", np.add), ("sub_", np.subtract), ("mul_", np.multiply), ("div_", np.divide)):
        for other in (ember.tensor(b), 0.3, 2, ember.tensor(np.float32(1.5))):
            x = ember.tensor(a)
            buf, version = x._data, x._version[0]
            with ember.no_grad():
                out = getattr(x, name)(other)
            ref = fn(a, other.numpy() if isinstance(other, ember.Tensor) else np.float32(other))
            assert out is x and x._data is buf and x._version[0] == version + 1
            np.testing.assert_array_equal(x.numpy(), ref.astype(np.float32))
    # views write through to their base; ints and broadcasting take the general path
    base = ember.zeros(2, 3)
    with ember.no_grad():
        base[0].add_(1.0)
        ints = ember.tensor([1, 2])
        ints.mul_(3)
        row = ember.ones(2, 3)
        row.add_(ember.tensor([1.0, 2.0, 3.0]))
    assert base.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    assert ints.tolist() == [3, 6] and row.tolist() == [[2.0, 3.0, 4.0]] * 2
    with pytest.raises(RuntimeError):
        with ember.no_grad():
            ember.ones(3).expand(2, 3).add_(1.0)
