"""Train a small CNN on scikit-learn's bundled 8x8 digits, eagerly, with ordinary PyTorch code.

Everything below is plain PyTorch API run on ember (``import ember as torch``):
``nn`` layers (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout, Linear), a ``DataLoader``
with worker processes, an Adam optimizer with a ``StepLR`` schedule, a checkpoint
saved half way with ``torch.save`` and training resumed from it into fresh objects
with ``torch.load``, and a held-out evaluation. No download: the data ships with
scikit-learn.

Then the compiler tour, the three things ember is for: the trained model captured into
ember's IR (printed), the whole training step (zero_grad, forward, loss, backward,
Adam update) compiled into one graph and run on ONNX Runtime (or TVM) for another epoch,
and the model exported to ONNX with a dynamic batch and checked against eager.

Run: ``python examples/digits_cnn.py`` (about a minute on 2 cores; ``--backend tvm`` to
compile with TVM, ``--no-compile`` for the eager part only).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import ember as torch
import ember.nn as nn
import ember.nn.functional as F
from ember.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 8x8 -> 4x4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def load_data(seed: int):
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]     # [N, 1, 8, 8] in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return (TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)),
            TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test)))


def make_training(seed: int, lr: float, step_size: int):
    torch.manual_seed(seed)
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.5)
    return model, optimizer, scheduler


def train_epoch(model, loader, optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / count


@torch.no_grad()
def evaluate(model, loader) -> float:
    model.eval()
    correct, count = 0, 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        count += len(y)
    return correct / count


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="checkpoint path (default: a temporary file)")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tvm", "eager"],
                        help="compiler for the tour's training step")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiler tour")
    args = parser.parse_args(argv)

    train_set, test_set = load_data(args.seed)
    loader_gen = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                              generator=loader_gen, persistent_workers=args.workers > 0)
    test_loader = DataLoader(test_set, batch_size=256)
    step_size = max(1, args.epochs // 3)
    model, optimizer, scheduler = make_training(args.seed, args.lr, step_size)
    print(f"{model}\ntrain {len(train_set)} / test {len(test_set)} samples, {args.workers} loader workers")

    tmp = tempfile.TemporaryDirectory()
    ckpt = args.checkpoint or os.path.join(tmp.name, "digits_cnn.pt")
    half = args.epochs // 2
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        if epoch == half:
            # checkpoint, then resume into brand-new objects, as a restarted job would
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "loader_generator": torch.as_tensor(loader_gen.get_state())}, ckpt)
            state = torch.load(ckpt)
            model, optimizer, scheduler = make_training(args.seed + 1, args.lr, step_size)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            loader_gen.set_state(state["loader_generator"])
            print(f"checkpoint saved and resumed at epoch {state['epoch']} ({os.path.getsize(ckpt)} bytes)")
        loss = train_epoch(model, train_loader, optimizer)
        scheduler.step()
        acc = evaluate(model, test_loader)
        print(f"epoch {epoch + 1:2d}  lr {scheduler.get_last_lr()[0]:.5f}  loss {loss:.4f}  test accuracy {acc:.4f}")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    accuracy = evaluate(model, test_loader)
    print(f"final test accuracy {accuracy:.4f} ({elapsed:.1f} s wall, {cpu:.1f} s CPU in the main process)")
    if not args.no_compile:
        accuracy = compiler_tour(model, optimizer, train_set, test_loader, args, tmp.name)
    tmp.cleanup()
    return accuracy


def compiler_tour(model, optimizer, train_set, test_loader, args, workdir: str) -> float:
    """Capture, compile and export the trained model; returns the accuracy after compiled fine-tuning."""
    images = next(iter(test_loader))[0]
    model.eval()

    print("\n== capture: the trained model as ember IR (first lines) ==")
    traced = torch.jit.trace(model, (images[:2],))
    lines = str(traced.graph).splitlines()
    body = [i for i, line in enumerate(lines) if line.lstrip().startswith("%") and " = " in line]
    print("\n".join(lines[:3] + ["    ..."] + lines[body[0] - 1:body[0] + 6] + ["  ..."] + lines[-3:]))

    print(f"\n== compile: one more epoch with the whole training step compiled for {args.backend} ==")

    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    step = torch.compile(train_step, backend=args.backend)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    model.train()
    start = time.perf_counter()
    times = []
    for x, y in loader:
        t = time.perf_counter()
        loss = step(x, y)
        times.append(time.perf_counter() - t)
    stats = step.stats
    steady = sorted(times[2:])[len(times[2:]) // 2] * 1e3 if len(times) > 2 else float("nan")
    accuracy = evaluate(model, test_loader)
    print(f"{len(times)} steps in {time.perf_counter() - start:.1f} s (first call eager warm-up, then "
          f"{stats['compiles']} capture+compile; median compiled step {steady:.2f} ms); "
          f"loss {loss.item():.4f}  test accuracy {accuracy:.4f}")

    print("\n== export: ONNX with a dynamic batch dimension ==")
    path = os.path.join(workdir, "digits_cnn.onnx")
    model.eval()
    torch.onnx.export(model, (images[:2],), path, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    import onnxruntime as ort  # the exported file runs on stock ONNX Runtime, no ember needed

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": images.numpy()})
    with torch.no_grad():
        err = np.abs(logits - model(images).numpy()).max()
    print(f"{path.rsplit(os.sep, 1)[-1]}: {os.path.getsize(path)} bytes; ONNX Runtime on a batch of "
          f"{len(images)}: max |onnxruntime - eager| = {err:.2e}")
    return accuracy


if __name__ == "__main__":
    main()
