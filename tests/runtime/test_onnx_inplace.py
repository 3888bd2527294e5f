"""ONNX Runtime writes written-back values into the input's own buffer only where that is safe."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

import ember
import ember.nn as nn
import ember.optim as optim
from ember.runtime.onnx import OrtCompiledGraph
from ember.runtime.onnx.session import inplace_writes


def _model(late_reader: bool):
    """w_new = w - d where d = x @ w; with ``late_reader`` a second output ``z = g @ w`` reads w in a
    branch that does not lead to w_new (it could run after w_new was written)."""
    f = TensorProto.FLOAT
    nodes = [helper.make_node("MatMul", ["x", "w"], ["d"]), helper.make_node("Sub", ["w", "d"], ["w_new"])]
    outs = [helper.make_tensor_value_info("w_new", f, [3, 3])]
    if late_reader:
        nodes.append(helper.make_node("MatMul", ["g", "w"], ["z"]))
        outs.append(helper.make_tensor_value_info("z", f, [3, 3]))
    ins = [helper.make_tensor_value_info(n, f, [3, 3]) for n in ("x", "w", "g")]
    return helper.make_model(helper.make_graph(nodes, "t", ins, outs))


def test_inplace_plan_needs_every_other_reader_to_run_first():
    assert inplace_writes(_model(False), {0: 1}) == {0: 1}  # MatMul(x, w) is an ancestor of Sub
    assert inplace_writes(_model(True), {0: 1}) == {}  # MatMul(g, w) may run after w is overwritten


def test_inplace_plan_refuses_a_non_elementwise_producer_that_reads_its_target():
    f = TensorProto.FLOAT
    g = helper.make_graph([helper.make_node("MatMul", ["w", "w"], ["w_new"])], "t",
                          [helper.make_tensor_value_info("w", f, [3, 3])],
                          [helper.make_tensor_value_info("w_new", f, [3, 3])])
    assert inplace_writes(helper.make_model(g), {0: 0}) == {}
    onnx.checker.check_model(helper.make_model(g))


def _train(backend, steps=6):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = ember.from_numpy(rng.standard_normal((10, 12)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 3, size=(10,)))

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = ember.compile(step, backend=backend) if backend else step
    fn(x, y)
    views = [p.detach().numpy() for p in model.parameters()]  # numpy views taken mid-training
    for _ in range(steps):
        fn(x, y)
    return model, opt, views, fn


def test_compiled_step_writes_parameters_in_place_and_views_follow():
    em, eopt, _, _ = _train(None)
    cm, copt, views, fn = _train("onnxruntime")
    graphs = [e.compiled for t in (fn._static, fn._symbolic) for es in t.values() for e in es
              if isinstance(e.compiled, OrtCompiledGraph)]
    assert graphs and any(plan for g in graphs for plan in g._inplace.values())  # some writes went in place
    # the middle layer's weight is read by the input-gradient matmul, which need not run before its
    # update: it must not be overwritten in place
    g = max(graphs, key=lambda g: g.calls)
    names = [v.name for v in g.graph.inputs]
    targets = {names[i] for plan in g._inplace.values() for i in plan.values()}
    assert "0.weight" in targets and "2.weight" not in targets
    for pe, pc, view in zip(em.parameters(), cm.parameters(), views):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(view, pc.detach().numpy())  # the old view sees the new values
    for pe, pc in zip(em.parameters(), cm.parameters()):
        np.testing.assert_allclose(copt.state[pc]["momentum_buffer"].numpy(),
                                   eopt.state[pe]["momentum_buffer"].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_outputs_of_earlier_calls_are_not_overwritten_by_later_ones():
    _, _, _, fn = _train("onnxruntime", steps=1)
    ember.manual_seed(1)
    rng = np.random.default_rng(5)
    x = ember.from_numpy(rng.standard_normal((10, 12)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 3, size=(10,)))
    first = fn(x, y)
    kept = float(first)
    losses = [float(fn(x, y)) for _ in range(3)]
    assert all(abs(v - kept) > 1e-7 for v in losses)  # training moves the loss...
    assert float(first) == kept  # ...but the tensor returned earlier still holds its own value
