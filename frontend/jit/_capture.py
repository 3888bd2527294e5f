"""Capture a module or function into a graph, and run a captured graph on tensors.

``capture`` runs the program once under a ``Tracer`` and returns a ``Capture``:
the graph plus how to feed it (where each graph input comes from) and how to use
its results (the user's output structure and the write-backs of functionalized
in-place updates and of parameter gradients). ``Capture.run`` executes a compiled
form of the graph on the current tensors and performs the write-backs.
"""

from __future__ import annotations

import inspect
import operator
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ember.ir.graph import ROLE_BUFFER, ROLE_INPUT, ROLE_PARAM, ROLE_STATE, Graph, Value
from ember.ir.types import TensorType

from .. import _state
from .._tensor import Tensor, _wrap
from ._tracer import RANDOM_OPS, Tracer
from .errors import TraceError

_SINGLE = {"t": 0}  # the output tree of a program returning one tensor


# ------------------------------------------------------------------ pytrees
def flatten(obj: Any, leaves: list) -> Any:
    """A JSON-able spec of ``obj`` (nested tuples/lists/dicts); tensors go to ``leaves``."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return {"t": len(leaves) - 1}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {"namedtuple": [type(obj).__name__, list(obj._fields), [flatten(x, leaves) for x in obj]]}
    if isinstance(obj, tuple):
        return {"tuple": [flatten(x, leaves) for x in obj]}
    if isinstance(obj, list):
        return {"list": [flatten(x, leaves) for x in obj]}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TraceError(f"dict keys of traced inputs/outputs must be str or int, got {type(k).__name__}")
        return {"dict": [[k, flatten(v, leaves)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"const": obj}
    raise TraceError(f"cannot trace a value of type {type(obj).__name__} in the inputs or outputs; use tensors, "
                     "numbers, strings, or tuples/lists/dicts of them")


def unflatten(spec: Any, leaves: list) -> Any:
    (kind, body), = spec.items()
    if kind == "t":
        return leaves[body]
    if kind == "tuple":
        return tuple(unflatten(x, leaves) for x in body)
    if kind == "list":
        return [unflatten(x, leaves) for x in body]
    if kind == "dict":
        return {k: unflatten(v, leaves) for k, v in body}
    if kind == "namedtuple":
        import collections
        name, fields, items = body
        return collections.namedtuple(name, fields)(*[unflatten(x, leaves) for x in items])
    return body


def _arg_names(fn: Callable, n: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        params = []
    names = []
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}.{i}" for i in range(n - len(names))]
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    names += [f"x{i}" for i in range(len(names), n)]
    return names[:n]


def _leaf_names(spec: Any, prefix: str, out: dict) -> None:
    (kind, body), = spec.items()
    if kind == "t":
        out[body] = prefix
    elif kind in ("tuple", "list"):
        for i, x in enumerate(body):
            _leaf_names(x, f"{prefix}.{i}", out)
    elif kind == "namedtuple":
        for f, x in zip(body[1], body[2]):
            _leaf_names(x, f"{prefix}.{f}", out)
    elif kind == "dict":
        for k, v in body:
            _leaf_names(v, f"{prefix}.{k}", out)


def _free_objects(fn: Callable) -> list[tuple[str, Any]]:
    """(name, value) of the globals and closure variables a function reads, and of its parameters' default
    values (``def step(x, y, model=model, opt=opt)`` binds them as a closure would)."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found = [(n, fn.__globals__[n]) for n in code.co_names if n in getattr(fn, "__globals__", {})]
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            found.append((name, cell.cell_contents))
        except ValueError:
            continue
    defaults = getattr(fn, "__defaults__", None) or ()
    positional = code.co_varnames[:code.co_argcount]
    found += list(zip(positional[len(positional) - len(defaults):], defaults))
    found += list((getattr(fn, "__kwdefaults__", None) or {}).items())
    found += list(getattr(fn, "__ember_objects__", ()))  # modules/optimizers passed to a compiled function
    return found


def _free_module_names(fn: Callable) -> dict[int, str]:
    """id -> qualified name (model.fc1) of the modules a function reaches through globals/closure."""
    names: dict[int, str] = {}
    for name, v in _free_objects(fn):
        if _is_module(v) and callable(getattr(v, "named_modules", None)):
            for sub, m in v.named_modules():
                names.setdefault(id(m), f"{name}.{sub}" if sub else name)
    return names


def _free_tensor_names(fn: Callable) -> dict[int, str]:
    """id -> name of tensors a function reaches through its closure or globals."""
    names: dict[int, str] = {}
    for name, v in _free_objects(fn):
        if isinstance(v, Tensor):
            names.setdefault(id(v), name)
        elif _is_module(v):  # a global model: its tensors get qualified names (model.fc1.weight)
            for pname, p in list(v.named_parameters()) + list(v.named_buffers()):
                if p is not None:
                    names.setdefault(id(p), f"{name}.{pname}")
    return names


# ------------------------------------------------------------------ module hooks
def _is_module(obj: Any) -> bool:
    return callable(getattr(obj, "named_parameters", None)) and callable(getattr(obj, "named_buffers", None))


class _ModuleStack:
    """Wraps ``nn.Module.__call__`` while tracing so nodes know which module made them."""

    def __init__(self, tracer: Tracer, root: Any, extra_names: Optional[dict] = None) -> None:
        self.tracer = tracer
        self.names: dict[int, str] = dict(extra_names or {})
        if root is not None and callable(getattr(root, "named_modules", None)):
            for name, m in root.named_modules():
                self.names.setdefault(id(m), name)
        self.cls = None

    def __enter__(self) -> "_ModuleStack":
        try:
            from ember.nn import Module
        except Exception:  # noqa: BLE001 - nn not importable: no module provenance
            return self
        self.cls, self.orig = Module, Module.__dict__.get("__call__")
        if self.orig is None:
            self.cls = None
            return self
        stack, names, orig = self.tracer.module_stack, self.names, self.orig

        def traced_call(mod, *args, **kwargs):
            name = names.get(id(mod))
            if name != "":  # the root itself adds nothing
                label = f"{name} ({type(mod).__name__})" if name else type(mod).__name__
                stack.append(label)
                try:
                    return orig(mod, *args, **kwargs)
                finally:
                    stack.pop()
            return orig(mod, *args, **kwargs)

        Module.__call__ = traced_call
        return self

    def __exit__(self, *exc) -> None:
        if self.cls is not None:
            self.cls.__call__ = self.orig


# ------------------------------------------------------------------ capture
@dataclass
class Capture:
    """A captured graph and how to feed it and use its results."""

    graph: Graph
    sources: list[tuple]  # per graph input: ("arg", i) | ("param"|"buffer", name) | ("grad", name) | ("tensor", ref)
    module: Any = None
    lifted: dict = field(default_factory=dict)  # input name -> the free tensor it stands for

    @property
    def output_tree(self) -> Any:
        return self.graph.meta.get("output_tree", {"t": 0})

    @property
    def writeback(self) -> list:
        return self.graph.meta.get("writeback", [])

    # ------------------------------------------------------------ running
    def _module_tensors(self) -> dict[str, Tensor]:
        """Qualified name -> the module's current parameters and buffers.

        Walking ``named_parameters()`` on every call costs more than running a small graph, so
        the map is cached with the dict entries it was read from (``_modules``, ``_parameters``,
        ``_buffers``) and re-validated by identity: reassigning a parameter or replacing a
        submodule is noticed on the next call."""
        m = self.module
        if m is None:
            return {}
        cached = self.__dict__.get("_mt")
        if cached is not None:
            links, out = cached
            for d, k, obj in links:
                if d.get(k) is not obj:
                    break
            else:
                return out
        links, out = _index_module(m)
        self.__dict__["_mt"] = (links, out) if links is not None else None
        return out

    def _resolve(self, src: tuple, leaves: list, named: dict) -> Optional[Tensor]:
        kind, key = src
        if kind == "arg":
            return leaves[key]
        if kind in ("param", "buffer"):
            t = named.get(key)
            if t is None:
                raise RuntimeError(f"the module no longer has a tensor named {key!r} (it was traced with one)")
            return t
        if kind == "grad":
            return self._resolve(_owner_source(self, key), leaves, named).grad
        return key()  # a weakref to a lifted free tensor

    def gather(self, leaves: list) -> tuple[list[np.ndarray], dict]:
        named = self._module_tensors()
        arrays = []
        for v, src in zip(self.graph.inputs, self.sources):
            t = self._resolve(src, leaves, named)
            if t is None:
                if src[0] == "grad":  # p.grad is None now: zeros add exactly like "no gradient yet"
                    arrays.append(np.zeros([int(d) for d in v.type.shape], dtype=v.type.dtype.np))
                    continue
                raise RuntimeError(f"graph input %{v.name} ({src[0]}) is gone (the tensor was freed)")
            if not isinstance(t, Tensor) or t._data is None:
                raise TypeError(f"graph input %{v.name} expects a concrete tensor, got {type(t).__name__}")
            arrays.append(t._data)
        return arrays, named

    def gather_state(self) -> dict[str, np.ndarray]:
        """Current arrays of every non-argument input (parameters, buffers, state), by input name."""
        named = self._module_tensors()
        out = {}
        for v, src in zip(self.graph.inputs, self.sources):
            if src[0] != "arg":
                t = self._resolve(src, [], named)
                if t is not None and t._data is not None:
                    out[v.name] = t._data
        return out

    def run(self, compiled: Callable, args: tuple, kwargs: dict) -> Any:
        leaves: list = []
        flatten((args, kwargs), leaves)
        arrays, named = self.gather(leaves)
        outs = compiled(arrays)
        return self.finish(outs, leaves, named)

    def finish(self, outs: list, leaves: list, named: dict) -> Any:
        return self._write_back(outs, lambda i: self._resolve(self.sources[i], leaves, named))

    def _write_back(self, outs: list, tensor_of: Callable[[int], Any]) -> Any:
        """Write the graph's updates back and return the user's outputs; ``tensor_of(i)`` is the tensor
        graph input ``i`` was read from (for a ``.grad`` input: its owner's ``.grad``, read now)."""
        for idx, kind, i, owner in self._writeback_plan:
            if kind == "value":
                arr = outs[idx]
                if owner is not None:  # a .grad input: the gradient as it is now
                    o = tensor_of(owner)
                    t = o.grad
                    if t is None:  # the .grad we fed as zeros was None: it is the new gradient
                        o.grad = _wrap(np.array(arr, copy=True))
                        continue
                else:
                    t = tensor_of(i)
                if arr is not t._data:
                    np.copyto(t._data, arr, casting="unsafe")
                t._version[0] += 1
            elif kind == "grad":
                t = tensor_of(i)
                arr = outs[idx]
                g = t.grad
                if g is not None and g._data is not None and g._data.shape == arr.shape and g._data.flags.writeable:
                    if arr is not g._data:  # the backend may have written it in place already
                        np.copyto(g._data, arr, casting="unsafe")
                    g._version[0] += 1
                else:
                    t.grad = _wrap(np.array(arr, copy=True))
            elif kind == "grad_clear":
                tensor_of(i).grad = None
        n_user = self.graph.meta.get("n_user_outputs", len(outs))
        user = [_wrap(a) for a in outs[:n_user]]
        tree = self.output_tree
        return user[0] if tree == _SINGLE else unflatten(tree, user)

    @property
    def _writeback_plan(self) -> list[tuple]:
        """(output index, kind, input index, owner input index for a .grad input else None) per write-back."""
        plan = self.__dict__.get("_wbp")
        if plan is None:
            plan = []
            for idx, kind, name in self.writeback:
                i = self._input_index[name]
                src = self.sources[i]
                owner = self._input_index[src[1]] if src[0] == "grad" else None
                plan.append((idx, kind, i, owner))
            self.__dict__["_wbp"] = plan
        return plan

    # ------------------------------------------------------------ fast path
    def fast_plan(self, leaves: list, named: dict) -> Optional["FastInputs"]:
        """How to read every graph input straight from the tensors it comes from, with the state each
        had now (shape, dtype, requires_grad, whether .grad exists): ``FastInputs.gather`` feeds the graph
        only while all of that is unchanged. None when some input cannot be read that way (the
        caller then keeps the full path). The module's structure must be validated separately
        (``ModuleWatch``): parameters are held here as the objects the names resolved to now."""
        items: list = []
        zero_grads: list = []
        for i, src in enumerate(self.sources):
            kind, key = src
            if kind == "arg":
                items.append((FastInputs._LEAF, key, None))
            elif kind == "grad":
                owner = self._input_index.get(key)
                if owner is None or owner >= i or items[owner][0] == FastInputs._GRAD:
                    return None
                g = self._resolve(self.sources[owner], leaves, named).grad
                if g is None:
                    items.append((FastInputs._GRAD, owner, None))
                    zero_grads.append((i, self.graph.inputs[i].type))
                elif isinstance(g, Tensor) and type(g._data) is np.ndarray and g._value is None:
                    items.append((FastInputs._GRAD, owner, (type(g), g._data.shape, g._data.dtype)))
                else:
                    return None
            else:
                try:
                    t = self._resolve(src, leaves, named)
                except RuntimeError:
                    return None
                if not isinstance(t, Tensor) or t._data is None or t._value is not None:
                    return None
                state = (type(t._data), t._data.shape, t._data.dtype, t.requires_grad, t.grad is None)
                if kind == "tensor":
                    if not isinstance(key, weakref.ref):
                        return None
                    items.append((FastInputs._REF, key, state))
                else:
                    items.append((FastInputs._HELD, t, state))
        return FastInputs(items, zero_grads)

    def finish_fast(self, outs: list, tensors: list) -> Any:
        """``finish`` with the tensors ``FastInputs.gather`` read the inputs from."""
        return self._write_back(outs, tensors.__getitem__)

    # ------------------------------------------------------------ guards
    def guards(self, minimal: bool = False) -> list:
        """What the graph assumed about the tensors it reads: shape, dtype, requires_grad and, for
        tensors that collect gradients, whether ``.grad`` existed (it decides between creating a
        gradient and accumulating into one). Computed right after capture."""
        named = self._module_tensors()
        leaves = self.__dict__.get("_example_leaves", [])
        out = []
        if minimal and not any(src[0] == "grad" for src in self.sources) and not any(
                kind != "value" for _, kind, _ in self.writeback):
            # a graph that neither reads nor writes gradients does not care whether .grad exists, and the
            # runtime checks input shapes and dtypes itself
            self.__dict__.pop("_example_leaves", None)
            return out
        for v, src in zip(self.graph.inputs, self.sources):
            if src[0] == "arg" and not leaves:
                continue
            t = self._resolve(src, leaves, named)
            out.append((src, v.name, _guard_state(t, src)))
        self.__dict__.pop("_example_leaves", None)
        return out

    def check_guards(self, guards: list, leaves: list) -> Optional[str]:
        """None when every guard holds, else a sentence saying what changed."""
        named = self._module_tensors()
        for src, name, expected in guards:
            try:
                t = self._resolve(src, leaves, named)
            except (RuntimeError, IndexError) as err:
                return str(err)
            if isinstance(expected, weakref.ref):  # an identity guard (see identity_guards)
                if t is not expected():
                    return (f"{src[0]} {name} is not the tensor the graph was traced with (a training step "
                            "updates the very parameters its optimizer holds)")
                continue
            now = _guard_state(t, src)
            if now != expected:
                return _explain_guard(name, src, expected, now)
        return None

    def identity_guards(self, tensors: set) -> list:
        """Guards that the parameters and buffers the graph reads by name are still the very objects
        it was traced with, for those in ``tensors`` (ids): a compiled training step applies its
        optimizer's update to them, which must not land on a replacement under the same name."""
        named = self._module_tensors()
        out = []
        for v, src in zip(self.graph.inputs, self.sources):
            if src[0] in ("param", "buffer"):
                t = named.get(src[1])
                if t is not None and id(t) in tensors and _weakrefable(t):
                    out.append((src, v.name, weakref.ref(t)))
        return out

    @property
    def _input_index(self) -> dict[str, int]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = self.__dict__["_idx"] = {v.name: i for i, v in enumerate(self.graph.inputs)}
        return idx


class FastInputs:
    """The graph inputs of one capture, each as where it comes from (an argument position, a module
    tensor held directly, a free tensor behind its weakref, an owner's ``.grad``) with the state it
    had when recorded (array type, shape, dtype, ``requires_grad``, whether ``.grad`` exists, not a
    tracer). ``gather`` re-checks that state by identity and equality of a few attributes, and
    returns the arrays to feed, or None when anything differs."""

    _LEAF, _HELD, _REF, _GRAD = 0, 1, 2, 3

    def __init__(self, items: list, zero_grads: list) -> None:
        self.items = tuple(items)  # (kind, leaf index | tensor | weakref | owner input index, state)
        self.zero_grads = tuple(zero_grads)  # (input index, type) of .grad inputs recorded as None

    def gather(self, leaves: list) -> Optional[tuple[list, list]]:
        arrays: list = []
        tensors: list = []  # per input, for the write-backs (None for a .grad input)
        ndarray = np.ndarray
        for kind, obj, st in self.items:
            if kind == 0:  # an argument: the caller checked its state
                t = leaves[obj]
                tensors.append(t)
                arrays.append(t._data)
                continue
            if kind == 3:  # .grad of an earlier input: (type, shape, dtype), None when it was None
                g = tensors[obj].grad
                tensors.append(None)
                if st is None:
                    if g is not None:
                        return None
                    arrays.append(None)  # filled below: zeros, like the full path
                    continue
                if type(g) is not st[0]:
                    return None
                a = g._data
                if type(a) is not ndarray or g._value is not None or a.dtype is not st[2] or a.shape != st[1]:
                    return None
                arrays.append(a)
                continue
            t = obj if kind == 1 else obj()
            if t is None:
                return None
            a = t._data
            if (type(a) is not st[0] or t._value is not None or a.dtype is not st[2] or a.shape != st[1]
                    or t.requires_grad is not st[3] or (t.grad is None) is not st[4]):
                return None
            tensors.append(t)
            arrays.append(a)
        if self.zero_grads:
            for i, ty in self.zero_grads:  # p.grad is None now: zeros add exactly like "no gradient yet"
                arrays[i] = np.zeros([int(d) for d in ty.shape], dtype=ty.dtype.np)
        return arrays, tensors


def _index_module(root: Any) -> tuple[Optional[list], dict[str, Tensor]]:
    """(links to validate, name -> tensor) for an ember ``nn.Module`` tree; links is None for
    module-like objects without ember's ``_modules``/``_parameters``/``_buffers`` dicts."""
    if not all(isinstance(getattr(root, a, None), dict) for a in ("_modules", "_parameters", "_buffers")):
        out = dict(root.named_parameters())
        out.update(root.named_buffers())
        return None, out
    links: list = []
    params: dict[str, Tensor] = {}
    buffers: dict[str, Tensor] = {}
    seen_modules: set = set()
    seen: set = set()

    def walk(m: Any, prefix: str) -> None:
        if id(m) in seen_modules:
            return
        seen_modules.add(id(m))
        for table, out in ((m._parameters, params), (m._buffers, buffers)):
            for k, t in table.items():
                links.append((table, k, t))
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    out[prefix + k] = t
        for k, c in m._modules.items():
            links.append((m._modules, k, c))
            if c is not None:
                walk(c, prefix + k + ".")

    walk(root, "")
    params.update(buffers)
    return links, params


class ModuleWatch:
    """The structure and training flags of an ember ``nn.Module`` tree, re-validated by identity.

    ``named_modules()`` (the training flags ``ember.compile`` keys on) and the name -> tensor map
    (what graph inputs read) are functions of the trees' ``_modules``/``_parameters``/``_buffers``
    dicts. ``valid()`` checks, without walking generators, that every module still holds the very
    dicts it held, that each dict has the same keys in the same order bound to the same objects,
    and that every ``training`` flag is the same object: then both are what they were when the
    watch was built. Added, removed, reordered or replaced submodules, parameters and buffers,
    ``train()``/``eval()`` and a module's ``__class__`` or ``__dict__`` reassigned all make it False."""

    __slots__ = ("modules", "types", "attrs", "owners", "empties", "tables", "training")

    @staticmethod
    def build(root: Any) -> Optional["ModuleWatch"]:
        """A watch on ``root``'s tree, or None when some module is not a plain ember ``nn.Module``
        (a custom ``named_modules``, missing registration dicts): those keep the full path."""
        try:
            from ember.nn import Module
        except Exception:  # noqa: BLE001 - nn not importable: nothing to watch
            return None
        base = Module.named_modules
        modules, seen = [], set()
        stack = [root]
        while stack:  # pre-order, first occurrence wins: the order named_modules() yields
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            if getattr(type(m), "named_modules", None) is not base or hasattr(type(m), "training"):
                return None  # a custom walk, or a class-level (maybe computed) training flag
            d = getattr(m, "__dict__", None)
            if type(d) is not dict or "training" not in d or not all(
                    isinstance(d.get(k), dict) for k in ("_modules", "_parameters", "_buffers")):
                return None
            modules.append(m)
            stack.extend(c for c in reversed(list(d["_modules"].values())) if c is not None)
        w = ModuleWatch()
        w.modules = tuple(modules)
        w.types = tuple(map(type, modules))  # the cache key names each submodule's class
        w.attrs = tuple(vars(m) for m in modules)
        # per module: its __dict__ and what it held (training flag, the three registration dicts)
        w.owners = tuple((d, d["training"], d["_modules"], d["_parameters"], d["_buffers"]) for d in w.attrs)
        tables = [d[k] for d in w.attrs for k in ("_modules", "_parameters", "_buffers")]
        w.empties = tuple(t for t in tables if not t)  # most are: checked in one any()
        w.tables = tuple((t, tuple(t), tuple(t.values())) for t in tables if t)
        w.training = tuple(bool(d["training"]) for d in w.attrs)
        return w

    def valid(self) -> bool:
        # runs on every call of a compiled function: identity checks, no generator walks
        if not all(map(operator.is_, map(vars, self.modules), self.attrs)) or not all(
                map(operator.is_, map(type, self.modules), self.types)):
            return False
        for d, training, dm, dp, db in self.owners:
            if (d.get("training") is not training or d.get("_modules") is not dm or d.get("_parameters") is not dp
                    or d.get("_buffers") is not db):
                return False
        if any(self.empties):
            return False
        for table, keys, values in self.tables:  # same keys, same order, the very same objects
            if tuple(table) != keys or not all(map(operator.is_, table.values(), values)):
                return False
        return True


def _guard_state(t: Optional[Tensor], src: tuple) -> Optional[tuple]:
    if t is None:
        return None
    shape = t._data.shape if t._data is not None else tuple(t.shape)
    if src[0] == "grad":
        return (shape, t.dtype.name)
    if src[0] == "arg":  # argument shapes are checked against the (maybe symbolic) input types
        return ("arg", bool(t.requires_grad), t.grad is None if t.requires_grad else None)
    return (shape, t.dtype.name, bool(t.requires_grad), t.grad is None if t.requires_grad else None)


def _explain_guard(name: str, src: tuple, expected, now) -> str:
    if src[0] == "grad" or expected is None or now is None:
        def state(x):
            return "None" if x is None else "set"
        return f"{name} is {state(now)} but the graph was traced with it {state(expected)}"
    if src[0] == "arg":
        return (f"argument {name}: requires_grad={now[1]}, .grad {'None' if now[2] else 'set'}; the graph was "
                f"traced with requires_grad={expected[1]}, .grad {'None' if expected[2] else 'set'}")
    if expected[:2] != now[:2]:
        return f"{src[0]} {name} is {now[1]}{list(now[0])}, the graph was traced with {expected[1]}{list(expected[0])}"
    if expected[2] != now[2]:
        return f"{src[0]} {name}: requires_grad is {now[2]}, the graph was traced with {expected[2]}"
    return (f"{src[0]} {name}: .grad is {'None' if now[3] else 'set'}, the graph was traced with it "
            f"{'None' if expected[3] else 'set'} (creating vs accumulating a gradient)")


def _owner_source(cap: Capture, grad_input_name: str) -> tuple:
    """The source of the tensor whose ``.grad`` a ("grad", owner) source reads."""
    return cap.sources[cap._input_index[grad_input_name]]


def capture(fn: Callable, args: tuple, kwargs: Optional[dict] = None, *, module: Any = None,
            symbols: Optional[dict[int, dict[int, str]]] = None, name: str = "") -> Capture:
    """Trace ``fn(*args, **kwargs)`` into a graph.

    ``module``: the ``nn.Module`` whose parameters and buffers become named graph
    inputs. ``symbols``: flat tensor-argument index -> {dim: symbol name} for
    dimensions to keep symbolic.
    """
    kwargs = dict(kwargs or {})
    if _state.tracer is not None:
        raise TraceError("ember.jit.trace/compile called while another trace is running (nested tracing is not "
                         "supported)")
    graph = Graph(name=name or getattr(fn, "__name__", "graph"))
    tracer = Tracer(graph)
    tracer.free_names = _free_tensor_names(getattr(module, "forward", fn) if module is not None else fn)
    leaves: list = []
    in_spec = flatten((args, kwargs), leaves)
    names: dict[int, str] = {}
    arg_names = _arg_names(getattr(module, "forward", fn) if module is not None else fn, len(args))
    for i, a in enumerate(in_spec["tuple"][0]["tuple"]):
        _leaf_names(a, arg_names[i], names)
    for k, v in in_spec["tuple"][1]["dict"]:
        _leaf_names(v, str(k), names)
    sources: list[tuple] = []
    symbols = symbols or {}
    try:
        _state.tracer = tracer
        for i, t in enumerate(leaves):
            shape = tuple(symbols.get(i, {}).get(d, n) for d, n in enumerate(t.shape))
            before = len(graph.inputs)
            tracer.bind(t, names.get(i, f"x{i}"), ROLE_INPUT, TensorType(t.dtype, shape))
            t._node = None  # inputs are leaves of the traced program
            if len(graph.inputs) > before:
                sources.append(("arg", i))
        owners: list[tuple[str, Tensor]] = []
        if module is not None:
            for pname, p in module.named_parameters():
                if id(p) not in tracer.bindings:
                    tracer.bind(p, pname, ROLE_PARAM)
                    sources.append(("param", pname))
                    owners.append((tracer.bindings[id(p)].name, p))
            for bname, b in module.named_buffers():
                if b is not None and id(b) not in tracer.bindings:
                    tracer.bind(b, bname, ROLE_BUFFER)
                    sources.append(("buffer", bname))
        for i, t in enumerate(leaves):
            if t.requires_grad:
                owners.append((tracer.bindings[id(t)].name, t))
        for oname, p in owners:  # existing gradients are state the program may accumulate into
            if p.grad is not None and id(p.grad) not in tracer.bindings:
                tracer.bind(p.grad, f"{oname}.grad", ROLE_STATE, grad_of=p)
                sources.append(("grad", oname))
        n_bound = len(graph.inputs)
        with _ModuleStack(tracer, module, _free_module_names(fn) if module is None else None):
            result = fn(*args, **kwargs)
        # lifted free tensors were bound on first use
        lifted = {}
        for b in list(tracer.bindings.values())[n_bound:]:
            lifted[b.name] = b.tensor
            sources.append(("tensor", weakref.ref(b.tensor) if _weakrefable(b.tensor) else (lambda t=b.tensor: t)))
        out_leaves: list = []
        out_spec = flatten(result, out_leaves)
        outputs = [tracer.value_of(t) for t in out_leaves]
        writeback = _functionalize(tracer, outputs)
    finally:
        _state.tracer = None
        tracer.restore()
    graph.outputs = outputs
    graph.meta["output_tree"] = out_spec
    graph.meta["n_user_outputs"] = len(out_leaves)
    if writeback:
        graph.meta["writeback"] = writeback
    eliminate_dead_code(graph)
    if os.environ.get("EMBER_CHECK_IR"):  # debugging aid: verify + round-trip every captured graph
        from ember.ir.testing import assert_roundtrip
        assert_roundtrip(graph)
    cap = Capture(graph, sources, module, lifted)
    cap.__dict__["_example_leaves"] = leaves
    return cap


def _weakrefable(t: Tensor) -> bool:
    try:
        weakref.ref(t)
        return True
    except TypeError:
        return False


def _functionalize(tracer: Tracer, outputs: list[Value]) -> list:
    """Outputs and write-back entries for every bound tensor the program changed."""
    wb: list = []
    bindings = list(tracer.bindings.values())
    for b in bindings:
        if b.tensor._value is not b.value:
            wb.append([len(outputs), "value", b.name])
            outputs.append(tracer.value_of(b.tensor))
    for b in bindings:
        if b.grad_of is not None:
            continue
        t, snap_grad = b.tensor, b.snapshot[3]
        g = t.grad
        if g is snap_grad:
            continue
        if g is None:
            wb.append([-1, "grad_clear", b.name])
            continue
        wb.append([len(outputs), "grad", b.name])
        outputs.append(tracer.value_of(g))
    return wb


def eliminate_dead_code(graph: Graph) -> None:
    """Drop nodes nothing reads (random draws stay: they advance the generator as eager mode does)."""
    live = {id(v) for v in graph.outputs}
    kept = []
    for n in reversed(graph.nodes):
        if id(n.output) in live or n.op in RANDOM_OPS:
            kept.append(n)
            live.update(id(v) for v in n.inputs)
    graph.nodes = kept[::-1]
