"""The autocast pass: PyTorch's autocast casts inserted into a captured float32 graph."""

import numpy as np
import pytest

import ember
from ember.ir.types import bfloat16, float32
from ember.passes import autocast, dce, simplify
from ember.runtime.interpreter import Interpreter

nn = pytest.importorskip("ember.nn")


def _model():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.LogSoftmax(-1)).eval()


def test_autocast_pass_runs_matmuls_in_bf16_and_matches_eager_autocast():
    model = _model()
    x = ember.randn(4, 16)
    traced = ember.jit.trace(model, (x,))
    g = autocast(traced.graph)
    mm = [n for n in g.nodes if n.op == "matmul"]
    assert mm and all(n.output.type.dtype is bfloat16 and all(v.type.dtype is bfloat16 for v in n.inputs)
                      for n in mm)
    assert g.outputs[0].type == traced.graph.outputs[0].type  # signature unchanged (cast back)
    sums = [n for n in g.nodes if n.op == "sum"]
    assert all(n.output.type.dtype is float32 for n in sums)  # reductions in float32 (the fp32 list)
    feeds = traced._capture.gather([x])[0]
    out = Interpreter(g)(feeds)[0]
    with ember.amp.autocast("cpu"):
        ref = model(x)
    ref32 = ref.float().detach().numpy()
    full = Interpreter(traced.graph)(feeds)[0]
    np.testing.assert_allclose(out, ref32, rtol=0.05, atol=0.05)
    assert not np.array_equal(out, full)  # it really ran in lower precision
    np.testing.assert_allclose(out, full, rtol=0.05, atol=0.05)


def test_autocast_is_a_no_op_without_lower_precision_ops_and_keeps_float64():
    lin = nn.Linear(3, 3).double()
    x = ember.randn(2, 3, dtype=ember.float64)
    g = ember.jit.trace(lin, (x,)).graph
    a = dce(simplify(autocast(g)))
    assert [n.op for n in a.nodes] == [n.op for n in dce(simplify(g)).nodes]  # float64 is never cast


def test_autocast_rejects_other_dtypes():
    g = ember.jit.trace(nn.Linear(3, 3), (ember.randn(2, 3),)).graph
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        autocast(g, dtype="float64")


def _conv_bn_net():
    ember.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, groups=2, bias=False), nn.BatchNorm2d(4))
    with ember.no_grad():  # non-trivial running statistics and affine parameters
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(ember.randn(m.num_features) * 0.3)
                m.running_var.copy_(ember.rand(m.num_features) + 0.5)
                m.weight.copy_(ember.randn(m.num_features))
                m.bias.copy_(ember.randn(m.num_features))
    return net


def test_conv_batchnorm_folding_in_eval_mode():
    from ember.passes import fold_conv_bn
    net = _conv_bn_net().eval()
    x = ember.randn(2, 3, 7, 7)
    traced = ember.jit.trace(net, (x,))
    g = traced.graph
    f = dce(fold_conv_bn(g))
    big = lambda graph: sum(1 for n in graph.nodes if n.op in ("add", "sub", "mul", "div")  # noqa: E731
                            and n.output.type.shape[-1] in (7, 5))
    assert big(f) == 2 and big(g) > 2  # one bias add per conv is all that stays activation-sized
    assert sum(n.op == "conv2d" for n in f.nodes) == 2
    feeds = traced._capture.gather([x])[0]
    np.testing.assert_allclose(Interpreter(f)(feeds)[0], net(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_training_mode_batchnorm_is_not_folded():
    from ember.passes import fold_conv_bn
    net = _conv_bn_net().train()
    g = ember.jit.trace(net, (ember.randn(2, 3, 7, 7),)).graph
    assert [n.op for n in fold_conv_bn(g).nodes] == [n.op for n in g.nodes]
