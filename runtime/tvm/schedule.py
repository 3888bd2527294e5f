"""ember's CPU schedules for the TIR kernels TVM legalizes and fuses its graphs into.

TVM 0.27 ships no CPU schedule for elementwise or reduction kernels (DLight's CPU
rules cover GEMV and a few reductions) and its legalized loop nests run one scalar
at a time through intermediate buffers. Matmul and convolution go to BLAS
(``ops/linalg.py``), so what is left here is memory-bound glue, and the schedule is:

- inject every intermediate block into its consumer (``compute_inline``, and
  ``reverse_compute_inline`` for epilogues), so a fused kernel makes one pass over
  memory with no temporaries;
- for the remaining spatial blocks: vectorize the innermost loop (split by ``VECTOR``
  when wider: 4 AVX2 registers of float32 per step) when its extent is static and a
  multiple of 8; the other loops stay nested, so no index needs a div/mod;
- reductions (``_schedule_reduction``): vectorized over their contiguous axis, by ``rfactor`` into 8
  partial sums when that axis is reduced (BatchNorm statistics: 161 -> 21 us for 64x32x8x8), by moving
  the reduction loops outside it when it is kept (a bias gradient: 66 -> 3 us for 64x512);
- no ``parallel`` by default: on this 2-core machine TVM's thread pool and OpenBLAS fight for
  the cores (measured 2.4 ms unscheduled vs 3.3 ms parallel for an MLP forward; a whole MLP
  training step 3.3 -> 7.7 ms with every kernel parallel). ``options["parallel"]=True``
  parallelizes every kernel, ``=N`` only kernels writing at least N elements: with N=65536
  (only the SGD updates of the large weights) and TVM_THREAD_POOL_SPIN_COUNT=0 the training
  steps measured within noise of serial (MLP b64 2.6-3.1 vs 3.0-3.3 ms, CNN b64 4.7-5.0 vs
  4.2-5.5 ms), so serial stays the default.

Every function is scheduled inside a try: a kernel this cannot handle keeps TVM's
default loop nest, and ``build.py`` rebuilds without schedules if code generation
ever rejects a scheduled kernel, so a build always works.
"""

from __future__ import annotations

import tvm
from tvm import s_tir
from tvm import tirx as tir

VECTOR = 32  # elements per vectorized step (4 AVX2 registers of float32)
# blocks that stay materialized: their consumer reads each element many times (the padded input of an
# im2col is read kh*kw times; inlined, every read would redo its bounds checks)
KEEP_PREFIX = "pad_input"


def _iter_kinds(sch, block) -> str:
    return "".join("S" if iv.iter_type == 0 else ("R" if iv.iter_type == 2 else "O") for iv in sch.get(block).iter_vars)


def _blocks(sch):
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def _inline_all(sch) -> None:
    """Inline every block that can be: producers into consumers, then epilogues into their producer."""
    changed = True
    while changed:
        changed = False
        blocks = _blocks(sch)
        for blk in blocks[:-1] if len(blocks) > 1 else []:
            if "R" in _iter_kinds(sch, blk) or sch.get(blk).name_hint.startswith(KEEP_PREFIX):
                continue
            try:
                sch.compute_inline(blk)
                changed = True
                break
            except Exception:  # noqa: BLE001 - not inlinable: leave it
                continue
    for blk in _blocks(sch):
        if "R" in _iter_kinds(sch, blk):
            continue
        try:
            sch.reverse_compute_inline(blk)
        except Exception:  # noqa: BLE001
            pass


def _elements(sch, loops) -> int | None:
    n = 1
    for lp in loops:
        ext = sch.get(lp).extent
        if not isinstance(ext, tir.IntImm):
            return None
        n *= ext.value
    return n


def _vectorize_spatial(sch, blk, parallel: int) -> None:
    """Vectorize the innermost loop only (when its extent is static and wide enough).

    Fusing every loop into one and splitting it would make each index a div/mod of the fused
    counter (ruinous for gathers such as im2col); the innermost loop alone is the contiguous one.
    """
    loops = sch.get_loops(blk)
    if not loops:
        return
    inner = loops[-1]
    extent = sch.get(inner).extent
    if not isinstance(extent, tir.IntImm) or extent.value < 8:
        return
    n = extent.value
    if n > VECTOR:
        if n % VECTOR == 0:
            _, inner = sch.split(inner, [None, VECTOR])
        elif n % 8 == 0:
            _, inner = sch.split(inner, [None, 8])
        else:
            return
    elif n % 8 != 0:
        return
    if parallel and len(loops) > 1 and (_elements(sch, loops) or 0) >= parallel:
        sch.parallel(loops[0])
    sch.vectorize(inner)


def _same_extent(a, b) -> bool:
    if isinstance(a, tir.IntImm) and isinstance(b, tir.IntImm):
        return a.value == b.value
    return a.same_as(b) or str(a) == str(b)


def _contiguous_loop(sch, blk):
    """Index of the loop that walks the innermost (contiguous) axis of the block's largest input, or None.

    Only for blocks whose loops are their iterators one to one (as TE makes them)."""
    block = sch.get(blk)
    loops = sch.get_loops(blk)
    iters = list(block.iter_vars)
    if len(loops) != len(iters) or any(not _same_extent(sch.get(lp).extent, iv.dom.extent)
                                       for lp, iv in zip(loops, iters)):
        return None
    reads = [r for r in block.reads if len(r.region) > 0]
    if not reads:
        return None

    def size(r):
        n = 1
        for d in (r.buffer if hasattr(r, "buffer") else r.source).shape:
            n *= int(d) if isinstance(d, tir.IntImm) else 1 << 30
        return n
    last = max(reads, key=size).region[-1].min
    for k, iv in enumerate(iters):
        if last.same_as(iv.var):
            return k
    return None


def _schedule_reduction(sch, blk) -> None:
    """Vectorize a reduction over its contiguous axis (TVM leaves them scalar, one element at a time).

    - the contiguous axis is reduced (a row sum, BatchNorm's statistics over N, H, W): ``rfactor`` 8 lanes
      of it into partial sums, accumulated with vector adds, then summed;
    - it is kept (a bias gradient, a column sum): the reduction loops move outside it, and each
      reduction step is a vector add over the contiguous axis.
    """
    loops = sch.get_loops(blk)
    kinds = _iter_kinds(sch, blk)
    k = _contiguous_loop(sch, blk)
    if k is None or len(sch.get(blk).writes) != 1 or not isinstance(sch.get(loops[k]).extent, tir.IntImm):
        return
    n = sch.get(loops[k]).extent.value
    if kinds[k] == "R":
        if k != len(loops) - 1 or n % 8 != 0:
            return
        _, lanes = sch.split(loops[k], [None, 8])
        rf = sch.rfactor(lanes, factor_axis=kinds.count("S"))
        sch.vectorize(sch.get_loops(rf)[-1])  # the partial sums' init stays a branch outside the lanes
    elif kinds[k] == "S" and "R" in kinds[k + 1:]:
        if n % 8 != 0:
            return
        reduce_loops = [lp for lp, c in zip(loops, kinds) if c == "R"]
        sch.reorder(*reduce_loops, loops[k])
        inner = loops[k]
        if n > VECTOR and n % VECTOR == 0:
            _, inner = sch.split(inner, [None, VECTOR])
        sch.vectorize(inner)  # the init (first reduction step) stays a branch outside the lanes


def parallel_threshold(option) -> int:
    """``options["parallel"]``: False/0 (no parallel loops), True (every kernel), or the least number of
    elements a kernel must write to get a parallel outer loop."""
    if option is True:
        return 1
    return int(option or 0)


def schedule_primfunc(func: tir.PrimFunc, parallel: int = 0):
    """A scheduled copy of ``func``, or None when it is left as TVM made it."""
    sch = s_tir.Schedule(func)
    try:
        sch.get_sblock("root")
    except Exception:  # noqa: BLE001 - no block structure (hand-written or already lowered)
        return None
    _inline_all(sch)
    blocks = _blocks(sch)
    if not blocks:
        return None
    for blk in blocks:
        kinds = _iter_kinds(sch, blk)
        if "O" in kinds:
            continue
        if "R" in kinds:  # on a copy: a reduction this cannot vectorize keeps TVM's loop nest untouched
            trial = sch.copy()
            try:
                _schedule_reduction(trial, blk)
                sch = trial
            except Exception:  # noqa: BLE001
                pass
            continue
        try:
            _vectorize_spatial(sch, blk, parallel)
        except Exception:  # noqa: BLE001 - e.g. an opaque access pattern: leave this block scalar
            continue
    return sch.mod["main"]


def schedule_module(mod: tvm.IRModule, target: tvm.target.Target, parallel: int = 0) -> tvm.IRModule:
    """Schedule every TIR function of ``mod`` (see the module docstring)."""
    out = mod
    for gv, func in mod.functions.items():
        if not isinstance(func, tir.PrimFunc):
            continue
        try:
            new = schedule_primfunc(func, parallel)
        except Exception:  # noqa: BLE001 - never fail a build over a schedule
            new = None
        if new is not None:
            out.update_func(gv, new)
    return out
