"""Per-call overhead of ``ember.compile``d functions: the full call vs the backend call alone.

Cases (ONNX Runtime backend by default): the compiled training step of bench_onnx.py (SGD with
momentum) for the MLP 784-512-256-10 and the digits CNN at batch 64, and the MLP forward at
batch 1 (where the overhead matters most). Two measures of the overhead, in µs:

- ``full - backend``: median of the full call minus median of the backend call alone
  (``e.compiled(e.capture.gather(leaves)[0])``), the two interleaved;
- ``in-call``: per full call, its time minus the time spent inside the backend (the compiled
  callable timed from within), median. Less noisy on a busy machine: one call measures both.
  It includes the write-back copies of outputs the backend could not write in place, and the
  cache misses of Python code running right after a backend run.
- ``hot``: the full call with the backend stubbed out (returns its last outputs), median: the
  cost of ember's per-call work with warm caches, write-back copies included;
- ``own``: ``hot`` with the stub returning every written-back output as the very array it goes
  into (as if the backend wrote all updates in place): ember's own per-call work alone.

Run: ``python benchmarks/bench_compile_overhead.py [--backend onnxruntime] [--reps N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_onnx import compare, ember_models, input_shape  # noqa: E402


def _training_case(kind: str, batch: int, backend: str, threads: int):
    import ember
    import ember.nn as enn
    import ember.optim as eoptim
    ember.manual_seed(0)
    model = ember_models()[kind]
    model.train()
    rng = np.random.default_rng(0)
    x = ember.from_numpy(rng.standard_normal(input_shape(kind, batch)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 10, size=(batch,)))
    opt = eoptim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = enn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return ember.compile(step, backend=backend, options={"threads": threads}), (x, y)


def _inference_case(kind: str, batch: int, backend: str, threads: int):
    import ember
    ember.manual_seed(0)
    model = ember_models()[kind]
    model.eval()
    x = ember.randn(*input_shape(kind, batch))
    return ember.compile(model, backend=backend, options={"threads": threads}), (x,)


class _Timed:
    """Wraps an entry's compiled callable and records the seconds each call spends inside it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.last = 0.0

    def __call__(self, arrays):
        t = time.perf_counter()
        out = self.inner(arrays)
        self.last = time.perf_counter() - t
        return out


def measure(fn, args: tuple, reps: int) -> dict:
    from ember.jit._capture import flatten
    for _ in range(5):  # warm-up: eager first step, capture, fast path recorded
        fn(*args)
    entry = fn._last
    leaves: list = []
    flatten((args, {}), leaves)

    def backend():
        return entry.compiled(entry.capture.gather(leaves)[0])

    t = compare({"full": lambda: fn(*args), "backend": backend}, warmup=3, reps=reps)
    timed = _Timed(entry.compiled)
    entry.compiled = timed
    try:
        inside = []
        fast0 = fn.stats["fast_calls"]
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(*args)
            inside.append(time.perf_counter() - t0 - timed.last)
        fast = fn.stats["fast_calls"] - fast0
        # the backend replaced by a stub returning its last outputs: what the call costs besides it
        # with warm caches (a busy machine evicts them during the backend run; see in-call)
        outs = timed.inner(entry.capture.gather(leaves)[0])
        entry.compiled = lambda arrays: outs
        hot = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(*args)
            hot.append(time.perf_counter() - t0)
        # and as if the backend had written every update in place: no write-back copies left
        outs_in_place = _in_place(entry.capture, leaves, outs)
        entry.compiled = lambda arrays: outs_in_place
        own = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(*args)
            own.append(time.perf_counter() - t0)
    finally:
        entry.compiled = timed.inner
    return {"full": t["full"] * 1e6, "backend": t["backend"] * 1e6, "in_call": statistics.median(inside) * 1e6,
            "hot": statistics.median(hot) * 1e6, "own": statistics.median(own) * 1e6, "fast": fast / reps,
            "compiles": fn.stats["compiles"]}


def _in_place(cap, leaves: list, outs: list) -> list:
    """``outs`` with every written-back output replaced by the array it is written into."""
    named = cap._module_tensors()
    outs = list(outs)
    for idx, kind, name in cap.writeback:
        src = cap.sources[cap._input_index[name]]
        if kind == "value" and src[0] != "grad":
            outs[idx] = cap._resolve(src, leaves, named)._data
        elif kind == "grad":
            g = cap._resolve(src, leaves, named).grad
            if g is not None and g._data.shape == outs[idx].shape:
                outs[idx] = g._data
    return outs


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = p.parse_args(argv)
    os.environ.setdefault("EMBER_ORT_THREADS", str(a.threads))
    cases = [("mlp train b64", _training_case, "mlp", 64), ("cnn train b64", _training_case, "cnn", 64),
             ("mlp forward b1", _inference_case, "mlp", 1)]
    print(f"backend: {a.backend}; threads: {a.threads}; {a.reps} reps; times in µs (medians)")
    print(f"{'case':16} {'full':>10} {'backend':>10} {'full-backend':>13} {'in-call':>9} {'hot':>7} {'own':>6} "
          f"{'fast path':>10}")
    import contextlib

    import ember
    for name, make, kind, batch in cases:
        fn, args = make(kind, batch, a.backend, a.threads)
        # inference under no_grad, as PyTorch code does it: with grad enabled a compiled forward also
        # compiles its backward and saves what that needs
        with ember.no_grad() if make is _inference_case else contextlib.nullcontext():
            r = measure(fn, args, a.reps)
        print(f"{name:16} {r['full']:10.1f} {r['backend']:10.1f} {r['full'] - r['backend']:13.1f} "
              f"{r['in_call']:9.1f} {r['hot']:7.1f} {r['own']:6.1f} {r['fast'] * 100:9.0f}%")
    print("(full-backend: difference of interleaved medians; in-call: per call, time outside the backend; "
          "hot: the call with the backend stubbed out (warm caches); own: hot, with every write-back in place "
          "(no copies); fast path: share of timed calls that skipped keys and guards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
