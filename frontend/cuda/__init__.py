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


def _lazy_init() -> None:
    if not is_available():
        raise RuntimeError("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
                           "and installed a driver from http://www.nvidia.com/Download/index.aspx "
                           "(ember tensors cannot be placed on 'cuda' here; use device='cpu').")
    raise RuntimeError("ember's eager tensors live on the CPU; run CUDA through ember.compile(..., "
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
