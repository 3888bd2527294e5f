"""``ember.autograd``: backward, grad, and the grad-mode switches."""

from __future__ import annotations

import functools

import numpy as np

from .. import _state
from .._tensor import Tensor, _wrap
from .engine import AccumulateGrad, Node, run_backward

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "inference_mode", "Node", "AccumulateGrad", "Function"]


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _seed_grads(outputs, grad_outputs, create_graph):
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None and i < len(grad_outputs) else None
        if g is None:
            if out.numel() != 1 and out._value is None:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if out._value is not None:
                from .._creation import ones_like
                g = ones_like(out)
            else:
                g = _wrap(np.ones(out._data.shape, dtype=out._data.dtype))
        elif not isinstance(g, Tensor):
            g = _wrap(np.asarray(g, dtype=out.dtype.np))
        elif tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape!r} and "
                               f"output[{i}] has a shape of {out.shape!r}.")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves."""
    outputs = _as_list(tensors)
    for out in outputs:
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _seed_grads(outputs, _as_list(grad_tensors) or None, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        result = run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                              capture=_as_list(inputs))
        from .engine import _accumulate_into_leaf
        shared: set = set()
        for t in _as_list(inputs):
            g = result.get(id(t))
            if g is not None:
                _accumulate_into_leaf(t, g, create_graph, shared)
        return
    run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    for out in outs:
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _seed_grads(outs, _as_list(grad_outputs) or None, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outs, grads, retain_graph=retain_graph, create_graph=create_graph, capture=ins)
    res = []
    for i, t in enumerate(ins):
        g = result.get(id(t))
        if g is None:
            if materialize_grads:
                from .._creation import zeros_like
                g = zeros_like(t)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
        elif not create_graph:
            g = g.detach()
        res.append(g)
    return tuple(res)


class _GradMode:
    """Base of the grad-mode context managers; each also works as a decorator."""

    mode = True

    def __enter__(self):
        self.prev = _state.grad_enabled
        _state.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):  # noqa: N801
    mode = False


class enable_grad(_GradMode):  # noqa: N801
    mode = True


class inference_mode(_GradMode):  # noqa: N801
    def __init__(self, mode: bool = True):
        self.mode = not mode

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(not self.mode):
                return fn(*args, **kwargs)
        return wrapper


class set_grad_enabled(_GradMode):  # noqa: N801
    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        _state.grad_enabled = self.prev

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled() -> bool:
    return _state.grad_enabled


class Function:
    """``torch.autograd.Function`` for custom ops written with ember tensor ops.

    ember records the ops inside ``forward`` as usual (so gradients flow through
    them); a custom ``backward`` is used when the forward ran without grad.
    """

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = _Ctx()
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        tensor_args = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        if not tensor_args or not _state.grad_enabled:
            return out
        return _CustomFunctionNode.attach(cls, ctx, args, out)


class _Ctx:
    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *args):
        pass

    def set_materialize_grads(self, value):
        pass


class _CustomFunctionNode:
    @staticmethod
    def attach(cls, ctx, args, out):
        from ember.ir.registry import Primitive
        from .engine import record
        prim = Primitive(f"custom_{cls.__name__}", lambda *ts, **a: ts[0])

        def vjp(g, ins, o, needs, attrs):
            grads = cls.backward(ctx, g)
            if not isinstance(grads, tuple):
                grads = (grads,)
            res = []
            gi = iter(grads)
            for a in args:
                res.append(next(gi, None) if isinstance(a, Tensor) else next(gi, None))
            return tuple(r for r, a in zip(res, args) if isinstance(a, Tensor))
        prim.def_vjp(vjp)
        inputs = tuple(a for a in args if isinstance(a, Tensor))
        record(prim, inputs, {}, out)
        return out


from . import functional  # noqa: E402,F401
