"""``.backward()`` outside a compiled region: a compiled forward with a compiled backward.

With ``ember.compile(fn)`` (``options={"backward": False}`` turns it off), when a
capture with grad enabled has outputs that depend on tensors requiring grad and the
program does not call ``backward`` itself, the captured graph is differentiated with the autodiff pass,
split by ``partition`` into a forward graph (that also returns the saved values)
and a backward graph, and both are compiled. Each call runs the forward and puts
one autograd tape node per differentiable output; ``loss.backward()`` later runs
the compiled backward on the saved values and accumulates into ``.grad`` exactly
as eager autograd does (AOTAutograd's scheme).

So ``model = ember.compile(model)`` followed by an ordinary eager training loop
(``loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()``), the most common
``torch.compile`` pattern, trains as it does uncompiled. As in PyTorch, such outputs
require grad (``.detach()`` before ``.numpy()``), and inference belongs under ``no_grad``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.ir.registry import Primitive
from ember.ir.types import TensorType

from .. import _state
from .._tensor import Tensor, _wrap


class _Autograd:
    def __init__(self, forward, backward, n_outputs: int, wrt_sources: list, out_index: list[int],
                 cot_slot: dict[int, int], n_cot: int, cot_types: list) -> None:
        self.forward = forward
        self.backward = backward
        self.n_outputs = n_outputs
        self.wrt_sources = wrt_sources  # graph-input sources of the tensors gradients flow to
        self.out_index = out_index      # user-output indices that get a tape node
        self.cot_slot = cot_slot        # user-output index -> position among the cotangent inputs
        self.n_cot = n_cot
        self.cot_types = cot_types
        self.saved: list = []

    def run_forward(self, arrays):
        outs = self.forward(arrays)
        self.saved = list(outs[self.n_outputs:])
        return outs[:self.n_outputs]

    def attach(self, cap, result: Any, leaves: list, named: dict) -> Any:
        from ._capture import flatten
        outs: list = []
        flatten(result, outs)
        wrt = [cap._resolve(src, leaves, named) for src in self.wrt_sources]
        saved = self.saved
        self.saved = []
        for k in self.out_index:
            if k >= len(outs):
                continue
            prim = Primitive("compiled_forward", lambda *a, **kw: None, saves="")
            shapes = [tuple(outs[j].shape) for j in self.out_index]
            prim.vjp = self._vjp_rule(saved, k, shapes)
            from ..autograd.engine import record
            record(prim, tuple(wrt), {}, outs[k])
        return result

    def _vjp_rule(self, saved: list, k: int, shapes: list):
        def rule(g, ins, out, needs, attrs):
            cots = [np.zeros(shape, dtype=t.dtype.np) for shape, t in zip(shapes, self.cot_types)]
            cots[self.cot_slot[k]] = np.asarray(g._data, dtype=self.cot_types[self.cot_slot[k]].dtype.np)
            grads = self.backward(list(saved) + cots)
            return tuple(_wrap(np.asarray(a)) for a in grads)
        return rule


def attach_backward(compiled, entry, leaves: list) -> None:
    """Give ``entry`` a compiled backward when its outputs need gradients (see the module docstring)."""
    if (getattr(compiled, "_train_step", None) is not None or not _state.grad_enabled
            or not compiled.options.get("backward", True)):
        return
    cap = entry.capture
    graph = cap.graph
    if any(kind == "grad" for _, kind, _ in cap.writeback):
        return  # the program runs backward itself
    named = cap._module_tensors()
    wrt, wrt_sources = [], []
    for v, src in zip(graph.inputs, cap.sources):
        if not v.type.dtype.is_floating_point or src[0] == "grad":
            continue
        t = cap._resolve(src, leaves, named)
        if isinstance(t, Tensor) and t.requires_grad:
            wrt.append(v.name)
            wrt_sources.append(src)
    n_user = graph.meta.get("n_user_outputs", len(graph.outputs))
    of = [i for i in range(n_user) if graph.outputs[i].type.dtype.is_floating_point]
    if not wrt or not of:
        return
    from ember.passes import AutodiffError, autodiff, partition
    try:
        joint = autodiff(graph, wrt=wrt, of=of, seed="input")
    except AutodiffError:
        return
    if len(joint.meta.get("grads_unused", ())) == len(wrt):
        return
    part = partition(joint, n_forward=len(graph.outputs))
    cot_inputs = [v for v in part.backward.inputs if v.name not in part.saved]
    cot_slot = {k: i for i, k in enumerate(of)}
    types = [TensorType(v.type.dtype, v.type.shape) for v in cot_inputs]
    auto = _Autograd(compiled._backend_compile(part.forward), compiled._backend_compile(part.backward),
                     len(graph.outputs), wrt_sources, of, cot_slot, len(cot_inputs), types)
    entry.compiled = auto.run_forward
    entry.autograd = auto
