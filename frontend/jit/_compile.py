"""``ember.compile``: capture on first call, cache per input signature, run the cached graph.

The signature of a call is what a captured graph depends on: each tensor
argument's shape, dtype and ``requires_grad``, which arguments are the same
tensor, the non-tensor arguments (baked into the graph), the grad mode, the
module's training flags and the classes of its submodules. Guards re-check the
tensors the graph reads besides its arguments (parameters, buffers, free
tensors: shape, dtype, whether ``.grad`` exists).

Fast path: computing that key (a JSON spec, a ``named_modules()`` walk) and
checking every guard costs more than running a small graph. A call that finds
its entry in the cache records what those checks read (``_FastPath``); the next
call compares the same things by identity, shape and dtype (arguments, grad
mode, ``ModuleWatch`` over the module tree, ``FastInputs`` over the tensors the
graph reads) and runs the entry directly when nothing differs. Any difference,
and arguments inside containers, take the full path, which decides (and records
recompile reasons) exactly as before.

Batch sizes: with ``dynamic=None`` (default) the first call is traced with
static shapes; when a later call differs only in the leading dimension of its
tensor arguments, the program is re-traced once with that dimension symbolic
(``B``) and the symbolic graph then serves every batch size, like PyTorch's
automatic dynamic shapes. ``dynamic=True`` starts symbolic, ``dynamic=False``
always specializes. A symbolic trace that cannot be represented (an op whose
type depends on the concrete size) falls back to a static trace. Every
recompile is counted and its reason recorded (``fn.stats``,
``ember.jit.recompile_reasons()``).
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ember.ir.graph import Graph

from .. import _state
from .._tensor import Tensor, _wrap
from ._capture import Capture, _is_module, capture, flatten, unflatten
from .errors import TraceError
from .train_step import StateCreatedWhileTracing

_ALL_REASONS: list[str] = []
_SYM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_LIVE: "weakref.WeakSet[CompiledFunction]" = weakref.WeakSet()  # for reset_all


def reset_all() -> None:
    """``ember.compiler.reset()``: every live compiled function forgets its graphs."""
    for f in list(_LIVE):
        f._static.clear()
        f._symbolic.clear()
        f._with_objects.clear()
        f._fasts = []
        f._last = None
        f._gen += 1
    _ALL_REASONS.clear()


def recompile_reasons() -> list[str]:
    """Why every ``ember.compile``d function in this process recompiled, oldest first."""
    return list(_ALL_REASONS)


@dataclass
class _Entry:
    capture: Capture
    compiled: Callable
    signature: tuple
    symbolic: bool
    guards: list = field(default_factory=list)


def _leaf_sig(t: Tensor) -> tuple:
    return (tuple(t.shape), t.dtype.name, bool(t.requires_grad))


def _aliases(leaves: list) -> tuple:
    """() when every tensor argument is a distinct tensor, else the first position of each one:
    a program traced with ``f(x, x)`` reads one input for both, so ``f(x, y)`` must not reuse it."""
    if len(leaves) < 2 or len({id(t) for t in leaves}) == len(leaves):
        return ()
    first: dict = {}
    return tuple(first.setdefault(id(t), i) for i, t in enumerate(leaves))


def _describe(sig: tuple) -> str:
    shape, dtype, rg = sig
    return f"{dtype}{list(shape)}" + (" requires_grad" if rg else "")


_CONST_TYPES = (type(None), bool, int, float, str)
_MAX_FAST = 4  # recorded fast paths per compiled function (alternating shapes, train/eval...)


class _FastPath:
    """A cache hit, replayable with checks by identity, shape and dtype instead of keys and guards.

    Recorded by a call that took the full path and found ``entry`` in the cache: the state that
    call's key and guard checks read (each argument's type, shape, dtype, ``requires_grad`` and
    ``.grad``, non-tensor argument values, grad mode, the module tree's structure and training
    flags, and every tensor the graph reads besides its arguments). While all of it is unchanged
    the full path would pick ``entry`` again, so the next call runs it directly. Anything else
    (arguments in containers, custom modules, an entry found after other entries whose guards
    this state does not decide) gets no fast path."""

    __slots__ = ("entry", "args", "kw_names", "grad_mode", "autocast", "plan", "gen")

    def match_args(self, args: tuple, kwargs: dict) -> Optional[list]:
        """The tensor arguments (the flattened leaves) when every argument is as recorded, else None."""
        checks = self.args
        if kwargs or self.kw_names:  # keyword arguments: the same names in the same order
            if tuple(kwargs) != self.kw_names:
                return None
            args = args + tuple(kwargs.values())
        if len(args) != len(checks):
            return None
        leaves = []
        for a, c in zip(args, checks):
            if type(a) is not c[0]:
                return None
            if c[1]:  # a tensor: (type, True, shape, dtype, requires_grad, .grad is None)
                d = a._data
                if (d is None or a._value is not None or d.dtype is not c[3] or d.shape != c[2]
                        or a.requires_grad is not c[4] or (a.grad is None) is not c[5]):
                    return None
                leaves.append(a)
            elif (repr(a) if c[0] is float else a) != c[2]:  # a constant: floats as the cache key spells them
                return None
        if len(leaves) > 1 and len({id(t) for t in leaves}) != len(leaves):
            return None  # recorded with distinct tensors: the same one twice is another key
        return leaves


def _record_fast_path(fn: "CompiledFunction", entry: "_Entry", args: tuple, kwargs: dict, leaves: list,
                      static_key: tuple, sym_key: tuple) -> Optional[_FastPath]:
    """A ``_FastPath`` for a cache hit of the full path, or None when one would not be exact."""
    if static_key[3] != ():  # an argument passed twice
        return None
    cap = entry.capture
    if cap.module is not fn.module or static_key[1][0] != bool(_state.grad_enabled):
        return None
    checks = []
    for a in args + tuple(kwargs.values()):  # flattening order: positional, then keyword arguments
        if isinstance(a, Tensor):
            if a._data is None or a._value is not None:
                return None
            checks.append((type(a), True, a._data.shape, a._data.dtype, a.requires_grad, a.grad is None))
        elif type(a) in _CONST_TYPES:
            checks.append((type(a), False, repr(a) if type(a) is float else a))
        else:
            return None
    if fn.module is not None:
        watch = fn._watch
        if watch is False:  # not a plain ember module tree: no fast path
            return None
        if watch is None or not watch.valid():
            from ._capture import ModuleWatch
            fn._fasts = []  # recorded under another structure or training flags
            watch = ModuleWatch.build(fn.module)
            fn._watch = False if watch is None else watch
        if not watch or watch.training != static_key[1][1]:
            return None
    elif static_key[1][1] != ():
        return None
    # the entries the lookup tries before this one: their guards must be decided by the state
    # recorded here (the sources they read are among this entry's)
    static = fn._static.get(static_key, [])
    idx = next((i for i, e in enumerate(static) if e is entry), None)
    if idx is not None:
        before = static[:idx]
    else:
        sym = fn._symbolic.get(sym_key, [])
        idx = next((i for i, e in enumerate(sym) if e is entry), None)
        if idx is None:
            return None
        before = static + sym[:idx]
    if before:
        own = {_source_key(s) for s in cap.sources}
        for e in before:
            if any(s[0] != "arg" and _source_key(s) not in own for s in e.capture.sources):
                return None
    # the entry's input plan, reused while the module structure it resolved names under holds and
    # every input still has the state it recorded (then a new plan would be the same)
    cached = getattr(entry, "fast_plan", None)
    if cached is not None and cached[0] is fn._watch and cached[1].gather(leaves) is not None:
        plan = cached[1]
    else:
        plan = cap.fast_plan(leaves, cap._module_tensors())
        if plan is None:
            return None
        entry.fast_plan = (fn._watch, plan)
    fast = _FastPath()
    fast.entry, fast.args, fast.plan, fast.gen = entry, tuple(checks), plan, fn._gen
    fast.kw_names = tuple(kwargs)
    fast.grad_mode, fast.autocast = _state.grad_enabled, _state.autocast_dtype
    return fast


def _source_key(src: tuple) -> tuple:
    return ("tensor", id(src[1])) if src[0] == "tensor" else src


class CompiledFunction:
    """The callable ``ember.compile`` returns; ``.stats`` and ``.graphs`` show what it did."""

    def __init__(self, fn: Callable, backend: str = "eager", dynamic: Optional[bool] = None,
                 options: Optional[dict] = None, fullgraph: bool = False) -> None:
        self.fn = fn
        self.backend = backend
        self.dynamic = dynamic
        self.options = dict(options or {})
        self.module = fn if _is_module(fn) else getattr(fn, "__self__", None)
        if self.module is not None and not _is_module(self.module):
            self.module = None
        self._static: dict[tuple, list[_Entry]] = {}
        self._symbolic: dict[tuple, list[_Entry]] = {}
        self._last: Optional[_Entry] = None
        self._fasts: list[_FastPath] = []  # recent cache hits, replayable on cheap checks; newest first
        self._watch = None  # ModuleWatch of self.module, shared by the _fasts (False: module not watchable)
        self._gen = 0  # bumped whenever the cache tables change: older _fasts are void
        self._pending_reason: Optional[str] = None  # why the cache was emptied, for the next recompile
        self.stats: dict[str, Any] = {"calls": 0, "compiles": 0, "cache_hits": 0, "recompiles": 0,
                                      "recompile_reasons": [], "fast_calls": 0}
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)
        self._fullgraph = fullgraph
        self._with_objects: dict[tuple, CompiledFunction] = {}  # see _call_with_objects
        _LIVE.add(self)
        from . import train_step  # training steps: optimizer state, lr as an input, passes
        self._train_step = train_step.attach(self)

    # ------------------------------------------------------------ signatures
    def _context(self) -> tuple:
        """(grad mode, each module's training flag, each module's (name, class)) in named_modules order."""
        training, layout = (), ()
        if self.module is not None and callable(getattr(self.module, "named_modules", None)):
            mods = list(self.module.named_modules())
            training = tuple(bool(getattr(m, "training", False)) for _, m in mods)
            # a submodule replaced by one of another class (ReLU -> Tanh) changes the program; the
            # classes, not the objects, so the key keeps no module alive
            layout = tuple((n, type(m).__qualname__) for n, m in mods)
        return (bool(_state.grad_enabled), training, layout)

    def _keys(self, spec: Any, leaves: list) -> tuple[tuple, tuple]:
        sigs = tuple(_leaf_sig(t) for t in leaves)
        head = (json.dumps(spec, sort_keys=True, default=str), self._context())
        aliases = _aliases(leaves)
        static = head + (sigs, aliases)
        # symbolic key: leading dims erased, but which arguments share a leading size is kept
        sizes: dict = {}
        dyn = []
        for (shape, dt, rg) in sigs:
            if shape:
                dyn.append((("*", sizes.setdefault(shape[0], len(sizes))),) + shape[1:])
            else:
                dyn.append(shape)
        symbolic = head + (tuple((s, dt, rg) for s, (_, dt, rg) in zip(dyn, sigs)), aliases)
        return static, symbolic

    # ------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _state.tracer is not None:  # compiled code called inside a trace: inline it
            return self.fn(*args, **kwargs)
        if _holds_objects(args, kwargs):
            return self._call_with_objects(args, kwargs)
        self.stats["calls"] += 1
        step = self._train_step
        if step is not None and step.before_call():
            return self.fn(*args, **kwargs)  # eager warm-up: materializes lazily created optimizer state
        if self._fasts:
            grad_mode, autocast = _state.grad_enabled, _state.autocast_dtype
            for fast in self._fasts:
                if fast.grad_mode is not grad_mode or fast.autocast is not autocast:
                    continue
                leaves = fast.match_args(args, kwargs)
                if leaves is None:
                    continue
                if fast.gen != self._gen or (self._watch and not self._watch.valid()):
                    break
                entry = fast.entry
                cap = entry.capture
                got = fast.plan.gather(leaves)
                if got is None:
                    break
                self.stats["cache_hits"] += 1
                self.stats["fast_calls"] += 1
                self._last = entry
                outs = entry.compiled(got[0])
                result = cap.finish_fast(outs, got[1])
                if getattr(entry, "autograd", None) is not None:
                    result = entry.autograd.attach(cap, result, leaves, cap._module_tensors())
                if step is not None:
                    step.after_call()
                return result
        return self._full_call(args, kwargs)

    def _full_call(self, args: tuple, kwargs: dict) -> Any:
        """Flatten, key, look up (checking guards) or compile, then run: what every call did before
        the fast path, and what any call the fast path cannot vouch for still does."""
        leaves: list = []
        spec = flatten((args, kwargs), leaves)
        for t in leaves:
            if t._data is None:
                raise TraceError("a compiled function got a traced tensor; call it on concrete tensors")
        static_key, sym_key = self._keys(spec, leaves)
        entry, failed = self._lookup(self._static.get(static_key, ()), leaves)
        if entry is None and self.dynamic is not False:
            entry, failed2 = self._lookup(self._symbolic.get(sym_key, ()), leaves)
            failed = failed or failed2
        if entry is None:
            # no fast path right after a compile: tracing ran the program, so the next call
            # re-keys and records the state it actually sees
            try:
                entry = self._compile(args, kwargs, spec, leaves, static_key, sym_key, failed)
            except StateCreatedWhileTracing:  # eagerly, like the warm-up; the next call captures
                self.stats["eager_steps"] = self.stats.get("eager_steps", 0) + 1
                return self.fn(*args, **kwargs)
        else:
            self.stats["cache_hits"] += 1
            fast = _record_fast_path(self, entry, args, kwargs, leaves, static_key, sym_key)
            if fast is not None:  # newest first; one per argument signature; a few kept
                self._fasts = [fast] + [f for f in self._fasts if f.args != fast.args or f.kw_names != fast.kw_names
                                        or f.gen != fast.gen
                                        or f.grad_mode is not fast.grad_mode or f.autocast is not fast.autocast
                                        ][:_MAX_FAST - 1]
        self._last = entry
        cap = entry.capture
        arrays, named = cap.gather(leaves)
        outs = entry.compiled(arrays)
        result = cap.finish(outs, leaves, named)
        if getattr(entry, "autograd", None) is not None:
            result = entry.autograd.attach(cap, result, leaves, named)
        if self._train_step is not None:
            self._train_step.after_call()
        return result

    def _lookup(self, entries, leaves) -> tuple[Optional[_Entry], Optional[str]]:
        failed = None
        for e in entries:
            why = e.capture.check_guards(e.guards, leaves)
            if why is None:
                return e, None
            failed = why
        return None, failed

    def _compile(self, args, kwargs, spec, leaves, static_key, sym_key, guard_failure) -> _Entry:
        self._gen += 1  # the lookup order changes: recorded fast paths may no longer be what it picks
        self._fasts = []
        sig = static_key
        reason = None
        if self._last is not None or guard_failure:
            reason = guard_failure or _diff(self._last.signature if self._last else None, sig)
        pending, self._pending_reason = self._pending_reason, None
        if pending is not None and reason is not None:  # the cache was emptied (train_step): say why first
            reason = pending if reason == "signature changed" else f"{pending}; {reason}"
        want_symbolic = bool(self.dynamic) or (
            self.dynamic is None and self._last is not None
            and _only_leading_dims_differ(self._last.signature, sig))
        entry = None
        if want_symbolic:
            from . import symbols_for
            try:
                cap = capture(self.fn, args, kwargs, module=self.module, symbols=symbols_for(args, kwargs, True),
                              name=self.__name__)
                _check_symbolic(cap.graph)
                entry = _Entry(cap, self._backend_compile(cap.graph), sig, True)
                self._symbolic.setdefault(sym_key, []).append(entry)
            except StateCreatedWhileTracing:
                raise
            except Exception as err:  # noqa: BLE001 - a symbolic trace may fail where a static one works
                note = f"symbolic batch dimension not possible ({type(err).__name__}: {str(err).splitlines()[0]}); " \
                       "specialized to static shapes"
                reason = f"{reason}; {note}" if reason else note
                entry = None
        if entry is None:
            cap = capture(self.fn, args, kwargs, module=self.module, name=self.__name__)
            entry = _Entry(cap, self._backend_compile(cap.graph), sig, False)
            self._static.setdefault(static_key, []).append(entry)
        entry.guards = entry.capture.guards()
        if self._train_step is not None:
            entry.guards += entry.capture.identity_guards(self._train_step.updated_tensors())
        from .partitioned import attach_backward  # outputs differentiated outside: compiled backward
        attach_backward(self, entry, leaves)
        self.stats["compiles"] += 1
        if reason is not None:
            self.stats["recompiles"] += 1
            msg = f"{self.__name__}: {reason}"
            self.stats["recompile_reasons"].append(msg)
            _ALL_REASONS.append(msg)
        return entry

    def _backend_compile(self, graph: Graph) -> Callable:
        from ember.runtime.backend import compile_graph

        from .train_step import optimize_for_backend
        graph, options = optimize_for_backend(graph, self.options)
        return compile_graph(graph, self.backend, options)

    def _call_with_objects(self, args: tuple, kwargs: dict) -> Any:
        """``step(model, opt, x, y)``: modules and optimizers passed as arguments are bound like closure
        variables of a function of the remaining arguments, compiled once per set of those objects (as
        torch.compile guards on them); ``.stats`` and ``.graph`` then show that compilation."""
        pos = {i: a for i, a in enumerate(args) if _is_object(a)}
        kw = {k: v for k, v in kwargs.items() if _is_object(v)}
        key = tuple((i, id(a)) for i, a in pos.items()) + tuple((k, id(v)) for k, v in sorted(kw.items()))
        inner = self._with_objects.get(key)
        if inner is None:
            fn = self.fn
            names = _parameter_names(fn)

            def bound(*rest: Any, **rest_kw: Any) -> Any:
                it = iter(rest)
                full = [pos[i] if i in pos else next(it) for i in range(len(pos) + len(rest))]
                return fn(*full, **rest_kw, **kw)
            bound.__name__ = self.__name__
            bound.__ember_objects__ = ([(names[i] if i < len(names) else f"arg{i}", a) for i, a in pos.items()]
                                       + list(kw.items()))
            inner = CompiledFunction(bound, backend=self.backend, dynamic=self.dynamic, options=self.options,
                                     fullgraph=self._fullgraph)
            self._with_objects[key] = inner
        out = inner(*[a for i, a in enumerate(args) if i not in pos],
                    **{k: v for k, v in kwargs.items() if k not in kw})
        self.stats, self._last = inner.stats, inner._last
        return out

    # ------------------------------------------------------------ introspection
    @property
    def graphs(self) -> list[Graph]:
        """Every graph captured so far (static and symbolic)."""
        out = []
        for table in (self._static, self._symbolic):
            for entries in table.values():
                out.extend(e.capture.graph for e in entries)
        return out

    @property
    def graph(self) -> Optional[Graph]:
        """The graph the most recent call ran."""
        return self._last.capture.graph if self._last is not None else None

    def __repr__(self) -> str:
        return f"<ember.compile({self.__name__}, backend={self.backend!r})>"


def _only_leading_dims_differ(a: tuple, b: tuple) -> bool:
    if a[:2] != b[:2] or a[3:] != b[3:] or len(a[2]) != len(b[2]):
        return False
    differs = False
    for (sa, da, ra), (sb, db, rb) in zip(a[2], b[2]):
        if da != db or ra != rb or len(sa) != len(sb) or sa[1:] != sb[1:]:
            return False
        differs = differs or sa[:1] != sb[:1]
    return differs


def _diff(old: Optional[tuple], new: tuple) -> str:
    if old is None:
        return "first call"
    if old[0] != new[0]:
        (a_args, a_kw), (b_args, b_kw) = json.loads(old[0])["tuple"], json.loads(new[0])["tuple"]
        return _spec_diff(a_args, b_args, "args") if not _same(a_args, b_args) else _spec_diff(a_kw, b_kw, "kwargs")
    if old[1][0] != new[1][0]:
        return f"grad mode changed to {'enabled' if new[1][0] else 'disabled'}"
    if old[1][2] != new[1][2]:
        return _layout_diff(old[1][2], new[1][2])
    if old[1][1] != new[1][1]:
        return "a module's training mode changed (train()/eval())"
    if len(old[2]) != len(new[2]):
        return f"number of tensor arguments changed from {len(old[2])} to {len(new[2])}"
    parts = []
    for i, (a, b) in enumerate(zip(old[2], new[2])):
        if a != b:
            what = "shape" if a[0] != b[0] else "dtype" if a[1] != b[1] else "requires_grad"
            parts.append(f"tensor argument {i}: {what} changed from {_describe(a)} to {_describe(b)}")
    if not parts and old[3] != new[3]:
        def shared(al):
            groups: dict = {}
            for i, f in enumerate(al):
                groups.setdefault(f, []).append(i)
            return ", ".join("/".join(map(str, g)) for g in groups.values() if len(g) > 1) or "none"
        parts.append(f"tensor arguments passed as the same tensor changed from {shared(old[3])} to {shared(new[3])}")
    return "; ".join(parts) or "signature changed"


def _layout_diff(old: tuple, new: tuple) -> str:
    a, b = dict(old), dict(new)
    changes = [f"{n or 'the module'}: {a[n]} -> {b[n]}" for n in b if n in a and a[n] != b[n]]
    changes += [f"{n} added" for n in b if n not in a] + [f"{n} removed" for n in a if n not in b]
    return f"the module's submodules changed ({'; '.join(changes) or 'reordered'})"


def _spec_diff(old: Any, new: Any, path: str = "arguments") -> str:
    """Where two flattened argument structures first differ, in words."""
    if isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys() and len(old) == 1:
        (kind, a), (_, b) = next(iter(old.items())), next(iter(new.items()))
        if kind == "const":
            return f"non-tensor value {path} changed from {a!r} to {b!r}"
        if kind in ("tuple", "list") and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                if not _same(x, y):
                    return _spec_diff(x, y, f"{path}[{i}]")
        if kind == "dict" and [k for k, _ in a] == [k for k, _ in b]:
            for (k, x), (_, y) in zip(a, b):
                if not _same(x, y):
                    return _spec_diff(x, y, f"{path}[{k!r}]")
    return f"the structure of {path} changed"


def _same(a: Any, b: Any) -> bool:
    """Equal as the cache key spells them (``==`` would call 3 and 3.0, or 0.0 and -0.0, the same)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _check_symbolic(graph: Graph) -> None:
    """Every symbolic dimension of every value must follow from the input symbols."""
    from ember.runtime.interpreter import graph_symbols
    syms = graph_symbols(graph)

    def ok(d) -> bool:
        return isinstance(d, int) or all(n in syms for n in _SYM_RE.findall(d))

    for n in graph.nodes:
        for d in n.output.type.shape:
            if not ok(d):
                raise TraceError(
                    f"value %{n.output.name} = {n.op}(...) has dimension {d!r}, which the symbolic input dimensions "
                    f"({', '.join(sorted(syms)) or 'none'}) do not determine: the program computed a size with "
                    "Python arithmetic on a symbolic shape (x.shape[0] * 2). Use -1 in view/reshape, or trace "
                    "with static shapes (dynamic=False)")


class GraphFunction:
    """A loaded graph as a callable on tensors: arguments feed the ``input`` inputs, weights the rest."""

    def __init__(self, graph: Graph, weights: dict, backend: str = "eager") -> None:
        from ember.runtime.backend import compile_graph
        self.graph = graph
        self.weights = dict(weights)
        self._compiled = compile_graph(graph, backend, {})

    def __call__(self, *args: Any) -> Any:
        leaves: list = []
        flatten(args, leaves)
        feed, k = [], 0
        for v in self.graph.inputs:
            if self.graph.input_roles.get(v.name, "input") == "input":
                if k >= len(leaves):
                    raise TypeError(f"graph {self.graph.name} needs more tensor arguments (missing %{v.name})")
                feed.append(leaves[k]._data)
                k += 1
            else:
                w = self.weights.get(v.name)
                if w is None:
                    raise RuntimeError(f"no saved weight for graph input %{v.name}")
                feed.append(w)
        outs = self._compiled(feed)
        n_user = self.graph.meta.get("n_user_outputs", len(outs))
        tree = self.graph.meta.get("output_tree")
        user = [_wrap(np.asarray(a)) for a in outs[:n_user]]
        return unflatten(tree, user) if tree else (user[0] if len(user) == 1 else tuple(user))


_OBJECT_TYPES: tuple = ()


def _is_object(a: Any) -> bool:
    """A module or an optimizer: an argument a compiled function binds by identity, not by value."""
    global _OBJECT_TYPES
    if not _OBJECT_TYPES:
        from ..nn import Module
        from ..optim.optimizer import Optimizer
        _OBJECT_TYPES = (Module, Optimizer)
    return isinstance(a, _OBJECT_TYPES)


def _holds_objects(args: tuple, kwargs: dict) -> bool:
    return any(_is_object(a) for a in args) or (bool(kwargs) and any(_is_object(v) for v in kwargs.values()))


def _parameter_names(fn: Callable) -> list[str]:
    import inspect
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def compile(model: Optional[Callable] = None, *, fullgraph: bool = False, dynamic: Optional[bool] = None,  # noqa: A001
            backend: str = "eager", mode: Optional[str] = None, options: Optional[dict] = None,
            disable: bool = False) -> Any:
    """``torch.compile``: capture ``model`` on first call and run it compiled on ``backend``.

    Usable as ``ember.compile(fn)`` or as a decorator ``@ember.compile(backend="eager")``.
    """
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    if disable:
        return model
    backend = _BACKEND_ALIASES.get(backend, backend)
    compiled = CompiledFunction(model, backend=backend, dynamic=dynamic, options=options, fullgraph=fullgraph)
    from ..nn.modules.module import Module
    if isinstance(model, Module):  # a module stays a module (parameters(), train(), state_dict(), ...)
        from ._optimized_module import OptimizedModule
        return OptimizedModule(model, compiled)
    return compiled


# PyTorch's backend names, so `import ember as torch` programs run unchanged (on the numpy interpreter)
_BACKEND_ALIASES = {"inductor": "eager", "aot_eager": "eager", "cudagraphs": "eager"}
