"""``ember.autograd.functional``: jacobian and hessian by repeated reverse mode."""

from __future__ import annotations


def jacobian(func, inputs, create_graph: bool = False):
    from .. import _ops
    from . import grad
    single = not isinstance(inputs, (tuple, list))
    ins = (inputs,) if single else tuple(inputs)
    ins = tuple(x.detach().requires_grad_(True) for x in ins)
    out = func(*ins)
    flat = _ops.reshape(out, (-1,))
    rows = []
    for i in range(flat.shape[0]):
        gs = grad(flat[i], ins, retain_graph=True, create_graph=create_graph, allow_unused=True)
        rows.append(gs)
    result = []
    for k, x in enumerate(ins):
        from .._creation import zeros_like
        parts = [r[k] if r[k] is not None else zeros_like(x) for r in rows]
        result.append(_ops.reshape(_ops.stack(parts), tuple(out.shape) + tuple(x.shape)))
    return result[0] if single else tuple(result)


def hessian(func, inputs, create_graph: bool = False):
    from . import grad

    def gradf(x):
        (g,) = grad(func(x), (x,), create_graph=True)
        return g
    return jacobian(gradf, inputs, create_graph=create_graph)
