"""ONNX import: ONNX's own node tests for every operator ember claims, and hostile inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from ember.runtime.onnx.conformance import (
    CLAIMED_BY_FUNCTION, FAIL, PARTIAL, PASS, UNSUPPORTED, load_cases, run_case,
)
from ember.runtime.onnx.importer import CONVERTERS, OnnxImportError, evaluate, import_model

# converters of other domains are keyed "domain::Op" (ai.onnx.preview.training's optimizers)
CLAIMED = sorted({k.split("::")[-1] for k in CONVERTERS} - set(PARTIAL)) + CLAIMED_BY_FUNCTION


@pytest.fixture(scope="module")
def claimed_results():
    cases = load_cases(CLAIMED)
    return [run_case(c) for c in cases]


def test_node_tests_exist_for_most_claimed_ops(claimed_results):
    tested = {r.op for r in claimed_results}
    assert len(tested) >= 0.8 * len(CLAIMED), sorted(set(CLAIMED) - tested)


def _dtype_limit(detail: str) -> bool:
    """Cases refused only because ember has no such dtype (uint16/32/64, strings) or sequence types."""
    return "element type" in detail or "not a tensor" in detail or "string" in detail or "sequence" in detail


def test_every_claimed_op_passes_all_its_node_tests(claimed_results):
    bad = [f"{r.name} ({r.op}): {r.status} {r.detail}" for r in claimed_results
           if r.op in CLAIMED and (r.status == FAIL or (r.status == UNSUPPORTED and not _dtype_limit(r.detail)))]
    assert bad == []
    assert sum(r.status == PASS for r in claimed_results) > 400


# ------------------------------------------------------------------ hand-made models
def _model(nodes, inputs, outputs, inits=(), opset=18):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _vi(name, dims, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, dims)


def test_dynamic_reshape_chain_imports_with_symbolic_batch():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "zero1"], ["b1"]),
             helper.make_node("Concat", ["b1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"]),
             helper.make_node("MatMul", ["y", "w"], ["z"])]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]),
             helper.make_tensor("zero1", TensorProto.INT64, [1], [0]),
             helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
             onnx.numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(12, 1), "w")]
    m = _model(nodes, [_vi("x", ["N", 3, 4])], [_vi("z", ["N", 1])], inits)
    graph, params = import_model(m)
    assert graph.inputs[0].shape == ("N", 3, 4)
    assert graph.outputs[0].shape == ("N", 1)
    assert set(params) == {"w"}
    x = np.random.randn(5, 3, 4).astype(np.float32)
    from ember.runtime.onnx import compile_onnxruntime
    (got,) = compile_onnxruntime(graph, {})([x, params["w"]])
    np.testing.assert_allclose(got, x.reshape(5, 12) @ params["w"], rtol=1e-5)


def _truncated_tensor():
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000])
    t.raw_data = b"\0" * 12
    return t


BAD_MODELS = {
    "unknown op": (lambda: _model([helper.make_node("FancyOp", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])]),
                   "unsupported ONNX operator.*FancyOp"),
    "missing initializer": (lambda: _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [2])],
                                           [_vi("y", [2])]), "input 'w' is not produced"),
    "cycle": (lambda: _model([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])],
                             [_vi("x", [2])], [_vi("b", [2])]), "cycle"),
    "bad shapes": (lambda: _model([helper.make_node("Add", ["x", "z"], ["y"])], [_vi("x", [2, 3]), _vi("z", [4])],
                                  [_vi("y", [2, 3])]), "not broadcastable"),
    "absurd size": (lambda: _model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [], [_vi("y", [1])],
                                   [helper.make_tensor("s", TensorProto.INT64, [3], [1 << 20, 1 << 20, 1 << 20])]),
                    "limit"),
    "truncated initializer": (lambda: _model([helper.make_node("Relu", ["w"], ["y"])], [], [_vi("y", [4])],
                                             [_truncated_tensor()]), "w"),
    "produced twice": (lambda: _model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])],
                                      [_vi("x", [2])], [_vi("y", [2])]), "produced twice"),
    "no opset": (lambda: helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[]), "opset"),
    "bad reshape": (lambda: _model([helper.make_node("Reshape", ["x", "s"], ["y"])], [_vi("x", [2, 3])],
                                   [_vi("y", [5])], [helper.make_tensor("s", TensorProto.INT64, [1], [5])]),
                    "reshape"),
    "bad axis": (lambda: _model([helper.make_node("Concat", ["x", "x"], ["y"], axis=7)], [_vi("x", [2])],
                                [_vi("y", [4])]), "axis 7"),
}


@pytest.mark.parametrize("kind", sorted(BAD_MODELS))
def test_malformed_models_give_one_clear_error(kind):
    make, pattern = BAD_MODELS[kind]
    with pytest.raises(OnnxImportError, match=pattern):
        import_model(make())


def test_garbage_and_truncated_files(tmp_path):
    good = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])]).SerializeToString()
    for blob in (b"", b"not an onnx file at all", good[: len(good) // 2], bytes(range(256)) * 4):
        try:
            import_model(blob)
        except OnnxImportError:
            continue  # one clear error
        # a prefix can still be a (smaller) valid protobuf: then it imported without crashing
    p = tmp_path / "x.onnx"
    p.write_bytes(b"\x08\x07garbage")
    with pytest.raises(OnnxImportError):
        import_model(str(p))


def _mutations():
    base = _model([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
                   helper.make_node("Reshape", ["r", "s"], ["y"])],
                  [_vi("x", [2, 3])], [_vi("y", [8])],
                  [onnx.numpy_helper.from_array(np.ones((3, 4), np.float32), "w"),
                   helper.make_tensor("s", TensorProto.INT64, [1], [8])])
    return base.SerializeToString()


BASE = _mutations()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(BASE)))
def test_fuzzed_models_never_crash(flips, cut):
    """Random byte flips and truncations: an import either works or raises OnnxImportError."""
    data = bytearray(BASE[:max(cut, 1)])
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    try:
        graph, params = import_model(bytes(data))
    except OnnxImportError:
        return
    # it imported: it must also run (static shapes here) without crashing
    arrays = [params.get(v.name, np.ones([d if isinstance(d, int) else 1 for d in v.shape], v.dtype.np))
              for v in graph.inputs]
    if all(isinstance(d, int) for v in graph.inputs for d in v.shape) and \
            sum(int(np.prod(a.shape)) for a in arrays) < 1e6:
        try:
            evaluate(graph, arrays)
        except (ValueError, FloatingPointError):
            pass


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["Add", "Mul", "Sub", "Max", "Min", "Equal", "Less", "Where", "Relu", "Reshape", "Transpose",
                        "Concat", "Gather", "Slice", "Squeeze", "Unsqueeze", "Expand", "ReduceSum", "Softmax"]),
       st.lists(st.integers(-3, 5), min_size=0, max_size=4), st.lists(st.integers(-3, 5), min_size=0, max_size=4),
       st.integers(-4, 4))
def test_fuzzed_node_attributes_and_shapes(op, shape_a, shape_b, axis):
    """Random shapes, constant operands and axes: a clear error or a correct-shaped result, no crash."""
    n_in = {"Where": 3, "Relu": 1, "Transpose": 1, "Squeeze": 1, "Softmax": 1}.get(op, 2)
    shapes = [shape_a, shape_b, shape_a][:n_in]
    inputs, inits = [], []
    names = [f"i{k}" for k in range(n_in)]
    for k, (nm, sh) in enumerate(zip(names, shapes)):
        if op in ("Reshape", "Expand", "Gather", "Slice", "Squeeze", "Unsqueeze", "ReduceSum") and k == 1:
            inits.append(helper.make_tensor(nm, TensorProto.INT64, [len(sh)], sh))
        elif op == "Where" and k == 0:
            inputs.append(_vi(nm, [abs(d) for d in sh], TensorProto.BOOL))
        else:
            inputs.append(_vi(nm, [abs(d) for d in sh]))
    attrs = {"axis": axis} if op in ("Concat", "Gather", "Softmax") else {}
    if op == "Slice":
        inits.append(helper.make_tensor("e", TensorProto.INT64, [len(shape_b)], [d + 2 for d in shape_b]))
        names.append("e")
    m = _model([helper.make_node(op, names, ["y"], **attrs)], inputs, [onnx.ValueInfoProto(name="y")], inits)
    try:
        graph, params = import_model(m)
    except OnnxImportError:
        return
    arrays = [np.ones([d for d in v.shape], v.dtype.np) if v.name not in params else params[v.name]
              for v in graph.inputs]
    try:
        evaluate(graph, arrays)
    except ValueError as exc:  # a kernel refusing an empty reduction, as PyTorch does
        assert "zero-size" in str(exc)
