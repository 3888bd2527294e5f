"""ONNX for ember: per-primitive lowering, the ONNX Runtime backend, and the importer.

Importing this package registers the ``"onnxruntime"`` backend with
``ember.runtime.backend``.
"""

from ember.runtime.backend import register_backend

from .lowering import (  # noqa: F401
    DEFAULT_OPSET, IR_VERSION, MAX_OPSET, MIN_OPSET, OnnxLoweringError, graph_to_onnx,
)
from .ops import LOWERINGS  # noqa: F401
from . import ops_nn  # noqa: F401  conv / pooling lowerings
from .fused import lower_fused
from .session import OrtCompiledGraph, ProviderError, compile_onnxruntime, make_session, providers_for  # noqa: F401

LOWERINGS.setdefault("fused", lower_fused)
register_backend("onnxruntime", compile_onnxruntime)
