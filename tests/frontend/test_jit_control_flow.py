"""Value-dependent Python control flow cannot be captured: a clear TraceError at the user's line."""

import inspect

import pytest

import ember
from ember.jit import TraceError


def _line_of(fn, needle):
    lines, start = inspect.getsourcelines(fn)
    for i, text in enumerate(lines):
        if needle in text:
            return start + i
    raise AssertionError(needle)


def branch_on_sum(x):
    if x.sum() > 0:
        return x
    return -x


def item_call(x):
    return x * x.max().item()


def to_numpy(x):
    return ember.from_numpy(x.numpy() * 2)


def while_loop(x):
    while x.abs().max() > 1:
        x = x / 2
    return x


def python_float(x):
    return x * float(x.mean())


def data_dependent_shape(x):
    return x[x > 0]


@pytest.mark.parametrize("fn,needle,what", [
    (branch_on_sum, "if x.sum() > 0", "bool()"),
    (item_call, ".item()", "item()"),
    (to_numpy, ".numpy()", "numpy()"),
    (while_loop, "while x.abs()", "bool()"),
    (python_float, "x * float(", "float()"),
])
def test_value_dependent_code_raises_at_the_user_line(fn, needle, what):
    with pytest.raises(TraceError) as info:
        ember.jit.trace(fn, ember.randn(4))
    msg = str(info.value)
    assert msg.startswith(what)
    assert f"test_jit_control_flow.py:{_line_of(fn, needle)}" in msg
    assert "cannot be captured" in msg and "To fix" in msg


def test_data_dependent_shape_is_refused():
    with pytest.raises((TraceError, RuntimeError)):
        ember.jit.trace(data_dependent_shape, ember.randn(4))


def test_state_is_restored_after_a_failed_trace():
    import ember.nn as nn
    lin = nn.Linear(3, 3)

    def f(x):
        y = lin(x)
        if y.sum() > 0:
            return y
        return -y

    w_before = lin.weight.detach().numpy().copy()
    with pytest.raises(TraceError):
        ember.jit.trace(f, ember.randn(2, 3))
    from ember import _state
    assert _state.tracer is None
    assert lin.weight._value is None and lin.weight._data is not None
    assert (lin.weight.detach().numpy() == w_before).all()
    # eager still works afterwards
    assert lin(ember.randn(2, 3)).shape == (2, 3)


def test_where_is_the_capturable_alternative():
    def f(x):
        return ember.where(x.sum() > 0, x, -x)

    traced = ember.jit.trace(f, ember.randn(4))
    for x in (ember.ones(4), -ember.ones(4)):
        assert (traced(x).numpy() == f(x).numpy()).all()


def test_shape_dependent_python_is_fine():
    def f(x):
        if x.shape[0] > 2:  # shapes are known while tracing
            return x * 2
        return x

    traced = ember.jit.trace(f, ember.ones(3))
    assert (traced(ember.ones(3)).numpy() == 2).all()
