"""Running graphs and fused groups on the numpy kernels with few temporaries.

``run_graph`` executes a graph node by node with ``KERNELS`` and

- frees each value after its last use (liveness), and
- reuses buffers: an elementwise ufunc whose operand is a temporary this run
  produced, read for the last time here, with the output's shape and dtype,
  writes its result into that operand (numpy ``out=``) instead of allocating.

Only buffers this run allocated are ever overwritten: graph inputs (the user's
parameters), constants and views (reshape/permute/broadcast/slice results, a
``cast`` to the same dtype) are never written. ``KERNELS["fused"]`` runs a fused
group's body this way, so fused groups allocate one buffer per chain instead of
one per op. Results are bit-identical to running the kernels one by one.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ember.ir.graph import Graph, Node

from .kernels import KERNELS

# ops whose kernel returns a fresh array (never a view of, or the same object as, an operand)
_FRESH = frozenset({
    "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
    "relu", "erf", "sign", "floor", "ceil", "round", "add", "sub", "mul", "div", "pow", "maximum",
    "minimum", "remainder", "floor_divide", "where", "matmul", "full", "concat", "pad", "sum", "prod",
    "uniform", "normal", "index_add", "scatter_add", "gather", "take",
})
_UNARY_UFUNCS = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "log1p": np.log1p,
    "expm1": np.expm1, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil,
}
_BINARY_UFUNCS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power,
}


def last_uses(graph: Graph) -> dict[str, int]:
    """Value name -> index of the last node reading it (graph outputs live to the end)."""
    last: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            last[v.name] = i
    for v in graph.outputs:
        last[v.name] = len(graph.nodes)
    return last


def plan_inplace(graph: Graph) -> dict[int, int]:
    """Node index -> operand position whose buffer the node may overwrite (liveness-based reuse)."""
    last = last_uses(graph)
    users = graph.users()
    plan: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        if n.op not in _UNARY_UFUNCS and n.op not in _BINARY_UFUNCS and n.op != "relu":
            continue
        out_t = n.output.type
        if not out_t.dtype.is_floating_point:
            continue
        for pos, v in enumerate(n.inputs):
            p = v.producer
            # a reader that may return a view (reshape, permute, ...) could still alias the buffer
            if (p is not None and p.op in _FRESH and last.get(v.name) == i and v.type == out_t
                    and all(u.type == out_t for u in n.inputs)
                    and all(u.op in _FRESH for u in users.get(v.name, ()))):
                plan[i] = pos
                break
    return plan


def _bind_symbols(graph: Graph, arrays: Sequence[np.ndarray]) -> dict[str, int]:
    env: dict[str, int] = {}
    for v, a in zip(graph.inputs, arrays):
        for d, n in zip(v.type.shape, np.shape(a)):
            if isinstance(d, str):
                env[d] = n
    return env


def _concrete(attrs: dict, sizes: dict[str, int]) -> dict:
    if not sizes:
        return attrs
    out = dict(attrs)
    if "shape" in out:
        out["shape"] = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in out["shape"])
    if isinstance(out.get("value"), str) and out["value"] in sizes:
        out["value"] = sizes[out["value"]]
    return out


def _run_node(node: Node, args: list, attrs: dict, reuse: int | None):
    if reuse is not None and reusable(args[reuse], args):
        buf = args[reuse]
        if node.op == "relu":
            return np.maximum(buf, 0, out=buf)
        ufunc = _UNARY_UFUNCS.get(node.op) or _BINARY_UFUNCS[node.op]
        return ufunc(*args, out=buf)
    if node.subgraph is not None:
        return run_graph(node.subgraph, args)[0]
    return KERNELS[node.op](*args, **attrs)


def run_graph(graph: Graph, arrays: Sequence[np.ndarray], *, inplace: bool = True) -> list[np.ndarray]:
    """Execute ``graph`` on numpy arrays (in ``graph.inputs`` order); returns its outputs."""
    if len(arrays) != len(graph.inputs):
        raise ValueError(f"graph {graph.name} takes {len(graph.inputs)} inputs, got {len(arrays)}")
    env: dict[str, np.ndarray] = {v.name: a for v, a in zip(graph.inputs, arrays)}
    sizes = _bind_symbols(graph, arrays)
    last = last_uses(graph)
    plan = plan_inplace(graph) if inplace else {}
    outputs = {v.name for v in graph.outputs}
    for i, node in enumerate(graph.nodes):
        args = [env[v.name] for v in node.inputs]
        try:
            out = _run_node(node, args, _concrete(node.attrs, sizes), plan.get(i))
        except Exception as exc:  # noqa: BLE001 - name the failing node
            where = f" ({node.provenance})" if str(node.provenance) else ""
            raise RuntimeError(f"graph {graph.name}: node %{node.output.name} = {node.op}(...) failed{where}: "
                               f"{type(exc).__name__}: {exc}") from exc
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        env[node.output.name] = out
        for v in node.inputs:  # free what is dead
            if last.get(v.name) == i and v.name not in outputs:
                env.pop(v.name, None)
    return [env[v.name] for v in graph.outputs]


def _fused_kernel(*arrays, body: Graph, **attrs):
    return run_graph(body, arrays)[0]


KERNELS["fused"] = _fused_kernel


def _register_with_passes() -> None:
    from ember.passes._kernels import set_kernels
    set_kernels(KERNELS)


_register_with_passes()


def reusable(buf, operands) -> bool:
    """Writing into ``buf`` is safe and fast: a writeable C-ordered buffer, no operand in another layout.

    (A transposed operand next to a C-ordered buffer makes numpy's loop strided and
    several times slower than allocating, and would spread the odd layout on.)
    """
    if not (isinstance(buf, np.ndarray) and buf.flags.writeable and buf.flags.c_contiguous):
        return False
    for o in operands:
        if o is not buf and isinstance(o, np.ndarray) and o.ndim and not o.flags.c_contiguous and 0 not in o.strides:
            return False
    return True


def inplace_kernels(graph: Graph) -> dict[int, Callable]:
    """Node index -> a kernel that writes into its dead operand's buffer (for ``plan_inplace``'s nodes).

    The graph interpreter swaps these in, so intermediates are reused by liveness
    instead of allocated; a kernel falls back to allocating when the operand turns
    out not to be a writeable array at run time.
    """
    out: dict[int, Callable] = {}
    for i, pos in plan_inplace(graph).items():
        op = graph.nodes[i].op
        if op == "relu":
            def fn(x, _pos=pos):
                if isinstance(x, np.ndarray) and x.flags.writeable and x.flags.c_contiguous:
                    return np.maximum(x, 0, out=x)
                return KERNELS["relu"](x)
        else:
            ufunc = _UNARY_UFUNCS.get(op) or _BINARY_UFUNCS[op]

            def fn(*xs, _pos=pos, _ufunc=ufunc):
                buf = xs[_pos]
                if reusable(buf, xs):
                    return _ufunc(*xs, out=buf)
                return _ufunc(*xs)
        out[i] = fn
    return out
