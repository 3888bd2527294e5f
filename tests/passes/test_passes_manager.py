"""The pass manager: pipelines by name, verification, timing, printing and numbered dumps."""

import io
import os

import numpy as np
import pytest

from ember.ir import ops as P
from ember.passes import PASSES, register_pass, rerun_pass, run_pipeline
from ember.passes.manager import read_dump_header

from ._graphs import build, run


def _graph():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)

    def f(a):
        t = P.permute(P.permute(a, dims=(1, 0)), dims=(1, 0))
        return P.sum_(P.mul(P.exp(t), P.exp(t)), dims=(0, 1), keepdim=False)
    return build(f, [x], roles={0: "param"}), x


def test_registry_has_the_documented_passes():
    for name in ["autodiff", "simplify", "fold", "cse", "dce", "fuse", "unfuse", "partition"]:
        assert name in PASSES


def test_pipeline_runs_in_order_and_records_counts_and_times():
    g, x = _graph()
    res = run_pipeline(g, "autodiff,simplify,cse,dce,fuse")
    assert [r.name for r in res.records] == ["autodiff", "simplify", "cse", "dce", "fuse"]
    assert res.records[0].nodes_after > res.records[0].nodes_before
    assert res.records[-1].nodes_after < res.records[0].nodes_after
    assert all(r.seconds >= 0 for r in res.records)
    assert "autodiff" in res.report()
    loss, gx = run(res.graph, [x])
    np.testing.assert_allclose(gx, 2 * np.exp(2 * x), rtol=1e-5)


def test_options_are_passed_to_the_pass():
    g, x = _graph()
    res = run_pipeline(g, [("autodiff", {"wrt": ["x0"], "keep_outputs": False}), "dce"])
    assert len(res.graph.outputs) == 1


def test_unknown_pass_is_a_clear_error():
    g, _ = _graph()
    with pytest.raises(ValueError, match="unknown pass 'fusee'; available: .*fuse"):
        run_pipeline(g, "dce,fusee")


def test_a_pass_that_breaks_the_graph_is_named():
    @register_pass("test_breaker")
    def breaker(graph):
        graph = type(graph)(graph.name, list(graph.inputs), list(graph.nodes[1:]), list(graph.outputs),
                            dict(graph.input_roles))
        return graph
    try:
        g, _ = _graph()
        with pytest.raises(Exception, match="after pass 'test_breaker'"):
            run_pipeline(g, "test_breaker")
    finally:
        PASSES.pop("test_breaker")


def test_print_after_and_print_after_all():
    g, _ = _graph()
    out = io.StringIO()
    run_pipeline(g, "simplify,dce", print_after=["dce"], stream=out)
    text = out.getvalue()
    assert "IR after dce" in text and "IR after simplify" not in text and "permute" not in text
    out = io.StringIO()
    run_pipeline(g, "simplify,dce", print_after_all=True, stream=out)
    assert out.getvalue().count("IR after") == 2


def test_dump_dir_writes_numbered_files_with_headers(tmp_path):
    g, _ = _graph()
    run_pipeline(g, [("autodiff", {"wrt": ["x0"]}), "simplify", "dce", "fuse"], dump_dir=str(tmp_path))
    files = sorted(os.listdir(tmp_path))
    assert files == ["000-input.eir", "001-autodiff.eir", "002-simplify.eir", "003-dce.eir", "004-fuse.eir"]
    name, opts = read_dump_header((tmp_path / "001-autodiff.eir").read_text())
    assert name == "autodiff" and opts == {"wrt": ["x0"]}
    assert "fused" in (tmp_path / "004-fuse.eir").read_text()


def test_a_dumped_pass_can_be_rerun_alone(tmp_path):
    pytest.importorskip("ember.ir.parser")
    g, x = _graph()
    final = run_pipeline(g, [("autodiff", {"wrt": ["x0"]}), "simplify", "dce"], dump_dir=str(tmp_path)).graph
    again = rerun_pass(str(tmp_path), 3)
    assert str(again) == str(final)
    np.testing.assert_allclose(run(again, [x])[1], run(final, [x])[1])
