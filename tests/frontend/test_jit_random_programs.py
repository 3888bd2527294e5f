"""Random programs: tracing + the interpreter must equal eager bit for bit, and the IR must round-trip."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.ir.testing import assert_roundtrip

STEPS = [
    ("exp", lambda x, y: (x * 0.1).exp()),
    ("tanh", lambda x, y: x.tanh()),
    ("add", lambda x, y: x + y),
    ("mul_scalar", lambda x, y: x * 1.5 - 0.25),
    ("sub_bcast_row", lambda x, y: x - y[0]),
    ("div_bcast_col", lambda x, y: x / (y[:, :1].abs() + 1)),
    ("relu", lambda x, y: ember.relu(x)),
    ("sigmoid", lambda x, y: ember.sigmoid(x)),
    ("max_keep", lambda x, y: x - x.amax(dim=1, keepdim=True)),
    ("mean0", lambda x, y: x - x.mean(dim=0)),
    ("flip", lambda x, y: x.flip(1)),
    # (not .t().contiguous().t(): eager's copy changes the memory layout, hence numpy's summation order
    # in a later full reduction; the graph has no layout op, so that case is equal only to rounding)
    ("transpose_back", lambda x, y: (x.t() * 2).t()),
    ("where", lambda x, y: ember.where(x > y, x, y)),
    ("softmax", lambda x, y: ember.nn.functional.softmax(x, dim=1)),
    ("cat_slice", lambda x, y: ember.cat([x[:, 2:], x[:, :2]], dim=1)),
    ("matmul_sq", lambda x, y: x @ (y.t() @ y) * 0.01),
    ("reshape", lambda x, y: x.reshape(4, 3).reshape(3, 4)),
    ("clamp", lambda x, y: x.clamp(-0.5, 0.5)),
    ("inplace_add", lambda x, y: x.clone().add_(y)),
    ("setitem", lambda x, y: _setitem(x)),
]


def _setitem(x):
    z = x.clone()
    z[1] = 0.5
    return z


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(STEPS))), min_size=1, max_size=8), st.integers(0, 2**16))
def test_random_program_matches_eager(program, seed):
    def f(x, y):
        for i in program:
            x = STEPS[i][1](x, y)
        return x, x.sum()

    rng = np.random.default_rng(seed)
    x = ember.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
    y = ember.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
    traced = ember.jit.trace(f, (x, y))
    assert_roundtrip(traced.graph)
    for got, want in zip(traced(x, y), f(x, y)):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=str([STEPS[i][0] for i in program]))
