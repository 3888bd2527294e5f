"""``ember export`` and ``ember ir model.onnx``."""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ember.tools.cli import main

MODEL = textwrap.dedent("""
    import ember.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(nn.functional.relu(self.conv(x)), 2)
            return self.fc(x.flatten(1))

    net = Net()
""")


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "model.py"
    p.write_text(MODEL)
    return p


def test_export_with_dynamic_batch_and_verify(model_file, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    rc = main(["export", f"{model_file}:net", "--input", "f32[1,3,8,8]", "-o", str(out), "--dynamic", "batch",
               "--verify"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "dynamic axis 'batch': checked at sizes 1 and" in text and "max abs error" in text
    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.random.randn(6, 3, 8, 8).astype(np.float32)})
    assert y.shape == (6, 10)


def test_export_opset_choice_and_refusal(model_file, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    assert main(["export", f"{model_file}:Net", "--input", "f32[2,3,8,8]", "-o", str(out), "--opset", "17"]) == 0
    assert onnx.load(str(out)).opset_import[0].version == 17
    assert main(["export", f"{model_file}:Net", "--input", "f32[2,3,8,8]", "-o", str(out), "--opset", "5"]) == 1
    assert "opset_version=5 is not supported" in capsys.readouterr().err


def test_ir_of_an_onnx_model_prints_ember_ir(model_file, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    main(["export", f"{model_file}:net", "--input", "f32[B,3,8,8]", "-o", str(out)])
    capsys.readouterr()
    assert main(["ir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "%x: f32[B,3,8,8]" in text and "param %conv.weight: f32[4,3,3,3]" in text
    assert "conv2d(%x, %conv.weight)" in text and "max_pool2d" in text


def test_ir_of_a_broken_onnx_file_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    assert main(["ir", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ember: error: cannot import") and len(err.strip().splitlines()) == 1
