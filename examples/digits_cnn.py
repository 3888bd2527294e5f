"""Placeholder until the nn issue lands: trains a tiny logistic regression eagerly."""

import numpy as np

import ember as torch

rng = np.random.default_rng(0)
x = torch.tensor(rng.normal(size=(256, 8)).astype(np.float32))
w_true = rng.normal(size=(8, 1)).astype(np.float32)
y = torch.tensor((x.numpy() @ w_true > 0).astype(np.float32))
w = torch.zeros(8, 1, requires_grad=True)
for step in range(200):
    p = torch.sigmoid(x @ w)
    loss = -(y * torch.log(p + 1e-7) + (1 - y) * torch.log(1 - p + 1e-7)).mean()
    loss.backward()
    with torch.no_grad():
        w -= 0.5 * w.grad
        w.grad = None
acc = ((torch.sigmoid(x @ w) > 0.5).float() == y).float().mean().item()
print(f"loss {loss.item():.4f} accuracy {acc:.3f}")
