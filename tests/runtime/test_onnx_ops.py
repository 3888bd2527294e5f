"""Every primitive lowered to ONNX, run in ONNX Runtime and compared with its numpy kernel."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ember.ir import PRIMITIVES
from ember.ir import ops as P
from ember.ir import types as T
from ember.ir.graph import Graph, GraphBuilder
from ember.runtime.kernels import KERNELS
from ember.runtime.onnx import LOWERINGS, OnnxLoweringError, compile_onnxruntime, graph_to_onnx

RNG = np.random.default_rng(0)


def arr(dtype: T.DType, shape, kind="any"):
    """Sample data: ``pos`` for log/sqrt domains, ``nz`` avoids zero divisors, ``idx:N`` indices < N."""
    if dtype is T.bool_:
        return RNG.random(shape) > 0.5
    if kind.startswith("idx:"):
        return RNG.integers(0, int(kind[4:]), size=shape).astype(dtype.np)
    if dtype.is_floating_point:
        a = RNG.standard_normal(shape) * 2
        if kind == "pos":
            a = np.abs(a) + 0.1
        if kind == "nz":
            a = np.where(np.abs(a) < 0.3, 0.7, a)
        if kind == "unit":
            a = RNG.uniform(-0.9, 0.9, shape)
        return a.astype(dtype.np)
    lo = 0 if dtype is T.uint8 else -20
    a = RNG.integers(lo, 20, size=shape)
    if kind == "pos":
        a = RNG.integers(1, 6, size=shape)
    if kind == "nz":
        a = np.where(a == 0, 3, a)
    return a.astype(dtype.np)


def reference(graph: Graph, arrays):
    env = {v.name: a for v, a in zip(graph.inputs, arrays)}
    for n in graph.nodes:
        env[n.output.name] = np.asarray(KERNELS[n.op](*[env[v.name] for v in n.inputs], **n.attrs))
    return [env[v.name] for v in graph.outputs]


def build(op, specs, attrs, dtypes=None):
    """A one-node graph ``op(inputs, **attrs)`` plus sample inputs."""
    g = Graph(f"t_{op}")
    ins, arrays = [], []
    for i, (dt, shape, kind) in enumerate(specs):
        ins.append(g.add_input(T.TensorType(dt, tuple(shape)), f"x{i}"))
        arrays.append(arr(dt, shape, kind))
    with GraphBuilder(g):
        out = PRIMITIVES[op](*ins, **attrs)
    g.outputs = [out]
    return g, arrays


def check(graph, arrays, rtol=1e-5, atol=1e-6, full_check=True):
    model = graph_to_onnx(graph)
    onnx.checker.check_model(model, full_check=full_check)
    got = compile_onnxruntime(graph, {})(arrays)
    want = reference(graph, arrays)
    for g_, w_, v in zip(got, want, graph.outputs):
        assert g_.dtype == v.dtype.np, (g_.dtype, v.dtype)
        assert g_.shape == w_.shape
        if w_.dtype.kind == "f" or w_.dtype == T.bfloat16.np:
            np.testing.assert_allclose(g_.astype(np.float64), w_.astype(np.float64), rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g_, w_)


F32, F64, F16, BF16 = T.float32, T.float64, T.float16, T.bfloat16
I64, I32, I16, I8, U8, B = T.int64, T.int32, T.int16, T.int8, T.uint8, T.bool_
S = (3, 4)

UNARY_FLOAT = ["neg", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "sign", "floor", "ceil",
               "round", "expm1"]
CASES = []
for _op in UNARY_FLOAT:
    for _dt in (F32, F64, F16, BF16):
        CASES.append((_op, [(_dt, S, "any")], {}))
for _op in ("log", "log1p", "sqrt", "rsqrt"):
    for _dt in (F32, F64, F16):
        CASES.append((_op, [(_dt, S, "pos")], {}))
for _op in ("neg", "abs", "sign", "relu", "floor", "ceil", "round"):
    for _dt in (I64, I32, I16, I8):
        CASES.append((_op, [(_dt, S, "any")], {}))
for _op in ("isnan", "isinf"):
    CASES += [(_op, [(F32, S, "any")], {}), (_op, [(I64, S, "any")], {}), (_op, [(F16, S, "any")], {})]
CASES.append(("logical_not", [(B, S, "any")], {}))
for _op in ("add", "sub", "mul", "maximum", "minimum"):
    for _dt in (F32, F64, F16, BF16, I64, I32, I16, I8, U8):
        CASES.append((_op, [(_dt, S, "any"), (_dt, S, "any")], {}))
for _dt in (F32, F64, F16):
    CASES.append(("div", [(_dt, S, "any"), (_dt, S, "nz")], {}))
    CASES.append(("pow", [(_dt, S, "pos"), (_dt, S, "any")], {}))
for _op in ("remainder", "floor_divide"):
    for _dt in (F32, F64, I64, I32, I8):
        CASES.append((_op, [(_dt, S, "any"), (_dt, S, "nz")], {}))
CASES.append(("pow", [(I64, S, "pos"), (I64, S, "pos")], {}))
for _op in ("eq", "ne", "lt", "le", "gt", "ge"):
    for _dt in (F32, I64, I16, U8, F16):
        CASES.append((_op, [(_dt, S, "idx:3"), (_dt, S, "idx:3")], {}))
CASES.append(("eq", [(B, S, "any"), (B, S, "any")], {}))
for _op in ("logical_and", "logical_or", "logical_xor"):
    CASES.append((_op, [(B, S, "any"), (B, S, "any")], {}))
for _dt in (F32, I64, I16, B, F16):
    CASES.append(("where", [(B, S, "any"), (_dt, S, "any"), (_dt, S, "any")], {}))
for _src, _dst in [(F32, I64), (F32, F16), (F32, BF16), (I64, F32), (F64, F32), (B, F32), (F32, B), (I32, I8),
                   (F32, F32), (BF16, F32), (U8, I64)]:
    CASES.append(("cast", [(_src, S, "unit" if _dst.is_floating_point is False else "any")], {"dtype": _dst}))
CASES += [
    ("constant", [], {"value": np.arange(6, dtype=np.float32).reshape(2, 3)}),
    ("constant", [], {"value": np.arange(60, dtype=np.int64).reshape(3, 20)}),
    ("full", [], {"shape": (2, 3), "value": 1.5, "dtype": F32}),
    ("full", [], {"shape": (20, 30), "value": 7, "dtype": I64}),
    ("full", [], {"shape": (5, 5), "value": 2.0, "dtype": BF16}),
    ("full", [], {"shape": (), "value": True, "dtype": B}),
]
for _op in ("sum", "prod", "amax", "amin"):
    for _dt in (F32, F64, I64, I32, F16):
        for _dims, _kd in [((1,), False), ((0, 2), True), ((0, 1, 2), False), ((), False)]:
            CASES.append((_op, [(_dt, (2, 3, 4), ("unit" if _dt.is_floating_point else "idx:3") if _op == "prod"
                                 else "any")],
                          {"dims": _dims, "keepdim": _kd}))
CASES += [("amax", [(I16, S, "any")], {"dims": (1,), "keepdim": False}),
          ("amax", [(B, S, "any")], {"dims": (0,), "keepdim": True}),
          ("sum", [(I8, S, "any")], {"dims": (1,), "keepdim": False})]
# float32 sums over leading axes lower as a Gemm with a row of ones (plus ReduceSum for the other axes)
CASES += [("sum", [(F32, shape, "any")], {"dims": dims, "keepdim": kd}) for shape, dims, kd in [
    ((37, 19), (0,), False), ((37, 19), (0,), True), ((4, 5, 6), (0, 1), False), ((6, 3, 4, 5), (0, 2, 3), True),
    ((6, 3, 4, 5), (0, 3), False)]]
for _op in ("argmax", "argmin"):
    for _dt in (F32, I64, I16):
        CASES += [(_op, [(_dt, (3, 5), "any")], {"dim": 1, "keepdim": False}),
                  (_op, [(_dt, (3, 5), "any")], {"dim": 0, "keepdim": True})]
    CASES.append((_op, [(F32, (), "any")], {"dim": 0, "keepdim": False}))
CASES += [
    ("reshape", [(F32, (2, 6), "any")], {"shape": (3, 4)}),
    ("reshape", [(F32, (0, 6), "any")], {"shape": (0, 2, 3)}),
    ("reshape", [(I64, (2, 3), "any")], {"shape": (6,)}),
    ("reshape", [(F32, (1,), "any")], {"shape": ()}),
    ("permute", [(F32, (2, 3, 4), "any")], {"dims": (2, 0, 1)}),
    ("permute", [(B, (2, 3), "any")], {"dims": (1, 0)}),
    ("broadcast_to", [(F32, (3, 1), "any")], {"shape": (2, 3, 4)}),
    ("broadcast_to", [(B, (1,), "any")], {"shape": (2, 3)}),
    ("slice", [(F32, (5, 6), "any")], {"starts": (1, 0), "stops": (4, 6), "steps": (2, 1)}),
    ("slice", [(F32, (5, 6), "any")], {"starts": (0, 2), "stops": (5, 6), "steps": (1, 3)}),
    ("slice", [(I64, (5, 6), "any")], {"starts": (0, 0), "stops": (0, 6), "steps": (1, 1)}),
    ("flip", [(F32, (3, 4, 2), "any")], {"dims": (0, 2)}),
    ("flip", [(I64, (3,), "any")], {"dims": ()}),
    ("pad", [(F32, (2, 3), "any")], {"pads": ((1, 2), (0, 1)), "value": 0.5}),
    ("pad", [(I64, (2, 3), "any")], {"pads": ((0, 0), (3, 0)), "value": -1}),
    ("pad", [(B, (2, 3), "any")], {"pads": ((1, 0), (0, 0)), "value": False}),
    ("pad", [(I16, (2, 3), "any")], {"pads": ((1, 1), (1, 1)), "value": 4}),
    ("matmul", [(F32, (3, 4), "any"), (F32, (4, 5), "any")], {}),
    ("matmul", [(F64, (2, 3, 4), "any"), (F64, (2, 4, 5), "any")], {}),
    ("matmul", [(I64, (3, 4), "any"), (I64, (4, 2), "any")], {}),
    ("matmul", [(F16, (3, 4), "any"), (F16, (4, 2), "any")], {}),
    ("take", [(F32, (5, 3), "any"), (I64, (4,), "idx:5")], {"dim": 0}),
    ("take", [(F32, (2, 5, 3), "any"), (I64, (2, 2), "idx:5")], {"dim": 1}),
    ("take", [(I64, (4, 6), "any"), (I32, (3,), "idx:6")], {"dim": 1}),
    ("index_add", [(F32, (5, 3), "any"), (I64, (6,), "idx:5"), (F32, (6, 3), "any")], {"dim": 0}),
    ("index_add", [(F32, (2, 5, 3), "any"), (I64, (2, 2), "idx:5"), (F32, (2, 2, 2, 3), "any")], {"dim": 1}),
    ("index_add", [(F64, (4, 6), "any"), (I32, (3,), "idx:6"), (F64, (4, 3), "any")], {"dim": 1}),
    ("gather", [(F32, (3, 4), "any"), (I64, (3, 6), "idx:4")], {"dim": 1}),
    ("gather", [(I64, (3, 4), "any"), (I64, (2, 4), "idx:3")], {"dim": 0}),
    ("scatter_add", [(F32, (3, 4), "any"), (I64, (3, 6), "idx:4"), (F32, (3, 6), "any")], {"dim": 1}),
    ("scatter_add", [(F64, (3, 4), "any"), (I64, (5, 4), "idx:3"), (F64, (5, 4), "any")], {"dim": 0}),
]
CASES.append(("concat", None, None))  # variadic: built below


def _case_id(c):
    op, specs, attrs = c
    if specs is None:
        return op
    return f"{op}-" + "-".join(s[0].short for s in specs) + (f"-{sorted(attrs.items())[0][1]}" if attrs and
                                                            op not in ("constant",) else "")


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{_case_id(c)}" for i, c in enumerate(CASES)])
def test_primitive_matches_numpy_kernel(case):
    op, specs, attrs = case
    if op == "concat":
        g = Graph("cat")
        a = g.add_input(T.TensorType(F32, (2, 3)), "a")
        b = g.add_input(T.TensorType(F32, (2, 5)), "b")
        with GraphBuilder(g):
            g.outputs = [P.concat(a, b, a, dim=1)]
        check(g, [arr(F32, (2, 3)), arr(F32, (2, 5))])
        return
    g, arrays = build(op, specs, attrs)
    lowp = any(s[0] in (F16, BF16) for s in specs) or attrs.get("dtype") in (F16, BF16)
    check(g, arrays, rtol=1e-2 if lowp else 1e-5, atol=1e-2 if lowp else 1e-6)


def test_leading_axis_sums_are_one_gemm():
    g = Graph("bias_grad")
    x = g.add_input(T.TensorType(F32, (64, 10)), "x")
    with GraphBuilder(g):
        g.outputs = [P.sum_(x, dims=(0,), keepdim=False)]
    ops = [n.op_type for n in graph_to_onnx(g).graph.node]
    assert "Gemm" in ops and "ReduceSum" not in ops
    check(g, [arr(F32, (64, 10))], rtol=1e-5, atol=1e-5)


def test_relu_mask_lowers_without_sign_and_passes_g_at_nan_like_pytorch():
    g = Graph("relu_vjp")
    x = g.add_input(T.TensorType(F32, (2, 5)), "x")
    gy = g.add_input(T.TensorType(F32, (2, 5)), "gy")
    with GraphBuilder(g):
        g.outputs = [P.mul(gy, P.sign(P.relu(x)))]
    assert "Sign" not in [n.op_type for n in graph_to_onnx(g).graph.node]
    xv = np.array([[-1.0, 0.0, 2.0, -0.0, 1e-30], [np.nan, 3.0, -2.0, 0.5, np.inf]], np.float32)
    gv = np.arange(1, 11, dtype=np.float32).reshape(2, 5)
    got = compile_onnxruntime(g, {})([xv, gv])[0]
    # torch.relu(x).backward(g): threshold_backward passes g where the output is not <= 0 (NaN included)
    np.testing.assert_array_equal(got, np.where(np.maximum(xv, 0) > 0, gv, 0) + np.where(np.isnan(xv), gv, 0))


def test_an_op_of_broadcasts_runs_at_the_sources_size():
    # (g + g) * x with g = broadcast([1, 3, 1, 1]): the add stays [1, 3, 1, 1], no full-size Expand
    g = Graph("small")
    s = g.add_input(T.TensorType(F32, (1, 3, 1, 1)), "s")
    x = g.add_input(T.TensorType(F32, (2, 3, 4, 5)), "x")
    with GraphBuilder(g):
        b = P.broadcast_to(s, shape=(2, 3, 4, 5))
        two_b = P.add(b, b)
        g.outputs = [P.mul(two_b, x), P.sum_(two_b, dims=(0, 2, 3), keepdim=False)]  # a reduction reads it too
    model = graph_to_onnx(g)
    adds = [n for n in model.graph.node if n.op_type == "Add"]
    assert len(adds) == 1 and sum(n.op_type == "Expand" for n in model.graph.node) == 1  # for the sum only
    check(g, [arr(F32, (1, 3, 1, 1)), arr(F32, (2, 3, 4, 5))], rtol=1e-6, atol=1e-6)


def test_every_primitive_has_an_onnx_lowering():
    missing = sorted(name for name in PRIMITIVES if name not in LOWERINGS)
    assert missing == []


def test_every_primitive_is_exercised_here():
    covered = {c[0] for c in CASES} | {"uniform", "normal", "randint", "fused"}
    nn_ops = {n for n, p in PRIMITIVES.items() if p.kind == "nn" or n.startswith(("conv", "max_pool", "avg_pool"))}
    assert sorted(set(PRIMITIVES) - covered - nn_ops) == []


def _sym_graph():
    g = Graph("sym")
    x = g.add_input(T.TensorType(F32, ("B", 3)), "x")
    with GraphBuilder(g):
        ones = P.full(shape=("B", 3), value=1.0, dtype=F32)
        n = P.full(shape=(1, 3), value="B", dtype=F32)            # the batch size as a value
        y = P.add(P.add(x, ones), P.broadcast_to(n, shape=("B", 3)))
        r = P.reshape(y, shape=("B", 3, 1))
        r = P.reshape(r, shape=(3, "B"))                           # symbolic dim in a new position
        p = P.pad(x, pads=((1, 1), (0, 0)), value=0.0)             # B+2 rows
        c = P.concat(x, p, dim=0)
        s = P.sum_(c, dims=(0,), keepdim=True)
        p = P.slice_(p, starts=(0, 1), stops=("B+2", 3), steps=(1, 1))
    g.outputs = [r, s, p]
    return g


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_symbolic_dimensions_run_at_any_size(batch):
    g = _sym_graph()
    model = graph_to_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim][:1] == ["B"]
    x = arr(F32, (batch, 3))
    got = compile_onnxruntime(g, {})([x])
    for a, b in zip(got, reference(_concrete(g, batch), [x])):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _concrete(g, batch):
    """The symbolic graph's nodes with B replaced, for the numpy reference."""
    import copy
    g2 = copy.copy(g)
    nodes = []
    for n in g.nodes:
        n2 = copy.copy(n)
        attrs = dict(n.attrs)
        for k in ("shape",):
            if k in attrs:
                attrs[k] = tuple(batch if d == "B" else d for d in attrs[k])
        if attrs.get("value") == "B":
            attrs["value"] = batch
        if "stops" in attrs:
            attrs["stops"] = tuple(batch + 2 if d == "B+2" else d for d in attrs["stops"])
        n2.attrs = attrs
        nodes.append(n2)
    g2.nodes = nodes
    return g2


@pytest.mark.parametrize("op,attrs", [
    ("uniform", {"low": -2.0, "high": 3.0}), ("normal", {"mean": 1.0, "std": 2.0}), ("randint", {"low": 3, "high": 9}),
])
@pytest.mark.parametrize("shape", [(200, 100), ("B", 100)])
def test_random_ops_have_the_right_distribution(op, attrs, shape):
    g = Graph("rand")
    x = g.add_input(T.TensorType(F32, ("B", 1)), "x")
    dt = I64 if op == "randint" else F32
    with GraphBuilder(g):
        g.outputs = [PRIMITIVES[op](shape=shape, dtype=dt, **attrs), x]
    onnx.checker.check_model(graph_to_onnx(g), full_check=True)
    (y, _) = compile_onnxruntime(g, {})([np.zeros((200, 1), np.float32)])
    assert y.shape == (200, 100) and y.dtype == dt.np
    if op == "uniform":
        assert y.min() >= -2 and y.max() < 3 and abs(y.mean() - 0.5) < 0.05
    elif op == "normal":
        assert abs(y.mean() - 1) < 0.05 and abs(y.std() - 2) < 0.05
    else:
        assert set(np.unique(y)) == set(range(3, 9))


def test_old_opset_is_refused_with_a_clear_message():
    g, _ = build("scatter_add", [(F32, (3, 4), "any"), (I64, (3, 6), "idx:4"), (F32, (3, 6), "any")], {"dim": 1})
    with pytest.raises(OnnxLoweringError, match=r"opset 13 cannot express ScatterElements.*needs opset >= 16"):
        graph_to_onnx(g, opset=13)
    with pytest.raises(OnnxLoweringError, match="opset_version=9 is not supported"):
        graph_to_onnx(g, opset=9)
    for opset in (16, 17, 18, 21):
        m = graph_to_onnx(g, opset=opset)
        assert m.opset_import[0].version == opset and m.ir_version == 10


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_reductions_lower_at_every_opset(opset):
    g, arrays = build("amax", [(F32, (2, 3, 4), "any")], {"dims": (0, 2), "keepdim": False})
    m = graph_to_onnx(g, opset=opset)
    onnx.checker.check_model(m, full_check=True)
    got = compile_onnxruntime(g, {"opset": opset})(arrays)[0]
    np.testing.assert_array_equal(got, arrays[0].max(axis=(0, 2)))


def test_symbolic_dimension_expressions():
    g = Graph("expr")
    x = g.add_input(T.TensorType(F32, ("B", 6)), "x")
    with GraphBuilder(g):
        r = P.reshape(x, shape=("B*2", 3))
        f = P.full(shape=("(B+1)//2", 2), value="B", dtype=F32)
    g.outputs = [r, f]
    onnx.checker.check_model(graph_to_onnx(g), full_check=True)
    for batch in (1, 4, 5):
        xa = arr(F32, (batch, 6))
        r_got, f_got = compile_onnxruntime(g, {})([xa])
        np.testing.assert_array_equal(r_got, xa.reshape(batch * 2, 3))
        np.testing.assert_array_equal(f_got, np.full(((batch + 1) // 2, 2), batch, np.float32))
