"""Every nn layer and loss, captured by tracing and run through TVM, against the numpy interpreter.

The layer and loss tables are the capture tests' (``tests/frontend/test_jit_capture_layers.py``).
TVM builds are slow, so every captured graph is merged into ONE graph (inputs and
outputs side by side) and built once for the module; each test checks its slice.
Each graph goes through ember's passes first (fusion included), so fused groups
are exercised as Relax Primitive functions too.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm")

import ember  # noqa: E402
from ember.ir.graph import Graph  # noqa: E402
from ember.passes import optimize  # noqa: E402
from ember.passes._rewrite import copy_node  # noqa: E402
from ember.runtime.interpreter import Interpreter  # noqa: E402
from ember.runtime.tvm import TVMCompiledGraph  # noqa: E402
from tests.frontend.test_jit_capture_layers import LAYERS, LOSSES, _inputs, _loss_inputs  # noqa: E402

def _capture(name, make, spec, kind):
    ember.manual_seed(1)
    fn = make()
    args = _inputs(spec) if kind is None else _loss_inputs(kind)
    traced = ember.jit.trace(fn, args)
    leaves: list = []
    ember.jit.flatten((args, {}), leaves)
    arrays, _ = traced._capture.gather(leaves)
    return traced.graph, [np.array(a) for a in arrays]


def _merge(graphs: list[Graph]) -> tuple[Graph, list[slice]]:
    """One graph holding every graph's inputs, nodes and outputs (names prefixed), plus output slices."""
    merged = Graph("layers")
    spans = []
    for i, g in enumerate(graphs):
        env = {v.name: merged.add_input(v.type, f"g{i}_{v.name}", g.input_roles.get(v.name, "input"))
               for v in g.inputs}
        for n in g.nodes:
            env[n.output.name] = copy_node(merged, n, [env[v.name] for v in n.inputs], name=f"g{i}_{n.output.name}")
        start = len(merged.outputs)
        merged.outputs.extend(env[v.name] for v in g.outputs)
        spans.append(slice(start, len(merged.outputs)))
    return merged, spans


CASES = [(name, make, spec, None) for name, make, spec in LAYERS] + \
        [(name, make, None, kind) for name, make, kind in LOSSES]


@pytest.fixture(scope="module")
def runs():
    captured = [_capture(*c) for c in CASES]
    feeds = [a for _, arrays in captured for a in arrays]
    # reference: the numpy interpreter on the merged captured graphs; TVM: the same after ember's passes.
    # Both draw random numbers (dropout) from ember's generator in the same order, so they agree exactly.
    raw, spans = _merge([g for g, _ in captured])
    opt, _ = _merge([optimize(g) for g, _ in captured])
    compiled = TVMCompiledGraph(opt, {"passes": False})
    ember.manual_seed(7)
    want = Interpreter(raw)(feeds)
    ember.manual_seed(7)
    got = compiled(feeds)
    return {name: (got[span], want[span]) for (name, *_), span in zip(CASES, spans)}


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_layer_or_loss_through_tvm_matches_numpy(runs, name):
    got, want = runs[name]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
