"""NCHWc convolutions with run-time filters (runtime/onnx/nchwc.py) compute what the plain ops compute."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import ember.nn as nn
from tests.steps import train_small_cnn
from ember.runtime.onnx.nchwc import DOMAIN, block_size, rewrite_convs

pytestmark = pytest.mark.skipif(block_size() is None, reason="this ONNX Runtime has no NCHWc kernels we can drive")


def _model(op, x_shape, w_shape, **attrs):
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape),
         helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, w_shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _run(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]


B = block_size() or 8
CASES = [
    ("Conv", (2, 2 * B, 9, 7), (B, 2 * B, 3, 3), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ("Conv", (2, 1, 8, 8), (2 * B, 1, 3, 3), dict(kernel_shape=[3, 3], pads=[1, 0, 1, 2])),  # few channels
    ("Conv", (1, B, 9, 9), (B, B, 3, 2), dict(kernel_shape=[3, 2], strides=[2, 1], dilations=[1, 2],
                                              pads=[0, 1, 2, 0])),
    ("ConvTranspose", (2, 2 * B, 6, 5), (2 * B, B, 3, 3), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ("ConvTranspose", (1, B, 5, 5), (B, B, 3, 3), dict(kernel_shape=[3, 3], pads=[0, 2, 1, 0], dilations=[2, 1])),
]


@pytest.mark.parametrize("op,x_shape,w_shape,attrs", CASES)
def test_rewritten_convolution_matches_onnxruntime_plain_op(op, x_shape, w_shape, attrs):
    rng = np.random.default_rng(0)
    feed = {"x": rng.standard_normal(x_shape).astype(np.float32), "w": rng.standard_normal(w_shape).astype(np.float32)}
    model = _model(op, x_shape, w_shape, **attrs)
    rewritten = rewrite_convs(model)
    assert any(n.domain == DOMAIN for n in rewritten.graph.node)  # the case exercised the rewrite
    np.testing.assert_allclose(_run(rewritten, feed), _run(model, feed), rtol=1e-4, atol=1e-4)


def test_convolutions_it_cannot_express_are_left_alone():
    strided_transpose = _model("ConvTranspose", (1, B, 4, 4), (B, B, 3, 3), kernel_shape=[3, 3], strides=[2, 2])
    grouped = _model("Conv", (1, 2 * B, 5, 5), (2 * B, B, 3, 3), kernel_shape=[3, 3], group=2)
    odd_channels = _model("Conv", (1, B + 1, 5, 5), (B, B + 1, 3, 3), kernel_shape=[3, 3])
    for m in (strided_transpose, grouped, odd_channels):
        assert rewrite_convs(m) is m


def test_cnn_training_with_blocked_convolutions_matches_plain_convolutions_and_eager():
    def model():
        return nn.Sequential(nn.Conv2d(1, B, 3, padding=1), nn.BatchNorm2d(B), nn.ReLU(),
                             nn.Conv2d(B, 2 * B, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(2 * B * 4 * 4, 5))

    def train(backend, options=None):
        return train_small_cnn(model, backend, options)

    le, _, _ = train(None)
    lp, pp, _ = train("onnxruntime", {"nchwc": False})
    lb, pb, fn = train("onnxruntime")
    np.testing.assert_allclose(lb, le, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lb, lp, rtol=1e-5, atol=1e-5)
    for a, b in zip(pp, pb):  # 10 momentum steps through batch norm amplify rounding; the two lowerings agree
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    models = [e.compiled.model for t in (fn._static, fn._symbolic) for es in t.values() for e in es]
    assert any(n.domain == DOMAIN for m in models for n in rewrite_convs(m).graph.node)
