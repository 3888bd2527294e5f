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
- no ``parallel``: on this 2-core machine TVM's thread pool and OpenBLAS fight for
  the cores (measured 2.4 ms unscheduled vs 3.3 ms parallel for an MLP forward), and
  these kernels are tiny next to the BLAS calls. ``options["parallel"]=True`` turns it on.

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


def _vectorize_spatial(sch, blk, parallel: bool) -> None:
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
    if parallel and len(loops) > 1:
        sch.parallel(loops[0])
    sch.vectorize(inner)


def schedule_primfunc(func: tir.PrimFunc, parallel: bool = False):
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
        if "R" in kinds or "O" in kinds:
            continue  # reductions keep TVM's loop nest (inlined producers already save the temporaries)
        try:
            _vectorize_spatial(sch, blk, parallel)
        except Exception:  # noqa: BLE001 - e.g. an opaque access pattern: leave this block scalar
            continue
    return sch.mod["main"]


def schedule_module(mod: tvm.IRModule, target: tvm.target.Target, parallel: bool = False) -> tvm.IRModule:
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
