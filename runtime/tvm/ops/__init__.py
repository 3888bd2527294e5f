"""Relax lowerings of every primitive, one module per op family (importing registers them)."""

from . import creation, elementwise, indexing, linalg, movement, nn, reduction  # noqa: F401
