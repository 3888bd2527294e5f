"""Graph interpreter vs eager ember vs PyTorch: SimpleNet forward and a whole training step.

    python benchmarks/bench_interpreter.py

Prints per-call times and ratios (lower is better). The interpreter runs the same numpy
kernels as eager mode; what it saves is the per-op Python overhead of tensors and the tape.
"""

from __future__ import annotations

import copy
import time

import numpy as np

import ember
import ember.nn as nn


def timeit(fn, *args, repeat: int = 5, number: int = 20) -> float:
    fn(*args)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        best = min(best, (time.perf_counter() - t0) / number)
    return best


class SimpleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def main() -> None:
    rows = []
    for batch in (1, 64):
        model = SimpleNet().eval()
        x = ember.randn(batch, 784)
        traced = ember.jit.trace(model, x)
        with ember.no_grad():
            t_eager = timeit(model, x)
        t_graph = timeit(traced, x)
        t_torch = None
        try:
            import torch
            tm = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
            tx = torch.from_numpy(x.numpy().copy())
            with torch.no_grad():
                t_torch = timeit(tm, tx)
        except ImportError:
            pass
        rows.append((f"SimpleNet forward, batch {batch}", t_eager, t_graph, t_torch))

    model = SimpleNet()
    ref = copy.deepcopy(model)
    opt = ember.optim.SGD(model.parameters(), lr=0.01)
    opt_ref = ember.optim.SGD(ref.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = ember.randn(64, 784), ember.randint(0, 10, (64,))

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def step_ref(x, y):
        opt_ref.zero_grad()
        loss = loss_fn(ref(x), y)
        loss.backward()
        opt_ref.step()
        return loss

    compiled = ember.compile(step)
    t_eager = timeit(step_ref, x, y)
    t_graph = timeit(compiled, x, y)
    t_torch = None
    try:
        import torch
        tm = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
        topt = torch.optim.SGD(tm.parameters(), lr=0.01)
        tx, ty = torch.from_numpy(x.numpy().copy()), torch.from_numpy(y.numpy().copy())

        def tstep():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(tx), ty)
            loss.backward()
            topt.step()
        t_torch = timeit(tstep)
    except ImportError:
        pass
    rows.append(("SimpleNet SGD step, batch 64", t_eager, t_graph, t_torch))

    print(f"{'case':34s} {'eager':>10s} {'graph':>10s} {'torch':>10s} {'graph/eager':>12s} {'graph/torch':>12s}")
    for name, e, g, t in rows:
        ts = f"{t * 1e6:8.1f}us" if t else "       n/a"
        gt = f"{g / t:12.2f}" if t else "         n/a"
        print(f"{name:34s} {e * 1e6:8.1f}us {g * 1e6:8.1f}us {ts} {g / e:12.2f} {gt}")
    assert np.isfinite(compiled(x, y).item())


if __name__ == "__main__":
    main()
