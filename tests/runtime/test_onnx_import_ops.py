"""ONNX import converters on cases ONNX's own node tests leave out: gradients through an
imported loss, dropout's random masks, inverse trig far from the node tests' range, TopK ties."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ember
from ember.runtime.onnx.conformance import _array, load_cases
from ember.runtime.onnx.importer import evaluate, import_model


def _model(nodes, inputs, outputs, inits=(), opset=18):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _vi(name, dims, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, dims)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_imported_softmax_cross_entropy_matches_torch_and_differentiates(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n, c, d = 4, 5, 3
    scores = rng.standard_normal((n, c, d)).astype(np.float32)
    labels = rng.integers(0, c, size=(n, d)).astype(np.int64)
    labels[0, 1] = labels[2, 2] = -1  # ignored positions
    weight = rng.uniform(0.5, 2.0, size=c).astype(np.float32)
    node = helper.make_node("SoftmaxCrossEntropyLoss", ["x", "y", "w"], ["loss", "log_prob"],
                            reduction=reduction, ignore_index=-1)
    loss_shape = [] if reduction != "none" else [n, d]
    m = _model([node], [_vi("x", [n, c, d]), _vi("y", [n, d], TensorProto.INT64)],
               [_vi("loss", loss_shape), _vi("log_prob", [n, c, d])],
               [numpy_helper.from_array(weight, "w")], opset=13)
    module = ember.onnx.load(m)
    x = ember.tensor(scores, requires_grad=True)
    loss, log_prob = module(x, ember.tensor(labels))
    (loss.sum() if reduction == "none" else loss).backward()

    tx = torch.tensor(scores, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(labels), weight=torch.tensor(weight),
                                              ignore_index=-1, reduction=reduction)
    (tloss.sum() if reduction == "none" else tloss).backward()
    np.testing.assert_allclose(loss.detach().numpy(), tloss.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob.detach().numpy(), torch.log_softmax(tx, 1).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_imported_nll_loss_gradient_matches_torch_4d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shape = (2, 3, 4, 2)
    logp = rng.standard_normal(shape).astype(np.float64)
    target = rng.integers(0, 3, size=(2, 4, 2)).astype(np.int64)
    m = _model([helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["loss"], ignore_index=2)],
               [_vi("x", list(shape), TensorProto.DOUBLE), _vi("t", [2, 4, 2], TensorProto.INT64)],
               [_vi("loss", [], TensorProto.DOUBLE)], opset=13)
    x = ember.tensor(logp, requires_grad=True)
    loss = ember.onnx.load(m)(x, ember.tensor(target))
    loss.backward()
    tx = torch.tensor(logp, requires_grad=True)
    tloss = torch.nn.functional.nll_loss(tx, torch.tensor(target), ignore_index=2)
    tloss.backward()
    np.testing.assert_allclose(loss.detach().numpy(), tloss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def _run(model, *arrays, static=None):
    graph, params = import_model(model, static_inputs=static)
    feed = list(arrays)
    return evaluate(graph, feed + [params[v.name] for v in graph.inputs[len(feed):]])


def test_training_dropout_mask_semantics():
    ratio = 0.3
    x = np.random.default_rng(2).standard_normal((100, 200)).astype(np.float32)
    m = _model([helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])], [_vi("x", [100, 200])],
               [_vi("y", [100, 200]), _vi("mask", [100, 200], TensorProto.BOOL)],
               [numpy_helper.from_array(np.array(ratio, np.float32), "r"),
                numpy_helper.from_array(np.array(True), "t")], opset=13)
    y, mask = _run(m, x)
    assert mask.dtype == np.bool_ and y.dtype == np.float32
    np.testing.assert_allclose(y, np.where(mask, x / (1 - ratio), 0), rtol=1e-6)
    kept, n = mask.mean(), mask.size
    assert abs(kept - (1 - ratio)) < 5 * np.sqrt(ratio * (1 - ratio) / n)
    y2, mask2 = _run(m, x)
    assert not np.array_equal(mask, mask2)  # a fresh draw each run


def test_onnx_training_dropout_node_tests_shapes_and_masks():
    """ONNX's expected values come from numpy's legacy RNG: check everything but the draw."""
    cases = [c for c in load_cases(["Dropout"]) if c.name.startswith("test_training_dropout")]
    assert len(cases) == 6
    for case in cases:
        (inputs, outputs), = case.data_sets
        x, r, t = (_array(a) for a in inputs)
        got = _run(case.model, x, static={"r": r, "t": t})
        assert [g.shape for g in got] == [np.shape(_array(o)) for o in outputs], case.name
        assert [g.dtype for g in got] == [_array(o).dtype for o in outputs], case.name
        y = got[0]
        mask = got[1] if len(got) > 1 else y != 0
        ratio = float(r)
        np.testing.assert_allclose(y, np.where(mask, x / (1 - ratio), 0), rtol=1e-6, err_msg=case.name)


@pytest.mark.parametrize("op,ref,lo,hi", [("Atan", np.arctan, -1e8, 1e8), ("Asin", np.arcsin, -1, 1),
                                          ("Acos", np.arccos, -1, 1), ("Asinh", np.arcsinh, -1e6, 1e6),
                                          ("Acosh", np.arccosh, 1, 1e6), ("Atanh", np.arctanh, -0.999, 0.999),
                                          ("Sinh", np.sinh, -20, 20), ("Cosh", np.cosh, -20, 20)])
def test_inverse_and_hyperbolic_trig_match_numpy_over_wide_ranges(op, ref, lo, hi):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(lo, hi, 500), np.sign(rng.uniform(-1, 1, 200)) * np.logspace(-8, 0, 200),
                        [lo, hi, 0.0 if lo < 0 < hi else lo]])
    x = np.clip(x, lo, hi)
    m = _model([helper.make_node(op, ["x"], ["y"])], [_vi("x", [x.size], TensorProto.DOUBLE)],
               [_vi("y", [x.size], TensorProto.DOUBLE)])
    (y,) = _run(m, x)
    np.testing.assert_allclose(y, ref(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("largest", [1, 0])
def test_topk_breaks_ties_by_lower_index(largest):
    x = np.random.default_rng(4).integers(0, 4, size=(3, 9)).astype(np.float32)
    k = 5
    m = _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=largest)],
               [_vi("x", [3, 9])], [_vi("v", [3, k]), _vi("i", [3, k], TensorProto.INT64)],
               [numpy_helper.from_array(np.array([k], np.int64), "k")], opset=11)
    v, i = _run(m, x)
    order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(i, order)
    np.testing.assert_array_equal(v, np.take_along_axis(x, order, axis=1))


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap", "constant"])
def test_pad_modes_match_numpy(mode):
    x = np.random.default_rng(5).standard_normal((3, 5, 4)).astype(np.float32)
    pads = [0, 2, 3, 1, 4, 1]  # begins then ends, one per axis
    inputs = [_vi("x", [3, 5, 4])]
    node_inputs = ["x", "p"]
    if mode == "constant":  # the pad value as a run-time input (ONNX's Attention body does this)
        inputs.append(_vi("v", []))
        node_inputs.append("v")
    m = _model([helper.make_node("Pad", node_inputs, ["y"], mode=mode)], inputs, [_vi("y", None)],
               [numpy_helper.from_array(np.array(pads, np.int64), "p")])
    args = (x, np.array(-7.5, np.float32)) if mode == "constant" else (x,)
    (y,) = _run(m, *args)
    width = list(zip(pads[:3], pads[3:]))
    want = np.pad(x, width, mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap", "constant": "constant"}[mode],
                  **({"constant_values": -7.5} if mode == "constant" else {}))
    np.testing.assert_array_equal(y, want)


def test_conv1d_and_pool1d_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 11)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[2], pads=[1, 2], dilations=[2], group=2),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2], strides=[1], pads=[1, 0])]
    m = _model(nodes, [_vi("x", [2, 4, 11])], [_vi("y", None)],
               [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    (y,) = _run(m, x)
    F = torch.nn.functional
    c = F.conv1d(F.pad(torch.tensor(x), (1, 2)), torch.tensor(w), torch.tensor(b), stride=2, dilation=2, groups=2)
    want = F.max_pool1d(F.pad(c, (1, 0), value=-np.inf), 2, stride=1)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,ctm,torch_mode,align", [("linear", "half_pixel", "bilinear", False),
                                                      ("cubic", "align_corners", "bicubic", True),
                                                      ("nearest", "asymmetric", "nearest", None)])
def test_resize_matches_torch_interpolate_and_differentiates(mode, ctm, torch_mode, align):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 7)).astype(np.float32)
    sizes = np.array([2, 3, 9, 4], np.int64)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    m = _model([helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], **attrs)], [_vi("x", [2, 3, 5, 7])],
               [_vi("y", [2, 3, 9, 4])], [numpy_helper.from_array(sizes, "sizes")], opset=19)
    xe = ember.tensor(x, requires_grad=True)
    y = ember.onnx.load(m)(xe)
    tx = torch.tensor(x, requires_grad=True)
    kw = {} if align is None else {"align_corners": align}
    ty = torch.nn.functional.interpolate(tx, size=(9, 4), mode=torch_mode, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = np.random.default_rng(8).standard_normal((2, 3, 9, 4)).astype(np.float32)
    (y * ember.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_if_with_run_time_condition_is_one_clear_error():
    from ember.runtime.onnx.importer import OnnxImportError
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["a"])], "t", [], [_vi("a", [2])])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["b"])], "e", [], [_vi("b", [2])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    m = _model(nodes, [_vi("x", [2])], [_vi("y", [2])], [numpy_helper.from_array(np.array(0, np.float32), "zero")])
    with pytest.raises(OnnxImportError, match="If condition.*computed at run time"):
        import_model(m)
    # a condition known at import time selects its branch
    m2 = _model(nodes[2:], [_vi("x", [2])], [_vi("y", [2])], [numpy_helper.from_array(np.array(False), "c")])
    (y,) = _run(m2, np.array([-1.0, 2.0], np.float32))
    np.testing.assert_array_equal(y, [1.0, 2.0])


@pytest.mark.parametrize("eq,shapes", [("ijk,ikl,lm->jm", [(2, 3, 4), (2, 4, 5), (5, 6)]),
                                       ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
                                       ("ii->", [(4, 4)]), ("bii,bj->bij", [(2, 3, 3), (2, 4)]),
                                       ("i,j", [(3,), (4,)]), ("ij,ij->", [(3, 4), (3, 4)])])
def test_einsum_matches_numpy(eq, shapes):
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal(s) for s in shapes]
    names = [f"x{i}" for i in range(len(xs))]
    want = np.einsum(eq, *xs)
    m = _model([helper.make_node("Einsum", names, ["y"], equation=eq)],
               [_vi(n, list(s), TensorProto.DOUBLE) for n, s in zip(names, shapes)],
               [_vi("y", list(want.shape), TensorProto.DOUBLE)], opset=12)
    (y,) = _run(m, *xs)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_3d_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(10).standard_normal((2, 3, 7, 6, 8)).astype(np.float32)
    nodes = [helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 2, 3], strides=[2, 1, 2],
                              dilations=[2, 1, 1], pads=[1, 0, 1, 1, 1, 1], ceil_mode=1),
             helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3, 2], strides=[2, 2, 1],
                              pads=[1, 1, 0, 1, 1, 1], count_include_pad=0)]
    m = _model(nodes, [_vi("x", [2, 3, 7, 6, 8])], [_vi("m", None), _vi("a", None)])
    got_max, got_avg = _run(m, x)
    F = torch.nn.functional
    tx = torch.tensor(x)
    # torch pads symmetrically: pad explicitly where ONNX's pads are asymmetric
    want_max = F.max_pool3d(F.pad(tx, (1, 1, 0, 1, 1, 1), value=-np.inf), (3, 2, 3), stride=(2, 1, 2),
                            dilation=(2, 1, 1), ceil_mode=True)
    np.testing.assert_allclose(got_max, want_max.numpy(), rtol=1e-6)
    ones = F.pad(torch.ones_like(tx), (0, 1, 1, 1, 1, 1))
    sums = F.avg_pool3d(F.pad(tx, (0, 1, 1, 1, 1, 1)), (3, 3, 2), stride=(2, 2, 1), divisor_override=1)
    counts = F.avg_pool3d(ones, (3, 3, 2), stride=(2, 2, 1), divisor_override=1)
    np.testing.assert_allclose(got_avg, (sums / counts).numpy(), rtol=1e-5, atol=1e-6)


def _onnx_gates(w, order):
    """torch packs gates in one order, ONNX in another: reorder blocks along dim 0."""
    blocks = np.split(w, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_bidirectional_rnn_matches_torch(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    seq, batch, n_in, h = 5, 3, 4, 6
    net = getattr(torch.nn, kind)(n_in, h, bidirectional=True)
    order = [1, 0, 2] if kind == "GRU" else [0, 3, 1, 2]  # ONNX: GRU z,r,h; LSTM i,o,f,c
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    W = np.stack([_onnx_gates(sd[f"weight_ih_l0{s}"], order) for s in ("", "_reverse")])
    R = np.stack([_onnx_gates(sd[f"weight_hh_l0{s}"], order) for s in ("", "_reverse")])
    B = np.stack([np.concatenate([_onnx_gates(sd[f"bias_ih_l0{s}"], order), _onnx_gates(sd[f"bias_hh_l0{s}"], order)])
                  for s in ("", "_reverse")])
    attrs = {"hidden_size": h, "direction": "bidirectional"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # torch's GRU applies the reset gate after the recurrent matmul
    outs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    m = _model([helper.make_node(kind, ["x", "W", "R", "B"], outs, **attrs)], [_vi("x", [seq, batch, n_in])],
               [_vi(o, None) for o in outs],
               [numpy_helper.from_array(a.astype(np.float32), n) for a, n in ((W, "W"), (R, "R"), (B, "B"))])
    x = np.random.default_rng(11).standard_normal((seq, batch, n_in)).astype(np.float32)
    got = _run(m, x)
    y, state = net(torch.tensor(x))
    np.testing.assert_allclose(got[0], y.detach().numpy().reshape(seq, batch, 2, h).transpose(0, 2, 1, 3),
                               rtol=1e-5, atol=1e-5)
    states = state if kind == "LSTM" else (state,)
    for g, s in zip(got[1:], states):
        np.testing.assert_allclose(g, s.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_reverse_rnn_with_sequence_lens_starts_at_each_sequence_end():
    rng = np.random.default_rng(12)
    seq, batch, n_in, h = 6, 3, 2, 4
    W, R = rng.standard_normal((1, h, n_in)), rng.standard_normal((1, h, h)) * 0.5
    lens = np.array([6, 3, 1], np.int32)
    x = rng.standard_normal((seq, batch, n_in))

    def model(s, b, with_lens):
        ins = ["x", "W", "R", "", "lens"] if with_lens else ["x", "W", "R"]
        inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
        if with_lens:
            inits.append(numpy_helper.from_array(lens, "lens"))
        return _model([helper.make_node("RNN", ins, ["Y", "Y_h"], hidden_size=h, direction="reverse")],
                      [_vi("x", [s, b, n_in], TensorProto.DOUBLE)], [_vi("Y", None), _vi("Y_h", None)], inits)
    Y, Yh = _run(model(seq, batch, True), x)
    for b, n in enumerate(lens):
        y1, yh1 = _run(model(int(n), 1, False), x[:n, b:b + 1])
        np.testing.assert_allclose(Y[:n, :, b], y1[:, :, 0], rtol=1e-12)
        assert not Y[n:, :, b].any()
        np.testing.assert_allclose(Yh[:, b], yh1[:, 0], rtol=1e-12)


@pytest.mark.parametrize("inverse,onesided,complex_in,length", [(0, 0, True, None), (1, 0, True, None),
                                                                (0, 1, False, 12), (1, 1, True, 9),
                                                                (0, 0, False, 5)])
def test_dft_matches_numpy_fft(inverse, onesided, complex_in, length):
    rng = np.random.default_rng(13)
    n = 7
    z = rng.standard_normal((2, n, 3)) + (1j * rng.standard_normal((2, n, 3)) if complex_in else 0)
    if inverse and onesided:
        z = np.fft.rfft(rng.standard_normal((2, 2 * (n - 1), 3)), axis=1)  # a one-sided spectrum
    x = np.stack([z.real, z.imag], -1) if complex_in else z.real[..., None]
    ins = ["x", "len" if length else "", "axis"]
    inits = [numpy_helper.from_array(np.array(1, np.int64), "axis")]
    if length:
        inits.append(numpy_helper.from_array(np.array(length, np.int64), "len"))
    m = _model([helper.make_node("DFT", ins, ["y"], inverse=inverse, onesided=onesided)],
               [_vi("x", list(x.shape), TensorProto.DOUBLE)], [_vi("y", None, TensorProto.DOUBLE)], inits, opset=20)
    (y,) = _run(m, x)
    if inverse and onesided:
        want = np.fft.irfft(z, n=length, axis=1)[..., None]
    else:
        fn = np.fft.ifft if inverse else (np.fft.rfft if onesided else np.fft.fft)
        w = fn(z, n=length, axis=1)
        want = np.stack([w.real, w.imag], -1)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode,pad,align", [("linear", "zeros", 0), ("linear", "reflection", 1),
                                            ("nearest", "border", 0), ("cubic", "reflection", 0),
                                            ("cubic", "zeros", 1)])
def test_grid_sample_matches_torch_and_differentiates(mode, pad, align):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, size=(2, 4, 7, 2)).astype(np.float32)
    m = _model([helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=pad, align_corners=align)],
               [_vi("x", [2, 3, 5, 6]), _vi("g", [2, 4, 7, 2])], [_vi("y", [2, 3, 4, 7])], opset=20)
    xe, ge = ember.tensor(x, requires_grad=True), ember.tensor(grid, requires_grad=True)
    y = ember.onnx.load(m)(xe, ge)
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    ty = torch.nn.functional.grid_sample(tx, tg, mode={"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode),
                                         padding_mode=pad, align_corners=bool(align))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    w = rng.standard_normal((2, 3, 4, 7)).astype(np.float32)
    (y * ember.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    if mode == "linear" and pad == "zeros":
        np.testing.assert_allclose(ge.grad.numpy(), tg.grad.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_det_matches_numpy(n):
    x = np.random.default_rng(15).standard_normal((2, 3, n, n))
    m = _model([helper.make_node("Det", ["x"], ["y"])], [_vi("x", [2, 3, n, n], TensorProto.DOUBLE)],
               [_vi("y", [2, 3], TensorProto.DOUBLE)])
    (y,) = _run(m, x)
    np.testing.assert_allclose(y, np.linalg.det(x), rtol=1e-10, atol=1e-12)


def test_stft_complex_signal_with_window_matches_numpy():
    rng = np.random.default_rng(16)
    z = rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))
    win = np.hanning(10)
    x = np.stack([z.real, z.imag], -1)
    m = _model([helper.make_node("STFT", ["x", "step", "w"], ["y"], onesided=0)],
               [_vi("x", [2, 40, 2], TensorProto.DOUBLE)], [_vi("y", None, TensorProto.DOUBLE)],
               [numpy_helper.from_array(np.array(7, np.int64), "step"), numpy_helper.from_array(win, "w")], opset=17)
    (y,) = _run(m, x)
    frames = np.stack([z[:, i * 7:i * 7 + 10] * win for i in range((40 - 10) // 7 + 1)], 1)
    want = np.fft.fft(frames, axis=-1)
    np.testing.assert_allclose(y, np.stack([want.real, want.imag], -1), rtol=1e-10, atol=1e-10)


def test_training_preview_adam_steps_match_torch_adam():
    """ONNX's Adam with T = step count reproduces torch.optim.Adam (eps outside the bias-corrected sqrt
    differs: ONNX adds eps to sqrt(h) before correction, so use a tiny eps)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    x0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(3)]
    node = helper.make_node("Adam", ["r", "t", "x", "g", "v", "h"], ["x2", "v2", "h2"],
                            domain="ai.onnx.preview.training", alpha=0.9, beta=0.999, epsilon=1e-12)
    d = TensorProto.DOUBLE
    g = helper.make_graph([node], "adam", [_vi("r", [], d), _vi("t", [], TensorProto.INT64)] +
                          [_vi(n, [5], d) for n in ("x", "g", "v", "h")],
                          [_vi(n, [5], d) for n in ("x2", "v2", "h2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("ai.onnx.preview.training", 1)], ir_version=10)
    graph, _ = import_model(m)
    x, v, h = x0, np.zeros(5), np.zeros(5)
    p = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1, eps=1e-12)
    for step, gr in enumerate(grads, start=1):
        x, v, h = evaluate(graph, [np.array(0.1), np.array(step, np.int64), x, gr, v, h])
        p.grad = torch.tensor(gr)
        opt.step()
    np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-7)


def test_maxpool_indices_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(18).integers(0, 4, size=(2, 3, 7, 6)).astype(np.float32)  # many ties
    m = _model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1])],
               [_vi("x", [2, 3, 7, 6])], [_vi("y", None), _vi("i", None, TensorProto.INT64)])
    y, idx = _run(m, x)
    ty, ti = torch.nn.functional.max_pool2d(torch.nn.functional.pad(torch.tensor(x), (0, 1, 0, 0), value=-np.inf),
                                            (3, 2), stride=(2, 1), padding=(1, 0), return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    # torch indexes the (right-padded) plane; ONNX the whole unpadded tensor
    ti = ti.numpy()
    h, w = np.divmod(ti, 7)
    plane = np.arange(6).reshape(1, 6, 1, 1) * 42
    np.testing.assert_array_equal(idx, (h * 6 + w + plane.reshape(2, 3, 1, 1)))


@pytest.mark.parametrize("dtype,onnx_t", [(np.int8, TensorProto.INT8), (np.int32, TensorProto.INT32),
                                          (np.uint8, TensorProto.UINT8), (np.int64, TensorProto.INT64)])
def test_bitwise_and_shifts_match_numpy(dtype, onnx_t):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(19)
    a = rng.integers(info.min, info.max, size=20, dtype=dtype, endpoint=True)
    b = rng.integers(info.min, info.max, size=20, dtype=dtype, endpoint=True)
    s = rng.integers(0, info.bits, size=20).astype(dtype)
    ops = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor}
    nodes = [helper.make_node(op, ["a", "b"], [op]) for op in ops]
    nodes += [helper.make_node("BitwiseNot", ["a"], ["not"]),
              helper.make_node("BitShift", ["a", "s"], ["left"], direction="LEFT"),
              helper.make_node("BitShift", ["a", "s"], ["right"], direction="RIGHT")]
    outs = list(ops) + ["not", "left", "right"]
    m = _model(nodes, [_vi("a", [20], onnx_t), _vi("b", [20], onnx_t), _vi("s", [20], onnx_t)],
               [_vi(o, [20], onnx_t) for o in outs])
    got = dict(zip(outs, _run(m, a, b, s)))
    for op, fn in ops.items():
        np.testing.assert_array_equal(got[op], fn(a, b), err_msg=op)
    np.testing.assert_array_equal(got["not"], np.invert(a))
    np.testing.assert_array_equal(got["left"], np.left_shift(a, s))
    np.testing.assert_array_equal(got["right"], np.right_shift(a, s))


@pytest.mark.parametrize("reduction", ["mul", "max", "min"])
def test_scatter_elements_reductions_with_duplicate_indices(reduction):
    rng = np.random.default_rng(20)
    data = rng.standard_normal((4, 5))
    idx = rng.integers(-4, 4, size=(6, 5)).astype(np.int64)   # duplicates and negative indices
    upd = rng.standard_normal((6, 5))
    m = _model([helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=0, reduction=reduction)],
               [_vi("d", [4, 5], TensorProto.DOUBLE), _vi("u", [6, 5], TensorProto.DOUBLE)],
               [_vi("y", [4, 5], TensorProto.DOUBLE)], [numpy_helper.from_array(idx, "i")])
    (y,) = _run(m, data, upd)
    want = data.copy()
    fn = {"mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]
    for (r, c), v in np.ndenumerate(upd):
        want[idx[r, c] % 4, c] = fn(want[idx[r, c] % 4, c], v)
    np.testing.assert_array_equal(y, want)


def test_random_generators_draw_with_the_requested_statistics():
    p = np.full((200, 100), 0.3)
    nodes = [helper.make_node("Bernoulli", ["p"], ["b"], dtype=TensorProto.FLOAT),
             helper.make_node("RandomNormalLike", ["p"], ["n"], mean=2.0, scale=0.5),
             helper.make_node("RandomUniform", [], ["u"], shape=[300, 100], low=-1.0, high=3.0)]
    m = _model(nodes, [_vi("p", [200, 100], TensorProto.DOUBLE)],
               [_vi("b", None), _vi("n", None, TensorProto.DOUBLE), _vi("u", None)])
    b, n, u = _run(m, p)
    assert b.dtype == np.float32 and set(np.unique(b)) <= {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / b.size)
    assert n.dtype == np.float64 and abs(n.mean() - 2.0) < 0.02 and abs(n.std() - 0.5) < 0.02
    assert u.dtype == np.float32 and u.shape == (300, 100) and u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.05


def test_scan_reverse_cumsum_and_loop_with_run_time_condition():
    from ember.runtime.onnx.importer import OnnxImportError
    body = helper.make_graph([helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
                              helper.make_node("Identity", ["s_out"], ["y_t"])], "body",
                             [_vi("s_in", [3]), _vi("x_t", [3])], [_vi("s_out", [3]), _vi("y_t", [3])])
    m = _model([helper.make_node("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1,
                                 scan_input_directions=[1], scan_output_axes=[1])],
               [_vi("s0", [3]), _vi("x", [4, 3])], [_vi("s", [3]), _vi("y", [3, 4])])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    s, y = _run(m, np.zeros(3, np.float32), x)
    np.testing.assert_array_equal(s, x.sum(0))
    np.testing.assert_array_equal(y, np.cumsum(x[::-1], 0).T)
    # a loop that stops on data: one clear error
    lbody = helper.make_graph([helper.make_node("ReduceSum", ["v_in"], ["tot"], keepdims=0),
                               helper.make_node("Less", ["tot", "lim"], ["c_out"]),
                               helper.make_node("Add", ["v_in", "v_in"], ["v_out"])], "lb",
                              [_vi("i", [], TensorProto.INT64), _vi("c_in", [], TensorProto.BOOL), _vi("v_in", [2])],
                              [_vi("c_out", [], TensorProto.BOOL), _vi("v_out", [2])])
    lm = _model([helper.make_node("Loop", ["", "", "v0"], ["v"], body=lbody)], [_vi("v0", [2])], [_vi("v", [2])],
                [numpy_helper.from_array(np.array(100.0, np.float32), "lim")])
    with pytest.raises(OnnxImportError, match="Loop condition is computed at run time"):
        import_model(lm)


def test_deform_conv_with_integer_offsets_is_a_shifted_conv():
    """Offsets of whole pixels move each tap: with offset (+1, 0) everywhere, the one row of top padding is
    cancelled and DeformConv equals a plain grouped, strided, dilated conv."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((6, 2, 3, 2))
    off = np.zeros((2, 2 * 6 * 2, 3, 5))      # offset_group 2, kernel 3x2, output 3x5
    off[:, 0::2] = 1.0                        # dy = +1 for every tap
    attrs = dict(group=2, offset_group=2, strides=[2, 1], pads=[1, 0, 0, 0], dilations=[1, 2], kernel_shape=[3, 2])
    m = _model([helper.make_node("DeformConv", ["x", "w", "o"], ["y"], **attrs)],
               [_vi("x", [2, 4, 6, 7], TensorProto.DOUBLE), _vi("o", list(off.shape), TensorProto.DOUBLE)],
               [_vi("y", None, TensorProto.DOUBLE)], [numpy_helper.from_array(w, "w")], opset=19)
    (y,) = _run(m, x, off)
    # tap row oh*2 - 1 + i + 1 = oh*2 + i of x: x with the bottom zero row the last tap can reach, unpadded on top
    F = torch.nn.functional
    want = F.conv2d(F.pad(torch.tensor(x), (0, 0, 0, 1)), torch.tensor(w), stride=(2, 1), dilation=(1, 2), groups=2)
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-10, atol=1e-10)


def test_conv_transpose3d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 4, 3, 4, 5))
    w = rng.standard_normal((4, 3, 2, 3, 2))
    b = rng.standard_normal(6)
    attrs = dict(strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1], dilations=[2, 1, 1], output_padding=[1, 0, 1], group=2)
    m = _model([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)],
               [_vi("x", [2, 4, 3, 4, 5], TensorProto.DOUBLE)], [_vi("y", None, TensorProto.DOUBLE)],
               [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    (y,) = _run(m, x)
    # torch pads symmetrically: take the full transposed conv and crop ONNX's asymmetric pads
    full = torch.nn.functional.conv_transpose3d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=(2, 1, 2),
                                                dilation=(2, 1, 1), output_padding=(1, 0, 1), groups=2).numpy()
    want = full[:, :, 1:full.shape[2] - 0, 0:full.shape[3] - 1, 1:full.shape[4] - 1]
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)
