"""copy_/fill_/zero_ overwrite every element: NaN or inf already present must not survive."""

import numpy as np
import pytest

import ember


@pytest.mark.parametrize("traced", [False, True])
def test_copy_fill_zero_replace_nan_and_inf(traced):
    def step(a):
        out = []
        for write in (lambda t: t.copy_(ember.ones_like(t) * 5), lambda t: t.fill_(2.0), lambda t: t.zero_()):
            b = a * 1.0
            write(b)
            out.append(b)
        return tuple(out)

    a = ember.tensor([np.nan, np.inf, -1.0])
    res = ember.jit.trace(step, (a,))(a) if traced else step(a)
    for got, want in zip(res, (5.0, 2.0, 0.0)):
        np.testing.assert_array_equal(got.detach().numpy(), np.full(3, want, np.float32))


def test_overwritten_values_get_zero_gradient_and_stay_in_the_graph():
    x = ember.tensor([np.nan, 1.0, 2.0], requires_grad=True)
    y = x * 3
    y.copy_(ember.tensor([1.0, 2.0, 3.0]))
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3, np.float32))
