"""nn.Module core, containers, Linear/ReLU/Sequential/CrossEntropyLoss vs PyTorch."""

import numpy as np
import pytest

import ember
import ember.nn as nn

torch = pytest.importorskip("torch")


def _copy_params(src, dst):
    """Copy a torch module's parameters and buffers into the ember module (same names)."""
    sd = {k: ember.tensor(v.detach().numpy().copy()) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)


def test_mlp_forward_backward_matches_torch():
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    em = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    _copy_params(tm, em)
    x = np.random.randn(7, 6).astype(np.float32)
    y = np.array([0, 2, 1, 1, 0, 2, 2])
    tl = torch.nn.CrossEntropyLoss()(tm(torch.tensor(x)), torch.tensor(y))
    tl.backward()
    el = nn.CrossEntropyLoss()(em(ember.tensor(x)), ember.tensor(y))
    el.backward()
    np.testing.assert_allclose(el.item(), tl.item(), rtol=1e-5)
    for (n, tp), (n2, ep) in zip(tm.named_parameters(), em.named_parameters()):
        assert n == n2
        np.testing.assert_allclose(ep.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_linear_3d_input_and_no_bias():
    tl = torch.nn.Linear(4, 3, bias=False)
    el = nn.Linear(4, 3, bias=False)
    _copy_params(tl, el)
    x = np.random.randn(2, 5, 4).astype(np.float32)
    np.testing.assert_allclose(el(ember.tensor(x)).detach().numpy(), tl(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert el.bias is None and [n for n, _ in el.named_parameters()] == ["weight"]


def test_repr_matches_torch():
    def build(mod):
        class Net(mod.Module):
            def __init__(self):
                super().__init__()
                self.features = mod.Sequential(mod.Linear(784, 128), mod.ReLU(inplace=True), mod.Dropout(0.25))
                self.blocks = mod.ModuleList([mod.Linear(3, 3) for _ in range(3)] + [mod.Tanh()])
                self.heads = mod.ModuleDict({"a": mod.Identity(), "b": mod.LeakyReLU(0.2)})
                self.loss = mod.CrossEntropyLoss()
        return Net()
    assert repr(build(nn)) == repr(build(torch.nn))


def test_parameter_repr_and_subclass():
    p = nn.Parameter(ember.ones(2))
    assert isinstance(p, ember.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == repr(torch.nn.Parameter(torch.ones(2))).replace("torch", "ember")
    assert type(p * 2) is ember.Tensor


def test_registration_and_dedup():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = self.a  # shared submodule
            self.w = nn.Parameter(ember.zeros(3))
            self.register_buffer("stat", ember.ones(1))
            self.register_buffer("tmp", ember.ones(1), persistent=False)
    m = M()
    assert [n for n, _ in m.named_parameters()] == ["w", "a.weight", "a.bias"]
    assert len(list(m.parameters())) == 3
    assert [n for n, _ in m.named_buffers()] == ["stat", "tmp"]
    assert list(m.state_dict().keys()) == ["w", "stat", "a.weight", "a.bias", "b.weight", "b.bias"]
    assert [n for n, _ in m.named_children()] == ["a"]
    assert [n for n, _ in m.named_modules()] == ["", "a"]
    m.w = None
    assert m.w is None and "w" not in dict(m.named_parameters())
    with pytest.raises(TypeError):
        m.a = ember.ones(1)


def test_state_dict_errors_like_torch():
    em, tm = nn.Linear(4, 3), torch.nn.Linear(4, 3)
    bad_e = {"weight": ember.zeros(2, 4), "extra": ember.zeros(1)}
    bad_t = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    with pytest.raises(RuntimeError) as ee:
        em.load_state_dict(bad_e)
    with pytest.raises(RuntimeError) as te:
        tm.load_state_dict(bad_t)
    assert str(ee.value) == str(te.value).replace("torch.Size", "ember.Size")
    # non-strict still rejects shape mismatches but reports missing/unexpected keys
    res = em.load_state_dict({"bias": ember.ones(3), "extra": ember.zeros(1)}, strict=False)
    assert res.missing_keys == ["weight"] and res.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(em.bias.detach().numpy(), np.ones(3, np.float32))
    assert repr(em.load_state_dict(em.state_dict())) == "<All keys matched successfully>"


def test_state_dict_round_trip_keeps_parameter_identity():
    a, b = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w = b[0].weight
    b.load_state_dict(a.state_dict())
    assert b[0].weight is w
    for (k, v1), (_, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(v1.numpy(), v2.numpy())
    assert list(a.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                    "1.running_var", "1.num_batches_tracked"]


def test_train_eval_to_apply_zero_grad_requires_grad():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    assert m.training and m[1].training
    m.eval()
    assert not m.training and not m[1].training
    m.to(ember.float64)
    assert m[0].weight.dtype is ember.float64 and isinstance(m[0].weight, nn.Parameter)
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Dropout", "Sequential"]
    m(ember.ones(1, 2, dtype=ember.float64)).sum().backward()
    assert m[0].weight.grad is not None
    m.zero_grad()
    assert m[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_forward_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out) or out + 1)
    out = m(ember.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), m.bias.detach().numpy()[None] + 1, rtol=1e-6)
    h1.remove()
    h2.remove()
    m(ember.ones(1, 2))
    assert len(calls) == 1


def test_sequential_indexing_slicing_append():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Linear)
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2
    s.append(nn.Sigmoid())
    assert len(s) == 4 and isinstance(s[3], nn.Sigmoid)
    del s[1]
    assert list(s._modules) == ["0", "1", "2"]
    with pytest.raises(IndexError):
        s[10]


def test_parameter_list_dict_repr_matches_torch():
    def build(mod, lib):
        pl = mod.ParameterList([mod.Parameter(lib.ones(2, 3)), mod.Parameter(lib.zeros(4))])
        pd = mod.ParameterDict({"a": mod.Parameter(lib.ones(2)), "b": mod.Parameter(lib.ones(1, 1))})
        return repr(pl), repr(pd), len(list(pl.parameters())), len(list(pd.parameters()))
    got, want = build(nn, ember), build(torch.nn, torch)
    assert got[2:] == want[2:]
    assert got[0] == want[0].replace("torch", "ember")
    assert got[1] == want[1].replace("torch", "ember")


def test_load_state_dict_assign_and_buffers():
    m = nn.BatchNorm1d(3)
    new_w = ember.tensor([1.0, 2.0, 3.0])
    sd = dict(m.state_dict())
    sd["weight"] = new_w
    m.load_state_dict(sd, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    np.testing.assert_array_equal(m.weight.detach().numpy(), [1.0, 2.0, 3.0])

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.kept = nn.Buffer(ember.ones(2))
            self.temp = nn.Buffer(ember.zeros(2), persistent=False)

    mm = M()
    assert [n for n, _ in mm.named_buffers()] == ["kept", "temp"]
    assert list(mm.state_dict()) == ["kept"]


def test_hooks_with_kwargs_prepend_and_always_call():
    order = []

    class Boom(nn.Module):
        def forward(self, x, *, scale=1.0):
            if scale < 0:
                raise ValueError("boom")
            return x * scale

    m = Boom()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": kwargs.get("scale", 1.0) * 2}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append("second"))
    m.register_forward_hook(lambda mod, args, out: order.append("first"), prepend=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("always", out is None)), with_kwargs=True,
                            always_call=True)
    out = m(ember.ones(2), scale=1.5)
    np.testing.assert_array_equal(out.numpy(), [3.0, 3.0])
    assert order == ["first", "second", ("always", False)]
    with pytest.raises(ValueError, match="boom"):
        m(ember.ones(2), scale=-1.0)
    assert order[-1] == ("always", True)


def test_module_to_cuda_without_gpu_raises_like_torch():
    m = nn.Linear(2, 2)
    if not ember.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError), match="(?i)cuda|nvidia|gpu"):
            m.to("cuda")
    with pytest.raises(TypeError, match="floating point"):
        m.to(ember.int64)


def test_named_modules_duplicates_and_get_submodule():
    shared = nn.Linear(2, 2)
    s = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in s.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in s.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert s.get_submodule("2") is shared
    assert s.get_parameter("0.weight") is shared.weight
    with pytest.raises(AttributeError):
        s.get_submodule("5")
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert repr(ml) == repr(torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)]))
