"""``GradScaler`` inside a compiled training step: the data-dependent skip as graph selects.

Eagerly, ``scaler.step(opt)`` asks "did any gradient overflow?" in Python and
skips ``opt.step()``; ``update()`` changes a Python float. A graph cannot branch on
data, so while a step is captured the scaler's methods are replaced (on the
instance, restored afterwards) by tensor versions: the scale and the growth
tracker are 0-d state inputs, ``found_inf`` a bool value, the optimizer always
runs and every parameter and optimizer-state tensor it touched is set to
``where(found_inf, old, new)``; ``update`` computes the new scale and tracker with
``where``. After each call the scaler's Python fields are synced from the tensors,
so ``get_scale()`` and ``state_dict()`` read exactly what eager execution gives.
"""

from __future__ import annotations

import numpy as np

from ember.ir.graph import ROLE_STATE

from .._tensor import Tensor, _wrap


def is_grad_scaler(obj) -> bool:
    return type(obj).__name__ == "GradScaler" and hasattr(obj, "_per_optimizer_states")


class TracedScaler:
    """The tensor form of one ``GradScaler`` for compiled steps."""

    def __init__(self, scaler, optimizers: list) -> None:
        self.scaler = scaler
        self.optimizers = optimizers
        self.scale_t = _wrap(np.asarray(0.0, np.float32))
        self.tracker_t = _wrap(np.asarray(0, np.int64))

    def enabled(self) -> bool:
        return bool(self.scaler._enabled) and self.scaler._scale is not None

    def before_call(self) -> None:
        if self.enabled():
            self.scale_t._data = np.asarray(self.scaler._scale, np.float32)
            self.tracker_t._data = np.asarray(self.scaler._growth_tracker, np.int64)

    def after_call(self) -> None:
        if self.enabled():
            self.scaler._scale = float(self.scale_t._data)
            self.scaler._growth_tracker = int(self.tracker_t._data)

    # ------------------------------------------------------------ capture
    def install(self, tracer, name: str) -> list:
        """Bind the scale/tracker and patch the scaler's methods; returns the undo list."""
        if not self.enabled():
            return []
        tracer.bind(self.scale_t, f"{name}.scale", ROLE_STATE)
        tracer.bind(self.tracker_t, f"{name}.growth_tracker", ROLE_STATE)
        s = self.scaler
        found = {}

        def scale(outputs):
            if isinstance(outputs, Tensor):
                return outputs * self.scale_t
            return type(outputs)(scale(o) for o in outputs)

        def unscale_(optimizer):
            from .. import _ops as O
            from ..autograd import no_grad
            if id(optimizer) in found:
                raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
            inv = O.div(1.0, self.scale_t)
            flag = None
            with no_grad():
                for group in optimizer.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        bad = O.any(O.logical_not(O.isfinite(p.grad)))
                        flag = bad if flag is None else O.logical_or(flag, bad)
                        p.grad.mul_(inv)
            found[id(optimizer)] = flag

        def step(optimizer, *args, **kwargs):
            from .. import _ops as O
            from ..autograd import no_grad
            if id(optimizer) not in found:
                unscale_(optimizer)
            flag = found[id(optimizer)]
            if flag is None:
                return optimizer.step(*args, **kwargs)
            tensors = []
            for group in optimizer.param_groups:
                for p in group["params"]:
                    tensors.append(p)
                    tensors.extend(v for v in optimizer.state.get(p, {}).values() if isinstance(v, Tensor))
            with no_grad():
                old = [t.detach().clone() for t in tensors]
            ret = optimizer.step(*args, **kwargs)
            with no_grad():
                for t, o in zip(tensors, old):
                    _assign(t, O.where(flag, o, t))
            return ret

        def update(new_scale=None):
            from .. import _creation as C
            from .. import _ops as O
            from ..autograd import no_grad
            with no_grad():
                if new_scale is not None:
                    _assign(self.scale_t, C.full_like(self.scale_t, float(new_scale)))
                    found.clear()
                    return
                flags = [f for f in found.values() if f is not None]
                if not flags:
                    raise AssertionError("No inf checks were recorded prior to update.")
                any_inf = flags[0]
                for f in flags[1:]:
                    any_inf = O.logical_or(any_inf, f)
                grown = O.add(self.tracker_t, 1)
                at_interval = O.eq(grown, s._growth_interval)
                new_s = O.where(any_inf, self.scale_t * s._backoff_factor,
                                O.where(at_interval, self.scale_t * s._growth_factor, self.scale_t))
                new_t = O.where(O.logical_or(any_inf, at_interval), C.zeros_like(grown), grown)
                _assign(self.scale_t, new_s)
                _assign(self.tracker_t, new_t)
            found.clear()

        undo = []
        for attr, fn in (("scale", scale), ("unscale_", unscale_), ("step", step), ("update", update)):
            undo.append((s, attr, s.__dict__.get(attr)))
            setattr(s, attr, fn)
        return undo


def _assign(t: Tensor, new: Tensor) -> None:
    """``t`` now holds ``new`` (functionalized by the tracer). Not ``copy_``: traced, it is
    ``t*0 + new``, which keeps a NaN/inf of ``t`` -- exactly what an overflow skip must drop."""
    from .. import _state
    _state.tracer.assign(t, new)


def restore(undo: list) -> None:
    for obj, attr, prev in undo:
        if prev is None:
            obj.__dict__.pop(attr, None)
        else:
            setattr(obj, attr, prev)
