"""The "onnxruntime" backend: providers, resident state, dtype boundaries."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import ROLE_PARAM, ROLE_STATE, Graph, GraphBuilder
from ember.runtime.backend import compile_graph
from ember.runtime.onnx import ProviderError


def _sgd_graph():
    """One SGD-momentum update: (w, v, g) -> (w - lr * v', v' = 0.9 v + g)."""
    g = Graph("sgd")
    w = g.add_input(T.TensorType(T.float32, (4, 3)), "w", ROLE_PARAM)
    v = g.add_input(T.TensorType(T.float32, (4, 3)), "v", ROLE_STATE)
    grad = g.add_input(T.TensorType(T.float32, (4, 3)), "grad")
    with GraphBuilder(g):
        v2 = P.add(P.mul(v, P.full(shape=(4, 3), value=0.9, dtype=T.float32)), grad)
        w2 = P.sub(w, P.mul(v2, P.full(shape=(4, 3), value=0.1, dtype=T.float32)))
    g.outputs = [w2, v2]
    return g


def test_registered_and_resident_state_round_trips_without_rewrapping():
    c = compile_graph(_sgd_graph(), "onnxruntime")
    assert c.resident == {"w", "v"}
    rng = np.random.default_rng(0)
    w, v = rng.standard_normal((4, 3)).astype(np.float32), np.zeros((4, 3), np.float32)
    w_ref, v_ref = w.copy(), v.copy()
    for step in range(5):
        grad = rng.standard_normal((4, 3)).astype(np.float32)
        w, v = c([w, v, grad])  # feed the returned arrays back, as a caller writing back would
        v_ref = 0.9 * v_ref + grad
        w_ref = w_ref - 0.1 * v_ref
        np.testing.assert_allclose(w, w_ref, rtol=1e-6)
        np.testing.assert_allclose(v, v_ref, rtol=1e-6)
    assert c.calls == 5
    assert c.uploads == 2  # only the first call wrapped w and v; later calls reused the session's own values


@pytest.mark.skipif(ember.cuda.backend_available(), reason="a GPU is present (tests/runtime/test_cuda_paths.py)")
def test_cuda_without_a_gpu_is_reported_not_replaced():
    with pytest.raises(ProviderError, match="CUDAExecutionProvider|cuda"):
        compile_graph(_sgd_graph(), "onnxruntime", {"device": "cuda"})


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        compile_graph(_sgd_graph(), "onnxruntime", {"device": "tpu"})


def test_bfloat16_inputs_and_outputs_cross_the_boundary_exactly():
    g = Graph("bf")
    x = g.add_input(T.TensorType(T.bfloat16, (5,)), "x")
    with GraphBuilder(g):
        g.outputs = [P.add(x, x)]
    a = np.array([1.5, -2.25, 3.0, 0.0078125, 100.0], dtype=T.bfloat16.np)
    (y,) = compile_graph(g, "onnxruntime")([a])
    assert y.dtype == T.bfloat16.np
    np.testing.assert_array_equal(y.astype(np.float32), (a.astype(np.float32) * 2))


def test_column_major_state_is_fed_and_returned_transposed_without_copies():
    g = _sgd_graph()
    g.meta["writeback"] = [[0, "value", "w"], [1, "value", "v"]]
    c = compile_graph(g, "onnxruntime")
    rng = np.random.default_rng(1)
    w = np.asfortranarray(rng.standard_normal((4, 3)).astype(np.float32))
    v = np.asfortranarray(np.zeros((4, 3), np.float32))
    grad = rng.standard_normal((4, 3)).astype(np.float32)
    w2, v2 = c([w, v, grad])
    np.testing.assert_allclose(v2, grad, rtol=1e-6)
    np.testing.assert_allclose(w2, w - 0.1 * grad, rtol=1e-6)
    assert w2.flags.f_contiguous and v2.flags.f_contiguous  # same layout as the buffers they are written into
    assert len(c._variants) == 2  # the row-major model and one transposed-boundary variant


def test_session_threading_options_run_and_bad_values_are_refused():
    rng = np.random.default_rng(0)
    w, v, grad = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3))
    expected = None
    for options in ({"spin": True}, {"spin": False}, {"execution_mode": "parallel", "threads": 1}):
        out = compile_graph(_sgd_graph(), "onnxruntime", {"inplace_outputs": False, **options})([w, v, grad])
        if expected is not None:
            for a, b in zip(out, expected):
                np.testing.assert_array_equal(a, b)
        expected = out
    np.testing.assert_allclose(expected[1], 0.9 * v + grad, rtol=1e-6)
    with pytest.raises(ValueError, match="execution_mode must be 'sequential' or 'parallel'"):
        compile_graph(_sgd_graph(), "onnxruntime", {"execution_mode": "async"})
