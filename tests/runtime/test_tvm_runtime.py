"""The TVM backend's runtime side: DLPack exchange (zero copy when aligned, a copy when not), the
persistent compile cache across processes, ``ember cache``, ``ember ir --backend tvm --show relax``,
and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("tvm")

from ember.ir import ops as P  # noqa: E402
from ember.ir import types as T  # noqa: E402
from ember.ir.graph import Graph, GraphBuilder  # noqa: E402
from ember.runtime.tvm import TVMCompiledGraph, dlpack  # noqa: E402

F32 = T.float32


def _affine_graph():
    """y = relu(x @ w + b), s = sum(y, 1): matmul through BLAS, a fused epilogue, a reduction."""
    g = Graph("affine")
    x = g.add_input(T.TensorType(F32, ("B", 6)), "x")
    w = g.add_input(T.TensorType(F32, (6, 4)), "w", role="param")
    b = g.add_input(T.TensorType(F32, (4,)), "b", role="param")
    with GraphBuilder(g):
        y = P.relu(P.add(P.matmul(x, w), P.broadcast_to(b, shape=("B", 4))))
        g.outputs = [y, P.sum_(y, dims=(1,), keepdim=False)]
    return g


@pytest.fixture(scope="module")
def affine():
    return TVMCompiledGraph(_affine_graph(), {"cache": False})


def _reference(x, w, b):
    y = np.maximum(x @ w + b, 0)
    return y, y.sum(1)


def test_aligned_arrays_are_shared_and_misaligned_views_copied():
    a = dlpack.aligned_empty((4, 6), np.float32)
    a[...] = 1.0
    assert a.ctypes.data % 64 == 0 and dlpack.can_share(a)
    t = dlpack.to_tvm(a)
    np.from_dlpack(t)[0, 0] = 5.0  # same memory
    assert a[0, 0] == 5.0
    buf = dlpack.aligned_empty((100,), np.float32)
    view = buf[1:25].reshape(4, 6)  # 4 bytes past a 64-byte boundary
    assert not dlpack.can_share(view)
    view[...] = np.arange(24).reshape(4, 6)
    t2 = dlpack.to_tvm(view)
    np.testing.assert_array_equal(t2.numpy(), view)
    assert not dlpack.can_share(np.zeros((6, 4), np.float32).T)  # not contiguous
    np.testing.assert_array_equal(dlpack.to_tvm(np.arange(6.0).reshape(2, 3).T).numpy(),
                                  np.arange(6.0).reshape(2, 3).T)
    assert dlpack.to_numpy(dlpack.to_tvm(np.float32(2.5))).shape == ()  # 0-d stays 0-d


def test_offset_and_strided_views_run_correctly(affine):
    rng = np.random.default_rng(0)
    big = dlpack.aligned_empty((5 * 6 + 1,), np.float32)
    big[...] = rng.standard_normal(big.shape)
    x = big[1:].reshape(5, 6)  # misaligned by 4 bytes
    w_t = rng.standard_normal((4, 6)).astype(np.float32)
    w = w_t.T  # a transposed (non-contiguous) view
    b = rng.standard_normal(4).astype(np.float32)
    for got, want in zip(affine([x, w, b]), _reference(x, w, b)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_outputs_are_numpy_views_and_feed_back_without_copies(affine):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y, s = affine([x, w, b])
    assert y.ctypes.data % 64 == 0 and dlpack.can_share(y)  # TVM's own buffers, viewed in place
    tensor = affine._returned[id(y)][1]
    assert np.from_dlpack(tensor).ctypes.data == y.ctypes.data
    # an output given back as an input (a written-back parameter) is reused as the same TVM tensor
    g = Graph("chain")
    v = g.add_input(T.TensorType(F32, (3, 4)), "v", role="state")
    with GraphBuilder(g):
        g.outputs = [P.mul(v, v)]
    sq = TVMCompiledGraph(g, {"cache": False})
    (out,) = sq([y])
    (out2,) = sq([out])
    np.testing.assert_allclose(out2, y ** 4, rtol=1e-5)


def test_wrong_input_is_a_clear_error(affine):
    with pytest.raises(ValueError, match=r"input %x of graph affine expects f32\[B,6\], got float64\[3, 6\]"):
        affine([np.zeros((3, 6)), np.zeros((6, 4), np.float32), np.zeros(4, np.float32)])
    with pytest.raises(ValueError, match="takes 3 inputs, got 1"):
        affine([np.zeros((3, 6), np.float32)])


def test_unknown_target_and_missing_gpu_are_clear():
    import tvm
    if not tvm.cuda(0).exist:
        with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
            TVMCompiledGraph(_affine_graph(), {"target": "cuda", "cache": False})


_CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.runtime.test_tvm_runtime import _affine_graph
    from ember.runtime.tvm import TVMCompiledGraph
    t = time.perf_counter()
    c = TVMCompiledGraph(_affine_graph(), {{}})
    seconds = time.perf_counter() - t
    x = np.ones((2, 6), np.float32); w = np.ones((6, 4), np.float32); b = np.zeros(4, np.float32)
    print(json.dumps({{"hit": c.cache_hit, "seconds": seconds, "sum": float(c([x, w, b])[1].sum())}}))
""")


EMBER = [sys.executable, "-c", "import sys; from ember.tools.cli import main; sys.exit(main())"]


def _run(args, env, **kw):
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_second_process_hits_the_cache_and_cache_cli(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, EMBER_CACHE_DIR=str(tmp_path), EMBER_TVM_CACHE="1")
    script = _CHILD.format(root=root)
    first = json.loads(_run([sys.executable, "-c", script], env).strip().splitlines()[-1])
    second = json.loads(_run([sys.executable, "-c", script], env).strip().splitlines()[-1])
    assert first["hit"] is False and second["hit"] is True
    assert first["sum"] == second["sum"] == 2 * 4 * 6.0
    assert second["seconds"] < first["seconds"]
    info = _run(EMBER + ["cache", "info"], env)
    assert str(tmp_path) in info and "1 compiled module(s)" in info and "affine" in info
    data = json.loads(_run(EMBER + ["cache", "info", "--json"], env))
    assert data["entries"] == 1 and data["items"][0]["tvm"]
    cleared = _run(EMBER + ["cache", "clear"], env)
    assert "removed 1 compiled module(s)" in cleared
    assert not list((tmp_path / "tvm").glob("*.so"))


def test_cli_shows_the_relax_module(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        import ember.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(8, 16)
                self.fc2 = nn.Linear(16, 3)
            def forward(self, x):
                return self.fc2(self.fc1(x).relu()).log_softmax(dim=1)
    """))
    out = _run(EMBER + ["ir", "model.py:Net", "--input", "f32[B,8]",
                "--backend", "tvm", "--show", "relax"], dict(os.environ), cwd=tmp_path)
    assert "@R.function" in out and 'R.Tensor((B, 8), dtype="float32")' in out
    assert 'R.call_dps_packed("ember.matmul"' in out  # matmul to BLAS, transpose folded into the call
    assert out.count('R.func_attr({"Primitive": True})') == 2  # linear+relu and log_softmax: one kernel each
    assert "R.permute_dims" not in out


def test_cuda_target_lowers_and_builds_without_a_gpu():
    """The GPU path (R.matmul / R.nn.conv2d, DLight schedules kernel by kernel) compiles; running needs a GPU."""
    import tvm
    from ember.runtime.tvm import build, graph_to_relax, relax_module
    if tvm.get_global_func("target.build.cuda", allow_missing=True) is None:
        pytest.skip("this TVM has no CUDA code generator")
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_80"})
    g = Graph("gpu")
    x = g.add_input(T.TensorType(F32, ("B", 3, 8, 8)), "x")
    w = g.add_input(T.TensorType(F32, (4, 3, 3, 3)), "w", role="param")
    with GraphBuilder(g):
        y = P.relu(P.nn.conv2d(x, w, stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1))
        z = P.reshape(y, shape=("B", 256))
        g.outputs = [P.sum_(P.exp(z), dims=(1,), keepdim=False)]
    text = relax_module(g, {"target": target}).script()
    assert "R.nn.conv2d" in text and "ember.matmul" not in text  # no host BLAS on the GPU path
    assert build(graph_to_relax(g, {"matmul": "tvm"}), target) is not None


def _misaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data sits 4 bytes past a 64-byte boundary."""
    buf = dlpack.aligned_empty((a.size + 16,), a.dtype)
    out = buf[1:1 + a.size].reshape(a.shape)
    out[...] = a
    assert not dlpack.can_share(out)
    return out


@pytest.mark.parametrize("align", ["aligned", "misaligned"])
def test_inputs_reused_across_calls_see_in_place_updates(align):
    """The backend keeps per-input TVM tensors between calls (shared or staged); a parameter updated
    in place, or replaced by another array, must be seen on the next call."""
    compiled = TVMCompiledGraph(_affine_graph(), {"cache": False})
    rng = np.random.default_rng(3)
    prep = _misaligned if align == "misaligned" else _aligned_copy
    x = prep(rng.standard_normal((3, 6)).astype(np.float32))
    w = prep(rng.standard_normal((6, 4)).astype(np.float32))
    b = prep(rng.standard_normal(4).astype(np.float32))

    def reference():
        return np.maximum(x.astype(np.float64) @ w + b, 0)

    first = compiled([x, w, b])[0]
    want_first = reference()
    np.testing.assert_allclose(first, want_first, rtol=1e-5, atol=1e-5)
    for step in range(3):
        w -= 0.5 * (step + 1)  # in place, same array object
        b[...] = rng.standard_normal(4)
        got = compiled([x, w, b])[0]
        np.testing.assert_allclose(got, reference(), rtol=1e-5, atol=1e-5)
    w2 = prep(rng.standard_normal((6, 4)).astype(np.float32))  # a different array for the same input
    got = compiled([x, w2, b])[0]
    np.testing.assert_allclose(got, np.maximum(x.astype(np.float64) @ w2 + b, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(first, want_first, rtol=1e-5, atol=1e-5)  # earlier results untouched


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    out = dlpack.aligned_empty(a.shape, a.dtype)
    out[...] = a
    assert dlpack.can_share(out)
    return out


def test_output_that_is_a_staged_input_is_not_overwritten_later():
    """An output that is (a view of) a copied input must not change when the next call refills
    the staging buffer."""
    g = Graph("passthrough")
    w = g.add_input(T.TensorType(F32, (2, 3)), "w", role="param")
    with GraphBuilder(g):
        g.outputs = [P.reshape(w, shape=(6,))]
    compiled = TVMCompiledGraph(g, {"cache": False, "passes": False})
    w1 = _misaligned(np.arange(6, dtype=np.float32).reshape(2, 3))
    out1 = compiled([w1])[0]
    w2 = _misaligned(np.full((2, 3), 7, dtype=np.float32))
    out2 = compiled([w2])[0]
    np.testing.assert_array_equal(out1, np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(out2, np.full(6, 7, dtype=np.float32))
    out3 = compiled([out2.reshape(2, 3)])[0]  # an output fed back in
    np.testing.assert_array_equal(out3, np.full(6, 7, dtype=np.float32))


def test_layer_parameters_are_allocated_for_sharing():
    """Creation functions allocate large arrays 64-byte aligned, so a layer's parameters reach TVM
    without a copy; values and flags are numpy's."""
    import ember
    import ember.nn as nn
    lin = nn.Linear(784, 512)
    assert dlpack.can_share(lin.weight._data)  # small arrays (< 4 KiB, the bias) are cheap to stage
    for make, ref in ((ember.zeros, np.zeros), (ember.ones, np.ones)):
        got = make(300, 7, dtype=ember.float64)._data
        np.testing.assert_array_equal(got, ref((300, 7)))
        assert got.dtype == np.float64 and got.flags.c_contiguous and got.flags.writeable
        assert got.ctypes.data % dlpack.ALIGNMENT == 0
    np.testing.assert_array_equal(ember.full((3000,), 2.5)._data, np.full(3000, 2.5, np.float32))


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_transpose_of_a_blas_matmul_is_one_blas_call(ta, tb):
    """(op(a) @ op(b)).T lowers to op(b).T @ op(a).T: one BLAS call, no transpose kernel (a linear layer's
    weight gradient), and the values match numpy's."""
    from ember.runtime.tvm import relax_module
    g = Graph("mm_t")
    sa, sb = ((5, 3) if ta else (3, 5)), ((4, 5) if tb else (5, 4))
    a = g.add_input(T.TensorType(F32, sa), "a")
    b = g.add_input(T.TensorType(F32, sb), "b")
    with GraphBuilder(g):
        lhs = P.transpose_last(a) if ta else a
        rhs = P.transpose_last(b) if tb else b
        g.outputs = [P.transpose_last(P.matmul(lhs, rhs))]
    text = relax_module(g, {"passes": False}).script()
    assert text.count('R.call_dps_packed("ember.matmul"') == 1 and "permute_dims" not in text
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    (got,) = TVMCompiledGraph(g, {"cache": False, "passes": False})([av, bv])
    want = ((av.T if ta else av) @ (bv.T if tb else bv)).T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reductions_are_vectorized_and_match_numpy():
    """A row reduction (BatchNorm's statistics over N, H, W) is split into vector partial sums (rfactor) and
    a column reduction (a bias gradient) accumulates whole vectors; both keep numpy's values."""
    from ember.runtime.tvm.build import resolve_target, scheduled_module
    from ember.runtime.tvm.lower import graph_to_relax
    g = Graph("reductions")
    x = g.add_input(T.TensorType(F32, (3, 4, 8, 8)), "x")
    m = g.add_input(T.TensorType(F32, ("B", 40)), "m")
    with GraphBuilder(g):
        g.outputs = [P.sum_(P.mul(x, x), dims=(0, 2, 3), keepdim=False), P.sum_(m, dims=(0,), keepdim=False)]
    scheduled = scheduled_module(graph_to_relax(g, {}), resolve_target())
    tir_text = "\n".join(f.script() for f in scheduled.functions.values())
    assert "_rf" in tir_text and tir_text.count("T.vectorized") >= 2
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    compiled = TVMCompiledGraph(g, {"cache": False, "passes": False})
    for batch in (5, 2):
        mv = rng.standard_normal((batch, 40)).astype(np.float32)
        got_x, got_m = compiled([xv, mv])
        np.testing.assert_allclose(got_x, (xv.astype(np.float64) ** 2).sum(axis=(0, 2, 3)), rtol=1e-5)
        np.testing.assert_allclose(got_m, mv.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,pads,ceil", [((2, 3, 7, 9), ((1, 1), (0, 0)), False),
                                             ((1, 2, 9, 7), ((1, 0), (0, 1)), True)])
def test_tiled_max_pool_backward_matches_the_numpy_kernel(shape, pads, ceil):
    """Non-overlapping windows (stride == kernel) route each pixel's gradient by its position: padded,
    ceil-mode and uncovered trailing pixels agree with ember's numpy kernel."""
    from ember.runtime.kernels import KERNELS
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=pads, dilation=(1, 1), ceil_mode=ceil)
    rng = np.random.default_rng(1)
    xv = np.round(rng.uniform(0, 3, shape)).astype(np.float32)  # whole numbers: ties go to the first maximum
    g = Graph("mpb")
    x = g.add_input(T.TensorType(F32, shape), "x")
    with GraphBuilder(g):
        y = P.nn.max_pool2d(x, **attrs)
        gy = g.add_input(T.TensorType(F32, y.type.shape), "gy")
        g.outputs = [P.nn.max_pool2d_backward(gy, x, **attrs)]
    gv = rng.standard_normal([int(d) for d in y.type.shape]).astype(np.float32)
    (got,) = TVMCompiledGraph(g, {"cache": False, "passes": False})([xv, gv])
    np.testing.assert_allclose(got, KERNELS["max_pool2d_backward"](gv, xv, **attrs), rtol=1e-6, atol=1e-6)


def test_passthrough_output_found_on_a_shared_first_call_is_copied_when_staged_later():
    """Which outputs alias inputs is learnt on the first call: learnt from a shared (aligned) input, it still
    protects the output of a later call whose input went through the staging buffer."""
    g = Graph("passthrough2")
    w = g.add_input(T.TensorType(F32, (4, 16)), "w", role="param")
    x = g.add_input(T.TensorType(F32, (4, 16)), "x")
    with GraphBuilder(g):
        g.outputs = [P.add(x, x), P.reshape(w, shape=(64,))]
    compiled = TVMCompiledGraph(g, {"cache": False, "passes": False})
    xv = np.ones((4, 16), np.float32)
    aligned = dlpack.aligned_empty((4, 16), np.float32)
    aligned[...] = 1.0
    compiled([aligned, xv])
    w1 = _misaligned(np.arange(64, dtype=np.float32).reshape(4, 16))
    out1 = compiled([w1, xv])[1]
    compiled([_misaligned(np.full((4, 16), 5, dtype=np.float32)), xv])
    np.testing.assert_array_equal(out1, np.arange(64, dtype=np.float32))


def test_parallel_threshold_parallelizes_only_large_kernels_and_keys_the_cache():
    """``options["parallel"]=N`` gives a parallel outer loop to kernels writing at least N elements only;
    the setting is part of the cache key (a parallel build is never served to a serial one)."""
    from ember.runtime.tvm import cache
    from ember.runtime.tvm.build import resolve_target, scheduled_module
    from ember.runtime.tvm.lower import graph_to_relax
    g = Graph("par")
    big = g.add_input(T.TensorType(F32, (64, 32)), "big")
    small = g.add_input(T.TensorType(F32, (2, 16)), "small")
    with GraphBuilder(g):
        g.outputs = [P.relu(big), P.relu(small)]
    opts = {"parallel": 1024}
    scheduled = scheduled_module(graph_to_relax(g, opts), resolve_target(), opts)
    kernels = {gv.name_hint: f.script() for gv, f in scheduled.functions.items() if "T.prim_func" in f.script()}
    parallel = {name for name, text in kernels.items() if "T.parallel" in text}
    assert len(kernels) == 2 and len(parallel) == 1
    assert "T.int64(64), T.int64(32)" in kernels[parallel.pop()]
    target = resolve_target()
    assert cache.cache_key(g, target, {"parallel": 1024})[0] != cache.cache_key(g, target, {})[0]
    rng = np.random.default_rng(0)
    bv, sv = rng.standard_normal((64, 32)).astype(np.float32), rng.standard_normal((2, 16)).astype(np.float32)
    got_b, got_s = TVMCompiledGraph(g, dict(opts, cache=False, passes=False))([bv, sv])
    np.testing.assert_array_equal(got_b, np.maximum(bv, 0))
    np.testing.assert_array_equal(got_s, np.maximum(sv, 0))
