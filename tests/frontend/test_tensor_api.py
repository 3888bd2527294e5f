"""Tensor API details: creation, dtypes, conversion, in-place ops, index assignment, cuda, repr."""

import numpy as np
import pytest

import ember


def test_dtypes_and_defaults():
    names = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
    for n in names:
        dt = getattr(ember, n)
        assert ember.zeros(2, dtype=dt).dtype is dt
    assert ember.get_default_dtype() is ember.float32
    assert ember.tensor([1.0]).dtype is ember.float32 and ember.tensor([1]).dtype is ember.int64
    assert ember.tensor(True).dtype is ember.bool and ember.tensor(np.float64(1.0)).dtype is ember.float64
    x = ember.ones(2, 3)
    assert x.shape == (2, 3) and x.size() == ember.Size([2, 3]) and x.size(-1) == 3
    assert x.dim() == 2 and x.numel() == 6 and x.device == ember.device("cpu") and str(x.device) == "cpu"


def test_creation_functions():
    np.testing.assert_array_equal(ember.arange(5).numpy(), np.arange(5))
    np.testing.assert_allclose(ember.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(ember.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(ember.eye(2, 3).numpy(), np.eye(2, 3))
    assert ember.full((2,), 7).dtype is ember.int64 and ember.full((2,), 7.0).dtype is ember.float32
    assert ember.zeros_like(ember.tensor([1, 2])).dtype is ember.int64
    assert ember.ones_like(ember.ones(2), dtype=ember.int32).dtype is ember.int32
    assert ember.empty(2, 3).shape == (2, 3) and ember.full_like(ember.ones(2), 3).tolist() == [3.0, 3.0]
    assert ember.randint(0, 10, (50,)).dtype is ember.int64
    p = ember.randperm(10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype is ember.int64
    assert ember.normal(0.0, 1.0, size=(3,)).shape == (3,)
    assert ember.normal(ember.zeros(4), 1.0).shape == (4,)
    assert ember.as_tensor([1, 2]).dtype is ember.int64


def test_manual_seed_and_generator_reproduce():
    ember.manual_seed(123)
    a = ember.rand(5)
    b = ember.randn(2, 2)
    ember.manual_seed(123)
    np.testing.assert_array_equal(a.numpy(), ember.rand(5).numpy())
    np.testing.assert_array_equal(b.numpy(), ember.randn(2, 2).numpy())
    g1, g2 = ember.Generator().manual_seed(7), ember.Generator().manual_seed(7)
    np.testing.assert_array_equal(ember.rand(3, generator=g1).numpy(), ember.rand(3, generator=g2).numpy())
    u = ember.rand(10000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.02


def test_from_numpy_shares_memory_and_tensor_copies():
    a = np.zeros(3)
    t = ember.from_numpy(a)
    t[0] = 5
    a[1] = 7
    assert a[0] == 5 and t[1].item() == 7 and t.dtype is ember.float64
    c = ember.tensor(a)
    c[2] = 1
    assert a[2] == 0
    t.add_(1)
    np.testing.assert_array_equal(a, [6, 8, 1])


def test_conversions():
    x = ember.tensor([1.7, -2.7])
    assert x.long().tolist() == [1, -2] and x.int().dtype is ember.int32
    assert x.double().dtype is ember.float64 and x.half().dtype is ember.float16 and x.float() is not None
    assert ember.tensor([1.0, 0.0]).bool().tolist() == [True, False]
    assert x.to(ember.float64).dtype is ember.float64 and x.to("cpu") is x and x.cpu() is x
    assert x.to("cpu", ember.int64).dtype is ember.int64
    assert ember.tensor(2.5).item() == 2.5 and isinstance(ember.tensor(3).item(), int)
    assert float(ember.tensor([1.5])) == 1.5 and int(ember.tensor(3.7)) == 3
    y = x.clone()
    y[0] = 0
    assert x[0].item() == pytest.approx(1.7)
    assert isinstance(x.numpy(), np.ndarray)
    with pytest.raises(RuntimeError, match="requires grad"):
        ember.ones(2, requires_grad=True).numpy()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(ember.ones(2))


def test_inplace_ops_write_through_views():
    torch = pytest.importorskip("torch")
    for m in (ember, torch):
        x = m.arange(12.0).reshape(3, 4)
        row = x[1]
        row.add_(100)
        x[:, 0].mul_(-1)
        x.t()[3].sub_(1, alpha=2)
        x.view(-1)[0:2].zero_()
        x[2].fill_(7)
        x[2, ::2].copy_(m.tensor([1, 2]))
        x.clamp_(-5, 105)
        x.div_(2)
        if m is ember:
            got = x.numpy().copy()
        else:
            np.testing.assert_array_equal(got, x.numpy())


SETITEM = [
    "x[0, :] = 0", "x[:, 1] = torch.tensor([7., 8., 9.])", "x[x > 5] = -1", "x[[0, 2]] = 1",
    "x[..., -1] = 5", "x[::2, ::3] = 0", "x[1] += 10", "x[torch.tensor([0, 2]), torch.tensor([1, 3])] = 9.",
    "x[-1, -2:] = torch.tensor([1., 2.])", "x[None, 1] = 3", "x[torch.tensor([True, False, True])] = 0.5",
    "x[1:, torch.tensor([0, 0])] = torch.tensor([4., 5.])", "x[2] = x[0]",
]


@pytest.mark.parametrize("stmt", SETITEM)
@pytest.mark.parametrize("grad", [False, True])
def test_index_assignment_matches_torch(stmt, grad):
    torch = pytest.importorskip("torch")
    results = []
    for m in (ember, torch):
        leaf = m.arange(12.0).reshape(3, 4).requires_grad_(grad)
        x = leaf * 1 if grad else leaf
        exec(stmt, {"torch": m, "x": x})
        if grad:
            (x * x).sum().backward()
            results.append((x.detach().numpy().copy(), leaf.grad.numpy().copy()))
        else:
            results.append((x.numpy().copy(), None))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    if grad:
        np.testing.assert_allclose(results[0][1], results[1][1])


def test_index_assignment_casts_to_tensor_dtype():
    x = ember.arange(6).reshape(2, 3)
    x[0] = 2.7
    assert x.dtype is ember.int64 and x[0].tolist() == [2, 2, 2]


def test_cuda_is_absent_and_cuda_tensors_raise_clearly():
    # eager tensors live on the CPU on every machine, so programs that choose their device with
    # is_available() run on the CPU even where a GPU (reachable by the compiled backends) exists
    assert ember.cuda.is_available() is False and ember.cuda.device_count() == 0
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert ember.cuda.backend_available() is False
    dev = ember.device("cuda" if ember.cuda.is_available() else "cpu")
    assert ember.ones(2).to(dev).device == ember.device("cpu")
    for make in (lambda: ember.tensor([1.0, 2.0], dtype=ember.float32, device="cuda"),
                 lambda: ember.zeros(2, device="cuda:0"), lambda: ember.ones(2).cuda(),
                 lambda: ember.ones(2).to("cuda")):
        with pytest.raises(RuntimeError, match="CUDA is not available|eager tensors live on the CPU") as info:
            make()
        assert isinstance(info.value, AssertionError)  # what torch raises on CPU-only builds


def test_repr_like_torch():
    assert repr(ember.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(ember.tensor([1.5, 2.25], requires_grad=True)) == "tensor([1.5000, 2.2500], requires_grad=True)"
    assert repr(ember.tensor([True, False])) == "tensor([ True, False])"
    assert repr(ember.tensor([1, 2], dtype=ember.int32)) == "tensor([1, 2], dtype=ember.int32)"
    assert repr(ember.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(ember.tensor(3.5)) == "tensor(3.5000)"
    assert repr(ember.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(ember.tensor([1.0, 2.0], requires_grad=True) * 2).startswith("tensor([2., 4.], grad_fn=<Mul")
    big = repr(ember.arange(2000.0))
    assert "...," in big and big.startswith("tensor([0.0000e+00")
    assert repr(ember.tensor([[1.0, 5.0], [3.0, 2.0]]).max(1)).startswith("ember.return_types.max(\nvalues=")
