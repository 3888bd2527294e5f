"""Every layer vs PyTorch: forward values, input gradients and parameter gradients from the same weights."""

import numpy as np
import pytest

import ember
import ember.nn as nn

torch = pytest.importorskip("torch")

# (id, constructor taking the nn module, input shape, input kind)
LAYERS = [
    ("linear", lambda m: m.Linear(5, 4), (3, 5)),
    ("linear-3d-nobias", lambda m: m.Linear(5, 4, bias=False), (2, 3, 5)),
    ("bilinear", None, None),
    ("identity", lambda m: m.Identity(), (2, 3)),
    ("flatten", lambda m: m.Flatten(), (2, 3, 4, 2)),
    ("unflatten", lambda m: m.Unflatten(1, (2, 3)), (4, 6)),
    ("conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    ("conv1d-same-dil", lambda m: m.Conv1d(2, 4, 3, padding="same", dilation=2, groups=2), (2, 2, 8)),
    ("conv2d", lambda m: m.Conv2d(3, 5, 3), (2, 3, 7, 6)),
    ("conv2d-stride-pad", lambda m: m.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2)), (2, 3, 7, 6)),
    ("conv2d-same", lambda m: m.Conv2d(2, 3, 4, padding="same"), (2, 2, 6, 5)),
    ("conv2d-valid-dil", lambda m: m.Conv2d(2, 3, 3, padding="valid", dilation=2), (1, 2, 8, 8)),
    ("conv2d-groups-nobias", lambda m: m.Conv2d(4, 6, 3, groups=2, padding=1, bias=False), (2, 4, 5, 5)),
    ("conv2d-depthwise", lambda m: m.Conv2d(3, 3, 3, groups=3, stride=2), (2, 3, 7, 7)),
    ("conv2d-reflect", lambda m: m.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 5, 5)),
    ("conv2d-unbatched", lambda m: m.Conv2d(2, 3, 3), (2, 5, 5)),
    ("convT2d", lambda m: m.ConvTranspose2d(3, 2, 3), (2, 3, 4, 4)),
    ("convT2d-stride-outpad", lambda m: m.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
     (2, 3, 4, 5)),
    ("convT2d-groups-dil", lambda m: m.ConvTranspose2d(4, 6, 2, groups=2, dilation=2, bias=False), (1, 4, 3, 3)),
    ("convT1d", lambda m: m.ConvTranspose1d(2, 3, 3, stride=2), (2, 2, 5)),
    ("maxpool2d", lambda m: m.MaxPool2d(2), (2, 3, 6, 6)),
    ("maxpool2d-s-p", lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    ("maxpool2d-ceil-dil", lambda m: m.MaxPool2d(2, stride=2, ceil_mode=True, dilation=(1, 2)), (1, 2, 7, 9)),
    ("maxpool1d", lambda m: m.MaxPool1d(3, stride=2), (2, 3, 9)),
    ("avgpool2d", lambda m: m.AvgPool2d(2), (2, 3, 6, 6)),
    ("avgpool2d-pad-excl", lambda m: m.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 2, 7, 6)),
    ("avgpool2d-ceil", lambda m: m.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 8, 8)),
    ("avgpool2d-divisor", lambda m: m.AvgPool2d(2, stride=1, divisor_override=3), (1, 2, 5, 5)),
    ("avgpool1d", lambda m: m.AvgPool1d(2), (2, 3, 7)),
    ("adaptive-avg-1", lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    ("adaptive-avg-div", lambda m: m.AdaptiveAvgPool2d((2, 2)), (2, 3, 6, 4)),
    ("adaptive-avg-uneven", lambda m: m.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
    ("adaptive-max-uneven", lambda m: m.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    ("adaptive-avg1d", lambda m: m.AdaptiveAvgPool1d(3), (2, 3, 7)),
    ("batchnorm1d", lambda m: m.BatchNorm1d(4), (6, 4)),
    ("batchnorm1d-3d", lambda m: m.BatchNorm1d(3, momentum=0.3), (4, 3, 5)),
    ("batchnorm2d", lambda m: m.BatchNorm2d(3), (4, 3, 5, 5)),
    ("batchnorm2d-noaffine", lambda m: m.BatchNorm2d(3, affine=False, eps=1e-3), (4, 3, 2, 2)),
    ("batchnorm2d-nostats", lambda m: m.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
    ("batchnorm2d-cumulative", lambda m: m.BatchNorm2d(3, momentum=None), (4, 3, 2, 2)),
    ("layernorm", lambda m: m.LayerNorm(6), (3, 4, 6)),
    ("layernorm-2d", lambda m: m.LayerNorm((4, 6), eps=1e-3), (3, 4, 6)),
    ("groupnorm", lambda m: m.GroupNorm(2, 6), (3, 6, 4, 4)),
    ("groupnorm-noaffine", lambda m: m.GroupNorm(3, 6, affine=False), (3, 6, 5)),
    ("relu", lambda m: m.ReLU(), (4, 5)),
    ("leakyrelu", lambda m: m.LeakyReLU(0.2), (4, 5)),
    ("elu", lambda m: m.ELU(0.7), (4, 5)),
    ("gelu", lambda m: m.GELU(), (4, 5)),
    ("gelu-tanh", lambda m: m.GELU(approximate="tanh"), (4, 5)),
    ("silu", lambda m: m.SiLU(), (4, 5)),
    ("sigmoid", lambda m: m.Sigmoid(), (4, 5)),
    ("tanh", lambda m: m.Tanh(), (4, 5)),
    ("softmax", lambda m: m.Softmax(dim=1), (4, 5)),
    ("softmax-dim0", lambda m: m.Softmax(dim=0), (4, 5, 2)),
    ("logsoftmax", lambda m: m.LogSoftmax(dim=-1), (4, 5)),
    ("softplus", lambda m: m.Softplus(beta=2.0, threshold=3.0), (4, 5)),
    ("hardtanh", lambda m: m.Hardtanh(-0.5, 0.8), (4, 5)),
    ("relu6", lambda m: m.ReLU6(), (4, 5)),
    ("selu", lambda m: m.SELU(), (4, 5)),
    ("mish", lambda m: m.Mish(), (4, 5)),
    ("hardswish", lambda m: m.Hardswish(), (4, 5)),
    ("hardsigmoid", lambda m: m.Hardsigmoid(), (4, 5)),
    ("logsigmoid", lambda m: m.LogSigmoid(), (4, 5)),
    ("softsign", lambda m: m.Softsign(), (4, 5)),
    ("prelu", lambda m: m.PReLU(3), (2, 3, 4)),
    ("glu", lambda m: m.GLU(), (4, 6)),
]
LAYERS = [layer for layer in LAYERS if layer[1] is not None]


def copy_weights(tm, em):
    em.load_state_dict({k: ember.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})


def run_both(tm, em, x, *, train=True):
    tm.train(train)
    em.train(train)
    tx = torch.tensor(x, requires_grad=True)
    ex = ember.tensor(x, requires_grad=True)
    ty, ey = tm(tx), em(ex)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    ct = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(ct))
    ey.backward(ember.tensor(ct))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tparams = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)
    tbufs = dict(tm.named_buffers())
    for name, b in em.named_buffers():
        np.testing.assert_allclose(b.numpy(), tbufs[name].numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name,build,shape", LAYERS, ids=[entry[0] for entry in LAYERS])
def test_layer_matches_torch(name, build, shape):
    tm, em = build(torch.nn), build(nn)
    assert repr(em) == repr(tm)
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(em.state_dict()) == list(tm.state_dict())
    copy_weights(tm, em)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    run_both(tm, em, x)
    if "batchnorm" in name:  # a second training step, then evaluation with the running statistics
        run_both(tm, em, x * 2 + 1)
        run_both(tm, em, x, train=False)


def test_embedding_matches_torch_with_padding_idx():
    tm, em = torch.nn.Embedding(10, 4, padding_idx=2), nn.Embedding(10, 4, padding_idx=2)
    assert repr(em) == repr(tm)
    assert np.all(em.weight.detach().numpy()[2] == 0)
    copy_weights(tm, em)
    idx = np.array([[1, 2, 3], [2, 9, 1]])
    ty, ey = tm(torch.tensor(idx)), em(ember.tensor(idx))
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy())
    ct = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    ty.backward(torch.tensor(ct))
    ey.backward(ember.tensor(ct))
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6)


def test_bilinear_matches_torch():
    tm, em = torch.nn.Bilinear(3, 4, 2), nn.Bilinear(3, 4, 2)
    copy_weights(tm, em)
    a = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    b = np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(em(ember.tensor(a), ember.tensor(b)).detach().numpy(),
                               tm(torch.tensor(a), torch.tensor(b)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_maxpool_return_indices_matches_torch():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6)).astype(np.float32)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    ey, ei = nn.functional.max_pool2d(ember.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    np.testing.assert_array_equal(ey.numpy(), ty.numpy())


def test_conv_transpose_output_size_argument():
    tm, em = torch.nn.ConvTranspose2d(2, 3, 3, stride=2), nn.ConvTranspose2d(2, 3, 3, stride=2)
    copy_weights(tm, em)
    x = np.random.default_rng(6).standard_normal((1, 2, 4, 4)).astype(np.float32)
    ty = tm(torch.tensor(x), output_size=[10, 10])
    ey = em(ember.tensor(x), output_size=[10, 10])
    assert tuple(ey.shape) == tuple(ty.shape) == (1, 3, 10, 10)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_conv_errors_name_shapes():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 5, 8, 8\] to have 3 channels, but got 5"):
        conv(ember.randn(2, 5, 8, 8))
    with pytest.raises(RuntimeError, match="conv2d"):
        conv(ember.randn(1, 3, 2, 2))  # kernel larger than the input


def test_batchnorm_eval_uses_running_stats_and_train_updates_in_place():
    bn = nn.BatchNorm2d(2)
    rm = bn.running_mean
    x = ember.randn(8, 2, 3, 3) * 3 + 1
    bn(x)
    assert bn.running_mean is rm and int(bn.num_batches_tracked) == 1
    assert not np.allclose(rm.numpy(), 0)
    bn.eval()
    before = bn.running_mean.numpy().copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)


def test_dropout_statistics_and_eval_identity():
    x = ember.ones(200, 100)
    d = nn.Dropout(0.3)
    y = d(x).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    d.eval()
    assert d(x) is x
    d2 = nn.Dropout2d(0.5)
    y2 = d2(ember.ones(50, 20, 3, 3)).numpy()
    per_channel = y2.reshape(50, 20, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels are kept or dropped
    assert abs((per_channel[..., 0] == 0).mean() - 0.5) < 0.05


def test_dropout_gradient_uses_the_same_mask():
    x = ember.ones(10, 10, requires_grad=True)
    y = nn.functional.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_functional_pad_modes_match_torch():
    x = np.random.default_rng(7).standard_normal((1, 2, 4, 5)).astype(np.float32)
    for mode, pad in (("constant", (1, 2, 0, 1)), ("reflect", (2, 1, 1, 2)), ("replicate", (1, 2, 2, 0)),
                      ("circular", (1, 1, 2, 1)), ("constant", (-1, 2, 1, -2))):
        want = torch.nn.functional.pad(torch.tensor(x), pad, mode=mode).numpy()
        got = nn.functional.pad(ember.tensor(x), pad, mode=mode).numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{mode} {pad}")


def test_functional_misc_match_torch():
    F, TF = nn.functional, torch.nn.functional
    x = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(F.normalize(ember.tensor(x)).numpy(), TF.normalize(torch.tensor(x)).numpy(),
                               rtol=1e-6)
    idx = np.array([0, 3, 1])
    np.testing.assert_array_equal(F.one_hot(ember.tensor(idx), 5).numpy(), TF.one_hot(torch.tensor(idx), 5).numpy())
    np.testing.assert_allclose(ember.tensor(x).softmax(-1).numpy(), torch.tensor(x).softmax(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ember.tensor(x).log_softmax(dim=0).numpy(),
                               torch.tensor(x).log_softmax(dim=0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.cosine_similarity(ember.tensor(x), ember.tensor(x[::-1].copy())).numpy(),
                               TF.cosine_similarity(torch.tensor(x), torch.tensor(x[::-1].copy())).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_maxpool_ties_route_to_first_max_like_torch(layout):
    """ReLU outputs tie at zero all the time: the gradient must go to each window's first maximum only."""
    x = np.maximum(np.random.default_rng(9).standard_normal((4, 3, 6, 7)), 0).astype(np.float32)
    x[0, 0, :2, :2] = np.nan  # a NaN wins its window
    if layout == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}):
        tx, ex = torch.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
        ty = torch.nn.functional.max_pool2d(tx, **kwargs)
        ey = nn.functional.max_pool2d(ex, **kwargs)
        np.testing.assert_array_equal(ey.detach().numpy(), ty.detach().numpy())
        ct = np.random.default_rng(10).standard_normal(tuple(ty.shape)).astype(np.float32)
        ty.backward(torch.tensor(ct))
        ey.backward(ember.tensor(ct))
        np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_maxpool_indices_nan_and_ties_match_torch():
    x = np.maximum(np.random.default_rng(11).standard_normal((2, 2, 6, 6)), 0).astype(np.float32)
    x[0, 0, :2, :2] = np.nan
    x[1, 1, 2, 3] = np.nan
    _, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    _, ei = nn.functional.max_pool2d(ember.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())


def test_digits_cnn_matches_torch_end_to_end():
    """A whole CNN (conv, batchnorm, relu, pooling, dropout in eval, linear, cross-entropy): loss and every
    parameter gradient, from weights copied out of a torch model."""
    def build(m):
        return m.Sequential(m.Conv2d(1, 8, 3, padding=1), m.BatchNorm2d(8), m.ReLU(), m.Conv2d(8, 16, 3),
                            m.ReLU(), m.MaxPool2d(2), m.Dropout(0.25), m.Flatten(), m.Linear(16 * 9, 10))
    tm, em = build(torch.nn), build(nn)
    copy_weights(tm, em)
    x = np.random.default_rng(12).standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(13).integers(0, 10, 16)
    for train in (True, False):
        tm.train(train)
        em.train(train)
        tm[6].eval()  # dropout off in both so the numbers are comparable
        em[6].eval()
        tm.zero_grad()
        em.zero_grad()
        tl = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        el = nn.functional.cross_entropy(em(ember.tensor(x)), ember.tensor(y))
        tl.backward()
        el.backward()
        np.testing.assert_allclose(el.item(), tl.item(), rtol=1e-5)
        tparams = dict(tm.named_parameters())
        for name, p in em.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    np.testing.assert_allclose(em[1].running_var.numpy(), tm[1].running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("kwargs,shape", [
    ({"scale_factor": 2, "mode": "nearest"}, (2, 3, 4, 5)),
    ({"size": (7, 3), "mode": "nearest"}, (2, 3, 4, 5)),
    ({"size": (7, 9), "mode": "nearest-exact"}, (1, 2, 4, 5)),
    ({"scale_factor": 2, "mode": "bilinear"}, (2, 3, 4, 5)),
    ({"size": (5, 8), "mode": "bilinear", "align_corners": True}, (1, 2, 4, 5)),
    ({"scale_factor": 1.7, "mode": "bilinear"}, (1, 2, 4, 5)),
    ({"scale_factor": 3, "mode": "linear"}, (2, 3, 4)),
    ({"size": 2, "mode": "bilinear"}, (1, 2, 5, 7)),
])
def test_interpolate_matches_torch(kwargs, shape):
    x = np.random.default_rng(14).standard_normal(shape).astype(np.float32)
    tx, ex = torch.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, **kwargs)
    ey = nn.functional.interpolate(ex, **kwargs)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    ct = np.random.default_rng(15).standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(ct))
    ey.backward(ember.tensor(ct))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_upsample_modules_repr_match_torch():
    for build in (lambda m: m.Upsample(scale_factor=2), lambda m: m.Upsample(size=(4, 4), mode="bilinear"),
                  lambda m: m.UpsamplingNearest2d(scale_factor=3), lambda m: m.UpsamplingBilinear2d(size=5)):
        assert repr(build(nn)) == repr(build(torch.nn))


def test_top_level_nn_functions_like_torch():
    x = np.random.default_rng(16).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(ember.softmax(ember.tensor(x), dim=1).numpy(),
                               torch.softmax(torch.tensor(x), dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ember.log_softmax(ember.tensor(x), 0).numpy(),
                               torch.log_softmax(torch.tensor(x), 0).numpy(), rtol=1e-5, atol=1e-6)
    assert ember.conv2d is nn.functional.conv2d


def test_inplace_activations_and_dropout_backprop_like_torch():
    def build(m):
        return m.Sequential(m.Linear(4, 5), m.ReLU(inplace=True), m.Linear(5, 3), m.LeakyReLU(0.1, inplace=True),
                            m.Linear(3, 3), m.Hardtanh(-0.3, 0.3, inplace=True), m.Linear(3, 3), m.SiLU(inplace=True),
                            m.Linear(3, 2), m.ELU(inplace=True), m.Dropout(0.0, inplace=True))
    tm, em = build(torch.nn), build(nn)
    copy_weights(tm, em)
    x = np.random.default_rng(17).standard_normal((6, 4)).astype(np.float32)
    tm(torch.tensor(x)).sum().backward()
    em(ember.tensor(x)).sum().backward()
    tparams = dict(tm.named_parameters())
    for name, p in em.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    h = nn.Linear(4, 4)(ember.randn(3, 4))
    out = nn.Dropout(0.5, inplace=True)(h)
    assert out is h
    out.sum().backward()  # the mask is applied through ember's in-place machinery: backward still works
