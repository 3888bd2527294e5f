"""Whole training steps under ``ember.compile``: optimizer state, learning rates and passes.

``ember.compile`` around a function that calls ``optimizer.zero_grad()``, runs the
model and the loss, calls ``loss.backward()`` and ``optimizer.step()`` captures all
of it into one graph (the tracer functionalizes the in-place updates and writes
parameters, gradients and optimizer state back after each call). This module
adds what a training step needs on top of plain capture; ``CompiledFunction``
attaches it when the function reaches an ``Optimizer`` (through its closure or
globals), or when given ``optimizers=`` explicitly (``options={"optimizers": [...]}``).

Design choices (and why):

- **backward**: ``loss.backward()`` on a traced loss runs the *eager tape* on tracer
  tensors (the tracer records tape entries), so every VJP rule call appends graph
  nodes. The autodiff pass would produce the same nodes from the same rules, but the
  tape already knows what eager autograd knows: which tensors require grad, hooks,
  ``retain_graph``, ``autograd.grad``, accumulation into existing ``.grad``, and
  ``zero_grad`` semantics. The autodiff pass serves graphs that have no tape (the
  ``ember ir --passes autodiff`` CLI, ``partition`` for a compiled forward whose
  output the user differentiates outside).
- **lazily created optimizer state** (Adam moments, SGD momentum buffers, step
  counts) and gradients: the first call of a training step runs *eagerly*. That
  materializes the state exactly as eager execution would (SGD's first momentum
  step is not the steady-state formula), and the one capture, on the second call,
  sees the steady-state program. No second capture ever happens for it.
- **learning rate as an input**: during capture each param group's ``lr`` is
  swapped for a 0-d float64 tensor bound as a graph input (float64 with a float32
  parameter promotes exactly like a Python float), so ``lr_scheduler`` changes
  reach the compiled step without recompiling. Other hyperparameters are baked in;
  changing one invalidates the cache (a recompile with its reason recorded).
- **names and state binding**: parameters are bound under their module names
  (``0.weight``), optimizer state as ``opt.<param>.<key>`` before the program runs,
  so reads of state that is later updated in place are graph inputs, never frozen
  constants.
- **GradScaler**: while capturing, a scaler the step reaches is replaced by its tensor
  form (``_scaler_trace``): the overflow skip becomes ``where(found_inf, old, new)``
  on parameters and optimizer state, the scale update a ``where`` too.
- **passes**: the captured graph runs through ``ember.passes.DEFAULT_PIPELINE``
  (simplify, fold, cse, dce, fuse) before the backend compiles it
  (``options={"passes": ...}`` overrides; ``()`` disables).
"""

from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Callable, Optional

import numpy as np

from ember.ir.graph import ROLE_INPUT, ROLE_PARAM, ROLE_STATE, Graph

from .. import _state
from .._tensor import Tensor, _wrap

_LR_KEYS = ("lr",)


def _reachable_objects(fn: Callable) -> list[tuple[str, Any]]:
    """(name, object) pairs a function reaches through its globals, closure and parameter defaults, and
    its bound ``self``'s attributes (one level deep)."""
    from ._capture import _free_objects
    out = _free_objects(fn)
    self_obj = getattr(fn, "__self__", None)
    if self_obj is not None:
        out.extend((k, v) for k, v in vars(self_obj).items())
    return out


def _is_optimizer(obj: Any) -> bool:
    return hasattr(obj, "param_groups") and hasattr(obj, "state") and callable(getattr(obj, "step", None))


def _is_module(obj: Any) -> bool:
    return callable(getattr(obj, "named_parameters", None)) and callable(getattr(obj, "named_buffers", None))


def find_optimizers(fn: Callable) -> list:
    seen, out = set(), []
    for _, obj in _reachable_objects(fn):
        if _is_optimizer(obj) and id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    return out


def _hyper_snapshot(optimizers: list) -> tuple:
    snap = []
    for opt in optimizers:
        for group in opt.param_groups:
            snap.append(tuple(sorted((k, repr(v)) for k, v in group.items()
                                     if k != "params" and k not in _LR_KEYS)))
            snap.append(tuple(id(p) for p in group["params"]))
    return tuple(snap)


_IMMUTABLE = (type(None), bool, int, float, complex, str)


def _immutable(v: Any) -> bool:
    return type(v) in _IMMUTABLE or (type(v) is tuple and all(_immutable(x) for x in v))


class _HyperWatch:
    """Says cheaply that ``_hyper_snapshot`` cannot have changed: the same optimizers hold the same
    ``param_groups`` list of the same group dicts, each with the same keys bound to the very same
    immutable values (so the same ``repr``) and the same ``params`` list of the same tensors.
    Anything else (a new group, a mutable hyperparameter value) means: take the full snapshot."""

    __slots__ = ("groups", "ok")

    def __init__(self, optimizers: list) -> None:
        self.groups: list = []
        self.ok = True
        for opt in optimizers:
            groups = opt.param_groups
            if type(groups) is not list:
                self.ok = False
                return
            self.groups.append((opt, groups, len(groups)))
            for g in groups:
                items = tuple((k, v) for k, v in g.items() if k != "params" and k not in _LR_KEYS)
                params = g.get("params")
                if type(g) is not dict or type(params) is not list or not all(_immutable(v) for _, v in items):
                    self.ok = False
                    return
                self.groups.append((g, items, len(g), params, tuple(params)))

    def unchanged(self) -> bool:
        if not self.ok:
            return False
        missing = _HyperWatch
        it = iter(self.groups)
        for opt, groups, n in it:
            if opt.param_groups is not groups or len(groups) != n:
                return False
            for g in groups:
                g0, items, size, params, members = next(it)
                if g is not g0 or len(g) != size or g.get("params") is not params or len(params) != len(members):
                    return False
                for k, v in items:
                    if g.get(k, missing) is not v:
                        return False
                if not all(map(operator.is_, params, members)):
                    return False
        return True


def _watch_state(optimizers: list) -> tuple:
    """Identity fingerprint of the optimizers' state: each ``opt.state`` dict, its per-parameter
    dicts in order, and every (dict, key) -> value. Graphs bind these objects when captured."""
    owners, dicts, tables, keys, values = [], [], [], [], []
    for opt in optimizers:
        owners.append((opt, opt.state))
        dicts.append(tuple(opt.state.values()))
        for d in opt.state.values():
            if isinstance(d, dict):
                for k, v in d.items():
                    tables.append(d)
                    keys.append(k)
                    values.append(v)
    return tuple(owners), tuple(dicts), tuple(tables), tuple(keys), tuple(values)


def _state_unchanged(watch: tuple) -> bool:
    """No state object a graph binds was replaced or removed (``load_state_dict`` replaces them all);
    state added since (a parameter that started getting gradients) is allowed."""
    owners, dicts, tables, keys, values = watch
    for (opt, st), per_param in zip(owners, dicts):
        if opt.state is not st or len(st) < len(per_param) or not all(map(operator.is_, st.values(), per_param)):
            return False
    return all(map(operator.is_, map(dict.get, tables, keys), values))


class StateCreatedWhileTracing(Exception):
    """A capture of a training step would create optimizer state: ``ember.compile`` runs that call
    eagerly instead (as it does the first call), and captures the steady state on the next one."""


class TrainStep:
    """The training-step extras of one ``CompiledFunction``."""

    def __init__(self, compiled, optimizers: list, modules: list[tuple[str, Any]]) -> None:
        self.compiled = compiled
        self.optimizers = optimizers
        self.modules = modules
        self.warmed_up = False
        self.layouts_normalized = False
        self.lr_tensors: list[tuple[dict, str, Tensor]] = []  # (group, key, 0-d tensor fed as input)
        for i, opt in enumerate(optimizers):
            for j, group in enumerate(opt.param_groups):
                for key in _LR_KEYS:
                    if key in group and isinstance(group[key], (int, float)) and not isinstance(group[key], bool):
                        self.lr_tensors.append((group, key, _wrap(np.asarray(float(group[key]), np.float64))))
        self.lr_fed: list = [None] * len(self.lr_tensors)  # the group[key] object each lr array was made from
        self.hyper = _hyper_snapshot(optimizers)
        self.hyper_watch = _HyperWatch(optimizers)
        self.state_watch: Optional[tuple] = None  # the optimizer state objects captured graphs read
        from ._scaler_trace import TracedScaler, is_grad_scaler
        self.scalers = [TracedScaler(o, optimizers) for _, o in _reachable_objects(compiled.fn) if is_grad_scaler(o)]

    # ------------------------------------------------------------ per call
    def before_call(self) -> bool:
        """Refresh fed values; True when this call must run eagerly (state warm-up)."""
        for k, (group, key, t) in enumerate(self.lr_tensors):
            raw = group[key]
            if raw is not self.lr_fed[k] or type(raw) not in (float, int):  # same immutable number: same array
                t._data = np.asarray(float(raw), np.float64)
                self.lr_fed[k] = raw
        for sc in self.scalers:
            sc.before_call()
        if not self.hyper_watch.unchanged():
            snap = _hyper_snapshot(self.optimizers)
            if snap != self.hyper:
                self.hyper = snap
                self._invalidate("an optimizer hyperparameter (not lr) changed")
            self.hyper_watch = _HyperWatch(self.optimizers)
        if self.state_watch is not None and not _state_unchanged(self.state_watch):
            self.state_watch = None
            self._invalidate("optimizer state was replaced (load_state_dict?)")
        if not self.warmed_up:
            # the first call always runs eagerly: it creates optimizer state and the .grad tensors,
            # so the one capture (next call) sees the steady state and its guards keep holding
            self.warmed_up = True
            self.compiled.stats["eager_warmup"] = 1
            return True
        if not self.layouts_normalized:
            self.layouts_normalized = True
            self._row_major_state()
        return False

    def _invalidate(self, reason: str) -> None:
        """Drop every compiled graph: they bind objects or constants that no longer hold."""
        c = self.compiled
        c._static.clear()
        c._symbolic.clear()
        c._fasts = []
        c._gen += 1
        c._pending_reason = reason  # the next compile's recompile reason

    def _row_major_state(self) -> None:
        """Gradients and optimizer state the warm-up left column-major (a weight's gradient comes out of
        eager autograd as a transposed product) become row-major once, before the first compiled call:
        PyTorch keeps ``.grad`` in its parameter's layout too, and a backend then needs no transposes at
        its boundary for them. Only tensors that are not views of something else are re-laid out."""
        def fix(t) -> None:
            if (isinstance(t, Tensor) and t._data is not None and t._base is None and t._data.ndim >= 2
                    and not t._data.flags.c_contiguous):
                t._data = np.ascontiguousarray(t._data)
        for opt in self.optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    fix(getattr(p, "grad", None))
                    for v in opt.state.get(p, {}).values():
                        fix(v)

    def after_call(self) -> None:
        """Sync Python-side state (GradScaler's scale and tracker) from the tensors the graph updated."""
        for sc in self.scalers:
            sc.after_call()

    def updated_tensors(self) -> set:
        """ids of the tensors the optimizers update (their graphs are specialized to these objects)."""
        return {id(p) for opt in self.optimizers for group in opt.param_groups for p in group["params"]}

    # ------------------------------------------------------------ capture
    def _param_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        single = len(self.modules) == 1
        for mname, m in self.modules:
            for pname, p in m.named_parameters():
                names.setdefault(id(p), pname if single else f"{mname}.{pname}")
        return names

    def bind_all(self, tracer) -> list:
        """Bind parameters, optimizer state and learning rates as graph inputs; returns undo actions."""
        names = self._param_names()
        for mname, m in self.modules:
            for bname, b in m.named_buffers():
                if b is not None:
                    tracer.bind(b, bname if len(self.modules) == 1 else f"{mname}.{bname}", "buffer")
        undo = []
        for i, opt in enumerate(self.optimizers):
            prefix = "opt" if len(self.optimizers) == 1 else f"opt{i}"
            for group in opt.param_groups:
                for p in group["params"]:
                    pname = names.get(id(p), f"param{len(tracer.bindings)}")
                    tracer.bind(p, pname, ROLE_PARAM)
                    for key, v in opt.state.get(p, {}).items():
                        if isinstance(v, Tensor) and v._value is None:
                            tracer.bind(v, f"{prefix}.{pname}.{key}", ROLE_STATE)
        for k, sc in enumerate(self.scalers):
            undo.append(("scaler", sc.install(tracer, "scaler" if len(self.scalers) == 1 else f"scaler{k}")))
        for k, (group, key, t) in enumerate(self.lr_tensors):
            tracer.bind(t, key if len(self.lr_tensors) == 1 else f"{key}{k}", ROLE_INPUT)
            undo.append((group, key, group[key]))
            group[key] = t
        return undo

    # ------------------------------------------------------------ lazily created state
    def _state_snapshot(self) -> list:
        """Each optimizer's state as it is: (optimizer, {param: (state dict, copy of it)})."""
        return [(opt, {p: (st, dict(st)) for p, st in opt.state.items()}) for opt in self.optimizers]

    @staticmethod
    def _state_created(snapshot: list) -> bool:
        """Whether the traced program created optimizer state (a parameter that just started getting
        gradients gets its momentum buffer, Adam moments...): traced, it would hold tracer tensors."""
        for opt, saved in snapshot:
            for p, st in opt.state.items():
                old = saved.get(p)
                if old is None:
                    if st:
                        return True
                elif st is not old[0] or any(k not in old[1] for k in st):
                    return True
        return False

    @staticmethod
    def _restore_state(snapshot: list) -> None:
        for opt, saved in snapshot:
            for p in [p for p in opt.state if p not in saved]:
                del opt.state[p]
            for p, (st, items) in saved.items():
                st.clear()
                st.update(items)
                opt.state[p] = st

    def wrap(self, fn: Callable) -> Callable:
        """``fn`` with the training-step bindings made when it runs under a tracer."""
        step = self

        @functools.wraps(fn)
        def traced_step(*args, **kwargs):
            tracer = _state.tracer
            if tracer is None:
                return fn(*args, **kwargs)
            undo = step.bind_all(tracer)
            state = step._state_snapshot()
            try:
                result = fn(*args, **kwargs)
                if step._state_created(state):
                    raise StateCreatedWhileTracing()
                step.state_watch = _watch_state(step.optimizers)
                return result
            except BaseException:
                step._restore_state(state)
                raise
            finally:
                from ._scaler_trace import restore
                for item in undo:
                    if item[0] == "scaler":
                        restore(item[1])
                    else:
                        group, key, value = item
                        group[key] = value
        try:
            traced_step.__signature__ = inspect.signature(fn)
        except (TypeError, ValueError):
            pass
        return traced_step


def attach(compiled) -> Optional[TrainStep]:
    """Give a ``CompiledFunction`` training-step support when its function uses an optimizer."""
    fn = compiled.fn
    optimizers = list(compiled.options.pop("optimizers", []) or []) or find_optimizers(fn)
    if not optimizers:
        return None
    modules, seen = [], set()
    for n, o in _reachable_objects(fn):  # modules holding tensors (a loss module holds none)
        if _is_module(o) and id(o) not in seen and (any(True for _ in o.named_parameters())
                                                     or any(True for _ in o.named_buffers())):
            seen.add(id(o))
            modules.append((n, o))
    if compiled.module is None and len(modules) == 1:
        # capture binds the module's parameters, buffers and existing gradients under their names
        compiled.module = modules[0][1]
    step = TrainStep(compiled, optimizers, modules)
    compiled.fn = step.wrap(fn)
    compiled.options.setdefault("passes", _default_pipeline())
    if compiled.backend == "eager":  # the interpreter reuses dead intermediates' buffers
        compiled.options.setdefault("inplace", True)
    return step


def _default_pipeline() -> tuple:
    from ember.passes import DEFAULT_PIPELINE
    return tuple(DEFAULT_PIPELINE)


def optimize_for_backend(graph: Graph, options: dict) -> tuple[Graph, dict]:
    """Run ``options["passes"]`` on a captured graph; returns the graph and the backend's options."""
    options = dict(options)
    options.pop("backward", None)  # ember.compile's own option (partitioned backward), not the backend's
    passes = options.pop("passes", None)
    if not passes:
        return graph, options
    from ember.passes import run_pipeline
    return run_pipeline(graph, passes).graph, options
