"""The backend registry behind ``ember.compile(..., backend=NAME)``.

A backend compiles a ``Graph`` into a callable that takes the graph's inputs as
numpy arrays (in ``graph.inputs`` order) and returns its outputs as numpy arrays
(in ``graph.outputs`` order). ``"eager"`` is the numpy interpreter; the ONNX
Runtime and TVM backends register themselves under ``"onnxruntime"`` and ``"tvm"``.
Backends may keep inputs whose role is ``param``/``buffer``/``state`` resident
between calls (``CompiledGraph.resident`` says which).
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol, Sequence

import numpy as np

from ember.ir.graph import Graph


class CompiledGraph(Protocol):
    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


CompileFn = Callable[[Graph, dict], CompiledGraph]
BACKENDS: dict[str, CompileFn] = {}
# modules that register a backend when imported (kept lazy: onnxruntime and tvm are heavy)
_PROVIDERS = {"eager": "ember.runtime.interpreter", "onnxruntime": "ember.runtime.onnx",
              "tvm": "ember.runtime.tvm"}


def register_backend(name: str, compile_fn: CompileFn) -> None:
    BACKENDS[name] = compile_fn


def get_backend(name: str) -> CompileFn:
    if name not in BACKENDS and name in _PROVIDERS:
        importlib.import_module(_PROVIDERS[name])
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; available: {sorted(set(BACKENDS) | set(_PROVIDERS))}") from None


def compile_graph(graph: Graph, backend: str = "eager", options: dict | None = None) -> CompiledGraph:
    return get_backend(backend)(graph, dict(options or {}))
