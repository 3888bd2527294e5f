"""Reverse-mode autograd on a tape of primitive applications.

Each differentiable primitive applied to a tensor that requires grad records a
``Node`` (PyTorch's ``grad_fn``). ``backward`` walks the nodes reachable from the
roots in reverse topological order and calls each primitive's registered VJP,
the same rule the graph autodiff pass uses. The rules call ember primitives, so
with ``create_graph=True`` they are recorded too and higher-order gradients come
for free.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import _state

_FREED_MSG = ("Trying to backward through the graph a second time (or directly access saved tensors "
              "after they have already been freed). Saved intermediate values of the graph are freed "
              "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
              "backward through the graph a second time or if you need to access saved tensors after "
              "calling backward.")


class Node:
    """One recorded primitive application; a tensor's ``grad_fn``."""

    __slots__ = ("prim", "attrs", "inputs", "parents", "needs", "out_ref", "out_data", "in_versions",
                 "out_version", "freed", "hooks", "retained", "__weakref__")

    def __init__(self, prim, attrs, inputs, needs):
        self.prim = prim
        self.attrs = attrs
        self.inputs = inputs
        # each input's grad_fn when this node was recorded: an in-place op later gives the
        # input a new grad_fn, but gradients of *this* use must flow to the old one
        self.parents = tuple([x._node for x in inputs])
        self.needs = needs
        self.out_ref = None
        self.out_data = None
        self.in_versions = None
        self.out_version = 0
        self.freed = False
        self.hooks = None
        self.retained = None

    def name(self) -> str:
        return "".join(p.capitalize() for p in self.prim.name.split("_")) + "Backward0"

    @property
    def next_functions(self):
        out = []
        for x, parent, need in zip(self.inputs, self.parents, self.needs):
            if not need:
                out.append((None, 0))
            elif parent is not None:
                out.append((parent, 0))
            else:
                out.append((AccumulateGrad(x), 0))
        return tuple(out)

    def register_hook(self, fn):
        raise NotImplementedError("grad_fn hooks are not supported; use Tensor.register_hook")

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def output(self):
        """The output tensor, rebuilt around its data if the caller dropped it."""
        t = self.out_ref() if self.out_ref is not None else None
        if t is None:
            from .._tensor import _wrap
            t = _wrap(self.out_data)
            t.requires_grad = True
            t._node = self
            self.out_ref = weakref.ref(t)
        return t


class AccumulateGrad:
    """Stand-in for PyTorch's leaf node in ``next_functions``."""

    def __init__(self, variable):
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    next_functions = ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def record(prim, inputs, attrs, out) -> None:
    """Attach a tape node for ``prim(inputs) -> out``."""
    nondiff = prim.nondiff_inputs
    if nondiff:
        needs = tuple([x.requires_grad and i not in nondiff for i, x in enumerate(inputs)])
    else:
        needs = tuple([x.requires_grad for x in inputs])
    node = Node(prim, attrs, inputs, needs)
    if prim.saves_inputs:
        node.in_versions = tuple(x._version[0] for x in inputs)
    if prim.saves_output:
        node.out_ref = weakref.ref(out)
        node.out_data = out._data
        node.out_version = out._version[0]
    else:
        node.out_ref = weakref.ref(out)
    out._node = node
    out.requires_grad = True


def _check_versions(node: Node) -> None:
    if node.in_versions is not None:
        for x, v in zip(node.inputs, node.in_versions):
            if x._version[0] != v:
                raise RuntimeError(_modified_msg(x, v, node))
    if node.prim.saves_output:
        t = node.out_ref() if node.out_ref is not None else None
        if t is not None and t._version[0] != node.out_version:
            raise RuntimeError(_modified_msg(t, node.out_version, node))


def _modified_msg(t, expected, node) -> str:
    return ("one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: [{t.dtype.name}{list(t.shape)}] is at version {t._version[0]}; expected version "
            f"{expected} instead (it is an input or output of {node.name()}).")


def _topo_order(roots) -> list[Node]:
    """Nodes reachable from ``roots`` in topological order (consumers after producers)."""
    order, seen = [], set()
    for root in roots:
        if root is None or id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for parent, need in zip(node.parents, node.needs):
                if need and parent is not None and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def _accumulate(cur, g):
    if cur is None:
        return g
    from ember.ir.ops import add
    return add(cur, g)


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool, capture=None,
                 accumulate: bool = True):
    """Propagate ``grads`` from ``roots`` to the leaves.

    ``capture`` maps ``id(tensor)`` of requested inputs to a slot; when given
    (``autograd.grad``), their gradients are returned instead of accumulated into
    ``.grad``.
    """
    from .._tensor import Tensor
    cts: dict[int, Tensor] = {}
    leaf_grads: dict[int, tuple] = {}
    root_nodes = []
    for r, g in zip(roots, grads):
        if r._node is None:
            if r.requires_grad:  # a leaf root: its gradient is the seed itself
                leaf_grads[id(r)] = (r, _accumulate(leaf_grads.get(id(r), (None, None))[1], g))
            continue
        cts[id(r._node)] = _accumulate(cts.get(id(r._node)), g)
        root_nodes.append(r._node)
    captured_nodes = {}
    if capture is not None:
        for t in capture:
            if t._node is not None:
                captured_nodes[id(t._node)] = t
    order = _topo_order(root_nodes)
    prev = _state.grad_enabled
    _state.grad_enabled = create_graph
    try:
        for node in reversed(order):
            g = cts.pop(id(node), None)
            if g is None:
                continue
            if node.hooks:
                for hook in node.hooks:
                    new = hook(g)
                    if new is not None:
                        g = new
            if node.retained is not None:
                for ref in node.retained:
                    t = ref()
                    if t is not None:
                        t.grad = g if create_graph else g.detach()
            if id(node) in captured_nodes:
                leaf_grads[id(captured_nodes[id(node)])] = (captured_nodes[id(node)], g)
            if node.freed and (node.prim.saves_inputs or node.prim.saves_output):
                raise RuntimeError(_FREED_MSG)
            _check_versions(node)
            out = node.output() if node.prim.saves_output else None
            in_grads = node.prim.vjp(g, node.inputs, out, node.needs, node.attrs)
            for x, parent, need, gi in zip(node.inputs, node.parents, node.needs, in_grads):
                if not need or gi is None:
                    continue
                if parent is not None:
                    cts[id(parent)] = _accumulate(cts.get(id(parent)), gi)
                    continue
                prev_leaf = leaf_grads.get(id(x))
                leaf_grads[id(x)] = (x, _accumulate(prev_leaf[1] if prev_leaf else None, gi))
            if not retain_graph:
                _free(node)
    finally:
        _state.grad_enabled = prev
    if capture is not None:
        return {k: v[1] for k, v in leaf_grads.items()}
    if accumulate:
        shared = {id(g._data) for g in grads}  # never steal a caller's seed buffer
        for x, g in leaf_grads.values():
            _accumulate_into_leaf(x, g, create_graph, shared)
    return None


class _FreedInput:
    """What a freed node keeps of a non-leaf input: its type, not its buffer.

    Gradient rules of ops that save nothing read only ``.shape``/``.dtype`` of their
    operands, so a second backward through them still works, as in PyTorch.
    """

    __slots__ = ("shape", "dtype", "requires_grad")
    _data = None
    _value = None
    _node = None

    def __init__(self, x) -> None:
        self.shape = x.shape
        self.dtype = x.dtype
        self.requires_grad = x.requires_grad


def _free(node: Node) -> None:
    """Drop the buffers a node holds once backward has used it (PyTorch frees saved tensors)."""
    node.freed = True
    node.out_data = None
    # leaves (parameters, index tensors) stay: they are alive anyway and the rules may index with them
    parents = node.parents
    if any(p is not None for p in parents):
        node.inputs = tuple([x if parent is None or isinstance(x, _FreedInput) else _FreedInput(x)
                             for x, parent in zip(node.inputs, parents)])


def _accumulate_into_leaf(x, g, create_graph: bool, shared: set) -> None:
    from .._tensor import _wrap
    if x._hooks:
        for hook in x._hooks:
            new = hook(g)
            if new is not None:
                g = new
    if create_graph or g._value is not None or (x.grad is not None and x.grad._value is not None):
        # (traced gradients are graph values: accumulate functionally, ember.jit writes them back)
        x.grad = g if x.grad is None else x.grad + g
        return
    data = g._data
    if x.grad is None:
        # own the gradient buffer: rules may return shared, broadcast or read-only arrays
        if (id(data) in shared or data.base is not None or not data.flags.writeable
                or not data.flags.c_contiguous):
            data = np.array(data, copy=True)
        shared.add(id(data))
        x.grad = _wrap(data)
    else:
        gx = x.grad
        if gx._data.flags.writeable and gx._data.shape == data.shape:
            np.add(gx._data, data, out=gx._data, casting="unsafe")
            gx._version[0] += 1
        else:
            x.grad = _wrap(gx._data + data)
