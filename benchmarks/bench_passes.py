"""Compiled training steps: node counts through the default pipeline, step time and peak memory.

    python benchmarks/bench_passes.py [--steps N] [--batch B] [--threads T]

For an MLP (784-512-256-10) and the digits CNN (1x8x8 -> conv 32 -> BatchNorm -> ReLU ->
max-pool -> conv 64 -> ReLU -> Linear 10), each trained with Adam and cross entropy:

* node counts of the captured training-step graph before and after ember.passes.DEFAULT_PIPELINE
  (simplify, fold, cse, dce, fuse), and the number of fused groups;
* milliseconds per step of: the compiled step on the interpreter (``ember.compile``, backend
  "eager": default passes + in-place buffer reuse), the same with fills as broadcast views
  (``fill_views``: faster, not bit-identical to eager), the graph without passes, eager ember,
  and PyTorch eager, with ratios vs PyTorch;
* peak memory allocated during a step (numpy allocations via tracemalloc for ember; PyTorch's
  CPU allocator via its profiler when available, else "-").

All in one process with the same BLAS thread count (default 1), best of 3 repeats of process
CPU time per step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def ember_model(lib, kind):
    nn = lib.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


def make_step(lib, kind, batch, seed=0):
    import numpy as np
    lib.manual_seed(seed)
    model = ember_model(lib, kind)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.CrossEntropyLoss()
    g = np.random.default_rng(seed)
    shape = (batch, 784) if kind == "mlp" else (batch, 1, 8, 8)
    x = lib.tensor(g.standard_normal(shape).astype(np.float32))
    y = lib.tensor(g.integers(0, 10, size=batch))

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss
    return step, x, y


def best_ms(fn, steps: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()  # CPU time: robust on a shared, loaded machine (1 thread)
        for _ in range(steps):
            fn()
        best = min(best, (time.process_time() - t0) / steps)
    return best * 1e3


def peak_mb_numpy(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def peak_mb_torch(torch, fn):
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        # peak = max running sum of allocations/frees in event order
        events = sorted((e for e in prof.events() if getattr(e, "cpu_memory_usage", 0)),
                        key=lambda e: e.time_range.start)
        cur = peak = 0
        for e in events:
            cur += e.cpu_memory_usage
            peak = max(peak, cur)
        return peak / 2**20
    except Exception:  # noqa: BLE001 - the profiler is optional
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    _set_threads(args.threads)

    import ember
    from ember.passes import DEFAULT_PIPELINE, count_nodes, run_pipeline
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        torch = None

    print(f"batch {args.batch}, {args.steps} steps, best of 3, {args.threads} thread(s)\n")
    header = (f"{'model':<5} {'variant':<24} {'ms/step':>9} {'vs torch':>9} {'peak MB':>9}   nodes")
    print(header)
    print("-" * len(header))
    for kind in ("mlp", "cnn"):
        rows = []
        # compiled (default: passes + in-place) and compiled without passes
        fast = (("simplify", {"fill_views": True}), ("fold", {"fill_views": True}), "cse", "dce", "fuse")
        for label, options in (("ember.compile (passes)", None),
                               ("compile (+fill views)", {"passes": fast}),
                               ("compile (no passes)", {"passes": (), "inplace": False})):
            step, x, y = make_step(ember, kind, args.batch)
            fn = ember.compile(step, options=options) if options else ember.compile(step)
            fn(x, y)
            fn(x, y)  # warm-up (eager) + capture
            captured = fn.graph
            optimized = run_pipeline(captured, DEFAULT_PIPELINE).graph if options is None else captured
            nodes = (f"{count_nodes(captured)} -> {count_nodes(optimized)} "
                     f"({sum(n.op == 'fused' for n in optimized.nodes)} fused groups, "
                     f"{count_nodes(optimized, nested=True)} ops inside and out)") if options is None else ""
            ms = best_ms(lambda: fn(x, y), args.steps)
            mb = peak_mb_numpy(lambda: fn(x, y))
            rows.append((label, ms, mb, nodes))
            assert fn.stats["compiles"] == 1, fn.stats
        step, x, y = make_step(ember, kind, args.batch)
        step(x, y)
        rows.append(("eager ember", best_ms(lambda: step(x, y), args.steps), peak_mb_numpy(lambda: step(x, y)), ""))
        t_ms = t_mb = None
        if torch is not None:
            tstep, tx, ty = make_step(torch, kind, args.batch)
            tstep(tx, ty)
            t_ms = best_ms(lambda: tstep(tx, ty), args.steps)
            t_mb = peak_mb_torch(torch, lambda: tstep(tx, ty))
            rows.append(("PyTorch eager", t_ms, t_mb, ""))
        for label, ms, mb, nodes in rows:
            ratio = f"{ms / t_ms:8.2f}x" if t_ms else "        -"
            mbs = f"{mb:9.2f}" if mb is not None else "        -"
            print(f"{kind:<5} {label:<24} {ms:9.2f} {ratio:>9} {mbs}   {nodes}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
