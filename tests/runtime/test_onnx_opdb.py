"""Every sample of the op database (tests/opdb.py) through ONNX Runtime, against its reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ember.ir import types as T
from ember.ir.graph import Graph, GraphBuilder
from ember.runtime.onnx import compile_onnxruntime, graph_to_onnx
from tests import opdb

CASES = list(opdb.primitive_cases())
_LOW = {np.dtype(np.float16), np.dtype(T.bfloat16.np)}
# onnxruntime's CPU Conv/ConvTranspose/AveragePool are float32-only: float64 runs in float32
_F32_ONLY = {"conv2d", "conv_transpose2d", "avg_pool2d"}


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.id}" for i, c in enumerate(CASES)])
def test_opdb_case_through_onnxruntime(case):
    g = Graph(f"opdb_{case.name}")
    ins = [g.add_input(t, f"x{i}") for i, t in enumerate(case.input_types())]
    with GraphBuilder(g):
        g.outputs = [case.prim(*ins, **case.attrs)]
    model = graph_to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    (got,) = compile_onnxruntime(g, {})([np.asarray(x) for x in case.inputs])
    low = any(np.asarray(x).dtype in _LOW for x in case.inputs) or g.outputs[0].dtype.np in _LOW
    f64_in_f32 = case.name in _F32_ONLY and any(np.asarray(x).dtype == np.float64 for x in case.inputs)
    if low:
        case.assert_close(got, rtol=2e-2, atol=2e-2)
    elif f64_in_f32 or case.name in ("log1p", "expm1"):  # ONNX has no Log1p/Expm1: log(1+x), exp(x)-1
        case.assert_close(got, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-5))
    else:
        case.assert_close(got)
