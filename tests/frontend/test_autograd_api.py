"""Autograd's user API and PyTorch's autograd errors, checked against analytic values and torch."""

import numpy as np
import pytest

import ember


def test_backward_accumulates_and_leaf_flags():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad and y.grad_fn is not None and x.grad_fn is None
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1, 2, 3]) + 3)


def test_backward_with_gradient_argument_and_non_scalar_error():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(ember.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_backward_twice_needs_retain_graph():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * (e + e * [1.0, 2.0]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = ember.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.mul_(2)
    with ember.no_grad():  # allowed without grad recording, as PyTorch (optimizer steps)
        x.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2, 2, 2])


def test_saved_tensor_modified_in_place_raises():
    x = ember.ones(3, requires_grad=True)
    y = x.exp()
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_on_non_leaf_keeps_history():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.add_(1)
    y.mul_(x)
    y.sum().backward()  # d/dx (3x+1)x = 6x+1
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 13.0])
    z = x * 3
    z.mul_(z)  # saves z, then overwrites it: PyTorch refuses this backward too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_autograd_grad_and_create_graph_higher_order():
    x = ember.tensor(2.0, requires_grad=True)
    y = x ** 3
    (g,) = ember.autograd.grad(y, x, create_graph=True)
    assert g.item() == pytest.approx(12.0) and g.requires_grad
    (g2,) = ember.autograd.grad(g, x, create_graph=True)
    assert g2.item() == pytest.approx(12.0)
    (g3,) = ember.autograd.grad(g2, x)
    assert g3.item() == pytest.approx(6.0)
    assert x.grad is None  # autograd.grad does not accumulate


def test_backward_create_graph_then_grad_of_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    (x.sin() * x).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    (h,) = ember.autograd.grad(gx.sum(), x)
    xv = np.array([1.0, 2.0])
    np.testing.assert_allclose(h.numpy(), 2 * np.cos(xv) - xv * np.sin(xv), rtol=1e-6)


def test_autograd_grad_unused_inputs():
    x = ember.tensor(1.0, requires_grad=True)
    z = ember.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used"):
        ember.autograd.grad(x * 2, [x, z])
    gx, gz = ember.autograd.grad(x * 2, [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None


def test_grad_modes_as_context_managers_and_decorators():
    x = ember.tensor(1.0, requires_grad=True)
    with ember.no_grad():
        assert not ember.is_grad_enabled()
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
    assert ember.is_grad_enabled()
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2

    @ember.enable_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad and ember.is_grad_enabled()
    with ember.no_grad():
        assert g(x).requires_grad
    ember.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        ember.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_detach_and_requires_grad_():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d2 = x.detach()
    d2[0] = 5.0  # shares memory with x, as in PyTorch
    assert x[0].item() == 5.0
    w = ember.ones(2)
    assert w.requires_grad_() is w and w.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)


def test_retain_grad_and_hooks():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(seen[0], [18.0, 36.0])


def test_grad_of_broadcast_and_int_promotion():
    x = ember.tensor([[1.0], [2.0]], requires_grad=True)  # [2, 1] broadcast against [3]
    b = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ((x * b) + 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[6.0], [6.0]])
    np.testing.assert_allclose(b.grad.numpy(), [3.0, 3.0, 3.0])
    y = ember.tensor([1.0, 2.0], requires_grad=True)
    (y * ember.tensor([2, 3])).sum().backward()  # int tensor promoted to float
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 3.0])


def test_max_with_dim_gradient_goes_to_argmax():
    x = ember.tensor([[1.0, 5.0, 5.0], [3.0, 2.0, 0.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    values.sum().backward()
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_against_torch_on_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w1, b1, w2, xin = (rng.standard_normal(s).astype(np.float32) for s in ((4, 5), (5,), (5, 2), (3, 4)))
    grads = []
    for m in (ember, torch):
        ps = [m.tensor(a, requires_grad=True) for a in (w1, b1, w2)]
        h = (m.tensor(xin) @ ps[0] + ps[1]).tanh()
        out = (h @ ps[2]).sigmoid()
        loss = (out * out).mean() + h.abs().max()
        loss.backward()
        grads.append([p.grad.numpy() for p in ps])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_backward_frees_intermediate_buffers_but_allows_saving_free_rerun():
    import gc
    import weakref
    x = ember.ones(100, requires_grad=True)
    h = (x * 2).exp()
    alive = weakref.ref(h)
    loss = (h * 3).sum()
    del h
    loss.backward()
    gc.collect()
    assert alive() is None  # saved activations go away with backward, not with the graph object
    y = x + 1  # add and sum save nothing: a second backward is allowed, as in PyTorch
    z = y.sum()
    z.backward()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy()[:2], 6 * np.exp(2.0) + 2, rtol=1e-6)


def test_functional_jacobian_and_hessian_match_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([0.5, -1.0, 2.0])
    res = []
    for m in (torch, ember):
        jac = m.autograd.functional.jacobian(lambda x: x.exp() * x.sum(), m.tensor(x0))
        hes = m.autograd.functional.hessian(lambda x: (x ** 3).sum() * x[0], m.tensor(x0))
        res.append((jac.detach().numpy(), hes.detach().numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-6)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-6)
