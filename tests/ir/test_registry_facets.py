"""Every primitive has every facet the foundation owns.

A type rule, a numpy kernel, a gradient rule or an explicit non-differentiable mark, and
samples in the op database (which drive kernel, gradient and backend tests).
"""

import pytest

from ember.ir import PRIMITIVES
from ember.runtime.kernels import KERNELS
from tests import opdb

# graph-structural ops hold a subgraph of primitives (fusion groups, made after autodiff):
# their facets are those of the body's ops, which are checked here one by one
STRUCTURAL = {"fused"}
NAMES = sorted(set(PRIMITIVES) - STRUCTURAL)
COVERED = {c.name for c in opdb.primitive_cases()}
GRAD_COVERED = {c.name for c in opdb.grad_cases()}


@pytest.mark.parametrize("name", NAMES)
def test_primitive_has_every_facet(name):
    prim = PRIMITIVES[name]
    assert callable(prim.infer), f"{name}: no type rule"
    assert name in KERNELS, f"{name}: no numpy kernel in ember.runtime.kernels.KERNELS"
    assert (prim.vjp is not None) != prim.nondifferentiable, \
        f"{name}: needs exactly one of a VJP (def_vjp) or mark_nondifferentiable()"
    assert name in COVERED, f"{name}: no samples in tests/opdb.py (or a tests/opdb_<area>.py plugin)"
    if prim.vjp is not None:
        assert name in GRAD_COVERED, f"{name}: differentiable but no sample runs its gradient check"


def test_nondifferentiable_outputs_do_not_require_grad():
    import ember
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    for out in (x > 1, x.argmax(), ember.isnan(x), x == x):
        assert not out.requires_grad and out.grad_fn is None


def test_type_rule_rejects_bad_operands_with_shapes():
    from ember.ir.types import ShapeError, TensorType, float32, int64
    with pytest.raises(ShapeError, match=r"\[4, 7\].*\[20, 32\]"):
        PRIMITIVES["matmul"].infer(TensorType(float32, (4, 7)), TensorType(float32, (20, 32)))
    with pytest.raises(ShapeError, match="float32.*int64|dtypes differ"):
        PRIMITIVES["add"].infer(TensorType(float32, (2,)), TensorType(int64, (2,)))


# the PyTorch-level API issue 2 promises; each needs samples in the op database's function table
ISSUE_API = """add sub mul div __radd__ __rsub__ __rmul__ __rtruediv__ __rpow__ __matmul__ matmul eq ne lt le gt ge
logical_and logical_or logical_xor logical_not exp log log1p sqrt rsqrt abs pow sin cos tanh sigmoid relu clamp
where maximum minimum sign floor ceil round sum mean prod max min argmax argmin std var norm all any logsumexp view
reshape transpose permute t T mT squeeze unsqueeze flatten expand repeat cat stack split chunk contiguous
getitem""".split()


def test_issue_api_has_function_cases():
    have = {c.name for c in opdb.function_cases()}
    assert not [n for n in ISSUE_API if n not in have]
