"""``autocast``: run selected ops in a lower precision, PyTorch's per-op policy.

The policy is a table from op category to a casting rule; op entry points call
``cast_inputs(category, *tensors)`` (via the one-line hook ``_state.autocast_hook``)
only while an autocast region is active, so the cost outside autocast is one
attribute read. Categories:

- ``"lower"``: matmul, linear, conv (and transposed conv) run in the autocast dtype
  (bfloat16 on the CPU by default, float16 on CUDA), as PyTorch's lower-precision list;
- ``"fp32"``: softmax/log_softmax, layer/group/batch norm, losses and sum/mean
  reductions run in float32 when handed lower-precision inputs;
- ``"promote"``: ops mixing dtypes run in the widest floating dtype among their inputs.

Float64 tensors are never cast (as PyTorch). Casts of leaf tensors (parameters) are
cached within the outermost autocast region, so a weight is cast once per forward.
"""

from __future__ import annotations

import functools
import warnings


from ember.ir.types import DType, bfloat16, float16, float32, float64

from .. import _state
from .._tensor import Tensor

__all__ = ["autocast", "cast_inputs", "POLICY", "is_autocast_available", "custom_fwd", "custom_bwd"]

# op name -> category; documents which entry points carry a hook (see the module docstring)
POLICY: dict[str, str] = {
    **dict.fromkeys(("matmul", "mm", "bmm", "linear", "conv1d", "conv2d", "conv_transpose1d",
                     "conv_transpose2d", "addmm", "baddbmm"), "lower"),
    **dict.fromkeys(("softmax", "log_softmax", "layer_norm", "group_norm", "batch_norm", "cross_entropy",
                     "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                     "binary_cross_entropy_with_logits", "kl_div", "sum", "mean"), "fp32"),
    **dict.fromkeys(("cat", "stack", "addcmul", "addcdiv"), "promote"),
}

_DEFAULT_DTYPE = {"cpu": bfloat16, "cuda": float16}
_SUPPORTED = {"cpu": (bfloat16, float16), "cuda": (bfloat16, float16)}

# per-device settings, as torch.get_autocast_dtype / is_autocast_enabled report them
_enabled: dict[str, bool] = {"cpu": False, "cuda": False}
_dtype: dict[str, DType] = dict(_DEFAULT_DTYPE)
_cache: dict[int, tuple[Tensor, Tensor]] = {}
_cache_enabled = [True]
_depth = [0]


def is_autocast_available(device_type: str) -> bool:
    return device_type in ("cpu", "cuda")


def is_autocast_enabled(device_type: str | None = None) -> bool:
    return _enabled.get(device_type or "cuda", False)


def get_autocast_dtype(device_type: str) -> DType:
    return _dtype[device_type]


def _cast(t, dtype: DType):
    if t.dtype is dtype:
        return t
    cacheable = _cache_enabled[0] and t.requires_grad and t._node is None and _state.tracer is None
    if cacheable:
        hit = _cache.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
    from .._ops import cast
    out = cast(t, dtype)
    if cacheable:
        _cache[id(t)] = (t, out)
    return out


def cast_inputs(category: str, *tensors):
    """The autocast policy applied to one op's inputs: returns them (as a tuple) cast per ``category``."""
    low = _state.autocast_dtype
    if low is None:
        return tensors
    if category == "lower":
        return tuple(_cast(t, low) if isinstance(t, Tensor) and t.dtype.is_floating_point and t.dtype is not float64
                     else t for t in tensors)
    if category == "fp32":
        return tuple(_cast(t, float32) if isinstance(t, Tensor) and t.dtype in (float16, bfloat16) else t
                     for t in tensors)
    if category == "promote":
        floats = [t.dtype for t in tensors if isinstance(t, Tensor) and t.dtype.is_floating_point]
        if not floats:
            return tensors
        widest = max(floats, key=lambda d: (d.itemsize, d is not bfloat16))
        return tuple(_cast(t, widest) if isinstance(t, Tensor) and t.dtype.is_floating_point else t for t in tensors)
    raise ValueError(f"autocast: unknown op category {category!r}; expected 'lower', 'fp32' or 'promote'")


_state.autocast_hook = cast_inputs


def _active_dtype() -> DType | None:
    """The dtype eager ops cast to: only the CPU runs eagerly, so only CPU autocast casts."""
    return _dtype["cpu"] if _enabled["cpu"] else None


class autocast:  # noqa: N801 - PyTorch's name
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``: context manager and decorator."""

    def __init__(self, device_type: str, dtype: DType | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in ("cpu", "cuda"):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device = device_type
        self.fast_dtype = _dtype[device_type] if dtype is None else dtype
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if self._enabled and device_type == "cuda":
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("User provided device_type of 'cuda', but CUDA is not available. Disabling",
                              stacklevel=2)
                self._enabled = False
        if self._enabled and self.fast_dtype not in _SUPPORTED[device_type]:
            supported = ", ".join(f"ember.{d.name}" for d in _SUPPORTED[device_type])
            warnings.warn(f"In {device_type.upper()} autocast, but the target dtype is not supported. Disabling "
                          f"autocast.\n{device_type.upper()} Autocast only supports dtype of {supported} currently.",
                          stacklevel=2)
            self._enabled = False

    def __enter__(self):
        self._prev = (_enabled[self.device], _dtype[self.device], _cache_enabled[0], _state.autocast_dtype)
        _enabled[self.device] = self._enabled
        _dtype[self.device] = self.fast_dtype
        _cache_enabled[0] = self._cache_enabled
        _state.autocast_dtype = _active_dtype()
        _depth[0] += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        _depth[0] -= 1
        if _depth[0] == 0:
            _cache.clear()
        _enabled[self.device], _dtype[self.device], _cache_enabled[0], _state.autocast_dtype = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return fn(*args, **kwargs)
        return wrapper


def custom_fwd(fwd=None, *, device_type: str = "cpu", cast_inputs: DType | None = None):
    """Decorator for a custom autograd Function's forward (``torch.amp.custom_fwd``)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def wrapper(*args, **kwargs):
        if cast_inputs is None or not _enabled.get(device_type, False):
            return fwd(*args, **kwargs)
        args = tuple(_cast(a, cast_inputs) if isinstance(a, Tensor) and a.dtype.is_floating_point else a
                     for a in args)
        with autocast(device_type, enabled=False):
            return fwd(*args, **kwargs)
    return wrapper


def custom_bwd(bwd=None, *, device_type: str = "cpu"):
    """Decorator for a custom autograd Function's backward (``torch.amp.custom_bwd``)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd


