"""The README demo, shortened: the digits CNN trains eagerly with loader workers, checkpoint/resume and StepLR."""

import importlib.util
import os

import pytest

pytest.importorskip("sklearn")

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "digits_cnn.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("digits_cnn_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_cnn_short_run_reaches_high_accuracy(tmp_path, capsys):
    example = _load_example()
    ckpt = tmp_path / "digits.pt"
    accuracy = example.main(["--epochs", "3", "--workers", "2", "--checkpoint", str(ckpt)])
    out = capsys.readouterr().out
    assert "checkpoint saved and resumed at epoch 1" in out
    assert ckpt.exists()
    assert accuracy >= 0.95, out
    # the compiler tour: IR printed, one compiled epoch on ONNX Runtime, ONNX export checked in ORT
    assert "graph DigitsCNN(" in out and "conv2d(%x, %features.0.weight)" in out
    assert "1 capture+compile" in out
    err = float(out.split("max |onnxruntime - eager| = ")[1].split()[0])
    assert err < 1e-4, out
