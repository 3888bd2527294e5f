"""ember.onnx.export: torch.onnx.export's contract, checked models, dynamic axes, verification."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import ember
import ember.nn as nn
from ember.onnx import OnnxExportError, TrainingMode


def _mlp():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _run(path_or_bytes, feeds):
    sess = ort.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_export_mlp_to_path_matches_eager(tmp_path):
    m = _mlp()
    x = ember.randn(3, 8)
    path = tmp_path / "mlp.onnx"
    ember.onnx.export(m, (x,), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and model.opset_import[0].version == 18
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(inits)
    np.testing.assert_array_equal(inits["0.weight"], m[0].weight.detach().numpy())
    for batch in (1, 3, 9):
        xb = np.random.randn(batch, 8).astype(np.float32)
        (got,) = _run(str(path), {"x": xb})
        np.testing.assert_allclose(got, m(ember.from_numpy(xb)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_node_names_and_metadata_carry_module_and_source_line(tmp_path):
    m = _mlp()
    buf = io.BytesIO()
    ember.onnx.export(m, ember.randn(2, 8), buf)
    model = onnx.load_from_string(buf.getvalue())
    matmuls = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    assert matmuls and all(n.name.startswith(("0 (Linear)", "2 (Linear)")) for n in matmuls)
    props = {p.key: p.value for p in matmuls[0].metadata_props}
    assert props["module"].startswith("0") and ":" in props["source"]


def test_verify_reports_max_error_per_output():
    m = _mlp()
    res = ember.onnx.export(m, (ember.randn(2, 8),), None, output_names=["out"], verify=True)
    assert set(res.max_errors) == {"out"} and res.max_errors["out"] < 1e-5
    assert "out: max abs error" in res.report()


def test_export_params_false_keeps_weights_as_inputs():
    m = _mlp()
    res = ember.onnx.export(m, (ember.randn(2, 8),), None, input_names=["x"], export_params=False)
    assert [i.name for i in res.model.graph.input] == ["x", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert not res.model.graph.initializer


def test_specialized_dynamic_dimension_fails_loudly():
    class Flatten4(nn.Module):
        def forward(self, x):
            return x.reshape(4, 3).sum(1)  # the batch size baked in as a constant

    with pytest.raises(OnnxExportError, match="second size"):
        ember.onnx.export(Flatten4(), (ember.randn(4, 3),), None, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})


def test_dynamic_axes_as_a_list_get_torch_style_names():
    m = _mlp()
    res = ember.onnx.export(m, (ember.randn(2, 8),), None, input_names=["x"], dynamic_axes={"x": [0]})
    assert res.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dynamic_axes_1"
    assert res.dynamic_checked


def test_unsupported_opset_is_refused_clearly():
    with pytest.raises(OnnxExportError, match="opset_version=7 is not supported"):
        ember.onnx.export(_mlp(), (ember.randn(2, 8),), None, opset_version=7)


def test_training_mode_eval_restores_and_exports_eval_dropout():
    m = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    m.train()
    res = ember.onnx.export(m, (ember.randn(2, 8),), None, training=TrainingMode.EVAL, verify=True)
    assert m.training
    assert not any(n.op_type.startswith("Random") for n in res.model.graph.node)


def test_large_models_use_external_data(tmp_path, monkeypatch):
    from ember.onnx import _export
    monkeypatch.setattr(_export, "_TWO_GB", 100)  # pretend the threshold is tiny
    m = _mlp()
    path = tmp_path / "big.onnx"
    ember.onnx.export(m, (ember.randn(2, 8),), str(path), input_names=["x"])
    assert (tmp_path / "big.onnx.data").exists()
    model = onnx.load(str(path), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    ext = [e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"]
    assert ext and all(loc == "big.onnx.data" for loc in ext)  # relative path
    x = np.random.randn(2, 8).astype(np.float32)
    (got,) = _run(str(path), {"x": x})
    np.testing.assert_allclose(got, m(ember.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_exported_linear_layers_are_single_gemms_without_expand():
    res = ember.onnx.export(_mlp(), (ember.randn(2, 8),), None, input_names=["x"], dynamic_axes={"x": {0: "b"}})
    ops = [n.op_type for n in res.model.graph.node]
    assert ops.count("Gemm") == 2 and "Expand" not in ops and "Transpose" not in ops


def test_eval_batchnorm_folds_into_conv_in_onnxruntime(tmp_path):
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    m.train()
    m(ember.randn(8, 1, 6, 6))  # non-trivial running statistics
    m.eval()
    path = tmp_path / "cbr.onnx"
    ember.onnx.export(m, (ember.randn(2, 1, 6, 6),), str(path), input_names=["x"], verify=True)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert not {"Sub", "Mul", "Add", "Div", "Sqrt"} & set(ops), ops


def _conv_bn_net():
    ember.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    m.train()
    m(ember.randn(8, 1, 6, 6))  # non-trivial running statistics
    return m


def test_constant_folding_exports_conv_bn_as_one_conv_like_torch():
    m = _conv_bn_net()
    m.eval()
    x = ember.randn(2, 1, 6, 6)
    res = ember.onnx.export(m, (x,), None, input_names=["x"], dynamic_axes={"x": {0: "batch"}}, verify=True)
    g = res.model.graph
    assert [n.op_type for n in g.node] == ["Conv", "Relu", "Flatten", "Gemm"]  # torch.onnx.export's graph
    names = {t.name: tuple(t.dims) for t in g.initializer}
    # the untouched Linear keeps its parameter names; the conv's folded weight and bias are named after theirs
    assert names == {"4.weight": (3, 144), "4.bias": (3,), "0.weight.folded": (4, 1, 3, 3), "0.bias.folded": (4,)}
    assert max(res.max_errors.values()) < 1e-5
    xb = np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32)  # another batch size
    got = _run(res.model.SerializeToString(), {"x": xb})[0]
    np.testing.assert_allclose(got, m(ember.from_numpy(xb)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_without_constant_folding_or_in_training_mode_the_batch_norm_stays():
    m = _conv_bn_net()
    m.eval()
    x = ember.randn(2, 1, 6, 6)
    unfolded = ember.onnx.export(m, (x,), None, do_constant_folding=False, verify=True)
    assert {"0.weight", "1.weight", "1.running_var"} <= {t.name for t in unfolded.model.graph.initializer}
    assert max(unfolded.max_errors.values()) < 1e-5
    training = ember.onnx.export(m, (x,), None, training=TrainingMode.TRAINING)
    assert {"0.weight", "1.weight"} <= {t.name for t in training.model.graph.initializer}
    assert not any(t.name.endswith(".folded") for t in training.model.graph.initializer)


def test_conv_bias_is_convs_third_input_and_keeps_its_name_and_shape():
    ember.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
    res = ember.onnx.export(m, (ember.randn(1, 2, 5, 5),), None, verify=True)
    conv = res.model.graph.node[0]
    assert [n.op_type for n in res.model.graph.node] == ["Conv", "Relu"] and list(conv.input[1:]) == ["0.weight",
                                                                                                     "0.bias"]
    assert {t.name: tuple(t.dims) for t in res.model.graph.initializer} == {"0.weight": (4, 2, 3, 3), "0.bias": (4,)}
    assert max(res.max_errors.values()) < 1e-5


def test_folding_leaves_batch_sized_constants_and_folds_a_linear_batch_norm():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(3, 4), nn.BatchNorm1d(4)

        def forward(self, x):  # a constant as large as the (dynamic) batch is not a parameter value
            return self.bn(self.fc(x)) + ember.ones(x.shape[0], 4) * 2.0

    ember.manual_seed(0)
    m = M()
    m(ember.randn(8, 3))  # running statistics
    m.eval()
    res = ember.onnx.export(m, (ember.randn(2, 3),), None, input_names=["x"], dynamic_axes={"x": {0: "b"}},
                            verify=True)
    names = {t.name for t in res.model.graph.initializer}
    assert {"fc.weight", "fc.bias"} <= names and not {"bn.weight", "bn.running_mean"} & names
    assert max(res.max_errors.values()) < 1e-5
    xb = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    got = _run(res.model.SerializeToString(), {"x": xb})[0]
    np.testing.assert_allclose(got, m(ember.from_numpy(xb)).detach().numpy(), rtol=1e-5, atol=1e-5)
