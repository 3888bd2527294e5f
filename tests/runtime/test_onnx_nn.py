"""Every nn layer and loss, traced and run in ONNX Runtime, matches eager (numpy kernels)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import ember
import ember.nn as nn
from ember.runtime.onnx import graph_to_onnx


def _x(*shape, lo=None):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if lo is not None:
        a = np.abs(a) + lo
    return ember.from_numpy(a)


def _idx(n, high):
    return ember.from_numpy(np.random.default_rng(1).integers(0, high, size=(n,)))


def _prob(*shape):
    return ember.from_numpy(np.random.default_rng(2).uniform(0.05, 0.95, shape).astype(np.float32))


LAYERS = {
    "Linear": (lambda: nn.Linear(6, 4), lambda: (_x(3, 6),)),
    "Bilinear-free MLP": (lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)), lambda: (_x(5, 6),)),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), lambda: (_x(2, 3, 9, 9),)),
    "Conv2d-groups-dilation": (lambda: nn.Conv2d(4, 4, 3, groups=2, dilation=2, padding=2), lambda: (_x(1, 4, 8, 8),)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
                        lambda: (_x(2, 3, 5, 5),)),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: (_x(2, 3, 9, 9),)),
    "MaxPool2d-ceil": (lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: (_x(1, 2, 7, 7),)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), lambda: (_x(2, 3, 8, 8),)),
    "AvgPool2d-ceil-nopad": (lambda: nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
                             lambda: (_x(1, 2, 7, 7),)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 2)), lambda: (_x(2, 3, 8, 8),)),
    "BatchNorm2d-eval": (lambda: nn.BatchNorm2d(3).eval(), lambda: (_x(2, 3, 4, 4),)),
    "BatchNorm2d-train": (lambda: nn.BatchNorm2d(3), lambda: (_x(4, 3, 4, 4),)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(5), lambda: (_x(6, 5),)),
    "LayerNorm": (lambda: nn.LayerNorm(6), lambda: (_x(3, 4, 6),)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), lambda: (_x(2, 4, 3, 3),)),
    "Embedding": (lambda: nn.Embedding(10, 4), lambda: (_idx(7, 10),)),
    "Dropout-eval": (lambda: nn.Dropout(0.5).eval(), lambda: (_x(4, 4),)),
    "ReLU": (lambda: nn.ReLU(), lambda: (_x(4, 5),)),
    "GELU": (lambda: nn.GELU(), lambda: (_x(4, 5),)),
    "GELU-tanh": (lambda: nn.GELU(approximate="tanh"), lambda: (_x(4, 5),)),
    "SiLU": (lambda: nn.SiLU(), lambda: (_x(4, 5),)),
    "Sigmoid": (lambda: nn.Sigmoid(), lambda: (_x(4, 5),)),
    "Tanh": (lambda: nn.Tanh(), lambda: (_x(4, 5),)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), lambda: (_x(4, 5),)),
    "ELU": (lambda: nn.ELU(), lambda: (_x(4, 5),)),
    "Softplus": (lambda: nn.Softplus(), lambda: (_x(4, 5),)),
    "Softmax": (lambda: nn.Softmax(dim=1), lambda: (_x(4, 5),)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), lambda: (_x(4, 5),)),
    "Flatten": (lambda: nn.Flatten(), lambda: (_x(2, 3, 4),)),
    "MSELoss": (lambda: nn.MSELoss(), lambda: (_x(4, 3), _x(4, 3) * 0.5)),
    "L1Loss": (lambda: nn.L1Loss(), lambda: (_x(4, 3), _x(4, 3) * 0.5)),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(), lambda: (_x(4, 3), _x(4, 3) * 0.5)),
    "HuberLoss": (lambda: nn.HuberLoss(delta=0.5), lambda: (_x(4, 3), _x(4, 3) * 0.5)),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), lambda: (_x(6, 5), _idx(6, 5))),
    "CrossEntropyLoss-smoothing": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), lambda: (_x(6, 5), _idx(6, 5))),
    "NLLLoss": (lambda: nn.NLLLoss(), lambda: (_x(6, 5), _idx(6, 5))),
    "BCELoss": (lambda: nn.BCELoss(), lambda: (_prob(4, 3), _prob(4, 3))),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(), lambda: (_x(4, 3), _prob(4, 3))),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"), lambda: (_x(4, 3), _prob(4, 3))),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_through_onnxruntime_matches_eager(name):
    make, args_fn = LAYERS[name]
    ember.manual_seed(0)
    try:
        m = make()
    except (AttributeError, TypeError) as exc:  # a layer the nn package does not have (yet)
        pytest.skip(f"nn has no {name}: {exc}")
    args = args_fn()
    with ember.no_grad():
        want = m(*args)
        traced = ember.jit.trace(m, args, backend="onnxruntime")
        onnx.checker.check_model(graph_to_onnx(traced.graph, param_values=traced.weights()), full_check=True)
        got = traced(*args)
    want_l = want if isinstance(want, tuple) else (want,)
    got_l = got if isinstance(got, tuple) else (got,)
    for g, w in zip(got_l, want_l):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("padding", [(1, 1), (0, 2), (0, 0)])
def test_small_output_large_kernel_conv_lowered_as_gemm_matches_torch(padding):
    """A convolution with a few output positions and a kernel as large as the image (a weight
    gradient's shape) is lowered as windows x Gemm, not Conv; values match torch's conv2d."""
    ops = _conv_in_onnxruntime_matches_torch((5, 6, 8, 9), (4, 6, 8, 8), padding, seed=3)
    assert "Conv" not in ops and "Gemm" in ops


def _conv_in_onnxruntime_matches_torch(x_shape, w_shape, padding, seed) -> list:
    """Lower ``conv2d(x, w, padding)`` to ONNX, run it in ONNX Runtime, compare with torch's conv2d; the op list."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    traced = ember.jit.trace(lambda a, b: ember.nn.functional.conv2d(a, b, padding=padding),
                             (ember.from_numpy(x), ember.from_numpy(w)))
    model = graph_to_onnx(traced.graph, export_params=False)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, dict(zip([i.name for i in model.graph.input], (x, w))))[0]
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("padding", [(1, 1), (2, 1), (0, 0)])
def test_kernel_as_large_as_the_image_lowered_as_shifted_flat_windows_matches_torch(padding, stacked, monkeypatch):
    """A 'same' conv's weight gradient has a kernel exactly the size of its input: the windows are shifted
    contiguous slices of the flat input, masked at the image border, in one stacked Gemm (or one per window
    when the stack would be large); values match torch's conv2d."""
    from ember.runtime.onnx import ops_nn
    if not stacked:
        monkeypatch.setattr(ops_nn, "_STACKED_WINDOWS_LIMIT", 0)
    ops = _conv_in_onnxruntime_matches_torch((5, 6, 8, 8), (4, 6, 8, 8), padding, seed=4)
    assert "Conv" not in ops and ops.count("Gemm") == (1 if stacked else (2 * padding[0] + 1) * (2 * padding[1] + 1))


@pytest.mark.parametrize("batch", [1, 3])
def test_weight_gradient_conv_with_a_symbolic_batch_matches_torch(batch):
    """The weight-gradient shape (batch as the conv's input channels) with the batch symbolic: the flat-window
    lowering tiles its masks at run time, so one model serves every batch size."""
    torch = pytest.importorskip("torch")
    from ember.ir import types as T
    from ember.ir.graph import Graph, GraphBuilder
    from ember.ir.ops.nn import conv2d
    from ember.runtime.onnx import compile_onnxruntime
    g = Graph("wgrad")
    x = g.add_input(T.TensorType(T.float32, (3, "B", 8, 7)), "x")
    w = g.add_input(T.TensorType(T.float32, (4, "B", 8, 7)), "w")
    with GraphBuilder(g):
        g.outputs = [conv2d(x, w, stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)]
    model = graph_to_onnx(g, export_params=False)
    assert "Conv" not in [n.op_type for n in model.graph.node]
    rng = np.random.default_rng(5)
    xv = rng.standard_normal((3, batch, 8, 7)).astype(np.float32)
    wv = rng.standard_normal((4, batch, 8, 7)).astype(np.float32)
    got = compile_onnxruntime(g, {})([xv, wv])[0]
    want = torch.nn.functional.conv2d(torch.from_numpy(xv), torch.from_numpy(wv), padding=1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
