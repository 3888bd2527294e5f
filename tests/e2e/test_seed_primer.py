"""Every code snippet of the user's PyTorch primer (shared/seed) runs on ember.

The snippets are kept close to verbatim; ``import torch.X`` lines read
``import ember.X`` (with ``import ember as torch`` the names are the same).
Names the primer leaves undefined (``num_epochs``, ``train_data``...) are given
small generated values. Where the primer uses CUDA, ember behaves as PyTorch
does on a machine without a GPU. Values are checked against hand-derived
results and, where installed, PyTorch.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import ember as torch
import ember.nn as nn
import ember.optim as optim
from ember.utils.data import DataLoader, Dataset


class SimpleNet(nn.Module):
    def __init__(self):
        super(SimpleNet, self).__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class CustomDataset(Dataset):
    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    train_data = torch.tensor(rng.normal(size=(n, 784)).astype(np.float32))
    train_labels = torch.tensor(rng.integers(0, 10, size=n))
    return train_data, train_labels


def test_module_definition_and_parameters():
    model = SimpleNet()
    names = [(name, tuple(param.shape)) for name, param in model.named_parameters()]
    assert names == [("fc1.weight", (128, 784)), ("fc1.bias", (128,)), ("fc2.weight", (10, 128)),
                     ("fc2.bias", (10,))]
    x = torch.randn(4, 784)
    out = model(x)
    w1, b1 = model.fc1.weight.detach().numpy(), model.fc1.bias.detach().numpy()
    w2, b2 = model.fc2.weight.detach().numpy(), model.fc2.bias.detach().numpy()
    ref = np.maximum(x.numpy() @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    assert model.training
    model.eval()
    assert not model.fc1.training
    model.train()
    assert model.fc1.training


def test_moving_to_cuda_raises_like_pytorch_without_gpu():
    model = SimpleNet()
    assert not torch.cuda.is_available() and torch.cuda.device_count() == 0
    with pytest.raises((RuntimeError, AssertionError)):
        model = model.to('cuda')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = model.to(device)
    if torch.cuda.device_count() > 1:  # pragma: no cover - no GPU here
        model = nn.DataParallel(model)
    assert str(device) == "cpu"


def test_save_and_load_state_dict(tmp_path):
    os.chdir(tmp_path)
    model = SimpleNet()
    torch.save(model.state_dict(), 'model.pth')
    other = SimpleNet()
    other.load_state_dict(torch.load('model.pth'))
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), other.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())


def test_whole_model_save_needs_weights_only_false(tmp_path):
    os.chdir(tmp_path)
    model = SimpleNet()
    torch.save(model, 'model_full.pth')
    # PyTorch >= 2.6 defaults to weights_only=True and refuses pickled modules; ember does the same
    with pytest.raises(Exception, match="weights_only"):
        torch.load('model_full.pth')
    loaded = torch.load('model_full.pth', weights_only=False)
    x = torch.randn(2, 784)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


def test_autograd_primer():
    x = torch.tensor([2.0], requires_grad=True)
    y = x ** 2 + 3 * x
    y.backward()
    assert x.grad.tolist() == [7.0]
    model = SimpleNet()
    with torch.no_grad():
        y = model(torch.randn(3, 784))
    assert not y.requires_grad and y.grad_fn is None
    y = x.detach()
    assert not y.requires_grad


def test_layers_losses_optimizers_construct():
    in_features, out_features, in_channels, out_channels, kernel_size, num_features = 8, 4, 3, 6, 3, 6
    layers = [nn.Linear(in_features, out_features), nn.Conv2d(in_channels, out_channels, kernel_size),
              nn.MaxPool2d(kernel_size), nn.AvgPool2d(kernel_size), nn.BatchNorm2d(num_features),
              nn.LayerNorm(10), nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim=-1), nn.Dropout(p=0.5)]
    x = torch.randn(2, 3, 9, 9)
    y = nn.Sequential(layers[1], layers[4], layers[6], layers[2])(x)
    assert tuple(y.shape) == (2, 6, 2, 2)
    s = layers[9](torch.randn(4, 10))
    np.testing.assert_allclose(s.sum(-1).detach().numpy(), np.ones(4), rtol=1e-6)
    logits, target = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    ce = nn.CrossEntropyLoss()(logits, target)
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    np.testing.assert_allclose(ce.item(), -lp[np.arange(5), target.numpy()].mean(), rtol=1e-5)
    a, b = torch.randn(6), torch.randn(6)
    np.testing.assert_allclose(nn.MSELoss()(a, b).item(), ((a.numpy() - b.numpy()) ** 2).mean(), rtol=1e-5)
    p, t = torch.rand(6) * 0.98 + 0.01, torch.randint(0, 2, (6,)).float()
    bce = -(t.numpy() * np.log(p.numpy()) + (1 - t.numpy()) * np.log(1 - p.numpy())).mean()
    np.testing.assert_allclose(nn.BCELoss()(p, t).item(), bce, rtol=1e-5)
    model = SimpleNet()
    for optimizer in (optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                      optim.Adam(model.parameters(), lr=0.001),
                      optim.AdamW(model.parameters(), lr=0.001, weight_decay=0.01)):
        optimizer.zero_grad()
        model(torch.randn(2, 784)).sum().backward()
        optimizer.step()


def test_training_loop_with_dataloader_workers_and_schedulers():
    from ember.optim.lr_scheduler import CosineAnnealingLR, StepLR
    torch.manual_seed(0)
    train_data, train_labels = _data()
    dataset = CustomDataset(train_data, train_labels)
    dataloader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=4)
    test_loader = DataLoader(dataset, batch_size=32)
    model = SimpleNet()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    num_epochs = 5
    losses = []
    model.train()
    for epoch in range(num_epochs):
        for batch_x, batch_y in dataloader:
            outputs = model(batch_x)
            loss = criterion(outputs, batch_y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
        losses.append(loss.item())
        scheduler.step()
    assert losses[-1] < losses[0]
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch_x, batch_y in test_loader:
            outputs = model(batch_x)
            correct += (outputs.argmax(1) == batch_y).sum().item()
    assert correct > 30  # memorizing 96 random labels: far above the ~10 right by chance
    cos = CosineAnnealingLR(optim.SGD(model.parameters(), lr=0.1), T_max=10)
    for _ in range(5):
        cos.step()
    np.testing.assert_allclose(cos.get_last_lr()[0], 0.05 * (1 + np.cos(np.pi * 5 / 10)), rtol=1e-6)


def test_checkpoint_with_optimizer_state(tmp_path):
    os.chdir(tmp_path)
    model = SimpleNet()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    loss = model(torch.randn(4, 784)).pow(2).mean()
    loss.backward()
    optimizer.step()
    epoch = 3
    checkpoint = {
        'epoch': epoch,
        'model_state_dict': model.state_dict(),
        'optimizer_state_dict': optimizer.state_dict(),
        'loss': loss
    }
    torch.save(checkpoint, 'checkpoint.pth')
    checkpoint = torch.load('checkpoint.pth')
    model2 = SimpleNet()
    optimizer2 = optim.Adam(model2.parameters(), lr=0.001)
    model2.load_state_dict(checkpoint['model_state_dict'])
    optimizer2.load_state_dict(checkpoint['optimizer_state_dict'])
    assert checkpoint['epoch'] == 3
    np.testing.assert_allclose(checkpoint['loss'].item(), loss.item())
    # resuming gives the same trajectory as continuing
    x = torch.randn(4, 784)
    for m, o in ((model, optimizer), (model2, optimizer2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for p1, p2 in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())


def test_mixed_precision_snippet_without_cuda():
    from ember.cuda.amp import GradScaler, autocast
    train_data, train_labels = _data(64)
    dataloader = DataLoader(CustomDataset(train_data, train_labels), batch_size=32)
    model = SimpleNet()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = GradScaler()
        before = model.fc1.weight.detach().numpy().copy()
        for batch_x, batch_y in dataloader:
            optimizer.zero_grad()
            with autocast():
                outputs = model(batch_x)
                loss = criterion(outputs, batch_y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    # without CUDA, autocast and the scaler disable themselves and training proceeds in float32
    assert outputs.dtype is torch.float32
    assert not np.array_equal(before, model.fc1.weight.detach().numpy())
