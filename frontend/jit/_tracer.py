"""The tracer: the dispatch context that turns primitive calls into graph nodes.

While a trace runs, ``ember._state.tracer`` is a ``Tracer`` and every primitive
call (eager ``apply``) lands in ``Tracer.apply``, which appends a type-checked
node to the graph and returns a *tracer tensor* (``_data is None``, ``_value`` is
the graph value). Tracing is abstract: only types flow, never data.

Concrete tensors the program touches are handled by their origin:
- tensors the caller hands over (inputs, a module's parameters and buffers, the
  ``.grad`` of parameters) are *bound*: their ``_value`` is set to a graph input
  for the duration of the trace and restored afterwards;
- other tensors that require grad (a global weight) are lifted to inputs the same
  way, so gradients and updates reach them;
- any other concrete tensor becomes a ``constant`` node (like ``torch.jit.trace``).

In-place updates (``x.add_()``, BatchNorm running stats, ``p -= lr * p.grad``)
are functionalized: ``assign`` rebinds the tensor to the new value (through
views: a write into a view updates its base and every other view of that base),
and at the end every bound tensor whose value changed becomes an extra output
that the runtime writes back.
"""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ember.ir import ops as P
from ember.ir.graph import ROLE_PARAM, ROLE_STATE, Graph, Provenance, Value
from ember.ir.printer import fmt_type
from ember.ir.types import ShapeError, TensorType

from .. import _state
from .._tensor import Tensor, _wrap
from ..autograd.engine import record
from ..autograd.engine import run_backward as _run_backward
from .errors import TraceError

_RUN_BACKWARD_CODE = _run_backward.__code__
RANDOM_OPS = frozenset({"uniform", "normal", "randint"})
# view-producing movement ops whose writes can be propagated back to their base
_VIEW_OPS = frozenset({"reshape", "permute", "slice", "broadcast_to"})


@dataclass
class Binding:
    """A concrete tensor standing in for a graph input during a trace."""

    tensor: Tensor
    value: Value
    role: str
    name: str
    snapshot: tuple
    grad_of: Optional[Tensor] = None  # set when this input is the .grad of a parameter


def _new_tracer_tensor(value: Value, requires_grad: bool = False) -> Tensor:
    """A tensor with no data whose meaning is the graph value ``value``."""
    t = _wrap(None, requires_grad)
    t._value = value
    return t


def _ember_dirs() -> tuple[str, ...]:
    from .._dispatch import _ember_dirs as dirs
    return dirs()


class Tracer:
    """Records primitive calls on tracer tensors into ``self.graph``."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.keep: list[Tensor] = []  # tracer tensors stay alive: the tape refers to them weakly
        self.bindings: dict[int, Binding] = {}
        self.constants: dict[int, tuple[Tensor, Value]] = {}
        self.own: set[int] = set()
        self.views: dict[int, tuple[Tensor, str, dict]] = {}  # id(view) -> (base, op, attrs)
        self.children: dict[int, list] = {}  # id(base) -> weakrefs to its views
        self.module_stack: list[str] = []
        self.free_names: dict[int, str] = {}  # id(tensor) -> a name the user gave it (closure / global)
        self._dirs = _ember_dirs()
        self.tape_modules: dict[int, str] = {}  # id(tape node) -> module of the forward op
        self._lifted = 0

    # ------------------------------------------------------------ binding
    def bind(self, t: Tensor, name: str, role: str, type_: Optional[TensorType] = None,
             grad_of: Optional[Tensor] = None) -> Value:
        """Make the concrete tensor ``t`` stand for a new graph input while tracing."""
        b = self.bindings.get(id(t))
        if b is not None:
            return b.value
        v = self.graph.add_input(type_ or t._type(), name, role)
        self.own.add(id(v))
        snap = (t._value, t._node, t.requires_grad, t.grad, t._version[0], t._data)
        self.bindings[id(t)] = Binding(t, v, role, v.name, snap, grad_of)
        t._value = v
        return v

    def restore(self) -> None:
        """Give every bound tensor back its concrete identity (after the trace)."""
        for b in self.bindings.values():
            t = b.tensor
            t._value, t._node, t.requires_grad, t.grad, t._version[0], t._data = b.snapshot

    def value_of(self, t: Any) -> Value:
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a tensor, got {type(t).__name__}")
        v = t._value
        if v is not None:
            if id(v) not in self.own:
                raise TraceError("a tensor from another trace was used here (a traced tensor leaked out of a "
                                 f"previous trace, e.g. stored in a global) at {self.where()}")
            return v
        # A free concrete tensor (a global weight, an optimizer's momentum buffer, a tensor made from
        # Python data): lift it to a graph input fed with its current data on every call. Baking it in
        # as a constant would go stale when the program (or the user) updates it later.
        name = self.free_names.get(id(t)) or f"captured{self._lifted}"
        self._lifted += 1
        return self.bind(t, name, ROLE_PARAM if t.requires_grad else ROLE_STATE)

    # ------------------------------------------------------------ provenance
    def where(self) -> str:
        """'file:line' of the innermost frame outside ember."""
        f = sys._getframe(1)
        while f is not None:
            path = f.f_code.co_filename
            if not (os.path.abspath(path).startswith(self._dirs) or "importlib" in path or path.startswith("<frozen")):
                return f"{_short(path)}:{f.f_lineno}"
            f = f.f_back
        return ""

    def provenance(self) -> Provenance:
        module = self.module_stack[-1] if self.module_stack else ""
        loc = ""
        f = sys._getframe(1)
        while f is not None:
            code = f.f_code
            path = code.co_filename
            if code is _RUN_BACKWARD_CODE:
                # a gradient rule is running: label its nodes with the forward op's module
                fwd = self.tape_modules.get(id(f.f_locals.get("node")), "")
                module = f"backward of {fwd}" if fwd else "backward"
            elif not (os.path.abspath(path).startswith(self._dirs) or "importlib" in path
                      or path.startswith("<frozen")):
                loc = f"{_short(path)}:{f.f_lineno}"
                break
            f = f.f_back
        file, _, line = loc.rpartition(":")
        return Provenance(module, file, int(line) if line else 0)

    # ------------------------------------------------------------ dispatch protocol
    def apply(self, prim, inputs: tuple, attrs: dict) -> Tensor:
        vals = [self.value_of(x) for x in inputs]
        prov = self.provenance()
        try:
            out = self.graph.add_node(prim.name, vals, attrs, provenance=prov)
        except ShapeError as err:
            operands = ", ".join(fmt_type(v.type) for v in vals)
            raise RuntimeError(f"{err}\n  operands: {operands}\n  at {self.where()}") from None
        self.own.add(id(out))
        t = _new_tracer_tensor(out)
        self.keep.append(t)
        if _state.grad_enabled and prim.vjp is not None:
            for x in inputs:
                if x.requires_grad:
                    record(prim, inputs, attrs, t)
                    if not prov.module.startswith("backward"):  # name the forward op for its gradient
                        self.tape_modules[id(t._node)] = prov.module or (
                            f"{prov.file}:{prov.line}" if prov.file else "")
                    break
        if prim.name in _VIEW_OPS and len(inputs) == 1:
            self._note_view(t, inputs[0], prim.name, attrs)
        return t

    def _note_view(self, view: Tensor, base: Tensor, op: str, attrs: dict) -> None:
        self.views[id(view)] = (base, op, attrs)
        self.children.setdefault(id(base), []).append(weakref.ref(view))

    def detach(self, t: Tensor) -> Tensor:
        d = _new_tracer_tensor(self.value_of(t))
        self.keep.append(d)
        self._note_view(d, t, "detach", {})  # .data / .detach() share storage in eager mode
        return d

    def concretize(self, t: Tensor, what: str) -> None:
        hint = {
            "numpy()": "convert the result after the traced function returns",
            "tolist()": "convert the result after the traced function returns",
        }.get(what, "use tensor operations instead (e.g. ember.where(cond, a, b) for an if/else on values, "
                    "masks instead of data-dependent indexing), pass the value in as a Python number, or run "
                    "this part eagerly outside the traced function")
        raise TraceError(
            f"{what} on a traced tensor ({fmt_type(t._value.type)}) at {self.where()}: while tracing, tensors "
            "carry only a type, no data, so Python control flow or conversions that depend on a tensor's value "
            f"cannot be captured in a graph (the branch taken would be silently frozen). To fix: {hint}.")

    # ------------------------------------------------------------ in-place updates
    def set_data(self, t: Tensor, new: Tensor) -> None:
        """``t.data = new``: a storage swap behind autograd's back (allowed on leaves)."""
        self.assign(t, new, check_leaf=False)

    def assign(self, t: Tensor, new: Tensor, check_leaf: bool = True) -> None:
        """``t`` now holds ``new`` (an in-place op on a traced or bound tensor)."""
        if t._value is None:  # a free concrete tensor mutated inside the trace: lift it
            self.value_of(t)
        if new._value is None:
            self.value_of(new)
        if check_leaf and _state.grad_enabled and t.requires_grad and t._node is None and id(t) in self.bindings:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        new = self._conform(t, new)
        self._set(t, new)
        # a write into a view writes its base (and so every other view of that base)
        child, cur = t, new
        while id(child) in self.views:
            base, op, attrs = self.views[id(child)]
            cur = self._unview(base, op, attrs, cur)
            self._set(base, cur)
            child = base
        self._replay_views(child, skip=t)

    def _conform(self, t: Tensor, new: Tensor) -> Tensor:
        if tuple(new.shape) != tuple(t.shape):
            try:
                new = P.broadcast_to(new, shape=tuple(t.shape))
            except Exception:  # noqa: BLE001
                raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                                   f"{list(new.shape)} (at {self.where()})") from None
        if new.dtype is not t.dtype:
            if new.dtype.category > t.dtype.category:
                raise RuntimeError(f"result type {new.dtype.name.capitalize()} can't be cast to the desired output "
                                   f"type {t.dtype.name.capitalize()}")
            new = P.cast(new, dtype=t.dtype)
        return new

    def _set(self, t: Tensor, new: Tensor) -> None:
        t._value = new._value
        if new.requires_grad and _state.grad_enabled:
            t._node = new._node
            t.requires_grad = True
        t._version[0] += 1

    def _unview(self, base: Tensor, op: str, attrs: dict, new_view: Tensor) -> Tensor:
        """The new value of ``base`` after its view (``op(base)``) became ``new_view``."""
        with _state_grad(False if not new_view.requires_grad else _state.grad_enabled):
            if op == "detach":
                return new_view
            if op == "reshape":
                return P.reshape(new_view, shape=tuple(base.shape))
            if op == "permute":
                dims = attrs["dims"]
                inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
                return P.permute(new_view, dims=inverse)
            if op == "slice" and all(s == 1 for s in attrs["steps"]):
                shape = tuple(base.shape)
                pads = tuple((a, d - b) for a, b, d in zip(attrs["starts"], attrs["stops"], shape))
                if not all(isinstance(p, int) for pair in pads for p in pair):
                    raise TraceError(f"in-place update of a slice of a symbolic dimension at {self.where()}")
                placed = P.pad(new_view, pads=pads, value=0)
                mask = np.zeros([int(d) for d in shape], dtype=bool)
                mask[tuple(slice(a, b) for a, b in zip(attrs["starts"], attrs["stops"]))] = True
                m = self.graph.add_node("constant", (), {"value": mask}, provenance=self.provenance())
                self.own.add(id(m))
                mt = _new_tracer_tensor(m)
                self.keep.append(mt)
                return P.where(mt, placed, base)
        raise TraceError(f"an in-place update of a {op} view (a strided or expanded view) cannot be captured "
                         f"at {self.where()}; clone() the view first or use an out-of-place op")

    def _replay_views(self, base: Tensor, skip: Tensor) -> None:
        """Re-derive every live view of ``base`` from its new value (views alias their base)."""
        for ref in list(self.children.get(id(base), ())):
            v = ref()
            if v is None or v is skip:
                continue
            _, op, attrs = self.views[id(v)]
            if op == "detach":
                fresh = base._value
            else:
                fresh = self.graph.add_node(op, [base._value], attrs, provenance=self.provenance())
                self.own.add(id(fresh))
            v._value = fresh
            v._version[0] += 1
            self._replay_views(v, skip)


class _state_grad:  # noqa: N801 - a tiny context manager
    def __init__(self, mode: bool) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self.prev = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __exit__(self, *exc) -> None:
        _state.grad_enabled = self.prev


def _short(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
