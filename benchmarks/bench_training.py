"""Eager training-step time, ember vs PyTorch in the same process, from identical weights.

Models: an MLP 784-512-256-10 (ReLU) at batch 64 and 512, and the digits CNN of
``examples/digits_cnn.py`` at batch 64. A step is ``zero_grad(); loss = cross_entropy(model(x), y);
loss.backward(); optimizer.step()`` with Adam (``--optim sgd`` for SGD with momentum). Prints
milliseconds per step, the ratio ember/PyTorch, and ember's split of the step into
forward / backward / optimizer so the optimizer's share is visible.

    python benchmarks/bench_training.py [--iters N] [--threads T] [--wall] [--optim adam|sgd]

Both libraries get the same number of BLAS/OpenMP threads (default 1: the figures then hold
on a shared, loaded machine); times are process CPU time unless --wall is given.
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

CLOCK = time.process_time


def mlp(nn):
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def digits_cnn(nn):
    # the example's architecture (examples/digits_cnn.py)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


CASES = [("MLP 784-512-256-10, batch 64", mlp, (64, 784)),
         ("MLP 784-512-256-10, batch 512", mlp, (512, 784)),
         ("digits CNN, batch 64", digits_cnn, (64, 1, 8, 8))]


def _copy_weights(src, dst, torch) -> None:
    """Load PyTorch's initial weights into the ember model (identical starting points)."""
    with ember.no_grad():
        for (name, p), (_, q) in zip(src.state_dict().items(), dst.state_dict().items()):
            q.copy_(ember.tensor(p.detach().numpy()))


def _make_optimizer(lib, params, kind: str):
    if kind == "sgd":
        return lib.optim.SGD(params, lr=0.01, momentum=0.9)
    return lib.optim.Adam(params, lr=1e-3)


def _best_of(fn, iters: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):  # best of three batches: robust to noise on a shared machine
        t0 = CLOCK()
        for _ in range(iters):
            fn()
        best = min(best, (CLOCK() - t0) / iters)
    return best * 1e3


def _step_fn(lib, model, opt, x, y):
    cross_entropy = lib.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _split(model, opt, x, y, iters: int) -> tuple[float, float, float]:
    """ember's forward / backward / optimizer milliseconds per step."""
    f = b = o = 0.0
    for _ in range(iters):
        t0 = CLOCK()
        opt.zero_grad()
        loss = ember.nn.functional.cross_entropy(model(x), y)
        t1 = CLOCK()
        loss.backward()
        t2 = CLOCK()
        opt.step()
        t3 = CLOCK()
        f, b, o = f + t1 - t0, b + t2 - t1, o + t3 - t2
    return f / iters * 1e3, b / iters * 1e3, o / iters * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of process CPU time")
    parser.add_argument("--optim", choices=("adam", "sgd"), default="adam")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    import torch
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"eager training step ({args.optim}), {args.threads} thread(s), "
          f"{'wall' if args.wall else 'CPU'} ms per step, best of 3 x {args.iters}")
    header = f"{'case':32s} {'ember':>9s} {'torch':>9s} {'ratio':>7s}   ember split fwd/bwd/opt"
    print(header)
    print("-" * len(header))
    for name, build, shape in CASES:
        torch.manual_seed(0)
        tmodel = build(torch.nn)
        emodel = build(ember.nn)
        _copy_weights(tmodel, emodel, torch)
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0])
        ex, ey = ember.tensor(x), ember.tensor(y)
        tx, ty = torch.tensor(x), torch.tensor(y)
        eopt = _make_optimizer(ember, emodel.parameters(), args.optim)
        topt = _make_optimizer(torch, tmodel.parameters(), args.optim)
        estep, tstep = _step_fn(ember, emodel, eopt, ex, ey), _step_fn(torch, tmodel, topt, tx, ty)
        for _ in range(3):  # warm-up: lazily created optimizer state, allocator, BLAS
            estep()
            tstep()
        e_ms = _best_of(estep, args.iters)
        t_ms = _best_of(tstep, args.iters)
        f, b, o = _split(emodel, eopt, ex, ey, args.iters)
        print(f"{name:32s} {e_ms:9.2f} {t_ms:9.2f} {e_ms / t_ms:6.2f}x   {f:.2f} / {b:.2f} / {o:.2f}")


if __name__ == "__main__":
    main()
