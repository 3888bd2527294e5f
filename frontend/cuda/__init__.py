"""``ember.cuda``: what PyTorch's ``torch.cuda`` reports, for ember's eager tensors.

ember's eager tensors live on the CPU (numpy kernels), so ``is_available()`` is False
and ``device_count()`` 0 on every machine, GPU or not. That is what keeps ordinary
PyTorch programs correct: they pick their device with
``"cuda" if torch.cuda.is_available() else "cpu"`` and then move tensors there,
which ember can only do on the CPU.

ember's CUDA execution goes through its compiled backends (ONNX Runtime's CUDA
provider, TVM's ``cuda`` target), asked for explicitly with
``ember.compile(fn, backend=..., options={"device": "cuda"})``;
``backend_available()`` says whether that can work here.
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
    """Whether eager tensors can be placed on CUDA: never in ember (see the module docstring)."""
    return False


def backend_available() -> bool:
    """True when a CUDA driver and ONNX Runtime's CUDA provider are present, so
    ``ember.compile(..., options={"device": "cuda"})`` can run on the GPU."""
    return _runtime_has_gpu()


def device_count() -> int:
    return 0


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
    if not _runtime_has_gpu():
        raise CudaUnavailableError(
            "CUDA is not available: no NVIDIA GPU/driver was found on this machine, so ember cannot place "
            "tensors on device 'cuda'. Use device='cpu' (or pick the device with "
            "ember.device('cuda' if ember.cuda.is_available() else 'cpu')).")
    raise CudaUnavailableError(
        "ember's eager tensors live on the CPU (ember.cuda.is_available() is False); run CUDA through "
        "ember.compile(..., backend='onnxruntime' or 'tvm', options={'device': 'cuda'}).")


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


def _no_memory(device=None) -> int:
    return 0


# memory statistics: no CUDA tensors are ever allocated by ember's eager mode
memory_allocated = max_memory_allocated = memory_reserved = max_memory_reserved = _no_memory


def reset_peak_memory_stats(device=None) -> None:
    return None
