"""ember.ir: types, the primitive registry, the dispatch point and the graph IR.

Importing this package never imports a backend (numpy kernels, ONNX Runtime, TVM).
"""

from . import ops  # noqa: F401  registers every primitive
from .dispatch import bind, handler
from .registry import PRIMITIVES, Primitive
from .types import DType, ShapeError, TensorType

__all__ = ["PRIMITIVES", "Primitive", "DType", "ShapeError", "TensorType", "bind", "handler", "ops"]
