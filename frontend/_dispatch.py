"""Eager execution of primitives: run the numpy kernel, record autograd tape entries.

``apply`` is the eager handler behind ``ember.ir.dispatch.bind``. It is the hot
path of every eager op, so it does as little as possible: one kernel call, one
tensor, and a tape record only when some input requires grad. When a tracer is
active (``ember.jit``), calls are handed to it instead.
"""

from __future__ import annotations

import os
import sys
from builtins import max as builtins_max
import traceback

import numpy as np

from ember.ir import dispatch as _ir_dispatch
from ember.ir.registry import ELEMENTWISE
from ember.ir.types import ShapeError, TensorType, broadcast_shapes, fmt_shape
from ember.runtime.kernels import KERNELS

from . import _state
from ._tensor import Tensor, _wrap
from .autograd.engine import record


def apply(prim, inputs: tuple, attrs: dict):
    if _state.tracer is not None:
        return _state.tracer.apply(prim, inputs, attrs)
    kernel = KERNELS[prim.name]
    try:
        n = len(inputs)
        if n == 2:
            out = kernel(inputs[0]._data, inputs[1]._data, **attrs)
        elif n == 1:
            out = kernel(inputs[0]._data, **attrs)
        else:
            out = kernel(*[t._data for t in inputs], **attrs)
    except Exception as exc:  # noqa: BLE001 - re-raised with the op's context
        raise op_error(prim, inputs, attrs, exc) from None
    t = _wrap(out if type(out) is np.ndarray else np.asarray(out))
    if _state.grad_enabled and prim.vjp is not None:
        for x in inputs:
            if x.requires_grad:
                record(prim, inputs, attrs, t)
                break
    return t


def _ember_dirs() -> tuple[str, ...]:
    import ember.ir
    import ember.runtime
    mods = [sys.modules["ember"], ember.ir, ember.runtime]
    for name in ("ember.passes", "ember.tools"):
        if name in sys.modules:
            mods.append(sys.modules[name])
    return tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in mods)


def user_frame() -> str:
    """'file:line' of the innermost stack frame outside ember, for error messages."""
    dirs = _ember_dirs()
    for frame in reversed(traceback.extract_stack()[:-1]):
        path = os.path.abspath(frame.filename)
        if not path.startswith(dirs) and "importlib" not in path:
            return f"{frame.filename}:{frame.lineno}"
    return ""


def describe(x) -> str:
    if isinstance(x, Tensor):
        return f"{x.dtype.name}{fmt_shape(x.shape)}"
    return repr(x)


def _broadcast_problem(inputs) -> str | None:
    """PyTorch's message when operand shapes do not broadcast, else None."""
    shapes = [tuple(x.shape) for x in inputs if isinstance(x, Tensor)]
    nd = builtins_max((len(s) for s in shapes), default=0)
    for k in range(1, nd + 1):
        sizes = [(i, s[-k]) for i, s in enumerate(shapes) if len(s) >= k]
        big = [(i, d) for i, d in sizes if d != 1]
        for (i, d), (j, e) in zip(big, big[1:]):
            if d != e:
                return (f"The size of tensor {chr(97 + i)} ({d}) must match the size of tensor {chr(97 + j)} "
                        f"({e}) at non-singleton dimension {nd - k}")
    return None


def broadcast_error(name: str, inputs) -> RuntimeError:
    """Operands of ``name`` whose shapes do not broadcast."""
    detail = _broadcast_problem(inputs) or "shapes are not broadcastable"
    where = user_frame()
    return RuntimeError(f"{name}: {detail}\n  operands: {', '.join(describe(x) for x in inputs)}"
                        + (f"\n  at {where}" if where else ""))


def op_error(prim, inputs, attrs, exc: Exception) -> Exception:
    """Turn a kernel failure into an error that names the op, shapes, dtypes and user line."""
    detail = None
    types = None
    try:
        types = [x._type() for x in inputs]
        if prim.kind == ELEMENTWISE and len({t.shape for t in types}) > 1:
            # eager mode lets numpy broadcast: judge the op on broadcast operands
            detail = _broadcast_problem(inputs)
            shape = broadcast_shapes(*[t.shape for t in types]) if detail is None else None
            types = [TensorType(t.dtype, shape) for t in types] if detail is None else None
    except Exception:  # noqa: BLE001
        types = None
    if detail is None and types is not None:
        try:  # the type rule usually explains the problem best
            prim.infer(*types, **attrs)
        except ShapeError as err:
            detail = str(err)
        except Exception:  # noqa: BLE001 - fall back to the kernel's message
            detail = None
    if detail is None:
        detail = f"{exc}" if isinstance(exc, (ValueError, TypeError, IndexError)) else f"{type(exc).__name__}: {exc}"
    where = user_frame()
    shown = {k: v for k, v in attrs.items() if k not in ("value", "generator")}
    msg = (f"{prim.name}: {detail}\n  operands: {', '.join(describe(x) for x in inputs)}"
           + (f"\n  attributes: {shown}" if shown else "")
           + (f"\n  at {where}" if where else ""))
    cls = exc.__class__ if isinstance(exc, (IndexError, TypeError)) else RuntimeError
    if isinstance(exc, ShapeError):
        cls = RuntimeError
    try:
        return cls(msg)
    except Exception:  # noqa: BLE001
        return RuntimeError(msg)


_ir_dispatch.set_default_handler(apply)
sys.modules.setdefault("ember._dispatch", sys.modules[__name__])
