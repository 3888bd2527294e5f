"""Optimizers and LR schedulers: 20 steps from identical weights match PyTorch's parameters."""

import numpy as np
import pytest

import ember

torch = pytest.importorskip("torch")

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01, maximize=True)),
]


def _init_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((5, 8)).astype(np.float32) * 0.5, rng.standard_normal(8).astype(np.float32) * 0.1,
            rng.standard_normal((8, 3)).astype(np.float32) * 0.5]


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)


def _loss(lib, params, x, y):
    w1, b1, w2 = params
    h = lib.tanh(x @ w1 + b1)
    return ((h @ w2 - y) ** 2).mean()


def _run(lib, opt_name, kwargs, steps=20, sched=None, groups=False):
    arrays = _init_arrays()
    params = [lib.tensor(a.copy(), requires_grad=True) for a in arrays]
    x, y = (lib.tensor(a) for a in _data())
    spec = [{"params": params[:2]}, {"params": params[2:], "lr": kwargs.get("lr", 1.0) * 0.5}] if groups else params
    opt = getattr(lib.optim, opt_name)(spec, **kwargs)
    scheduler = sched(lib, opt) if sched else None
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(lib, params, x, y)
        loss.backward()
        opt.step()
        if scheduler is not None:
            if type(scheduler).__name__ == "ReduceLROnPlateau":
                scheduler.step(float(loss))
            else:
                scheduler.step()
            lrs.append(list(scheduler.get_last_lr()))
    return [p.detach().numpy().copy() for p in params], lrs


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_matches_torch(name, kwargs):
    ours, _ = _run(ember, name, kwargs)
    ref, _ = _run(torch, name, kwargs)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_match_torch(name):
    kwargs = dict(lr=0.02, momentum=0.9) if name != "Adam" else dict(lr=0.02)
    ours, _ = _run(ember, name, kwargs, groups=True)
    ref, _ = _run(torch, name, kwargs, groups=True)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def _lambda(epoch):
    return 0.95 ** epoch


SCHEDULERS = {
    "StepLR": lambda lib, o: lib.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda lib, o: lib.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.5),
    "ExponentialLR": lambda lib, o: lib.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=4, T_mult=2, eta_min=0.001),
    "LambdaLR": lambda lib, o: lib.optim.lr_scheduler.LambdaLR(o, _lambda),
    "LinearLR": lambda lib, o: lib.optim.lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=6),
    "ConstantLR": lambda lib, o: lib.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=4),
    "OneCycleLR": lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=20),
    "OneCycleLR3": lambda lib, o: lib.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=25, three_phase=True,
                                                                    anneal_strategy="linear"),
    "ReduceLROnPlateau": lambda lib, o: lib.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5,
                                                                                 threshold=0.05),
    "SequentialLR": lambda lib, o: lib.optim.lr_scheduler.SequentialLR(
        o, [lib.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4),
            lib.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)], milestones=[5]),
    "ChainedScheduler": lambda lib, o: lib.optim.lr_scheduler.ChainedScheduler(
        [lib.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
         lib.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)]),
}


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_scheduler_matches_torch(sched, opt):
    kwargs = dict(lr=0.1, momentum=0.9) if opt == "SGD" else dict(lr=0.05)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, our_lrs = _run(ember, opt, kwargs, sched=SCHEDULERS[sched])
        ref, ref_lrs = _run(torch, opt, kwargs, sched=SCHEDULERS[sched])
    np.testing.assert_allclose(np.array(our_lrs, dtype=np.float64), np.array(ref_lrs, dtype=np.float64), rtol=1e-12)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
