"""ember.ir: types, the primitive registry, the dispatch point and the graph IR.

Importing this package never imports a backend (numpy kernels, ONNX Runtime, TVM).
"""

from . import ops  # noqa: F401  registers every primitive
from .dispatch import bind, handler
from .registry import PRIMITIVES, Primitive
from .types import DType, ShapeError, TensorType
from .graph import Graph, GraphBuilder, Node, Provenance, Value
from .printer import print_graph
from .parser import ParseError, parse
from .verify import VerifyError, verify
from .hashing import structural_hash
from .serialize import load, save

__all__ = ["PRIMITIVES", "Primitive", "DType", "ShapeError", "TensorType", "bind", "handler", "ops",
           "Graph", "GraphBuilder", "Node", "Provenance", "Value", "print_graph", "parse", "ParseError",
           "verify", "VerifyError", "structural_hash", "save", "load"]
