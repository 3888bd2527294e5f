"""The single dispatch point for primitive calls.

``bind(prim, inputs, attrs)`` hands the call to the current handler. The front end
installs the eager handler as the default (it runs numpy kernels on tensors and
records autograd tape entries, or records graph nodes when tracing); graph passes
push a graph-builder handler so that the very same gradient rules append IR nodes.
This is JAX's ``bind -> trace.process_primitive`` idea, reduced to a stack.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

Handler = Callable[[Any, tuple, dict], Any]

_default: list[Handler] = []
_stack: list[Handler] = []


def set_default_handler(handler: Handler) -> None:
    """Install the handler used when no other is pushed (the eager front end)."""
    _default[:] = [handler]


def bind(prim, inputs: tuple, attrs: dict):
    if _stack:
        return _stack[-1](prim, inputs, attrs)
    if not _default:
        raise RuntimeError(f"no handler for primitive {prim.name}: import ember first")
    return _default[0](prim, inputs, attrs)


@contextmanager
def handler(h: Handler) -> Iterator[None]:
    """Make ``h`` the handler of every primitive call inside the block."""
    _stack.append(h)
    try:
        yield
    finally:
        _stack.pop()
