"""ember: a PyTorch-style deep learning framework on numpy, with a graph compiler.

``import ember as torch`` runs ordinary PyTorch programs eagerly; ``ember.jit``
and ``ember.compile`` capture them into ember's IR for its passes and its ONNX
Runtime and TVM backends.
"""

from __future__ import annotations

from ember.ir.types import (  # noqa: F401  dtypes are shared with the IR
    DType as dtype, bfloat16, bool_ as bool, float16, float32, float64, int8, int16, int32, int64, uint8,
)

from . import _state  # noqa: F401
from . import _allocator  # noqa: F401
from ._tensor import Size, Tensor, device  # noqa: F401
from . import _dispatch  # noqa: F401  installs the eager handler
from . import _tensor_methods  # noqa: F401  attaches Tensor methods
from ._ops import *  # noqa: F401,F403
from ._ops import (  # noqa: F401
    abs, add, all, amax, amin, any, argmax, argmin, cat, clamp, div, exp, flatten, get_default_dtype, log, matmul,
    max, mean, min, mul, pow, prod, reshape, round, sqrt, std, sub, sum, var, where,
)
from ._creation import (  # noqa: F401
    Generator, arange, as_tensor, asarray, bernoulli, default_generator, empty, empty_like, eye, from_numpy,
    full, full_like, get_rng_state, initial_seed, linspace, logspace, manual_seed, multinomial, normal, ones,
    ones_like, rand, rand_like, randint, randint_like, randn, randn_like, randperm, scalar_tensor, seed,
    set_default_dtype, set_rng_state, tensor, zeros, zeros_like, is_nonzero,
)
from ._printing import set_printoptions  # noqa: F401
from . import _containers as return_types  # noqa: F401  torch.return_types (max, min, sort, topk)
from . import autograd  # noqa: F401
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from . import cuda  # noqa: F401
from ._ops import broadcast_shapes_ as broadcast_shapes  # noqa: F401
from ._settings import (  # noqa: F401
    are_deterministic_algorithms_enabled, get_float32_matmul_precision, get_num_interop_threads, get_num_threads,
    is_deterministic_algorithms_warn_only_enabled, set_float32_matmul_precision, set_num_interop_threads,
    set_num_threads, use_deterministic_algorithms,
)

half, float, double, long, int, short, cfloat = float16, float32, float64, int64, int32, int16, None  # noqa: A001
__version__ = "0.1.0"

FloatTensor = DoubleTensor = LongTensor = IntTensor = BoolTensor = Tensor  # isinstance checks only


class memory_format:
    """``torch.memory_format``: accepted wherever PyTorch takes one (``.to(memory_format=...)``); ember's
    kernels choose their layouts themselves."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"torch.{self._name}"


contiguous_format, channels_last, channels_last_3d, preserve_format = (
    memory_format(n) for n in ("contiguous_format", "channels_last", "channels_last_3d", "preserve_format"))


def typename(obj) -> str:
    return obj.type() if isinstance(obj, Tensor) else type(obj).__name__


def _lazy(name: str):
    import importlib
    return importlib.import_module(f"ember.{name}")


def __getattr__(name: str):
    # heavier subpackages load on first use
    if name in ("nn", "optim", "utils", "jit", "onnx", "amp", "backends", "distributions", "testing", "compiler"):
        mod = _lazy(name)
        globals()[name] = mod
        return mod
    if name in ("save", "load"):
        from . import serialization
        return getattr(serialization, name)
    if name == "_dynamo":  # torch._dynamo.reset(), as older scripts call it
        mod = _lazy("compiler")
        globals()[name] = mod
        return mod
    if name == "compile":
        from .jit import compile as _compile
        return _compile
    if name in ("autocast", "is_autocast_enabled", "get_autocast_dtype"):  # torch.autocast & co.
        from . import amp
        return getattr(amp, name)
    if name in _NN_FUNCTIONS:  # torch.softmax, torch.conv2d, ...: the nn.functional definitions
        from .nn import functional
        return getattr(functional, name)
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


_NN_FUNCTIONS = frozenset({
    "softmax", "log_softmax", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
    "max_pool2d", "avg_pool1d", "dropout", "layer_norm", "group_norm", "batch_norm", "embedding",
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "bilinear", "cosine_similarity", "hardtanh", "celu", "selu",
    "prelu", "threshold", "alpha_dropout", "instance_norm", "kl_div", "binary_cross_entropy_with_logits",
})


_allocator.tune()  # keep freed activation memory in-process (see _allocator)
