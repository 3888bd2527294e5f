"""Per-channel Mul/Add/Sub as BatchNormalization kernels (runtime/onnx/channel_affine.py) compute what the
plain ops compute, and only the ops it can express are rewritten."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import ember.nn as nn
from ember.ir import types as T
from ember.runtime.onnx.channel_affine import rewrite_channel_ops
from tests.steps import train_small_cnn

F = onnx.TensorProto.FLOAT


def _model(nodes, inputs, outputs=("y",)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                              [helper.make_tensor_value_info(o, F, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _run(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def _feed(inputs, rng):
    return {n: rng.standard_normal([d if isinstance(d, int) else 3 for d in s]).astype(np.float32)
            for n, s in inputs}


X4, V4 = ("x", [2, 5, 4, 3]), ("v", [1, 5, 1, 1])
CASES = [
    ("mul", [helper.make_node("Mul", ["x", "v"], ["y"])], [X4, V4]),
    ("mul-channel-first", [helper.make_node("Mul", ["v", "x"], ["y"])], [X4, V4]),
    ("add", [helper.make_node("Add", ["x", "v"], ["y"])], [X4, V4]),
    ("sub", [helper.make_node("Sub", ["x", "v"], ["y"])], [X4, V4]),
    ("sub-reversed", [helper.make_node("Sub", ["v", "x"], ["y"])], [X4, V4]),
    ("mul-add", [helper.make_node("Mul", ["x", "v"], ["p"]), helper.make_node("Add", ["p", "b"], ["y"])],
     [X4, V4, ("b", [1, 5, 1, 1])]),
    ("rank3-trailing-vector", [helper.make_node("Add", ["x", "v"], ["y"])], [("x", [2, 5, 7]), ("v", [5, 1])]),
    ("rank5-symbolic-batch", [helper.make_node("Mul", ["x", "v"], ["y"])],
     [("x", ["N", 4, 2, 3, 2]), ("v", [1, 4, 1, 1, 1])]),
]


@pytest.mark.parametrize("name,nodes,inputs", CASES, ids=[c[0] for c in CASES])
def test_rewritten_op_matches_the_plain_op(name, nodes, inputs):
    model = _model(nodes, inputs)
    rewritten = rewrite_channel_ops(model)
    ops = _ops(rewritten)
    assert "BatchNormalization" in ops and not {"Mul", "Add", "Sub"} & set(ops), ops
    assert ops.count("BatchNormalization") == 1
    feed = _feed(inputs, np.random.default_rng(0))
    np.testing.assert_allclose(_run(rewritten, feed)[0], _run(model, feed)[0], rtol=1e-6, atol=1e-6)


def test_subtracting_the_mean_is_exact():
    model = _model([helper.make_node("Sub", ["x", "v"], ["y"])], [X4, V4])
    feed = {"x": np.full((2, 5, 4, 3), 1e4, np.float32) + np.float32(0.123),
            "v": np.full((1, 5, 1, 1), 1e4, np.float32)}
    np.testing.assert_array_equal(_run(rewrite_channel_ops(model), feed)[0], feed["x"] - feed["v"])


def test_ops_that_are_not_per_channel_are_left_alone():
    cases = [
        [("x", [2, 5, 4, 3]), ("v", [1, 1, 4, 3])],  # spatial broadcast
        [("x", [2, 5, 4, 3]), ("v", [2, 1, 1, 1])],  # per sample
        [("x", [2, 5, 4, 3]), ("v", [2, 5, 4, 3])],  # same shape
        [("x", [6, 5]), ("v", [1, 5])],  # rank 2: a row broadcast ONNX Runtime already does well
        [("x", [1, 5, 1, 1]), ("v", [1, 5, 1, 1])],  # one value per channel
        [("x", [2, 1, 4, 3]), ("v", [1, 1, 1, 1])],  # a single channel
    ]
    for inputs in cases:
        for op in ("Mul", "Add", "Sub"):
            model = _model([helper.make_node(op, ["x", "v"], ["y"])], inputs)
            assert rewrite_channel_ops(model) is model, (op, inputs)
    div = _model([helper.make_node("Div", ["x", "v"], ["y"])], [X4, V4])  # x * (1/s) would round differently
    assert rewrite_channel_ops(div) is div


def test_a_product_read_elsewhere_is_not_absorbed_into_its_add():
    nodes = [helper.make_node("Mul", ["x", "v"], ["p"]), helper.make_node("Add", ["p", "b"], ["y"]),
             helper.make_node("Relu", ["p"], ["z"])]
    inputs = [X4, V4, ("b", [1, 5, 1, 1])]
    model = _model(nodes, inputs, outputs=("y", "z"))
    rewritten = rewrite_channel_ops(model)
    assert _ops(rewritten).count("BatchNormalization") == 2  # the Mul and the Add, each on its own
    feed = _feed(inputs, np.random.default_rng(1))
    for a, b in zip(_run(rewritten, feed), _run(model, feed)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_a_bias_added_to_a_sum_joins_the_product_in_that_sum():
    # Add(Add(Mul(x, s), y), b): the bias b is computed after the inner Add, as in a batch-norm backward
    nodes = [helper.make_node("Mul", ["x", "v"], ["p"]), helper.make_node("Add", ["p", "z"], ["q"]),
             helper.make_node("Neg", ["c"], ["b"]), helper.make_node("Add", ["q", "b"], ["y"])]
    inputs = [X4, V4, ("z", [2, 5, 4, 3]), ("c", [1, 5, 1, 1])]
    model = _model(nodes, inputs)
    rewritten = rewrite_channel_ops(model)
    ops = _ops(rewritten)
    assert ops.count("BatchNormalization") == 1 and ops.count("Add") == 1 and "Mul" not in ops, ops
    defined = {i.name for i in rewritten.graph.input} | {t.name for t in rewritten.graph.initializer} | {""}
    for n in rewritten.graph.node:  # still topologically ordered
        assert set(n.input) <= defined, n
        defined |= set(n.output)
    feed = _feed(inputs, np.random.default_rng(3))
    np.testing.assert_allclose(_run(rewritten, feed)[0], _run(model, feed)[0], rtol=1e-6, atol=1e-6)


def test_shapes_from_the_lowering_reach_past_ops_onnx_cannot_infer():
    # MaxUnpool's output shape is a run-time input: ONNX's inference stops there, the lowering's shapes do not
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("MaxUnpool", ["p", "i", "s"], ["u"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Mul", ["u", "v"], ["y"])]
    inputs = [("x", [2, 5, 4, 4]), V4]
    model = _model(nodes, inputs)
    assert rewrite_channel_ops(model) is model
    rewritten = rewrite_channel_ops(model, {"u": (T.float32, (2, 5, 4, 4))})
    assert "BatchNormalization" in _ops(rewritten)
    feed = _feed(inputs, np.random.default_rng(2))
    np.testing.assert_allclose(_run(rewritten, feed)[0], _run(model, feed)[0], rtol=1e-6, atol=1e-6)


def test_batchnorm_cnn_training_with_and_without_the_rewrite_matches_eager():
    def model():
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 4 * 4, 5))

    def train(backend, options=None):
        return train_small_cnn(model, backend, options)

    le, _, _ = train(None)
    lp, sp, _ = train("onnxruntime", {"channel_affine": False})
    lb, sb, fn = train("onnxruntime")
    np.testing.assert_allclose(lb, le, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lb, lp, rtol=1e-5, atol=1e-5)
    for b, c in zip(sp, sb):  # parameters and running statistics; vs eager only through the losses, as
        np.testing.assert_allclose(c, b, rtol=1e-4, atol=1e-4)  # 10 momentum steps amplify rounding
    run_models = [m for t in (fn._static, fn._symbolic) for es in t.values() for e in es
                  for m in e.compiled.run_models.values()]
    assert any(n.op_type == "BatchNormalization" for m in run_models for n in m.graph.node)
