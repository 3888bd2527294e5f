"""The public tensor API vs PyTorch, driven by the op database's function cases.

Values, dtypes (type promotion with Python scalars and 0-d tensors included), shapes,
and gradients of every float input.
"""

import numpy as np
import pytest

import ember
from tests import opdb

torch = pytest.importorskip("torch")

CASES = list(opdb.function_cases())


def _to(module, arr, grad):
    if not isinstance(arr, np.ndarray):
        return arr
    if module is torch:
        t = torch.from_numpy(np.array(arr))
    else:
        t = ember.from_numpy(np.array(arr))
    if grad and arr.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def _flat(result):
    if isinstance(result, (tuple, list)):
        out = []
        for r in result:
            out += _flat(r)
        return out
    return [result]


def _compare(case, got, want):
    g, w = _flat(got), _flat(want)
    assert len(g) == len(w), f"{case.id}: {len(g)} results vs torch's {len(w)}"
    for a, b in zip(g, w):
        if not isinstance(b, torch.Tensor):
            assert not isinstance(a, ember.Tensor) and a == b, f"{case.id}: {a!r} != {b!r}"
            continue
        assert isinstance(a, ember.Tensor), f"{case.id}: got {type(a).__name__}, torch gives a tensor"
        assert opdb.dtype_name(a.dtype) == opdb.dtype_name(b.dtype), f"{case.id}: dtype {a.dtype} vs {b.dtype}"
        assert tuple(a.shape) == tuple(b.shape), f"{case.id}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        bn = b.detach().float().numpy() if b.dtype == torch.bfloat16 else b.detach().numpy()
        an = a.detach().numpy()
        if an.dtype.kind in "biu":
            np.testing.assert_array_equal(an, bn, err_msg=case.id)
        else:
            rtol = max(case.rtol, 1e-3) if an.dtype == np.float16 else case.rtol
            np.testing.assert_allclose(an.astype(np.float64), bn.astype(np.float64), rtol=rtol, atol=case.atol,
                                       equal_nan=True, err_msg=case.id)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_values_dtypes_shapes_match_torch(case):
    got = case.call(ember, *[_to(ember, a, False) for a in case.args])
    want = case.call(torch, *[_to(torch, a, False) for a in case.args])
    _compare(case, got, want)


GRAD_CASES = [c for c in CASES if c.grad and any(isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                                 and a.dtype != np.float16 for a in c.args)]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.id for c in GRAD_CASES])
def test_gradients_match_torch(case):
    e_args = [_to(ember, a, True) for a in case.args]
    t_args = [_to(torch, a, True) for a in case.args]
    e_out = [o for o in _flat(case.call(ember, *e_args)) if isinstance(o, ember.Tensor) and o.requires_grad]
    t_out = [o for o in _flat(case.call(torch, *t_args)) if isinstance(o, torch.Tensor) and o.requires_grad]
    assert len(e_out) == len(t_out), f"{case.id}: {len(e_out)} outputs require grad vs torch's {len(t_out)}"
    if not t_out:
        return
    rng = np.random.default_rng(0)
    cts = [rng.standard_normal(tuple(o.shape)).astype(np.float64) for o in t_out]
    e_loss = sum((o * ember.from_numpy(ct.astype(o.dtype.np))).sum() for o, ct in zip(e_out, cts))
    t_loss = sum((o * torch.from_numpy(ct).to(o.dtype)).sum() for o, ct in zip(t_out, cts))
    e_loss.backward()
    t_loss.backward()
    for ea, ta in zip(e_args, t_args):
        if isinstance(ta, torch.Tensor) and ta.requires_grad:
            if ta.grad is None:
                assert ea.grad is None or not ea.grad.numpy().any(), f"{case.id}: gradient where torch has none"
                continue
            assert ea.grad is not None, f"{case.id}: missing gradient"
            assert opdb.dtype_name(ea.grad.dtype) == opdb.dtype_name(ta.grad.dtype)
            np.testing.assert_allclose(ea.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=case.id)
