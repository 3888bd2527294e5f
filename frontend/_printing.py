"""``repr(tensor)`` in PyTorch's format: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``.

Follows ``torch/_tensor_str.py``: one formatter per tensor (integer mode, fixed or scientific
notation chosen from the non-zero finite values), elements right-aligned to a common width,
lines wrapped at ``linewidth``, and tensors above ``threshold`` elements summarized with
``...`` around ``edgeitems`` items per dimension.
"""

from __future__ import annotations

import math

import numpy as np

from ember.ir.types import bool_, int64

PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """``torch.set_printoptions``."""
    if profile == "default":
        PRINT_OPTIONS.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "short":
        PRINT_OPTIONS.update(precision=2, threshold=1000, edgeitems=2, linewidth=80)
    elif profile == "full":
        PRINT_OPTIONS.update(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)
    for key, val in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                     ("linewidth", linewidth)):
        if val is not None:
            PRINT_OPTIONS[key] = val
    PRINT_OPTIONS["sci_mode"] = sci_mode


class _Formatter:
    def __init__(self, values: np.ndarray, floating: bool) -> None:
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        prec = PRINT_OPTIONS["precision"]
        if not floating:
            for v in values.ravel().tolist():
                self.width = max(self.width, len(str(v)))
            return
        vals = values.astype(np.float64).ravel()
        finite = vals[np.isfinite(vals) & (vals != 0)]
        if finite.size:
            absv = np.abs(finite)
            lo, hi = absv.min(), absv.max()
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            if self.int_mode:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            else:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            for v in finite.tolist():
                if self.sci_mode:
                    s = f"{v:.{prec}e}"
                elif self.int_mode:
                    s = f"{v:.0f}."
                else:
                    s = f"{v:.{prec}f}"
                self.width = max(self.width, len(s))
        if PRINT_OPTIONS["sci_mode"] is not None:
            self.sci_mode = PRINT_OPTIONS["sci_mode"]

    def format(self, v) -> str:
        prec = PRINT_OPTIONS["precision"]
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.width}.{prec}e}"
            elif self.int_mode:
                s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
            else:
                s = f"{v:.{prec}f}"
        else:
            s = str(v)
        return " " * (self.width - len(s)) + s


def _summarized(arr: np.ndarray) -> np.ndarray:
    """The elements a summarized print shows (edge items of every long dimension)."""
    e = PRINT_OPTIONS["edgeitems"]
    if arr.ndim == 0:
        return arr
    if arr.shape[0] > 2 * e:
        arr = np.concatenate([arr[:e], arr[-e:]])
    return np.stack([_summarized(a) for a in arr]) if arr.ndim > 1 and arr.shape[0] else arr


def _vector(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    e = PRINT_OPTIONS["edgeitems"]
    per_line = max(1, int(math.floor((PRINT_OPTIONS["linewidth"] - indent) / (fmt.width + 2))))
    if summarize and arr.shape[0] > 2 * e:
        data = [fmt.format(v) for v in arr[:e].tolist()] + [" ..."] + [fmt.format(v) for v in arr[-e:].tolist()]
    else:
        data = [fmt.format(v) for v in arr.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _vector(arr, indent, summarize, fmt)
    e = PRINT_OPTIONS["edgeitems"]
    if summarize and arr.shape[0] > 2 * e:
        slices = ([_nested(arr[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
                  + [_nested(arr[i], indent + 1, summarize, fmt) for i in range(arr.shape[0] - e, arr.shape[0])])
    else:
        slices = [_nested(a, indent + 1, summarize, fmt) for a in arr]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def array_str(arr: np.ndarray, indent: int) -> str:
    """The bracketed body of a tensor's repr."""
    if arr.size == 0:
        return "[]"
    floating = arr.dtype.kind == "f" or arr.dtype.name == "bfloat16"
    if arr.dtype.name in ("bfloat16", "float16"):
        arr = arr.astype(np.float32)
    summarize = arr.size > PRINT_OPTIONS["threshold"]
    fmt = _Formatter(_summarized(arr) if summarize else arr, floating)
    return _nested(arr, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: list, indent: int) -> str:
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > PRINT_OPTIONS["linewidth"]:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(t) -> str:
    if t._value is not None:
        return f"tensor(<traced {t._value.type}>)"
    from ._ops import get_default_dtype
    prefix = "tensor("
    indent = len(prefix)
    arr = t._data
    dt = t.dtype
    suffixes = []
    if arr.size == 0:
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if dt is not get_default_dtype():
            suffixes.append(f"dtype={dt!r}")
        body = "[]"
    else:
        if dt not in (get_default_dtype(), int64, bool_):
            suffixes.append(f"dtype={dt!r}")
        body = array_str(arr, indent)
    if t._node is not None:
        suffixes.append(f"grad_fn=<{t._node.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    head = "Parameter containing:\n" if type(t).__name__ == "Parameter" else ""
    return head + _add_suffixes(prefix + body, suffixes, indent)
