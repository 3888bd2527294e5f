"""The registry: every primitive has a type rule and a numpy kernel; rules run symbolically."""

import numpy as np

from ember.ir import PRIMITIVES
from ember.ir import ops as P
from ember.ir.graph import Graph, GraphBuilder
from ember.ir.types import TensorType, float32
from ember.runtime.kernels import KERNELS


def test_every_primitive_has_a_kernel():
    missing = sorted(name for name in PRIMITIVES if name not in KERNELS)
    assert missing == []


def test_gradient_rule_runs_on_graph_values():
    g = Graph("t")
    x = g.add_input(TensorType(float32, ("B", 4)), "x")
    with GraphBuilder(g):
        y = P.exp(x)
        s = P.sum_(y, dims=(0, 1), keepdim=False)
        one = P.full(shape=(), value=1.0, dtype=float32)
        (gy,) = P.sum_.vjp(one, (y,), s, (True,), {"dims": (0, 1), "keepdim": False})
        (gx,) = P.exp.vjp(gy, (x,), y, (True,), {})
    assert gx.type == TensorType(float32, ("B", 4))
    assert [n.op for n in g.nodes] == ["exp", "sum", "full", "reshape", "broadcast_to", "mul"]


def test_eager_gradient_matches_analytic():
    import ember
    x = ember.tensor([2.0], requires_grad=True)
    y = x ** 2 + 3 * x
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [7.0])
