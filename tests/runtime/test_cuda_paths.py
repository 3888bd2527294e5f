"""The CUDA paths of the compiled backends: ONNX Runtime's CUDA provider and TVM's ``cuda`` target.

They run only where a GPU and driver are present (skipped elsewhere), so a GPU machine checks the
whole CUDA story with one command::

    python -m pip install -e ".[test]" && python -m pytest -q tests/runtime/test_cuda_paths.py

Each test compares against ember's own eager (CPU) execution: inference outputs, and 20 training
steps of an MLP and a CNN (parameters after every step), to 1e-4 as the CPU backends are held to.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.optim as optim
from tests.steps import classification_step

pytestmark = pytest.mark.skipif(not ember.cuda.backend_available(),
                                reason="no CUDA GPU/driver with ONNX Runtime's CUDA provider here")

BACKEND_OPTIONS = {
    "onnxruntime": {"device": "cuda"},
    "tvm": {"target": "cuda"},
}


def _tvm_gpu() -> bool:
    try:
        import tvm
    except ImportError:  # pragma: no cover
        return False
    return bool(tvm.cuda(0).exist)


def _skip_unless_backend(backend: str) -> None:
    if backend == "tvm" and not _tvm_gpu():
        pytest.skip("TVM sees no CUDA device")


def _mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))


def _cnn(batch_norm: bool = False):
    norm = [nn.BatchNorm2d(4)] if batch_norm else []
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), *norm, nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 2, 5))


def _data(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 20) if kind == "mlp" else (8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, size=(x.shape[0],))
    return ember.from_numpy(x), ember.from_numpy(y)


@pytest.mark.parametrize("backend", sorted(BACKEND_OPTIONS))
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_cuda_inference_matches_eager(backend, kind):
    _skip_unless_backend(backend)
    ember.manual_seed(0)
    model = (_mlp() if kind == "mlp" else _cnn(batch_norm=True)).eval()
    x, _ = _data(kind)
    with ember.no_grad():
        expected = model(x).numpy()
        compiled = ember.compile(model, backend=backend, options=BACKEND_OPTIONS[backend])
        got = compiled(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _train(kind, backend, steps=20):
    ember.manual_seed(0)
    model = _mlp() if kind == "mlp" else _cnn()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = _data(kind)

    step = classification_step(model, opt)

    fn = ember.compile(step, backend=backend, options=BACKEND_OPTIONS[backend]) if backend else step
    losses, params = [], []
    for _ in range(steps):
        losses.append(float(fn(x, y)))
        params.append([p.detach().numpy().copy() for p in model.parameters()])  # ember sees every update
    return losses, params


@pytest.mark.parametrize("backend", sorted(BACKEND_OPTIONS))
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_cuda_training_matches_eager(backend, kind):
    _skip_unless_backend(backend)
    le, pe = _train(kind, None)
    lg, pg = _train(kind, backend)
    np.testing.assert_allclose(lg, le, rtol=1e-4, atol=1e-4)
    for step_e, step_g in zip(pe, pg):
        for a, b in zip(step_e, step_g):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    assert le[-1] < le[0]
