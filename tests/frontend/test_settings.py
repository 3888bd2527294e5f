"""The process-wide switches PyTorch scripts set at the top (torch.backends, threads, precision,
determinism, torch.compiler.reset): they exist, keep what was set, and reject what PyTorch rejects."""

from __future__ import annotations

import pytest

import ember

from ember import _settings


@pytest.fixture(autouse=True)
def _restore():
    saved = dict(_settings._settings)
    yield
    _settings._settings.update(saved)


def test_backends_flags_are_accepted_and_availability_is_reported():
    ember.backends.cudnn.benchmark = True
    ember.backends.cudnn.deterministic = True
    ember.backends.cuda.matmul.allow_tf32 = False
    assert ember.backends.cudnn.benchmark is True and ember.backends.cudnn.deterministic is True
    assert ember.backends.mps.is_available() is False and ember.backends.cudnn.is_available() is False


def test_threads_round_trip_and_reach_onnxruntime_sessions(monkeypatch):
    monkeypatch.delenv("EMBER_ORT_THREADS", raising=False)
    ember.set_num_threads(1)
    ember.set_num_interop_threads(1)
    assert ember.get_num_threads() == 1 and ember.get_num_interop_threads() == 1
    from ember.runtime.onnx.session import _program_threads
    assert _program_threads() == 1
    with pytest.raises(RuntimeError, match="positive integer"):
        ember.set_num_threads(0)


def test_matmul_precision_and_determinism_flags():
    assert ember.get_float32_matmul_precision() == "highest"
    ember.set_float32_matmul_precision("high")
    assert ember.get_float32_matmul_precision() == "high"
    with pytest.raises(RuntimeError, match="Invalid precision"):
        ember.set_float32_matmul_precision("low")
    ember.use_deterministic_algorithms(True, warn_only=True)
    assert ember.are_deterministic_algorithms_enabled() and ember.is_deterministic_algorithms_warn_only_enabled()
    with pytest.raises(TypeError):
        ember.use_deterministic_algorithms("yes")


def test_compiler_reset_makes_every_compiled_function_capture_again():
    f = ember.compile(ember.nn.Linear(3, 2))
    x = ember.ones(2, 3)
    with ember.no_grad():
        want = f(x).numpy().copy()
        f(x)
        assert f.stats["compiles"] == 1
        ember.compiler.reset()
        assert f.graph is None
        got = f(x).numpy()
        ember._dynamo.reset()  # the older spelling
        f(x)
    assert f.stats["compiles"] == 3 and (got == want).all()
    assert ember.compiler.is_compiling() is False


def test_testing_assert_close_uses_torchs_tolerances_and_messages():
    ember.testing.assert_close(ember.ones(3), ember.ones(3) + 1e-6)  # within float32's rtol/atol
    ember.testing.assert_close([ember.ones(2)], [ember.ones(2)])
    ember.testing.assert_close({"a": ember.zeros(1)}, {"a": ember.zeros(1)})
    with pytest.raises(AssertionError, match="Mismatched elements: 1 / 3"):
        ember.testing.assert_close(ember.ones(3), ember.tensor([1.0, 1.1, 1.0]))
    with pytest.raises(AssertionError, match="dtype"):
        ember.testing.assert_close(ember.ones(3), ember.ones(3, dtype=ember.float64))
    with pytest.raises(AssertionError, match="shape"):
        ember.testing.assert_close(ember.ones(3), ember.ones(4))
    ember.testing.assert_close(ember.ones(3), ember.ones(3) + 0.05, rtol=0.1, atol=0.0)
    with pytest.raises(ValueError, match="rtol"):
        ember.testing.assert_close(ember.ones(1), ember.ones(1), rtol=0.1)


def test_memory_formats_and_cuda_memory_statistics_exist():
    assert repr(ember.channels_last) == "torch.channels_last"
    x = ember.randn(1, 2, 3, 3)
    np_x = x.numpy().copy()
    y = x.to(memory_format=ember.channels_last).contiguous(memory_format=ember.channels_last)
    assert (y.numpy() == np_x).all() and ember.nn.Conv2d(2, 2, 1).to(memory_format=ember.channels_last) is not None
    assert ember.cuda.memory_allocated() == 0 and ember.cuda.max_memory_allocated() == 0
    ember.cuda.reset_peak_memory_stats()
