"""Process-wide switches PyTorch programs set at the top: threads, float32 matmul precision, determinism.

ember computes on the CPU with numpy and its compiled backends, so these mostly record what the program
asked for and report it back, as PyTorch's getters do. ``set_num_threads`` is also the default thread count
of ONNX Runtime sessions ember opens (numpy's BLAS keeps the count it was loaded with: set
``OMP_NUM_THREADS`` before starting Python for that).
"""

from __future__ import annotations

import os

_PRECISIONS = ("highest", "high", "medium")
_settings = {"num_threads": None, "interop_threads": None, "matmul_precision": "highest",
             "deterministic": False, "deterministic_warn_only": False}


def _set_count(key: str, what: str, n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RuntimeError(f"{what} expects a positive integer, got {n!r}")
    _settings[key] = n


def _get_count(key: str) -> int:
    n = _settings[key]
    return n if n is not None else (os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """``torch.set_num_threads``: intra-op threads (ember: ONNX Runtime sessions opened from now on)."""
    _set_count("num_threads", "set_num_threads", n)


def get_num_threads() -> int:
    return _get_count("num_threads")


def set_num_interop_threads(n: int) -> None:
    _set_count("interop_threads", "set_num_interop_threads", n)


def get_num_interop_threads() -> int:
    return _get_count("interop_threads")


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: ember's float32 products are always full precision
    ("highest"); the setting is recorded (no TF32 or bfloat16 passes exist on ember's CPU paths)."""
    if precision not in _PRECISIONS:
        raise RuntimeError(f"Invalid precision: {precision!r}; expected one of {list(_PRECISIONS)}")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms``: ember's kernels are deterministic, so every mode holds."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms expects a bool, got {type(mode).__name__}")
    _settings["deterministic"], _settings["deterministic_warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _settings["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _settings["deterministic_warn_only"]


def default_threads() -> int | None:
    """The thread count a program set with ``set_num_threads`` (None: the backend's own default)."""
    return _settings["num_threads"]
