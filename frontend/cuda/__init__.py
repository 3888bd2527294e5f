"""``ember.cuda``: CUDA is reported exactly as PyTorch reports it on a machine without one.

ember's CUDA execution goes through its compiled backends (ONNX Runtime's CUDA
provider, TVM's ``cuda`` target); eager tensors live on the CPU.
"""

from __future__ import annotations


def _runtime_has_gpu() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover
        return False
    try:
        import ctypes
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def is_available() -> bool:
    """True only when a CUDA driver and ONNX Runtime's CUDA provider are present."""
    return _runtime_has_gpu()


def device_count() -> int:
    return 1 if is_available() else 0


def current_device() -> int:
    _lazy_init()
    return 0


class CudaUnavailableError(RuntimeError, AssertionError):
    """Asking for a CUDA tensor where ember cannot place one.

    PyTorch raises ``AssertionError("Torch not compiled with CUDA enabled")`` on CPU-only
    builds and ``RuntimeError`` when no driver is found; this class is both, so either
    ``except`` clause in user code catches it.
    """


def _lazy_init() -> None:
    if not is_available():
        raise CudaUnavailableError(
            "CUDA is not available: no NVIDIA GPU/driver was found on this machine, so ember cannot place "
            "tensors on device 'cuda'. Use device='cpu' (or pick the device with "
            "ember.device('cuda' if ember.cuda.is_available() else 'cpu')).")
    raise CudaUnavailableError(
        "ember's eager tensors live on the CPU; run CUDA through ember.compile(..., "
        "backend='onnxruntime' or 'tvm') with device='cuda'.")


def manual_seed(seed: int) -> None:
    """Seeding CUDA is a no-op without CUDA, as in PyTorch."""


def manual_seed_all(seed: int) -> None:
    """Seeding CUDA is a no-op without CUDA, as in PyTorch."""


def synchronize(device=None) -> None:
    """Nothing to wait for on the CPU."""


def empty_cache() -> None:
    """No CUDA caching allocator to empty."""


def get_device_name(device=None) -> str:
    _lazy_init()
    return ""


def is_bf16_supported() -> bool:
    return False


from . import amp  # noqa: E402,F401  ember.cuda.amp: autocast/GradScaler that disable themselves without CUDA
