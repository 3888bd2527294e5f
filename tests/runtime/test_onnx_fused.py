"""Fused groups (passes' ``fuse``) lower to ONNX inlined or as model-local functions; both match eager."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import ember
import ember.nn as nn
from ember.runtime.onnx import compile_onnxruntime, graph_to_onnx


def _fused_graph():
    from ember.passes.manager import run_pipeline
    ember.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 4), nn.Softmax(dim=-1))
    x = ember.randn(8, 16)
    traced = ember.jit.trace(m, (x,), dynamic={0: {0: "B"}})
    graph = run_pipeline(traced.graph, "fuse").graph
    return m, x, graph, traced.weights()


@pytest.mark.parametrize("mode", ["inline", "function"])
def test_fused_groups_lower_and_match_eager(mode):
    m, x, graph, weights = _fused_graph()
    assert any(n.op == "fused" for n in graph.nodes)
    model = graph_to_onnx(graph, fuse_mode=mode, param_values=weights)
    onnx.checker.check_model(model, full_check=True)
    if mode == "function":
        assert model.functions and all(f.domain == "ember.fused" for f in model.functions)
        assert any(n.domain == "ember.fused" for n in model.graph.node)
    else:
        assert not model.functions
    arrays = [x.numpy()] + [weights[v.name] for v in graph.inputs[1:]]
    for batch in (8, 3):
        xb = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        (got,) = compile_onnxruntime(graph, {"fuse_mode": mode})([xb] + arrays[1:])
        np.testing.assert_allclose(got, m(ember.from_numpy(xb)).detach().numpy(), rtol=1e-5, atol=1e-6)
