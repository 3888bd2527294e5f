"""TVM writes a training step's updated parameters and state into their own buffers (runtime/tvm/inplace.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.optim as optim
from tests.steps import classification_step
from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import ROLE_PARAM, ROLE_STATE, Graph, GraphBuilder
from ember.runtime.backend import compile_graph
from ember.runtime.tvm.dlpack import aligned_empty

pytest.importorskip("tvm")


def _sgd_graph():
    """(w, v, g) -> (w - 0.1 v', v' = 0.9 v + g), both outputs written back to their inputs."""
    g = Graph("sgd")
    w = g.add_input(T.TensorType(T.float32, (64, 32)), "w", ROLE_PARAM)
    v = g.add_input(T.TensorType(T.float32, (64, 32)), "v", ROLE_STATE)
    grad = g.add_input(T.TensorType(T.float32, (64, 32)), "grad")
    with GraphBuilder(g):
        v2 = P.add(P.mul(v, P.full(shape=(64, 32), value=0.9, dtype=T.float32)), grad)
        w2 = P.sub(w, P.mul(v2, P.full(shape=(64, 32), value=0.1, dtype=T.float32)))
    g.outputs = [w2, v2]
    g.meta["writeback"] = [[0, "value", "w"], [1, "value", "v"]]
    return g


def _aligned(a):
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def test_updates_land_in_the_callers_arrays_and_match_numpy():
    c = compile_graph(_sgd_graph(), "tvm", {"cache": False})
    assert sorted(c._inplace) == [(0, 0), (1, 1)]
    rng = np.random.default_rng(0)
    w, v = _aligned(rng.standard_normal((64, 32)).astype(np.float32)), _aligned(np.zeros((64, 32), np.float32))
    w_ref, v_ref = w.copy(), v.copy()
    view = w[3]  # a view of the parameter sees every update, as with an eager optimizer
    for _ in range(4):
        grad = rng.standard_normal((64, 32)).astype(np.float32)
        w_out, v_out = c([w, v, grad])
        v_ref = v_ref * np.float32(0.9) + grad
        w_ref = w_ref - v_ref * np.float32(0.1)
        assert w_out is w and v_out is v  # handed back: nothing to copy
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v, v_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(view, w[3])


def test_an_input_sharing_memory_with_a_target_is_not_overwritten():
    # v is the same array as the gradient input: writing v' into v in place would change grad while
    # the kernel computing w' still reads it, so the target is staged and the result is exact
    c = compile_graph(_sgd_graph(), "tvm", {"cache": False})
    rng = np.random.default_rng(1)
    w = _aligned(rng.standard_normal((64, 32)).astype(np.float32))
    shared = _aligned(rng.standard_normal((64, 32)).astype(np.float32))
    before = shared.copy()
    w_expected = w - (before * np.float32(0.9) + before) * np.float32(0.1)
    w_out, v_out = c([w, shared, shared])
    np.testing.assert_allclose(v_out, before * np.float32(0.9) + before, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_out, w_expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(shared, before)  # the shared input itself was left alone


def test_read_only_and_misaligned_inputs_are_staged_not_written():
    c = compile_graph(_sgd_graph(), "tvm", {"cache": False})
    rng = np.random.default_rng(2)
    w = _aligned(rng.standard_normal((64, 32)).astype(np.float32))
    w.flags.writeable = False
    raw = np.zeros(64 * 32 + 1, np.float32)
    v = raw[1:].reshape(64, 32)  # 4-byte offset: not 64-byte aligned
    grad = rng.standard_normal((64, 32)).astype(np.float32)
    w_before = w.copy()
    w_out, v_out = c([w, v, grad])
    np.testing.assert_array_equal(w, w_before)
    assert w_out is not w and v_out is not v
    np.testing.assert_allclose(v_out, grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_out, w_before - grad * np.float32(0.1), rtol=1e-5, atol=1e-6)


def test_compiled_training_step_keeps_parameter_storage_and_matches_eager():
    def train(backend):
        ember.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng(3)
        x = ember.from_numpy(rng.standard_normal((16, 20)).astype(np.float32))
        y = ember.from_numpy(rng.integers(0, 5, size=(16,)))

        step = classification_step(model, opt)
        fn = ember.compile(step, backend=backend) if backend else step
        fn(x, y)
        fn(x, y)
        storage = [p._data for p in model.parameters()]
        losses = [float(fn(x, y)) for _ in range(8)]
        same = [p._data is s for p, s in zip(model.parameters(), storage)]
        return losses, [p.detach().numpy().copy() for p in model.parameters()], same, fn

    le, pe, _, _ = train(None)
    lt, pt, same, fn = train("tvm")
    np.testing.assert_allclose(lt, le, rtol=1e-4, atol=1e-4)
    for a, b in zip(pe, pt):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    assert all(same)  # updated where they live, like an eager optimizer
    assert fn._last.compiled._inplace  # the compiled step writes in place
