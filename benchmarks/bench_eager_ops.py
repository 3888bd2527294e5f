"""Eager-mode overhead and throughput: ember vs numpy vs PyTorch, in the same run.

    python benchmarks/bench_eager_ops.py [--quick]

Rows:
* per-op overhead on tiny tensors (4 floats): ``a + b`` without and with grad recording,
  a scalar operand, a unary op, a reduction, a small matmul, a view, and a whole tiny
  forward+backward step;
* a memory-bound elementwise chain on 4M floats (``(x * 1.5 + 0.5).tanh() * x - x``).

Each figure is the best of several repeats (microseconds per call); ratios are ember's time
over PyTorch's and numpy's. PyTorch is optional: without it its columns read ``-``.
"""

from __future__ import annotations

import argparse
import sys
import timeit

import numpy as np

import ember

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional comparison
    torch = None


def best_us(fn, number: int, repeat: int) -> float:
    fn()  # warm up
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def tiny_cases():
    na, nb = np.ones(4, np.float32), np.full(4, 2.0, np.float32)
    e = {"a": ember.from_numpy(na.copy()), "b": ember.from_numpy(nb.copy()),
         "ga": ember.from_numpy(na.copy()).requires_grad_(), "m": ember.ones(8, 8)}
    t = None
    if torch is not None:
        t = {"a": torch.from_numpy(na.copy()), "b": torch.from_numpy(nb.copy()),
             "ga": torch.from_numpy(na.copy()).requires_grad_(), "m": torch.ones(8, 8)}
    nm = np.ones((8, 8), np.float32)

    def step(m, d):
        w = d["ga"]
        loss = ((w * d["b"] + 1.0).relu() * w).sum()
        loss.backward()
        w.grad = None

    return [
        ("a + b (no grad)", lambda d: d["a"] + d["b"], lambda: na + nb),
        ("a + b (recording grad)", lambda d: d["ga"] + d["b"], None),
        ("a * 2.0 (Python scalar)", lambda d: d["a"] * 2.0, lambda: na * np.float32(2.0)),
        ("a.exp()", lambda d: d["a"].exp(), lambda: np.exp(na)),
        ("a.sum()", lambda d: d["a"].sum(), lambda: na.sum()),
        ("a.view(2, 2)", lambda d: d["a"].view(2, 2), lambda: na.reshape(2, 2)),
        ("m @ m (8x8)", lambda d: d["m"] @ d["m"], lambda: nm @ nm),
        ("tiny fwd+bwd step (5 ops)", lambda d: step(None, d), None),
    ], e, t


def chain_case(n: int):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    ex = ember.from_numpy(x)
    tx = torch.from_numpy(x) if torch is not None else None

    def f(m, v):
        return (v * 1.5 + 0.5).tanh() * v - v

    def f_np():
        return np.tanh(x * np.float32(1.5) + np.float32(0.5)) * x - x

    return ex, tx, f, f_np


def fmt(v) -> str:
    return "-" if v is None else f"{v:9.2f}"


def ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:6.2f}x"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = ap.parse_args(argv)
    number, repeat = (2000, 3) if args.quick else (20000, 7)
    print(f"ember {ember.__version__}, numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}"
          + (f" ({torch.get_num_threads()} threads)" if torch else ""))
    head = f"{'case':32s} {'ember us':>9s} {'torch us':>9s} {'numpy us':>9s} {'vs torch':>8s} {'vs numpy':>8s}"
    print(head)
    print("-" * len(head))
    cases, e, t = tiny_cases()
    for name, fn, np_fn in cases:
        te = best_us(lambda: fn(e), number, repeat)
        tt = best_us(lambda: fn(t), number, repeat) if t is not None else None
        tn = best_us(np_fn, number, repeat) if np_fn is not None else None
        print(f"{name:32s} {fmt(te)} {fmt(tt)} {fmt(tn)} {ratio(te, tt):>8s} {ratio(te, tn):>8s}")
    n = 1 << 20 if args.quick else 1 << 22
    ex, tx, f, f_np = chain_case(n)
    reps = 3 if args.quick else 10
    te = best_us(lambda: f(ember, ex), 1, reps)
    tt = best_us(lambda: f(torch, tx), 1, reps) if tx is not None else None
    tn = best_us(f_np, 1, reps)
    name = f"chain of 5 ops on {n >> 20}M floats"
    print(f"{name:32s} {fmt(te)} {fmt(tt)} {fmt(tn)} {ratio(te, tt):>8s} {ratio(te, tn):>8s}")
    gb = 5 * 3 * n * 4 / 1e9  # ~3 arrays touched per op
    print(f"  (ember ~{gb / (te * 1e-6):.1f} GB/s effective)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
