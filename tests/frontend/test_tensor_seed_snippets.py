"""The tensor and autograd snippets of the PyTorch primer (shared/seed) run under ``import ember as torch``."""

import numpy as np
import pytest

import ember as torch


def test_creating_tensors():
    x = torch.tensor([[1, 2], [3, 4]])
    zeros = torch.zeros(2, 3)
    ones = torch.ones(2, 3)
    rand = torch.rand(2, 3)
    randn = torch.randn(2, 3)
    assert x.dtype is torch.int64 and x.tolist() == [[1, 2], [3, 4]]
    assert zeros.sum().item() == 0 and ones.sum().item() == 6
    assert rand.shape == (2, 3) and 0 <= rand.min().item() and rand.max().item() < 1 and randn.shape == (2, 3)
    # no GPU here: the cuda line of the primer raises a clear error (as PyTorch without CUDA does)
    with pytest.raises(RuntimeError, match="CUDA is not available|eager tensors live on the CPU"):
        torch.tensor([1.0, 2.0], dtype=torch.float32, device='cuda')


def test_tensor_operations():
    x = torch.tensor([[1, 2], [3, 4]])
    y = x + 2
    z = torch.matmul(x, y)
    assert (z == (x @ y)).all()
    np.testing.assert_array_equal(z.numpy(), np.array([[1, 2], [3, 4]]) @ np.array([[3, 4], [5, 6]]))
    x = x.view(4, 1)
    x = x.reshape(-1, 2)
    x = x.transpose(0, 1)
    assert x[0, :].tolist() == [1, 3] and x[:, 1].tolist() == [3, 4]


def test_numpy_round_trip():
    tensor = torch.arange(6.0).reshape(2, 3)
    numpy_array = tensor.cpu().numpy()
    tensor = torch.from_numpy(numpy_array)
    numpy_array[0, 0] = 42.0
    assert tensor[0, 0].item() == 42.0


def test_autograd_basics():
    x = torch.tensor([2.0], requires_grad=True)
    y = x ** 2 + 3 * x
    y.backward()
    assert x.grad.tolist() == [7.0]  # dy/dx = 2x + 3 = 7
    with torch.no_grad():
        y = x * 2
    assert not y.requires_grad
    loss = (x * 3).sum()
    loss.backward()  # gradients accumulate into .grad
    assert x.grad.tolist() == [10.0]
    y = x.detach()
    assert not y.requires_grad


def test_device_selection():
    if torch.cuda.is_available():
        pytest.skip("GPU machine: CUDA serves the compiled backends; eager tensors stay on the CPU")
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    inputs = torch.ones(2).to(device)
    assert device.type == "cpu" and inputs.device == device
    assert torch.cuda.device_count() == 0
