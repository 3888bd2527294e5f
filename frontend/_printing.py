"""``repr(tensor)`` in PyTorch's format: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from ember.ir.types import bool_, float32, int64

_DEFAULT_SHOWN = (float32, int64, bool_)
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    if profile == "default":
        PRINT_OPTIONS.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    for key, val in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                     ("linewidth", linewidth)):
        if val is not None:
            PRINT_OPTIONS[key] = val
    PRINT_OPTIONS["sci_mode"] = sci_mode


def _float_formatter(arr: np.ndarray):
    finite = arr[np.isfinite(arr)]
    prec = PRINT_OPTIONS["precision"]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.{prec}f}"
    absf = np.abs(finite.astype(np.float64))
    nonzero = absf[absf > 0]
    integral = np.all(finite == np.round(finite))
    sci = PRINT_OPTIONS["sci_mode"]
    if sci is None:
        sci = nonzero.size > 0 and (nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() > 1e8
                                    or nonzero.min() < 1e-4)
    if integral and not sci:
        width = max(len(f"{v:.0f}.") for v in finite) if finite.size else 1
        return lambda v: (_special(v) or f"{v:.0f}.").rjust(width)
    if sci:
        width = max(len(f"{v:.{prec}e}") for v in finite)
        return lambda v: (_special(v) or f"{v:.{prec}e}").rjust(width)
    width = max(len(f"{v:.{prec}f}") for v in finite)
    return lambda v: (_special(v) or f"{v:.{prec}f}").rjust(width)


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def _body(arr: np.ndarray) -> str:
    if arr.dtype.kind == "f" or arr.dtype.name == "bfloat16":
        arr = arr.astype(np.float64) if arr.dtype.name == "bfloat16" else arr
        fmt = _float_formatter(arr)
    elif arr.dtype == np.bool_:
        fmt = lambda v: "True" if v else "False"  # noqa: E731
    else:
        width = max((len(str(v)) for v in arr.ravel()), default=1)
        fmt = lambda v: str(v).rjust(width)  # noqa: E731
    summarize = arr.size > PRINT_OPTIONS["threshold"]
    return np.array2string(arr, separator=", ", prefix="tensor(", formatter={"all": fmt},
                           threshold=PRINT_OPTIONS["threshold"] if summarize else arr.size + 1,
                           edgeitems=PRINT_OPTIONS["edgeitems"], max_line_width=PRINT_OPTIONS["linewidth"])


def tensor_repr(t) -> str:
    if t._value is not None:
        return f"tensor(<traced {t._value.type}>)"
    arr = t._data
    extras = []
    if arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            extras.append(f"size={tuple(arr.shape)}")
    else:
        body = _body(arr)
    dt = t.dtype
    if dt not in _DEFAULT_SHOWN or (arr.size == 0 and dt is not float32):
        extras.append(f"dtype={dt!r}")
    if t._node is not None:
        extras.append(f"grad_fn=<{t._node.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    prefix = "Parameter containing:\n" if type(t).__name__ == "Parameter" else ""
    return prefix + "tensor(" + body + "".join(", " + e for e in extras) + ")"
