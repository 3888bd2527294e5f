"""Compiled training steps: one graph per step, and exactly what eager training leaves behind."""

import numpy as np
import pytest

import ember

nn = pytest.importorskip("ember.nn")
if not hasattr(ember.jit, "compile"):  # capture lands with the tracing work
    pytest.skip("ember.compile is not available yet", allow_module_level=True)

STEPS = 20


def _mlp():
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.0), nn.Linear(32, 5))


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.0), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def _data(kind, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((16, 12) if kind == "mlp" else (16, 1, 8, 8)).astype(np.float32)
    y = g.integers(0, 5, size=16)
    return ember.tensor(x), ember.tensor(y)


def _train(kind, make_opt, compiled, steps=STEPS, clip=None, scheduler=None, set_to_none=True):
    ember.manual_seed(0)
    model = _mlp() if kind == "mlp" else _cnn()
    opt = make_opt(model.parameters())
    sched = scheduler(opt) if scheduler else None
    loss_fn = nn.CrossEntropyLoss()
    x, y = _data(kind)

    def step(xb, yb):
        opt.zero_grad(set_to_none=set_to_none)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    fn = ember.compile(step) if compiled else step
    losses = []
    for _ in range(steps):
        losses.append(float(fn(x, y).detach()))
        if sched is not None:
            sched.step()
    return model, opt, losses, fn


def _state_arrays(opt):
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in sorted(opt.state[p].items()):
                out.append((k, v.detach().numpy() if isinstance(v, ember.Tensor) else np.asarray(v)))
    return out


def _assert_same_training(kind, make_opt, **kw):
    m_e, o_e, l_e, _ = _train(kind, make_opt, False, **kw)
    m_c, o_c, l_c, fn = _train(kind, make_opt, True, **kw)
    np.testing.assert_allclose(l_c, l_e, rtol=1e-5, atol=1e-6)
    for (n, pe), (_, pc) in zip(m_e.named_parameters(), m_c.named_parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=n + ".grad")
    for (n, be), (_, bc) in zip(m_e.named_buffers(), m_c.named_buffers()):
        np.testing.assert_allclose(bc.numpy(), be.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
    se, sc = _state_arrays(o_e), _state_arrays(o_c)
    assert [k for k, _ in se] == [k for k, _ in sc]
    for (k, a), (_, b) in zip(se, sc):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=k)
    assert fn.stats["compiles"] == 1, fn.stats
    assert fn.stats["recompiles"] == 0, fn.stats
    return fn


OPTIMIZERS = {
    "sgd": lambda p: ember.optim.SGD(p, lr=0.05),
    "sgd_momentum_wd": lambda p: ember.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    "sgd_nesterov": lambda p: ember.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: ember.optim.Adam(p, lr=1e-2),
    "adam_amsgrad_wd": lambda p: ember.optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: ember.optim.AdamW(p, lr=1e-2),
    "rmsprop": lambda p: ember.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda p: ember.optim.Adagrad(p, lr=0.05, weight_decay=1e-3),
    "adadelta": lambda p: ember.optim.Adadelta(p, lr=1.0),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_mlp_step_matches_eager_for_every_optimizer(name):
    _assert_same_training("mlp", OPTIMIZERS[name])


@pytest.mark.parametrize("name", ["sgd_momentum_wd", "adam"])
def test_compiled_cnn_with_batchnorm_matches_eager(name):
    _assert_same_training("cnn", OPTIMIZERS[name])


def test_clip_grad_norm_inside_the_step():
    _assert_same_training("mlp", OPTIMIZERS["adam"], clip=0.05)


def test_zero_grad_without_set_to_none():
    _assert_same_training("mlp", OPTIMIZERS["sgd_momentum_wd"], set_to_none=False)


def test_learning_rate_is_an_input_so_schedulers_work_without_recompiling():
    fn = _assert_same_training("mlp", OPTIMIZERS["sgd_momentum_wd"],
                               scheduler=lambda o: ember.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
    assert "lr" in [v.name for v in fn.graph.inputs]
    _assert_same_training("mlp", OPTIMIZERS["adam"],
                          scheduler=lambda o: ember.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7))


def test_step_is_one_graph_with_forward_backward_and_update():
    _, _, _, fn = _train("mlp", OPTIMIZERS["adam"], True, steps=3)
    g = fn.graph
    roles = g.input_roles
    assert {"0.weight", "0.bias", "3.weight", "3.bias"} <= {n for n, r in roles.items() if r == "param"}
    assert any(n.startswith("opt.0.weight.exp_avg") for n in roles)
    ops = [n.op for n in g.nodes]
    assert ops.count("matmul") == 5  # 2 forward, 2 weight gradients, 1 input gradient (x needs none)
    assert fn.stats["compiles"] == 1 and fn.stats.get("eager_warmup") == 1


def test_passes_shrink_the_captured_step():
    from ember.passes import DEFAULT_PIPELINE, count_nodes, run_pipeline
    _, _, _, fn = _train("mlp", OPTIMIZERS["adam"], True, steps=2)
    opt = run_pipeline(fn.graph, DEFAULT_PIPELINE).graph
    assert count_nodes(opt) < count_nodes(fn.graph) / 2
    assert any(n.op == "fused" for n in opt.nodes)


def test_changing_a_baked_hyperparameter_recompiles():
    _, opt, _, fn = _train("mlp", OPTIMIZERS["sgd_momentum_wd"], True, steps=3)
    opt.param_groups[0]["momentum"] = 0.5
    x, y = _data("mlp")
    fn(x, y)
    assert fn.stats["compiles"] == 2
    assert any("hyperparameter" in r for r in fn.stats["recompile_reasons"])


def test_dropout_trains_equivalently():
    def run(compiled):
        ember.manual_seed(0)
        model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 5))
        opt = ember.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()
        x, y = _data("mlp", seed=3)

        def step(xb, yb):
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            return loss
        fn = ember.compile(step) if compiled else step
        return np.array([float(fn(x, y).detach()) for _ in range(40)])
    eager, comp = run(False), run(True)
    # both learn: the loss falls by a similar amount
    assert comp[-10:].mean() < comp[:5].mean() * 0.8
    assert abs(comp[-10:].mean() - eager[-10:].mean()) < 0.25 * eager[:5].mean()


def _train_scaled(compiled, inf_at=(5, 11), steps=STEPS):
    ember.manual_seed(0)
    model = _mlp()
    opt = ember.optim.Adam(model.parameters(), lr=1e-2)
    scaler = ember.amp.GradScaler(init_scale=2.0 ** 10, growth_interval=3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = _data("mlp")
    bad = x.clone()
    bad[0, 0] = float("inf")

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return loss

    fn = ember.compile(step) if compiled else step
    scales = []
    for i in range(steps):
        fn(bad if i in inf_at else x, y)
        scales.append(scaler.get_scale())
    return model, opt, scales, fn


def test_grad_scaler_skips_and_rescales_like_eager():
    m_e, o_e, s_e, _ = _train_scaled(False)
    m_c, o_c, s_c, fn = _train_scaled(True)
    assert s_c == s_e
    assert s_e[5] == s_e[4] / 2 and s_e[2] == 2 * s_e[1]  # backed off at the overflow, grew every 3 clean steps
    for (n, pe), (_, pc) in zip(m_e.named_parameters(), m_c.named_parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
    for (k, a), (_, b) in zip(_state_arrays(o_e), _state_arrays(o_c)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=k)
    assert fn.stats["compiles"] == 1, fn.stats


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_model_and_optimizer_as_default_arguments(backend):
    """``def step(x, y, model=model, opt=opt)`` binds them like a closure: the step is found, captured once and
    trains as eagerly (it used to leak a traced momentum buffer out of the capture)."""
    def run(compiled):
        ember.manual_seed(0)
        model = ember.nn.Sequential(ember.nn.Linear(6, 5), ember.nn.ReLU(), ember.nn.Linear(5, 3))
        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y, model=model, *, opt=opt):
            opt.zero_grad()
            loss = ember.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        fn = ember.compile(step, backend=backend) if compiled else step
        rng = np.random.default_rng(0)
        x = ember.from_numpy(rng.standard_normal((8, 6)).astype(np.float32))
        y = ember.from_numpy(rng.integers(0, 3, size=(8,)))
        return [float(fn(x, y)) for _ in range(6)], fn
    want, _ = run(False)
    got, fn = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert fn.stats["compiles"] == 1


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_model_and_optimizer_passed_as_arguments(backend):
    """``step(model, opt, x, y)`` as torch.compile takes it: the objects are bound by identity, the step is
    captured once per model/optimizer pair and trains as eagerly."""
    def step(model, opt, x, y):
        opt.zero_grad()
        loss = ember.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def make():
        ember.manual_seed(0)
        model = ember.nn.Sequential(ember.nn.Linear(6, 5), ember.nn.ReLU(), ember.nn.Linear(5, 3))
        return model, ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = ember.from_numpy(rng.standard_normal((8, 6)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 3, size=(8,)))
    m, o = make()
    want = [float(step(m, o, x, y)) for _ in range(6)]
    fn = ember.compile(step, backend=backend)
    m, o = make()
    got = [float(fn(m, o, x, y)) for _ in range(3)] + [float(fn(model=m, opt=o, x=x, y=y)) for _ in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    m2, o2 = make()  # another pair: its own capture, its own state
    np.testing.assert_allclose(float(fn(m2, o2, x, y)), want[0], rtol=1e-6)


def test_compiled_inference_with_the_module_as_an_argument():
    ember.manual_seed(0)
    model = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.Tanh())
    fn = ember.compile(lambda m, x: m(x) * 2.0)
    x = ember.randn(5, 4)
    with ember.no_grad():
        np.testing.assert_allclose(fn(model, x).numpy(), (model(x) * 2.0).numpy(), rtol=1e-6)
        model[0].weight.mul_(0.5)  # the weights are read at each call, not baked in
        np.testing.assert_allclose(fn(model, x).numpy(), (model(x) * 2.0).numpy(), rtol=1e-6)
    assert fn.stats["compiles"] == 1
