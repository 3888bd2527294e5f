"""The ``"tvm"`` backend of ``ember.compile``: lower, build (or load from the cache), run on the Relax VM.

Options (``ember.compile(fn, backend="tvm", options={...})``):

- ``target``: ``"llvm"`` (default: the host CPU and its features), ``"cuda"``, a dict or a ``tvm.target.Target``;
- ``passes``: run ember's optimization pipeline (simplify, fold, cse, dce, fuse) first (default True);
- ``matmul``: ``"blas"`` (CPU default: numpy's BLAS through a packed call) or ``"tvm"`` (GPU default);
- ``schedule``: apply ember's CPU schedules to TVM's kernels (default True);
- ``parallel``: parallel outer loops in TVM's kernels: False (default), True, or the least number
  of elements a kernel must write (see ``schedule.py`` for why serial is the default);
- ``cache``: use the persistent compile cache (default True; see ``cache.py``).

Arrays cross without copies where TVM accepts them (``dlpack.py``); an output fed
back in as an input on the next call (a written-back parameter) is reused as the
very TVM tensor it was. Per input the compiled graph keeps what it built between
calls (``_arg``): the TVM wrapper of a shareable array (reused for that same array
object), or a 64-byte-aligned staging buffer that a misaligned array is copied into
(one memcpy; ember's creation functions allocate large arrays aligned, so layer
parameters are shared). Measured on batch-1 inference (2 cores), this took the MLP
from 0.85 to 0.21 ms and the digits CNN from 1.66 to 0.26 ms: the former per-call
``tvm.runtime.tensor`` copies of every parameter cost ~30 us of Python each.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import tvm
from tvm import relax

from ember.ir.graph import ROLE_INPUT, Graph
from ember.ir.printer import fmt_type

from . import cache
from .build import build, device_for, is_gpu, resolve_target
from .dlpack import aligned_empty, can_share, to_numpy, to_tvm
from .lower import graph_to_relax


def prepare_graph(graph: Graph, options: dict) -> Graph:
    """ember's passes before lowering (skipped when asked, or when the graph is already fused)."""
    if not options.get("passes", True) or any(n.subgraph is not None for n in graph.nodes):
        return graph
    from ember.passes import optimize
    return optimize(graph)


def default_options(options: dict, target: tvm.target.Target) -> dict:
    opts = dict(options)
    opts.setdefault("matmul", "tvm" if is_gpu(target) else "blas")
    return opts


def relax_module(graph: Graph, options: dict | None = None) -> tvm.IRModule:
    """The Relax module ember builds for ``graph`` (after ember's passes): what ``--show relax`` prints."""
    options = dict(options or {})
    target = resolve_target(options.get("target", "llvm"))
    options = default_options(options, target)
    return graph_to_relax(prepare_graph(graph, options), options)


class TVMCompiledGraph:
    """A graph compiled by TVM: ``compiled(inputs) -> outputs`` (numpy arrays, graph order)."""

    def __init__(self, graph: Graph, options: dict | None = None) -> None:
        options = dict(options or {})
        self.graph = graph
        self.target = resolve_target(options.get("target", "llvm"))
        self.options = default_options(options, self.target)
        self.device = device_for(self.target)
        self.resident = {v.name for v in graph.inputs if graph.input_roles.get(v.name, ROLE_INPUT) != ROLE_INPUT}
        self.cache_hit = False
        self.cache_key = None
        t0 = time.perf_counter()
        self.prepared = prepare_graph(graph, self.options)
        # written-back parameters/state updated in place by the kernels (inplace.py); part of the cache key
        self._inplace: list[tuple[int, int]] = []
        if not is_gpu(self.target) and self.options.get("inplace", True):
            from .inplace import inplace_pairs
            self._inplace = inplace_pairs(self.prepared)
            self.options["inplace_writes"] = [list(p) for p in self._inplace]
        self._inplace_inputs = {i for _, i in self._inplace}
        self._inplace_src = dict(self._inplace)  # output index -> input index
        if cache.enabled(self.options):
            self.cache_key, desc = cache.cache_key(self.prepared, self.target, self.options)
            with cache.build_lock(self.cache_key):
                module = cache.load(self.cache_key, self.device)
                self.cache_hit = module is not None
                if module is None:
                    module = self._build()
                    cache.store(self.cache_key, module, desc, graph.name, time.perf_counter() - t0)
        else:
            module = self._build()
        self.compile_seconds = time.perf_counter() - t0
        self.vm = relax.VirtualMachine(module, self.device)
        self._main = self.vm["main"]
        self._in_types = [v.type for v in graph.inputs]
        # per input, what a call must match: dtype, rank, and the static dims by position
        self._in_checks = [(t.dtype.np, len(t.shape), tuple((k, d) for k, d in enumerate(t.shape)
                                                            if isinstance(d, int)))
                           for t in self._in_types]
        # the common case in one comparison: the exact dtype object and a fully static shape
        self._in_exact = [(np.dtype(t.dtype.np), tuple(t.shape) if all(isinstance(d, int) for d in t.shape)
                           else None) for t in self._in_types]
        self._returned: dict[int, tuple[np.ndarray, object]] = {}
        self._cpu = not is_gpu(self.target)
        n = len(graph.inputs)
        self._shared: list = [None] * n  # per input: (array, shape, strides, TVM tensor over it)
        self._staging: list = [None] * n  # per input: (aligned buffer, TVM tensor over it, source array, strides)
        self._staged_ranges = None
        self._alias_candidates: list[int] | None = None  # outputs that are (views of) inputs: see _unalias
        self.calls = 0

    def _build(self):
        self.ir_module = graph_to_relax(self.prepared, self.options)
        return build(self.ir_module, self.target, self.options)

    def _check(self, inputs: Sequence[np.ndarray]) -> None:
        if len(inputs) != len(self._in_types):
            raise ValueError(f"graph {self.graph.name} (tvm backend) takes {len(self._in_types)} inputs, "
                             f"got {len(inputs)}")
        for (dtype, ndim, fixed), (exact_dtype, exact_shape), a in zip(self._in_checks, self._in_exact, inputs):
            if a.__class__ is np.ndarray and a.dtype is exact_dtype and a.shape == exact_shape:
                continue
            shape = a.shape if isinstance(a, np.ndarray) else np.shape(a)
            if a.dtype != dtype or len(shape) != ndim or any(shape[k] != d for k, d in fixed):
                self._fail_check(inputs)

    def _fail_check(self, inputs: Sequence[np.ndarray]) -> None:
        for v, t, a in zip(self.graph.inputs, self._in_types, inputs):
            shape = np.shape(a)
            if a.dtype != t.dtype.np or len(shape) != len(t.shape) or any(
                    isinstance(d, int) and d != n for d, n in zip(t.shape, shape)):
                raise ValueError(f"input %{v.name} of graph {self.graph.name} expects {fmt_type(t)}, "
                                 f"got {a.dtype}{list(shape)}")

    def _arg(self, i: int, a: np.ndarray):
        """The TVM tensor for input ``i`` this call, reusing what the previous calls built.

        Sound by construction (no content checks): an array TVM can share is wrapped once and the
        wrapper reused only for that very array object (kept alive here, so its id is not recycled)
        with the same shape and strides: it reads the array's live memory, so in-place updates are
        seen. Any other array is copied into a 64-byte-aligned staging buffer this graph owns for
        input ``i`` (allocated once per shape), wrapped once: one memcpy per call instead of a TVM
        allocation plus copy through Python.
        """
        hit = self._returned.get(id(a))
        if hit is not None and hit[0] is a:
            return hit[1]
        if not isinstance(a, np.ndarray) or not self._cpu or a.size == 0:  # empty: TVM allocates it
            return to_tvm(a, self.device)
        shared = self._shared[i]
        if shared is not None and shared[0] is a and shared[1] == a.shape and shared[2] == a.strides:
            return shared[3]
        staged = self._staging[i]
        if staged is None or staged[2] is not a or staged[3] != a.strides:  # else: known not shareable
            if can_share(a) and (i not in self._inplace_inputs or a.flags.writeable):
                t = tvm.runtime.from_dlpack(a)
                self._shared[i] = (a, a.shape, a.strides, t)
                return t
            self._shared[i] = None
            if staged is None or staged[0].shape != a.shape or staged[0].dtype != a.dtype:
                buf = aligned_empty(a.shape, a.dtype)
                staged = (buf, tvm.runtime.from_dlpack(buf))
                self._staged_ranges = None
            staged = self._staging[i] = (staged[0], staged[1], a, a.strides)
        elif staged[0].shape != a.shape:  # the same array object reshaped in place
            self._staging[i] = None
            return self._arg(i, a)
        np.copyto(staged[0], a, casting="no")
        return staged[1]

    @staticmethod
    def _aliasing(args: list, outs: list[np.ndarray]) -> list[int]:
        """Indices of the outputs whose memory lies in some argument's (TVM returned an input, or a view of one)."""
        ranges = []
        for t in args:
            a = to_numpy(t)
            if a.size:
                ranges.append((a.ctypes.data, a.ctypes.data + a.nbytes))
        return [k for k, o in enumerate(outs) if o.size and any(lo <= o.ctypes.data < hi for lo, hi in ranges)]

    def _unalias(self, outs: list[np.ndarray], args: list) -> list[int]:
        """Copy any output that lives in a staging buffer (an output that is an input, or a view of
        one): the buffer is overwritten on the next call, and the user keeps what we return.

        Which outputs alias an input is a property of the compiled code (a returned input or a reshape
        view of one), so it is found once, on the first call, and only those outputs are checked after
        (a pointer test per output cost ~6 us each, 0.24 ms per call for the digits CNN's 43 outputs)."""
        if self._alias_candidates is None:
            self._alias_candidates = self._aliasing(args, outs)
        if not self._alias_candidates:
            return []
        ranges = self._staged_ranges
        if ranges is None:
            ranges = self._staged_ranges = [(s[0].ctypes.data, s[0].ctypes.data + s[0].nbytes)
                                            for s in self._staging if s is not None]
        copied = []
        if ranges:
            for k in self._alias_candidates:
                o = outs[k]
                ptr = o.ctypes.data
                if any(lo <= ptr < hi for lo, hi in ranges):
                    outs[k] = np.array(o, copy=True)
                    copied.append(k)
        return copied

    def _stage(self, i: int, a: np.ndarray):
        """Input ``i`` copied into its staging buffer (never its own memory) for this call."""
        staged = self._staging[i]
        if staged is None or staged[0].shape != a.shape or staged[0].dtype != a.dtype:
            buf = aligned_empty(a.shape, a.dtype)
            staged = self._staging[i] = (buf, tvm.runtime.from_dlpack(buf), None, None)
            self._staged_ranges = None
        np.copyto(staged[0], a, casting="no")
        return staged[1]

    def _inplace_conflicts(self, inputs: Sequence[np.ndarray]) -> set:
        """In-place targets whose memory another input of this call shares: the kernel writing into
        them would change what the other input reads, so they are staged instead. Pairs among arrays fed
        again (the graph keeps them alive, so their ids are theirs) are checked once; a newly fed array
        (a batch) is checked against the targets on every call."""
        prev = self.__dict__.get("_prev_inputs")
        fresh = [j for j, a in enumerate(inputs) if prev is None or prev[j] is not a]
        if prev is None or any(j in self._inplace_inputs for j in fresh):
            self._conflicts = {i for i in self._inplace_inputs for j, b in enumerate(inputs)
                               if j != i and np.may_share_memory(inputs[i], b)}
            now = self._conflicts
        else:
            now = set(self._conflicts)
            for j in fresh:
                now.update(i for i in self._inplace_inputs if i != j and np.may_share_memory(inputs[i], inputs[j]))
        self.__dict__["_prev_inputs"] = list(inputs)
        return now

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._check(inputs)
        conflicts = self._inplace_conflicts(inputs) if self._inplace and self._cpu else ()
        args = [self._stage(i, a) if i in conflicts else self._arg(i, a) for i, a in enumerate(inputs)]
        try:
            result = self._main(*args)
        except Exception as err:  # TVM's messages are long; keep the first lines and name the graph
            msg = str(err).strip().splitlines()
            raise RuntimeError(f"graph {self.graph.name} (tvm backend) failed: "
                               + "\n".join(msg[-3:] if msg else [type(err).__name__])) from err
        outs_t = list(result)
        outs = [to_numpy(t) for t in outs_t]
        copied = self._unalias(outs, args) if self._cpu else ()
        for o, i in self._inplace:  # written into the caller's own array: hand that array back, no copy
            a = inputs[i]
            if o not in copied and isinstance(a, np.ndarray) and outs[o].size and \
                    outs[o].ctypes.data == a.ctypes.data and outs[o].shape == a.shape:
                outs[o] = a
        self._returned = {id(a): (a, t) for k, (a, t) in enumerate(zip(outs, outs_t))
                          if k not in copied and (k not in self._inplace_src or a is not inputs[self._inplace_src[k]])}
        self.calls += 1
        return outs

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self(list(inputs))


def compile_tvm(graph: Graph, options: dict) -> TVMCompiledGraph:
    """The ``"tvm"`` backend entry point (see the module docstring for options)."""
    return TVMCompiledGraph(graph, options)
