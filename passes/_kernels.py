"""Access to the numpy kernels for passes that evaluate nodes (constant folding).

Imports point ``ir <- passes <- runtime``, so passes do not import the runtime at
module load. The runtime registers its kernel table here when it is imported
(``ember.runtime.fused``); if nothing registered yet, the table is loaded lazily
by name the first time a pass needs it (importing ember always loads it anyway).
"""

from __future__ import annotations

import importlib

_table: dict | None = None


def set_kernels(table: dict) -> None:
    global _table
    _table = table


def kernels() -> dict:
    if _table is None:
        importlib.import_module("ember.runtime.fused")  # registers the table
    assert _table is not None
    return _table
