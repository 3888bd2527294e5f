"""The primitive op registry.

Every primitive is a ``Primitive`` registered under its name. The IR layer owns
each op's *meaning*: its type rule (shape/dtype inference with attribute
validation) and its gradient rule (a VJP written with ember primitives, so it runs
eagerly on tensors and symbolically on graph values alike). Backends keep their
own tables keyed by the same name (``ember.runtime.kernels.KERNELS``, the ONNX and
Relax lowerings), so importing ``ember.ir`` never imports a backend.

Calling a primitive (``add(a, b)``) goes through ``ember.ir.dispatch.bind``, the
single dispatch point: whoever is the current handler (eager execution, a tracer,
a graph builder) decides what the call means.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import dispatch
from .types import TensorType

# kinds of ops, used by fusion and by backends
ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
MOVEMENT = "movement"
LINALG = "linalg"
CREATION = "creation"
OTHER = "other"

TypeRule = Callable[..., TensorType]
VJPRule = Callable[..., tuple]


class Primitive:
    """One primitive op: name, type rule, gradient rule and a few flags.

    ``infer(*input_types, **attrs) -> TensorType`` validates and infers the type of
    the (single) output. ``vjp(g, inputs, out, needs, attrs) -> tuple`` returns one
    cotangent (or ``None``) per input; ``needs[i]`` says whether input ``i`` wants one.
    ``saves`` names what the VJP reads ("inputs", "output", both or neither): eager
    autograd keeps only those alive and checks only their version counters.
    """

    __slots__ = ("name", "infer", "vjp", "kind", "saves_inputs", "saves_output",
                 "nondiff_inputs", "variadic", "doc", "attr_names", "nondifferentiable", "__weakref__")

    def __init__(self, name: str, infer: TypeRule, *, kind: str = OTHER, saves: str = "",
                 nondiff_inputs: tuple[int, ...] = (), variadic: bool = False,
                 attrs: tuple[str, ...] = (), doc: str = "") -> None:
        self.name = name
        self.infer = infer
        self.vjp: Optional[VJPRule] = None
        self.kind = kind
        self.saves_inputs = "inputs" in saves
        self.saves_output = "output" in saves
        self.nondiff_inputs = nondiff_inputs
        self.variadic = variadic
        self.attr_names = attrs
        self.doc = doc
        # set by mark_nondifferentiable: the op has no gradient by nature (comparisons,
        # argmax, random draws, constants), as opposed to a VJP that is merely missing
        self.nondifferentiable = False

    def mark_nondifferentiable(self) -> "Primitive":
        """Declare that this op has no gradient (its outputs never require grad)."""
        self.nondifferentiable = True
        return self

    def def_vjp(self, rule: VJPRule) -> VJPRule:
        self.vjp = rule
        return rule

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def __call__(self, *inputs: Any, **attrs: Any):
        return dispatch.bind(self, inputs, attrs)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    if prim.name in PRIMITIVES:
        raise ValueError(f"primitive {prim.name!r} registered twice")
    PRIMITIVES[prim.name] = prim
    return prim


def primitive(name: str, infer: TypeRule, **kw) -> Primitive:
    """Create and register a primitive."""
    return register(Primitive(name, infer, **kw))


def get(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r}") from None
