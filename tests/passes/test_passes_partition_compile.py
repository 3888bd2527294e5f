"""ember.compile of a forward whose output is differentiated outside: partitioned joint graph."""

import numpy as np
import pytest

import ember

nn = pytest.importorskip("ember.nn")
if not hasattr(ember.jit, "compile"):
    pytest.skip("ember.compile is not available yet", allow_module_level=True)


def _net():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def test_backward_outside_the_compiled_forward_matches_eager():
    x = ember.randn(5, 6)
    eager, comp = _net(), _net()
    f = ember.compile(comp, options={"backward": True})
    for _ in range(3):  # gradients accumulate across calls, as eager
        xe = x.clone().requires_grad_()
        xc = x.clone().requires_grad_()
        (eager(xe) ** 2).sum().backward()
        out = f(xc)
        assert out.requires_grad and out.grad_fn is not None
        (out ** 2).sum().backward()
        np.testing.assert_allclose(xc.grad.numpy(), xe.grad.numpy(), rtol=1e-5, atol=1e-6)
    for (n, pe), (_, pc) in zip(eager.named_parameters(), comp.named_parameters()):
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
    # the capture guards record whether .grad existed (it matters to graphs that accumulate into it),
    # so the call after the first backward captures once more; after that the cache holds
    assert f.stats["compiles"] <= 2


def test_no_grad_forward_has_no_backward():
    f = ember.compile(_net(), options={"backward": True})
    with ember.no_grad():
        out = f(ember.randn(2, 6))
    assert not out.requires_grad


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_compiled_model_in_an_ordinary_training_loop_by_default(backend):
    """``model = ember.compile(model)`` and an eager loop (backward and step outside), torch.compile's most
    common use: the default trains exactly as the uncompiled model; ``backward=False`` opts out."""
    def run(wrap):
        ember.manual_seed(0)
        model = ember.nn.Sequential(ember.nn.Linear(6, 5), ember.nn.ReLU(), ember.nn.Linear(5, 3))
        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        f = wrap(model)
        rng = np.random.default_rng(0)
        x = ember.from_numpy(rng.standard_normal((8, 6)).astype(np.float32))
        y = ember.from_numpy(rng.integers(0, 3, size=(8,)))
        losses = []
        for _ in range(5):
            opt.zero_grad()
            loss = ember.nn.functional.cross_entropy(f(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss))
        return losses, f
    want, _ = run(lambda m: m)
    got, f = run(lambda m: ember.compile(m, backend=backend))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert f.stats["compiles"] == 1
    off = ember.compile(ember.nn.Linear(3, 2), options={"backward": False})
    assert not off(ember.randn(4, 3)).requires_grad


def test_compiled_module_is_a_module_like_torch_compiles():
    """model = ember.compile(model) and then everything a PyTorch program does with a model."""
    class Net(ember.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.drop = ember.nn.Linear(4, 3), ember.nn.Dropout(0.5)
            self.graph = "the user's own attribute"

        def forward(self, x):
            return self.drop(self.fc(x))

        def describe(self):
            return f"Net with {self.fc.out_features} outputs"

    ember.manual_seed(0)
    net = Net()
    model = ember.compile(net)
    assert isinstance(model, ember.nn.Module) and model._orig_mod is net
    opt = ember.optim.SGD(model.parameters(), lr=0.1)  # the original's parameters
    assert [id(p) for p in model.parameters()] == [id(p) for p in net.parameters()]
    x, y = ember.randn(6, 4), ember.from_numpy(np.arange(6) % 3)
    model.train()
    opt.zero_grad()
    ember.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    model.eval()  # reaches the original: dropout off, a new graph
    assert not net.training and not net.drop.training
    with ember.no_grad():
        np.testing.assert_allclose(model(x).numpy(), net(x).numpy(), rtol=1e-6)
    assert model.stats["compiles"] == 2 and len(model.graphs) == 2
    # PyTorch's state-dict names ("_orig_mod." prefix), the module's own methods and attributes
    assert list(model.state_dict()) == ["_orig_mod.fc.weight", "_orig_mod.fc.bias"]
    assert model.describe() == "Net with 3 outputs"
    assert model.graph == "the user's own attribute"  # the module's attribute wins over the compiled .graph
    assert model.fc is net.fc
    other = ember.compile(Net())
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other._orig_mod.fc.weight.detach().numpy(), net.fc.weight.detach().numpy())
