"""The autodiff pass on captured nn layers and losses: graph gradients equal eager autograd's."""

import numpy as np
import pytest

import ember

nn = pytest.importorskip("ember.nn")
if not hasattr(ember.jit, "trace"):
    pytest.skip("ember.jit.trace is not available yet", allow_module_level=True)

from ember.passes import autodiff, optimize  # noqa: E402
from ember.runtime.interpreter import Interpreter  # noqa: E402

rng = np.random.default_rng(0)


def _x(*shape):
    return ember.tensor(rng.standard_normal(shape).astype(np.float32))


LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), lambda: _x(3, 6)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2), lambda: _x(2, 2, 7, 7)),
    "conv2d_groups_dilation": (lambda: nn.Conv2d(4, 4, 3, groups=2, dilation=2), lambda: _x(1, 4, 8, 8)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), lambda: _x(1, 2, 4, 4)),
    "maxpool2d": (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.MaxPool2d(2)), lambda: _x(2, 1, 6, 6)),
    "avgpool2d": (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.AvgPool2d(2)), lambda: _x(2, 1, 6, 6)),
    "adaptive_avgpool": (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(1)), lambda: _x(2, 1, 5, 5)),
    "batchnorm2d_train": (lambda: nn.BatchNorm2d(3), lambda: _x(4, 3, 2, 2)),
    "batchnorm1d_eval": (lambda: nn.BatchNorm1d(5).eval(), lambda: _x(4, 5)),
    "layernorm": (lambda: nn.LayerNorm(6), lambda: _x(3, 6)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), lambda: _x(2, 4, 3, 3)),
    "embedding": (lambda: nn.Embedding(10, 4), lambda: ember.tensor(rng.integers(0, 10, size=(3, 5)))),
    "gelu": (lambda: nn.Sequential(nn.Linear(5, 5), nn.GELU()), lambda: _x(3, 5)),
    "gelu_tanh": (lambda: nn.Sequential(nn.Linear(5, 5), nn.GELU(approximate="tanh")), lambda: _x(3, 5)),
    "silu_elu_leaky": (lambda: nn.Sequential(nn.Linear(5, 5), nn.SiLU(), nn.ELU(), nn.LeakyReLU(0.1)),
                       lambda: _x(3, 5)),
    "softplus_hardtanh": (lambda: nn.Sequential(nn.Linear(5, 5), nn.Softplus(), nn.Hardtanh(-0.5, 0.5)),
                          lambda: _x(3, 5)),
    "sigmoid_tanh": (lambda: nn.Sequential(nn.Linear(5, 5), nn.Sigmoid(), nn.Linear(5, 5), nn.Tanh()),
                     lambda: _x(3, 5)),
    "softmax_logsoftmax": (lambda: nn.Sequential(nn.Linear(5, 5), nn.Softmax(-1), nn.Linear(5, 5),
                                                 nn.LogSoftmax(-1)), lambda: _x(3, 5)),
}


def _check(module, args, loss_of=None):
    ember.manual_seed(0)
    w = None

    def fn(*a):
        out = module(*a)
        nonlocal w
        if loss_of is not None:
            return loss_of(out)
        if w is None:
            w = ember.tensor(rng.standard_normal(tuple(out.shape)).astype(np.float32))
        return (out * w).sum()

    # eager oracle (w is created on this first call)
    for p in module.parameters():
        p.grad = None
    eager_loss = fn(*args)
    eager_loss.backward()
    eager = {n: p.grad.numpy().copy() for n, p in module.named_parameters()}
    traced = ember.jit.trace(fn, args)
    g = traced.graph
    params = {n for n, r in g.input_roles.items() if r == "param"}
    assert params, g.input_roles
    joint = autodiff(g, wrt=sorted(params), of=0)
    feeds = traced._capture.gather(list(args))[0]
    outs = Interpreter(joint)(feeds)
    np.testing.assert_allclose(outs[0], eager_loss.detach().numpy(), rtol=1e-5, atol=1e-6)
    named = dict(module.named_parameters())
    by_id = {id(p): n for n, p in named.items()}
    for gname, idx in joint.meta["grads"].items():
        src = traced._capture.sources[[v.name for v in g.inputs].index(gname)]
        t = traced._capture._resolve(src, list(args), named)
        pname = by_id[id(t)]
        np.testing.assert_allclose(outs[idx], eager[pname], rtol=1e-4, atol=1e-5, err_msg=pname)
    # the optimized joint graph computes the same
    opt = optimize(joint)
    for a, b in zip(Interpreter(opt)(feeds), outs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_graph_equals_eager(name):
    make, inp = LAYERS[name]
    _check(make(), (inp(),))


def _labels(n, k):
    return ember.tensor(rng.integers(0, k, size=n))


LOSSES = {
    "cross_entropy": lambda out: nn.CrossEntropyLoss(label_smoothing=0.1)(out, _labels(3, 5)),
    "cross_entropy_weight_ignore": lambda out: nn.CrossEntropyLoss(
        weight=ember.tensor(np.linspace(0.5, 1.5, 5).astype(np.float32)), ignore_index=1)(out, _labels(3, 5)),
    "nll": lambda out: nn.NLLLoss()(out.log_softmax(-1), _labels(3, 5)),
    "mse": lambda out: nn.MSELoss()(out, ember.ones(3, 5)),
    "l1": lambda out: nn.L1Loss()(out, ember.ones(3, 5)),
    "smooth_l1": lambda out: nn.SmoothL1Loss(beta=0.5)(out, ember.ones(3, 5)),
    "huber": lambda out: nn.HuberLoss(delta=0.7)(out, ember.ones(3, 5)),
    "bce": lambda out: nn.BCELoss()(out.sigmoid(), ember.full((3, 5), 0.3)),
    "bce_logits": lambda out: nn.BCEWithLogitsLoss(pos_weight=ember.full((5,), 2.0))(out, ember.full((3, 5), 0.3)),
    "kl_div": lambda out: nn.KLDivLoss(reduction="batchmean")(out.log_softmax(-1), ember.full((3, 5), 0.2)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_graph_equals_eager(name):
    ember.manual_seed(1)
    lin = nn.Linear(4, 5)
    loss_of = LOSSES[name]
    state = np.random.default_rng(7)
    x = ember.tensor(state.standard_normal((3, 4)).astype(np.float32))
    global rng
    rng = np.random.default_rng(11)
    saved = rng

    def loss_fixed(out):
        global rng
        rng = np.random.default_rng(11)  # same labels in the eager run and the trace
        return loss_of(out)
    _check(lin, (x,), loss_fixed)
    rng = saved
