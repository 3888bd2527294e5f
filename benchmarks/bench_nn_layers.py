"""Eager forward+backward time of ember.nn layers vs PyTorch eager, same shapes, same process.

The digits CNN shapes (batch 64, 1x8x8): conv 1->32 3x3 pad 1, conv 32->64 3x3, max-pool 2,
plus each layer alone. Prints milliseconds per iteration and the ratio ember/PyTorch.

    python benchmarks/bench_nn_layers.py [--iters N] [--threads T] [--wall]

Both libraries run with the same number of BLAS/OpenMP threads (default 1, so the figures hold
on a shared, loaded machine); the time is process CPU time unless --wall is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":  # thread counts must be fixed before numpy/torch load their BLAS
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402

import ember  # noqa: E402
import ember.nn as enn  # noqa: E402

CLOCK = time.process_time


def _timeit(fn, iters: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(3):  # best of three batches of iterations: robust to noise on a shared machine
        t0 = CLOCK()
        for _ in range(iters):
            fn()
        best = min(best, (CLOCK() - t0) / iters)
    return best * 1e3


def _cases(nn, lib):
    """(name, module, input shape) built the same way for either library."""
    return [
        ("conv1 1->32 3x3 p1", nn.Conv2d(1, 32, 3, padding=1), (64, 1, 8, 8)),
        ("conv2 32->64 3x3", nn.Conv2d(32, 64, 3), (64, 32, 8, 8)),
        ("maxpool 2x2", nn.MaxPool2d(2), (64, 64, 6, 6)),
        ("digits CNN step", nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(576, 10)), (64, 1, 8, 8)),
        ("linear 784->512", nn.Linear(784, 512), (64, 784)),
        ("batchnorm2d 64", nn.BatchNorm2d(64), (64, 64, 6, 6)),
    ]


def _step(lib, module, x, target):
    def run():
        module.zero_grad()
        out = module(x)
        if target is not None:
            loss = lib.nn.functional.cross_entropy(out, target)
        else:
            loss = out.sum()
        loss.backward()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of process CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover - the comparison needs PyTorch
        torch = None
    print(f"threads={args.threads}, {'wall' if args.wall else 'process CPU'} time per forward+backward")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 64)
    print(f"{'case':<22}{'ember ms':>10}{'torch ms':>10}{'ratio':>8}")
    for (name, emod, shape), tcase in zip(_cases(enn, ember), _cases(torch.nn, torch) if torch else [None] * 6):
        x = rng.standard_normal(shape).astype(np.float32)
        is_cnn = name.startswith("digits")
        ex = ember.tensor(x, requires_grad=not is_cnn)
        e_step = _step(ember, emod, ex, ember.tensor(labels) if is_cnn else None)
        t_step = None
        if torch is not None:
            tmod = tcase[1]
            tmod.load_state_dict({k: torch.tensor(v.numpy()) for k, v in emod.state_dict().items()})
            tx = torch.tensor(x, requires_grad=not is_cnn)
            t_step = _step(torch, tmod, tx, torch.tensor(labels) if is_cnn else None)
        # alternate the two libraries and keep each one's best: load changes on a shared machine hit both alike
        e_ms = t_ms = float("inf")
        for _ in range(3):
            e_ms = min(e_ms, _timeit(e_step, args.iters))
            if t_step is not None:
                t_ms = min(t_ms, _timeit(t_step, args.iters))
        ratio = e_ms / t_ms if t_step is not None else float("nan")
        print(f"{name:<22}{e_ms:>10.3f}{t_ms:>10.3f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
