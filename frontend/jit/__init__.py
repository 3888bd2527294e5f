"""``ember.jit``: graph capture by tracing.

``ember.jit.trace(module_or_fn, example_inputs)`` runs the program once on tracer
tensors (types only, no data) through the same op dispatch as eager mode and
returns a ``TracedModule`` whose ``.graph`` is the IR. ``ember.compile`` (see
``ember.jit.compile``) captures on first call, caches per input signature and
runs the cached graph on a backend.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from .errors import TraceError
from ._capture import Capture, capture, flatten
from ._compile import CompiledFunction, compile, recompile_reasons  # noqa: A004

__all__ = ["TraceError", "TracedModule", "trace", "compile", "CompiledFunction", "recompile_reasons",
           "load", "Capture"]


class TracedModule:
    """A captured program: call it like the original; ``.graph`` is its IR.

    Each call runs the graph on the graph interpreter (or ``backend``) with the
    module's *current* parameters and buffers, and writes back in-place updates
    (BatchNorm running statistics, ``x.add_()``) and parameter gradients.
    """

    def __init__(self, cap: Capture, backend: str = "eager", options: Optional[dict] = None) -> None:
        self._capture = cap
        self._guards = cap.guards(minimal=True)
        self._fn: Optional[Callable] = None  # the traced program, inlined when called under another trace
        self.backend = backend
        self.options = dict(options or {})
        self._compiled = None

    @property
    def graph(self):
        return self._capture.graph

    @property
    def code(self) -> str:
        """The IR text (``str(self.graph)``)."""
        return str(self._capture.graph)

    @property
    def inlined_graph(self):
        return self._capture.graph

    def compiled(self):
        if self._compiled is None:
            from ember.runtime.backend import compile_graph
            self._compiled = compile_graph(self._capture.graph, self.backend, self.options)
        return self._compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .. import _state
        if _state.tracer is not None and self._fn is not None:  # traced inside another trace: inline it
            return self._fn(*args, **kwargs)
        cap = self._capture
        leaves: list = []
        flatten((args, kwargs), leaves)
        why = cap.check_guards(self._guards, leaves)
        if why is not None:
            raise TraceError(f"traced {cap.graph.name} cannot run on these arguments: {why}; trace it again "
                             "(ember.compile re-traces automatically)")
        arrays, named = cap.gather(leaves)
        return cap.finish(self.compiled()(arrays), leaves, named)

    forward = __call__

    def weights(self) -> dict:
        """Current arrays of the graph's parameter/buffer/state inputs, by input name."""
        return self._capture.gather_state()

    def save(self, path: str) -> None:
        """Save the graph and its current weights (``ember.ir.save``); ``ember.jit.load`` reads it."""
        from ember.ir.serialize import save
        save(self._capture.graph, path, self.weights())

    def __repr__(self) -> str:
        return f"TracedModule({self._capture.graph.name})"


def trace(module_or_fn: Callable, example_inputs: Any = None, *, example_kwarg_inputs: Optional[dict] = None,
          dynamic: Union[bool, dict, None] = False, backend: str = "eager", name: Optional[str] = None,
          **_ignored: Any) -> TracedModule:
    """Capture ``module_or_fn(*example_inputs)`` into a graph.

    ``example_inputs``: a tensor or a tuple of arguments (tensors, nested
    tuples/lists/dicts of tensors, numbers). Parameters and buffers of an
    ``nn.Module`` become named graph inputs (``fc1.weight``). ``dynamic=True``
    makes dimension 0 of every tensor input symbolic (``B``); a dict
    ``{flat_input_index: {dim: "name"}}`` chooses symbols explicitly.
    """
    if example_inputs is None:
        args: tuple = ()
    elif isinstance(example_inputs, tuple):
        args = example_inputs
    elif isinstance(example_inputs, list):
        args = tuple(example_inputs)
    else:
        args = (example_inputs,)
    kwargs = dict(example_kwarg_inputs or {})
    from ._capture import _is_module
    module = module_or_fn if _is_module(module_or_fn) else getattr(module_or_fn, "__self__", None)
    if module is not None and not _is_module(module):
        module = None
    gname = name or (type(module_or_fn).__name__ if _is_module(module_or_fn)
                     else getattr(module_or_fn, "__name__", "graph"))
    symbols = symbols_for(args, kwargs, dynamic)
    cap = capture(module_or_fn, args, kwargs, module=module, symbols=symbols, name=gname)
    if symbols:
        from ._compile import _check_symbolic
        _check_symbolic(cap.graph)
    traced = TracedModule(cap, backend)
    traced._fn = module_or_fn
    return traced


def symbols_for(args: tuple, kwargs: dict, dynamic: Union[bool, dict, None]) -> dict:
    """``dynamic`` -> {flat tensor index: {dim: symbol}}; equal dim-0 sizes share a symbol."""
    if not dynamic:
        return {}
    if isinstance(dynamic, dict):
        return {int(k): dict(v) for k, v in dynamic.items()}
    leaves: list = []
    flatten((args, kwargs), leaves)
    by_size: dict[int, str] = {}
    out: dict = {}
    for i, t in enumerate(leaves):
        if len(t.shape) == 0:
            continue
        n = t.shape[0]
        if n not in by_size:
            by_size[n] = "B" if not by_size else f"B{len(by_size)}"
        out[i] = {0: by_size[n]}
    return out


def load(path: str, backend: str = "eager") -> Callable:
    """Load a graph saved by ``TracedModule.save`` / ``ember.ir.save`` as a callable on tensors."""
    from ember.ir.serialize import load as load_graph

    from ._compile import GraphFunction
    graph, weights = load_graph(path)
    return GraphFunction(graph, weights, backend)
