"""Gradient rules of every differentiable primitive vs float64 central finite differences.

The analytic side runs the real eager path: the primitive is called on tensors that
require grad, the tape records it, and ``backward`` calls the registered VJP.
"""

import numpy as np
import pytest

import ember
from ember.runtime.kernels import KERNELS
from tests import opdb

CASES = list(opdb.grad_cases())
EPS = 1e-6


def _diff_inputs(case):
    nondiff = case.prim.nondiff_inputs
    return [i for i, x in enumerate(case.inputs) if x.dtype.kind == "f" and i not in nondiff]


def numeric_grads(case, ct):
    """d<ct, f(x)>/dx by central differences, one element at a time, in float64."""
    f = KERNELS[case.name]
    grads = {}
    for i in _diff_inputs(case):
        x = np.array(case.inputs[i], dtype=np.float64)
        g = np.zeros_like(x)
        for pos in np.ndindex(*x.shape):
            vals = []
            for h in (EPS, -EPS):
                xp = x.copy()
                xp[pos] += h
                ins = list(case.inputs)
                ins[i] = xp
                vals.append(np.sum(ct * np.asarray(f(*ins, **case.attrs), dtype=np.float64)))
            g[pos] = (vals[0] - vals[1]) / (2 * EPS)
        grads[i] = g
    return grads


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vjp_matches_finite_differences(case):
    tensors = []
    for i, x in enumerate(case.inputs):
        t = ember.from_numpy(np.array(x))
        if i in _diff_inputs(case):
            t.requires_grad_(True)
        tensors.append(t)
    out = case.prim(*tensors, **case.attrs)
    ct = np.random.default_rng(0).standard_normal(out.shape)
    ct = ct.astype(out.dtype.np) if out.dtype.is_floating_point else ct
    if not out.requires_grad:  # e.g. an op whose only float input is a nondiff one
        assert not _diff_inputs(case)
        return
    out.backward(ember.from_numpy(np.asarray(ct)))
    want = numeric_grads(case, ct)
    for i, g in want.items():
        got = tensors[i].grad
        assert got is not None, f"{case.id}: no gradient for input {i}"
        assert tuple(got.shape) == case.inputs[i].shape, f"{case.id}: gradient shape {tuple(got.shape)}"
        assert got.dtype is tensors[i].dtype
        np.testing.assert_allclose(got.numpy(), g, rtol=1e-5, atol=1e-6, err_msg=f"{case.id} input {i}")


# nonlinear primitives (a linear op's gradient does not depend on its input, so there is
# nothing to differentiate twice and, as in PyTorch, autograd.grad would refuse)
SECOND_ORDER = ["exp", "log", "log1p", "sin", "cos", "tanh", "sigmoid", "erf", "rsqrt", "sqrt", "mul", "div",
                "pow", "matmul", "prod"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_through_create_graph(name):
    """Gradients of gradients (create_graph=True) vs finite differences of the first gradient."""
    case = next(c for c in CASES if c.name == name and all(x.size > 1 for x in c.inputs if x.dtype.kind == "f"))
    idx = _diff_inputs(case)

    def first_grad(arrays):
        ts = [ember.from_numpy(np.array(a)) for a in arrays]
        for i in idx:
            ts[i].requires_grad_(True)
        out = case.prim(*ts, **case.attrs)
        ct = ember.from_numpy(np.random.default_rng(1).standard_normal(tuple(out.shape)))
        gs = ember.autograd.grad((out * ct).sum(), [ts[i] for i in idx], create_graph=True)
        return ts, gs

    ts, gs = first_grad(case.inputs)
    w = [np.random.default_rng(2 + k).standard_normal(g.shape) for k, g in enumerate(gs)]
    total = sum((g * ember.from_numpy(wk)).sum() for g, wk in zip(gs, w))
    second = ember.autograd.grad(total, [ts[i] for i in idx], allow_unused=True)
    for k, i in enumerate(idx):
        x = np.array(case.inputs[i], dtype=np.float64)
        num = np.zeros_like(x)
        for pos in np.ndindex(*x.shape):
            vals = []
            for h in (EPS, -EPS):
                arrays = list(case.inputs)
                xp = x.copy()
                xp[pos] += h
                arrays[i] = xp
                _, g2 = first_grad(arrays)
                vals.append(sum(float((gj.detach().numpy() * wj).sum()) for gj, wj in zip(g2, w)))
            num[pos] = (vals[0] - vals[1]) / (2 * EPS)
        got = second[k].numpy() if second[k] is not None else np.zeros_like(x)
        np.testing.assert_allclose(got, num, rtol=1e-4, atol=1e-5, err_msg=f"{name} d2/dx{i}")
