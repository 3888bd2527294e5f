"""Every primitive of the op database lowered to Relax, built by TVM and compared with its reference.

TVM builds are slow, so all samples go into ONE graph (one node per sample, each an
output) compiled once for the module; each test then checks its own output. The
cache is bypassed here so the lowering is always really built.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")

from ember.ir import PRIMITIVES  # noqa: E402
from ember.ir import types as T  # noqa: E402
from ember.ir.graph import Graph, GraphBuilder  # noqa: E402
from ember.runtime.tvm import LOWERINGS, TVMCompiledGraph  # noqa: E402
from tests import opdb  # noqa: E402

CASES = list(opdb.primitive_cases())


def _all_cases_graph():
    g = Graph("opdb")
    feeds = []
    with GraphBuilder(g):
        for i, case in enumerate(CASES):
            ins = [g.add_input(t, f"c{i}_{j}") for j, t in enumerate(case.input_types())]
            feeds.extend(case.inputs)
            g.outputs.append(case.prim(*ins, **case.attrs))
    return g, feeds


@pytest.fixture(scope="module")
def results():
    g, feeds = _all_cases_graph()
    compiled = TVMCompiledGraph(g, {"passes": False, "cache": False})
    return compiled(feeds)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_primitive_matches_reference_through_tvm(results, index):
    CASES[index].assert_close(results[index])


def test_every_primitive_has_a_relax_lowering():
    missing = sorted(name for name in PRIMITIVES if name not in LOWERINGS and name != "fused")
    assert missing == []


def test_every_primitive_is_in_the_op_database():
    covered = {c.name for c in CASES} | {"fused"}
    assert sorted(set(PRIMITIVES) - covered) == []


def test_symbolic_batch_dimension_serves_every_size():
    """One build, several batch sizes; attributes holding the symbol (shape, fill value, slice stop) included."""
    from ember.ir import ops as P
    from ember.runtime.interpreter import Interpreter
    g = Graph("sym")
    x = g.add_input(T.TensorType(T.float32, ("B", 3)), "x")
    idx = g.add_input(T.TensorType(T.int64, ("B",)), "idx")
    with GraphBuilder(g):
        n = P.full(shape=(1, 3), value="B", dtype=T.float32)
        y = P.add(x, P.broadcast_to(n, shape=("B", 3)))
        r = P.reshape(P.reshape(y, shape=("B", 3, 1)), shape=(3, "B"))
        p = P.pad(x, pads=((1, 1), (0, 0)), value=0.5)
        c = P.concat(x, p, dim=0)
        s = P.sum_(c, dims=(0,), keepdim=True)
        sl = P.slice_(p, starts=(0, 1), stops=("B+2", 3), steps=(1, 1))
        t = P.take(x, idx, dim=0)
        ia = P.index_add(x, idx, x, dim=0)
    g.outputs = [r, s, sl, t, ia]
    compiled = TVMCompiledGraph(g, {"passes": False, "cache": False})
    ref = Interpreter(g)
    for batch in (1, 2, 5):
        rng = np.random.default_rng(batch)
        feeds = [rng.standard_normal((batch, 3)).astype(np.float32), rng.integers(-batch, batch, batch)]
        for got, want in zip(compiled(feeds), ref(feeds)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
