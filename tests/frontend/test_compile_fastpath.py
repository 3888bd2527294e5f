"""ember.compile's fast path: a repeated call skips keys and guards, yet every change that must
recompile still does (with the same reason), and results always match eager execution."""

import copy

import numpy as np
import pytest

import ember
import ember.nn as nn


def _np(t):
    return t.detach().numpy()


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _warm(f, *args, n=4, **kwargs):
    """Call ``f`` until its fast path is in use; returns how many fast calls that took."""
    before = f.stats["fast_calls"]
    for _ in range(n):
        f(*args, **kwargs)
    assert f.stats["fast_calls"] > before, f.stats
    return f.stats["fast_calls"]


def _last_reason(f):
    return f.stats["recompile_reasons"][-1]


def test_repeated_calls_take_the_fast_path_and_match_eager():
    model = _mlp()
    f = ember.compile(model)
    for i in range(6):
        x = ember.randn(5, 4)  # new tensor objects, same signature
        np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 1 and f.stats["cache_hits"] == 5
    assert f.stats["fast_calls"] >= 4  # the first hit records the fast path, the rest use it


def test_shape_change_recompiles_with_its_reason_and_old_shape_hits_again():
    model = _mlp()
    f = ember.compile(model, dynamic=False)
    x5, x6 = ember.randn(5, 4), ember.randn(6, 4)
    _warm(f, x5)
    np.testing.assert_array_equal(_np(f(x6)), _np(model(x6)))
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("tensor argument 0: shape changed from float32[5, 4] to float32[6, 4]")
    np.testing.assert_array_equal(_np(f(x5)), _np(model(x5)))
    assert f.stats["compiles"] == 2


@pytest.mark.parametrize("dynamic", [None, False])
def test_alternating_shapes_each_keep_a_fast_path(dynamic):
    model = _mlp()
    f = ember.compile(model, dynamic=dynamic)
    xs = [ember.randn(5, 4), ember.randn(7, 4)]
    for i in range(12):
        x = xs[i % 2]
        np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 2
    assert f.stats["fast_calls"] >= 8, f.stats  # after the first hit of each shape, all fast
    x9 = ember.randn(9, 4)  # a compile voids the recorded fast paths; results stay right
    np.testing.assert_array_equal(_np(f(x9)), _np(model(x9)))
    for x in xs + [x9] + xs:
        np.testing.assert_array_equal(_np(f(x)), _np(model(x)))


def test_dtype_change_recompiles():
    def g(x, y):
        return x * 2 + y

    f = ember.compile(g)
    x, y = ember.randn(3), ember.randn(3)
    _warm(f, x, y)
    xd = x.double()
    np.testing.assert_array_equal(f(xd, y).numpy(), g(xd, y).numpy())
    assert f.stats["compiles"] == 2
    assert "tensor argument 0: dtype changed from float32[3] to float64[3]" in _last_reason(f)
    assert f(xd, y).dtype == ember.float64


def test_requires_grad_change_of_an_argument_recompiles():
    model = _mlp()
    f = ember.compile(model)
    x = ember.randn(2, 4)
    _warm(f, x)
    xr = x.detach().clone().requires_grad_()
    np.testing.assert_array_equal(_np(f(xr)), _np(model(x)))
    assert f.stats["compiles"] == 2
    assert "tensor argument 0: requires_grad changed" in _last_reason(f)


@pytest.mark.parametrize("how", ["eval", "submodule_eval", "flag"])
def test_train_eval_changes_recompile(how):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    f = ember.compile(model)
    x = ember.randn(3, 4)
    _warm(f, x)
    if how == "eval":
        model.eval()
    elif how == "submodule_eval":
        model[1].eval()
    else:
        model[1].training = False
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))  # no dropout now: deterministic
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("a module's training mode changed (train()/eval())")
    _warm(f, x)
    model.train()
    ember.manual_seed(3)
    got = f(x)
    ember.manual_seed(3)
    np.testing.assert_array_equal(_np(got), _np(model(x)))
    assert f.stats["compiles"] == 2  # the training-mode graph is still cached


def test_no_grad_recompiles_and_grad_mode_back_hits_again():
    model = _mlp()
    f = ember.compile(model)
    x = ember.randn(2, 4)
    _warm(f, x)
    with ember.no_grad():
        out = f(x)
    np.testing.assert_array_equal(out.numpy(), _np(model(x)))
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("grad mode changed to disabled")
    _warm(f, x)
    assert f.stats["compiles"] == 2


def test_parameter_replaced_by_a_new_parameter_is_read_from_the_module():
    model = _mlp()
    f = ember.compile(model)
    x = ember.randn(2, 4)
    _warm(f, x)
    model[0].weight = nn.Parameter(ember.randn(8, 4))
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    _warm(f, x)
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 1  # same shape, dtype and requires_grad: the graph still fits
    model[0].weight = nn.Parameter(ember.randn(8, 4), requires_grad=False)
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("param 0.weight: requires_grad is False, the graph was traced with True")


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(ember.randn(4))
        self.register_buffer("shift", ember.randn(4))

    def forward(self, x):
        return x * self.scale + self.shift


@pytest.mark.parametrize("how", ["data", "new_parameter"])
def test_parameter_resized_fails_its_guard(how):
    m = _Scaled()
    f = ember.compile(m)
    x = ember.randn(3, 4)
    _warm(f, x)
    if how == "data":
        m.scale.data = ember.randn(1)  # the same Parameter object, a new (smaller) array
    else:
        m.scale = nn.Parameter(ember.randn(1))
    np.testing.assert_array_equal(_np(f(x)), _np(m(x)))
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("param scale is float32[1], the graph was traced with float32[4]")


def test_parameter_dtype_changed_in_place_fails_its_guard():
    m = _Scaled()
    f = ember.compile(m)
    x = ember.randn(3, 4)
    _warm(f, x)
    m.scale.data = m.scale.detach().double()
    np.testing.assert_array_equal(_np(f(x)), _np(m(x)))
    assert f.stats["compiles"] == 2
    assert "param scale is float64[4]" in _last_reason(f)


def test_buffer_replaced_and_updated_in_place_are_both_seen():
    m = _Scaled()
    f = ember.compile(m)
    x = ember.randn(3, 4)
    _warm(f, x)
    m.shift = ember.randn(4)  # a new buffer tensor under the same name
    np.testing.assert_array_equal(_np(f(x)), _np(m(x)))
    with ember.no_grad():
        m.shift.add_(1.0)  # in place: the graph reads the array each call
    np.testing.assert_array_equal(_np(f(x)), _np(m(x)))
    assert f.stats["compiles"] == 1


def test_submodule_added_recompiles():
    model = _mlp()
    f = ember.compile(model)
    x = ember.randn(2, 4)
    _warm(f, x)
    model.append(nn.ReLU())
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("the module's submodules changed (3 added)")


def test_submodule_replaced_by_another_class_recompiles():
    model = _mlp()
    f = ember.compile(model)
    x = ember.randn(2, 4)
    _warm(f, x)
    model[1] = nn.Tanh()
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert _last_reason(f).endswith("the module's submodules changed (1: ReLU -> Tanh)")
    _warm(f, x)
    model[1].__class__ = nn.Sigmoid  # the same object, another class
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert _last_reason(f).endswith("the module's submodules changed (1: Tanh -> Sigmoid)")
    model[2] = nn.Linear(8, 3)  # same class: the graph reads the new layer's parameters by name
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    _warm(f, x)
    np.testing.assert_array_equal(_np(f(x)), _np(model(x)))
    assert f.stats["compiles"] == 3


def test_the_same_tensor_passed_twice_is_a_different_program():
    def g(a, b):
        b.add_(1.0)  # with a is b, the update is seen through a too
        return a * 2

    f = ember.compile(g)
    x, y = ember.randn(3), ember.randn(3)
    _warm(f, x.clone(), y.clone())
    xc, x_ref = x.clone(), x.clone()
    np.testing.assert_array_equal(f(xc, xc).numpy(), g(x_ref, x_ref).numpy())
    np.testing.assert_array_equal(xc.numpy(), x_ref.numpy())
    assert _last_reason(f).endswith("tensor arguments passed as the same tensor changed from none to 0/1")
    _warm(f, x.clone(), x.clone())  # distinct tensors again: the first graph, from the fast path
    a, b = x.clone(), x.clone()
    np.testing.assert_array_equal(f(a, b).numpy(), (x * 2).numpy())
    assert f.stats["compiles"] == 2


def test_non_tensor_argument_changes_recompile_like_the_cache_key_says():
    def g(x, c):
        return x * c

    f = ember.compile(g)
    x = ember.randn(3)
    _warm(f, x, 2.0)
    np.testing.assert_array_equal(f(x, 3.0).numpy(), g(x, 3.0).numpy())
    assert _last_reason(f).endswith("non-tensor value args[1] changed from 2.0 to 3.0")
    _warm(f, x, 3.0)
    f(x, 3)  # an int is a different constant than the float 3.0
    assert _last_reason(f).endswith("non-tensor value args[1] changed from 3.0 to 3")
    _warm(f, x, 0.0)
    neg = f(x, -0.0)  # equal as floats, different constants: the sign of zero reaches the result
    np.testing.assert_array_equal(np.signbit(neg.numpy()), np.signbit(g(x, -0.0).numpy()))
    assert _last_reason(f).endswith("non-tensor value args[1] changed from 0.0 to -0.0")
    n = f.stats["compiles"]
    _warm(f, x, 2.0)
    assert f.stats["compiles"] == n  # every constant seen before is still cached


def test_keyword_arguments_take_the_fast_path_and_are_keyed_by_name_order_and_value():
    def g(x, *, w=None, c=1.0, d=0.0):
        return x * c + d if w is None else x * w * c + d

    f = ember.compile(g)
    x, w = ember.randn(3), ember.randn(3)
    _warm(f, x, w=w, c=2.0)
    n = f.stats["compiles"]
    w2 = ember.randn(3)
    np.testing.assert_array_equal(f(x, w=w2, c=2.0).numpy(), g(x, w=w2, c=2.0).numpy())
    assert f.stats["compiles"] == n
    np.testing.assert_array_equal(f(x, w=w, c=3.0).numpy(), g(x, w=w, c=3.0).numpy())
    assert _last_reason(f).endswith("non-tensor value kwargs['c'] changed from 2.0 to 3.0")
    _warm(f, x, w=w, c=3.0)
    np.testing.assert_array_equal(f(x, c=3.0, w=w).numpy(), g(x, c=3.0, w=w).numpy())  # other order
    np.testing.assert_array_equal(f(x, w=w, c=3.0, d=1.0).numpy(), g(x, w=w, c=3.0, d=1.0).numpy())
    np.testing.assert_array_equal(f(x, w=w).numpy(), g(x, w=w).numpy())
    np.testing.assert_array_equal(_np(f(x)), g(x).numpy())
    _warm(f, x, w=w, c=2.0)
    np.testing.assert_array_equal(f(x, w=w, c=2.0).numpy(), g(x, w=w, c=2.0).numpy())


def test_argument_structure_changes_take_the_full_path():
    def g(x, y=None):
        return x + 1 if y is None else x + y

    f = ember.compile(g)
    x, y = ember.randn(3), ember.randn(3)
    _warm(f, x)
    np.testing.assert_array_equal(f(x, y).numpy(), g(x, y).numpy())
    np.testing.assert_array_equal(f(x, y=y).numpy(), g(x, y=y).numpy())
    np.testing.assert_array_equal(f([x, y][0]).numpy(), g(x).numpy())
    np.testing.assert_array_equal(_np(f(x)), g(x).numpy())
    assert f.stats["compiles"] == 3


def test_batchnorm_running_stats_are_written_back_on_the_fast_path():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref = copy.deepcopy(model)
    f = ember.compile(model)
    for _ in range(8):
        x = ember.randn(6, 3)
        np.testing.assert_allclose(_np(f(x)), _np(ref(x)), rtol=1e-6, atol=1e-6)
    assert f.stats["fast_calls"] >= 5
    np.testing.assert_allclose(model[1].running_mean.numpy(), ref[1].running_mean.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model[1].running_var.numpy(), ref[1].running_var.numpy(), rtol=1e-6, atol=1e-7)
    assert model[1].num_batches_tracked.item() == 8


# ------------------------------------------------------------------ training steps
def _twins(seed=0):
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, copy.deepcopy(model)


def _step_fn(model, opt):
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _batches(n, seed=0):
    g = np.random.default_rng(seed)
    return [(ember.tensor(g.standard_normal((10, 6)).astype(np.float32)), ember.tensor(g.integers(0, 3, size=10)))
            for _ in range(n)]


def _assert_same(model, ref, opt, opt_ref):
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-6, err_msg=n)
    for p, q in zip(opt.param_groups[0]["params"], opt_ref.param_groups[0]["params"]):
        for k, v in opt_ref.state.get(q, {}).items():
            np.testing.assert_allclose(_np(opt.state[p][k]), _np(v), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_training_step_with_momentum_and_scheduler_matches_eager(backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    model, ref = _twins()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    sched = ember.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    sched_ref = ember.optim.lr_scheduler.StepLR(opt_ref, step_size=2, gamma=0.5)
    f = ember.compile(_step_fn(model, opt), backend=backend)
    eager = _step_fn(ref, opt_ref)
    for x, y in _batches(8):
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
        sched.step()
        sched_ref.step()
    _assert_same(model, ref, opt, opt_ref)
    assert f.stats["compiles"] == 1 and f.stats["recompiles"] == 0, f.stats
    assert f.stats["fast_calls"] >= 5, f.stats


def test_optimizer_hyperparameter_change_recompiles_with_its_reason():
    model, ref = _twins()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    f = ember.compile(_step_fn(model, opt))
    eager = _step_fn(ref, opt_ref)
    data = _batches(8)
    for i, (x, y) in enumerate(data):
        if i == 4:
            opt.param_groups[0]["momentum"] = opt_ref.param_groups[0]["momentum"] = 0.5
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
    _assert_same(model, ref, opt, opt_ref)
    assert f.stats["compiles"] == 2
    assert _last_reason(f).endswith("an optimizer hyperparameter (not lr) changed")


def test_unfreezing_a_layer_creates_its_optimizer_state_like_eager():
    model, ref = _twins()
    for m in (model, ref):
        m[0].weight.requires_grad_(False)
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    f = ember.compile(_step_fn(model, opt))
    eager = _step_fn(ref, opt_ref)
    for i, (x, y) in enumerate(_batches(10)):
        if i == 5:
            for m in (model, ref):
                m[0].weight.requires_grad_(True)
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
    _assert_same(model, ref, opt, opt_ref)
    assert "momentum_buffer" in opt.state[model[0].weight]
    assert any("requires_grad" in r for r in f.stats["recompile_reasons"]), f.stats


def test_gradients_cleared_outside_the_step_are_noticed():
    model, ref = _twins()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    f = ember.compile(_step_fn(model, opt))
    eager = _step_fn(ref, opt_ref)
    for i, (x, y) in enumerate(_batches(9)):
        if i in (4, 6):
            for m in (model, ref):
                m[2].bias.grad = None
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
    _assert_same(model, ref, opt, opt_ref)
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=1e-5, atol=1e-6, err_msg=n)


def test_parameter_replaced_mid_training_is_not_updated_by_the_old_optimizer_graph():
    model, ref = _twins()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    f = ember.compile(_step_fn(model, opt))
    eager = _step_fn(ref, opt_ref)
    for i, (x, y) in enumerate(_batches(10)):
        if i == 5:  # the optimizers keep updating the old tensor; the models use a new one
            w = ember.randn(8, 16)
            model[2].weight = nn.Parameter(w.clone())
            ref[2].weight = nn.Parameter(w.clone())
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-6, err_msg=n)
        np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=1e-5, atol=1e-6, err_msg=n)
    _assert_same(model, ref, opt, opt_ref)


def test_restoring_a_checkpoint_mid_training_matches_eager():
    model, ref = _twins()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    f = ember.compile(_step_fn(model, opt))
    eager = _step_fn(ref, opt_ref)
    for i, (x, y) in enumerate(_batches(12)):
        if i == 4:
            saved = [copy.deepcopy(s) for s in (opt.state_dict(), opt_ref.state_dict(), model.state_dict(),
                                                ref.state_dict())]
        if i == 8:  # optimizer.load_state_dict replaces every state tensor the step graph was bound to
            opt.load_state_dict(saved[0])
            opt_ref.load_state_dict(saved[1])
            model.load_state_dict(saved[2])
            ref.load_state_dict(saved[3])
        np.testing.assert_allclose(float(f(x, y)), float(eager(x, y)), rtol=1e-5, atol=1e-6)
    _assert_same(model, ref, opt, opt_ref)
    assert _last_reason(f).endswith("optimizer state was replaced (load_state_dict?)")
