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
