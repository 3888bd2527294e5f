"""``torch.compiler`` (and ``torch._dynamo``'s ``reset``): forget every compiled graph in the process."""

from __future__ import annotations


def reset() -> None:
    """Drop the graphs every ``ember.compile``d function cached; the next call of each captures again."""
    from .jit._compile import reset_all
    reset_all()


def is_compiling() -> bool:
    """True while ember traces a program (inside ``ember.compile``'s capture)."""
    from . import _state
    return _state.tracer is not None
