"""``torch.testing.assert_close``: values, shapes and dtypes compared with PyTorch's default tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

# PyTorch's defaults per dtype: (rtol, atol)
_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
               "float64": (1e-7, 1e-7)}


def _array(x: Any) -> np.ndarray:
    from .._tensor import Tensor
    if isinstance(x, Tensor):
        return np.asarray(x.detach()._data)
    return np.asarray(x)


def assert_close(actual: Any, expected: Any, *, rtol: float | None = None, atol: float | None = None,
                 equal_nan: bool = False, check_dtype: bool = True, msg: str | None = None) -> None:
    """Raise AssertionError unless ``|actual - expected| <= atol + rtol * |expected|`` elementwise (and the
    shapes, and with ``check_dtype`` the dtypes, agree). Sequences and dicts are compared item by item."""
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(msg or f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype, msg=msg)
        return
    if isinstance(actual, dict) and isinstance(expected, dict):
        if set(actual) != set(expected):
            raise AssertionError(msg or f"The keys of the mappings do not match: {sorted(actual)} vs "
                                        f"{sorted(expected)}")
        for k in actual:
            assert_close(actual[k], expected[k], rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype,
                         msg=msg)
        return
    a, e = _array(actual), _array(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {a.shape} != {e.shape}.")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {a.dtype} != {e.dtype}.")
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted")
    if rtol is None:
        rtol, atol = _TOLERANCES.get(str(a.dtype), (0.0, 0.0))
    a64, e64 = a.astype(np.float64) if a.dtype != bool else a, e.astype(np.float64) if e.dtype != bool else e
    ok = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = int((~ok).sum())
        diff = np.where(ok, 0.0, np.abs(a64 - e64))
        worst = np.unravel_index(int(np.nanargmax(diff)), a.shape) if a.shape else ()
        raise AssertionError(msg or f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {a.size} "
                                    f"({100.0 * bad / max(a.size, 1):.1f}%)\nGreatest absolute difference: "
                                    f"{float(np.nanmax(diff))} at index {tuple(int(i) for i in worst)} "
                                    f"(up to {atol} allowed)")
