"""ember.onnx.load: an ONNX model as a module that runs everywhere, trains and exports again."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import ember
import ember.nn as nn
import ember.optim as optim


def _cnn():
    ember.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


@pytest.fixture
def exported(tmp_path):
    m = _cnn()
    path = tmp_path / "cnn.onnx"
    ember.onnx.export(m, (ember.randn(2, 1, 8, 8),), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return m, path


def test_load_runs_eagerly_and_matches_the_original(exported):
    m, path = exported
    om = ember.onnx.load(str(path))
    assert om.input_names == ["x"] and om.output_names == ["logits"]
    assert sorted(n for n, _ in om.named_parameters()) == sorted(n for n, _ in m.named_parameters())
    for batch in (1, 5):
        x = ember.randn(batch, 1, 8, 8)
        np.testing.assert_allclose(om(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_loaded_module_compiles_on_backends(exported, backend):
    m, path = exported
    om = ember.onnx.load(str(path))
    x = ember.randn(3, 1, 8, 8)
    got = ember.compile(om, backend=backend)(x)
    np.testing.assert_allclose(got.detach().numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_loaded_module_differentiates_and_fine_tunes(exported):
    _, path = exported
    om = ember.onnx.load(str(path))
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, size=(6,))
    # gradient vs PyTorch on the same weights
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                             torch.nn.Flatten(), torch.nn.Linear(64, 10))
    tm.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in om.named_parameters()})
    loss = nn.functional.cross_entropy(om(ember.from_numpy(x)), ember.from_numpy(y))
    loss.backward()
    tl = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    tl.backward()
    for (name, p), (_, tp) in zip(om.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    # a few optimizer steps reduce the loss
    opt = optim.SGD(om.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(om(ember.from_numpy(x)), ember.from_numpy(y))
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_loaded_module_exports_again_with_its_parameter_names(exported, tmp_path):
    m, path = exported
    om = ember.onnx.load(str(path))
    again = tmp_path / "again.onnx"
    ember.onnx.export(om, (ember.randn(2, 1, 8, 8),), str(again), input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}}, verify=True)
    model = onnx.load(str(again))
    assert {t.name for t in model.graph.initializer} >= {"0.weight", "0.bias", "4.weight", "4.bias"}
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(again), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, m(ember.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_of_a_bad_file_is_one_clear_error(tmp_path):
    from ember.runtime.onnx.importer import OnnxImportError
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x12\x34garbage")
    with pytest.raises(OnnxImportError, match="not a readable ONNX model"):
        ember.onnx.load(str(p))


def test_wrong_input_shape_is_reported(exported):
    _, path = exported
    om = ember.onnx.load(str(path))
    with pytest.raises(ValueError, match="expects f32\\[batch,1,8,8\\]"):
        om(ember.randn(2, 1, 9, 8))
