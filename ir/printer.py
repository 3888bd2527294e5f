"""The text form of ember's IR, meant for people first and parsed back exactly.

::

    graph mlp(%x: f32[B,784], param %fc1.weight: f32[128,784], param %fc1.bias: f32[128]) -> (%3: f32[B,128]) {
      %0: f32[784,128] = permute(%fc1.weight) {dims=(1,0)}  # fc1 (Linear) @ model.py:12
      %1: f32[B,128] = matmul(%x, %0)  # fc1 (Linear) @ model.py:12
      ...
    }

Grammar, in short (``ember.ir.parser`` reads exactly this):

- a value is ``%name``; names are the user's (``fc1.weight``) or generated numbers; a name with
  unusual characters is quoted (``%"a b"``);
- a type is ``dtype[dims]`` with dims ints or symbols (``B``; compound symbols such as ``B+2``);
- input roles other than ``input`` prefix the input (``param``, ``buffer``, ``state``);
- attribute values: ints, floats (``repr``, exact), ``true``/``false``/``none``, strings
  (``"..."``; a bare identifier is a string too, e.g. a symbol ``B``), dtypes (``f32``), tuples
  ``(a, b)``, lists ``[a, b]``, dicts ``{"k": v}``, and tensors: small ones inline
  (``tensor<f32[2]>[1.0, 2.0]``), larger ones summarized by content hash
  (``tensor<f32[10,10] sha1:0123456789ab>``) with the data kept in the graph and in saved files;
- ``# module (Class) @ file:line`` after a node is its provenance;
- a node with a subgraph (a fused group) is followed by its body, a nested ``graph``;
- ``meta {key=value, ...}`` as the first body line carries the printable part of ``Graph.meta``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import numpy as np

from .graph import ROLE_INPUT, Graph, Node, Provenance, Value
from .types import DType, TensorType

INLINE_MAX_ELEMENTS = 8  # constants up to this size are printed in full
INDENT = "  "

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIM_RE = re.compile(r"^[A-Za-z0-9_+\-*/]+$")
# bare words with a meaning of their own: they cannot be printed as bare strings
KEYWORDS = {"true", "false", "none", "inf", "nan", "tensor", "opaque"}


class MissingConstant(np.ndarray):
    """A constant whose data is not available (a graph parsed from text without its weights).

    It has the right dtype and shape (so type rules work) but no values; it prints as the
    digest it was parsed from, and running it raises a clear error.
    """

    digest: str = ""

    @staticmethod
    def make(dtype: DType, shape: tuple, digest: str) -> "MissingConstant":
        arr = np.broadcast_to(np.zeros((), dtype=dtype.np), shape).view(MissingConstant)
        arr.digest = digest
        return arr

    def __array_finalize__(self, obj) -> None:
        self.digest = getattr(obj, "digest", "")


class Opaque:
    """An attribute value the text form cannot represent, kept by its type name."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __eq__(self, other) -> bool:
        return isinstance(other, Opaque) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(self.type_name)

    def __repr__(self) -> str:
        return f"opaque<{self.type_name}>"


def array_digest(arr: np.ndarray) -> str:
    """A short content hash of an array (dtype, shape and bytes)."""
    if isinstance(arr, MissingConstant):
        return arr.digest
    h = hashlib.sha1()
    h.update(str(arr.dtype).encode())
    h.update(repr(tuple(arr.shape)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ atoms
def fmt_name(name: str) -> str:
    return "%" + (name if _NAME_RE.match(name) else json.dumps(name))


def fmt_dim(d) -> str:
    if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
        return str(int(d))
    d = str(d)
    if _DIM_RE.match(d) and not d.isdigit():
        return d
    return json.dumps(d)


def fmt_type(t: TensorType) -> str:
    return f"{t.dtype.short}[{','.join(fmt_dim(d) for d in t.shape)}]"


def fmt_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def _fmt_scalar_elem(x, dtype: DType) -> str:
    if dtype.category == 0:
        return "true" if bool(x) else "false"
    if dtype.category == 1:
        return str(int(x))
    return fmt_float(float(x))


def fmt_array(arr: np.ndarray) -> str:
    from .types import from_numpy
    dt = from_numpy(arr.dtype)
    head = f"{dt.short}[{','.join(str(int(d)) for d in arr.shape)}]"
    if not isinstance(arr, MissingConstant) and arr.size <= INLINE_MAX_ELEMENTS:
        elems = ", ".join(_fmt_scalar_elem(x, dt) for x in np.asarray(arr).reshape(-1))
        return f"tensor<{head}>[{elems}]"
    return f"tensor<{head} sha1:{array_digest(arr)}>"


def fmt_attr(v: Any) -> str:
    """One attribute value in the text form (see the module docstring)."""
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return fmt_float(float(v))
    if isinstance(v, str):
        if _IDENT_RE.match(v) and v not in KEYWORDS and not _is_dtype_word(v):
            return v
        return json.dumps(v)
    if isinstance(v, DType):
        return v.short
    if isinstance(v, tuple):
        if len(v) == 1:
            return f"({fmt_attr(v[0])},)"
        return "(" + ",".join(fmt_attr(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ",".join(fmt_attr(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {fmt_attr(x)}" for k, x in v.items()) + "}"
    if isinstance(v, np.ndarray):
        return fmt_array(v)
    if isinstance(v, Opaque):
        return f"opaque<{json.dumps(v.type_name)}>"
    return f"opaque<{json.dumps(type(v).__name__)}>"


def _is_dtype_word(w: str) -> bool:
    from .types import ALL_DTYPES
    return any(w == d.short for d in ALL_DTYPES)


def printable(v: Any) -> bool:
    """Whether ``v`` survives a print/parse round trip (used to pick ``Graph.meta`` entries)."""
    if v is None or isinstance(v, (bool, int, float, str, DType)):
        return True
    if isinstance(v, (tuple, list)):
        return all(printable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and printable(x) for k, x in v.items())
    return False


def printed_meta(graph: Graph) -> dict:
    """The part of ``graph.meta`` the text form carries: printable entries, defaults left out."""
    meta = {k: v for k, v in graph.meta.items() if _IDENT_RE.match(k) and not k.startswith("_") and printable(v)}
    if meta.get("n_user_outputs") == len(graph.outputs):
        del meta["n_user_outputs"]
        if meta.get("output_tree") == {"t": 0} and len(graph.outputs) == 1:
            del meta["output_tree"]
    return meta


def fmt_attrs(attrs: dict) -> str:
    if not attrs:
        return ""
    return "{" + ", ".join(f"{k}={fmt_attr(v)}" for k, v in attrs.items()) + "}"


def fmt_provenance(p: Provenance) -> str:
    module = p.module
    if module and (" @ " in module or "\n" in module or "\r" in module or module.startswith(('"', "@ "))
                   or module != module.strip()
                   or (not p.file and re.search(r":\d+$", module))):
        module = json.dumps(module)
    if p.file or p.line:
        loc = f"{p.file}:{p.line}"
        return f"{module} @ {loc}" if module else f"@ {loc}"
    return module


# ------------------------------------------------------------------ graphs
def fmt_input(v: Value, role: str) -> str:
    prefix = "" if role == ROLE_INPUT else f"{role} "
    return f"{prefix}{fmt_name(v.name)}: {fmt_type(v.type)}"


def fmt_node(node: Node) -> str:
    args = ", ".join(fmt_name(v.name) for v in node.inputs)
    attrs = fmt_attrs(node.attrs)
    line = f"{fmt_name(node.output.name)}: {fmt_type(node.output.type)} = {node.op}({args})"
    if attrs:
        line += " " + attrs
    prov = fmt_provenance(node.provenance)
    if prov:
        line += "  # " + prov
    return line


def print_graph(graph: Graph, indent: str = "") -> str:
    """The text form of ``graph`` (``str(graph)`` calls this)."""
    ins = [fmt_input(v, graph.input_roles.get(v.name, ROLE_INPUT)) for v in graph.inputs]
    outs = [f"{fmt_name(v.name)}: {fmt_type(v.type)}" for v in graph.outputs]
    name = graph.name if _IDENT_RE.match(graph.name or "") and graph.name not in KEYWORDS else json.dumps(graph.name)
    head = f"graph {name}({', '.join(ins)}) -> ({', '.join(outs)}) {{"
    if len(indent) + len(head) > 120 and ins:
        # one input per line keeps wide signatures (many parameters) readable
        inner = indent + INDENT * 2
        head = (f"graph {name}(\n" + ",\n".join(inner + s for s in ins) + f"\n{indent}) -> ("
                + ", ".join(outs) + ") {")
    lines = [indent + head]
    body = indent + INDENT
    meta = printed_meta(graph)
    if meta:
        lines.append(body + "meta " + fmt_attrs(meta))
    for node in graph.nodes:
        lines.append(body + fmt_node(node))
        if node.subgraph is not None:
            lines.append(print_graph(node.subgraph, body + INDENT))
    lines.append(indent + "}")
    return "\n".join(lines)
