"""Every primitive's numpy kernel against an independent numpy reference (the op database).

Also checks the kernel's output against the primitive's type rule (shape and dtype), which
is what the graph interpreter and the compiled backends rely on.
"""

import numpy as np
import pytest

from ember.runtime.kernels import KERNELS
from tests import opdb

CASES = list(opdb.primitive_cases())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_reference(case):
    with np.errstate(all="ignore"):
        out = KERNELS[case.name](*case.inputs, **case.attrs)
    case.assert_close(out)


@pytest.mark.parametrize("case", [c for c in CASES if c.check is None], ids=lambda c: c.id)
def test_eager_primitive_call_matches_kernel(case):
    """Calling the primitive on tensors (ember.ir.dispatch -> eager handler) gives the kernel's result."""
    import ember
    tensors = [ember.from_numpy(np.array(x)) for x in case.inputs]
    with np.errstate(all="ignore"):
        out = case.prim(*tensors, **case.attrs)
    case.assert_close(out.numpy())


def test_database_covers_edge_cases():
    """The samples really include empty, 0-d and non-contiguous inputs."""
    descs = {c.desc for c in CASES}
    assert {"empty", "0d", "noncontig"} <= descs
    assert any(not x.flags.c_contiguous for c in CASES for x in c.inputs if x.size > 1)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "permuted", "prime_rows"])
@pytest.mark.parametrize("dims", [(0, 2, 3), (0, 1), (1, 2, 3), (0, 3), (0, 1, 2, 3)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_kernel_rows_first_path_matches_float64_numpy(layout, dims, keepdim):
    # the sum kernel reduces large multi-axis sums in memory order (runtime/kernels.py _sum_rows_first)
    from ember.runtime.kernels import KERNELS
    rng = np.random.default_rng(0)
    x = {"contiguous": lambda: rng.standard_normal((64, 16, 8, 8)),
         "channels_last": lambda: rng.standard_normal((64, 8, 8, 16)).transpose(0, 3, 1, 2),
         "permuted": lambda: rng.standard_normal((8, 64, 16, 8)).transpose(1, 2, 0, 3),
         "prime_rows": lambda: rng.standard_normal((67, 16, 4, 5))}[layout]().astype(np.float32)
    out = KERNELS["sum"](x, dims=dims, keepdim=keepdim)
    ref = x.astype(np.float64).sum(axis=dims, keepdims=keepdim)
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
