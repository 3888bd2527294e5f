"""The autocast pass: PyTorch's autocast casts inserted into a captured float32 graph."""

import numpy as np
import pytest

import ember
from ember.ir.types import bfloat16, float32
from ember.passes import autocast, dce, simplify
from ember.runtime.interpreter import Interpreter

nn = pytest.importorskip("ember.nn")


def _model():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.LogSoftmax(-1)).eval()


def test_autocast_pass_runs_matmuls_in_bf16_and_matches_eager_autocast():
    model = _model()
    x = ember.randn(4, 16)
    traced = ember.jit.trace(model, (x,))
    g = autocast(traced.graph)
    mm = [n for n in g.nodes if n.op == "matmul"]
    assert mm and all(n.output.type.dtype is bfloat16 and all(v.type.dtype is bfloat16 for v in n.inputs)
                      for n in mm)
    assert g.outputs[0].type == traced.graph.outputs[0].type  # signature unchanged (cast back)
    sums = [n for n in g.nodes if n.op == "sum"]
    assert all(n.output.type.dtype is float32 for n in sums)  # reductions in float32 (the fp32 list)
    feeds = traced._capture.gather([x])[0]
    out = Interpreter(g)(feeds)[0]
    with ember.amp.autocast("cpu"):
        ref = model(x)
    ref32 = ref.float().detach().numpy()
    full = Interpreter(traced.graph)(feeds)[0]
    np.testing.assert_allclose(out, ref32, rtol=0.05, atol=0.05)
    assert not np.array_equal(out, full)  # it really ran in lower precision
    np.testing.assert_allclose(out, full, rtol=0.05, atol=0.05)


def test_autocast_is_a_no_op_without_lower_precision_ops_and_keeps_float64():
    lin = nn.Linear(3, 3).double()
    x = ember.randn(2, 3, dtype=ember.float64)
    g = ember.jit.trace(lin, (x,)).graph
    a = dce(simplify(autocast(g)))
    assert [n.op for n in a.nodes] == [n.op for n in dce(simplify(g)).nodes]  # float64 is never cast


def test_autocast_rejects_other_dtypes():
    g = ember.jit.trace(nn.Linear(3, 3), (ember.randn(2, 3),)).graph
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        autocast(g, dtype="float64")
