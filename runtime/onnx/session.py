"""ONNX Runtime sessions and the ``"onnxruntime"`` backend of ``ember.compile``.

``OrtCompiledGraph`` lowers a graph (every input stays a graph input, parameters
included), opens one ``InferenceSession`` and runs it through IO binding:

- inputs are wrapped as ``OrtValue``s without copying (CPU), and an input whose
  array is the very object this session returned last call (a parameter or
  optimizer state written back by the caller) reuses its ``OrtValue``, so on a
  device provider weights and optimizer state stay resident;
- outputs are allocated by ONNX Runtime and handed back as numpy views of its
  buffers (no copy on CPU).

The device picks the execution provider. A provider that was asked for and
failed to start raises ``ProviderError``; it is never silently replaced.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import onnxruntime as ort

from ember.ir import types as T
from ember.ir.graph import ROLE_INPUT, Graph

from .lowering import graph_to_onnx


class ProviderError(RuntimeError):
    """An execution provider that was asked for did not start."""


_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
_ORT_DEVICE = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda"}


def providers_for(device: str | None, providers: Sequence | None = None) -> list:
    """The provider list for ``device`` ("cpu", "cuda", "cuda:1") or an explicit list."""
    if providers:
        return list(providers)
    kind, _, index = str(device or "cpu").partition(":")
    if kind not in _PROVIDERS:
        raise ValueError(f"onnxruntime backend: unknown device {device!r}; expected 'cpu' or 'cuda[:N]'")
    if kind == "cuda":
        if _PROVIDERS["cuda"] not in ort.get_available_providers():
            raise ProviderError("onnxruntime backend: device 'cuda' needs CUDAExecutionProvider, which this "
                                f"onnxruntime build lacks (available: {ort.get_available_providers()})")
        return [(_PROVIDERS["cuda"], {"device_id": int(index or 0)}), _PROVIDERS["cpu"]]
    return [_PROVIDERS["cpu"]]


def _provider_name(p) -> str:
    return p[0] if isinstance(p, tuple) else p


def make_session(model_bytes: bytes, providers: list, *, threads: int | None = None,
                 optimization: str = "all") -> ort.InferenceSession:
    """Open a session and check that every provider asked for actually started."""
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimization]
    so.log_severity_level = 3
    # idle worker threads spinning between runs steal the CPU from ember's own Python work (and
    # from anything else running) on small machines; EMBER_ORT_SPIN=1 turns spinning back on
    so.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("EMBER_ORT_SPIN", "0"))
    if threads is None:
        threads = int(os.environ.get("EMBER_ORT_THREADS", "0"))
    if threads:
        so.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(model_bytes, sess_options=so, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ProviderError(f"onnxruntime could not open the model with providers "
                            f"{[_provider_name(p) for p in providers]}: {exc}") from None
    started = set(sess.get_providers())
    missing = [_provider_name(p) for p in providers if _provider_name(p) not in started]
    if missing:
        raise ProviderError(f"execution provider(s) {missing} failed to start (session runs on "
                            f"{sess.get_providers()}); refusing to silently fall back")
    return sess


def to_ortvalue(arr: np.ndarray, dtype: T.DType, device: str = "cpu", device_id: int = 0) -> ort.OrtValue:
    if dtype is T.bfloat16:  # the session takes bfloat16 as float32 at its boundary (exact)
        dtype = T.float32
    arr = np.asarray(arr)
    if arr.dtype != dtype.np:
        arr = arr.astype(dtype.np)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    return ort.OrtValue.ortvalue_from_numpy(arr, device, device_id)


def from_ortvalue(v: ort.OrtValue, dtype: T.DType) -> np.ndarray:
    arr = v.numpy()
    if dtype is T.bfloat16:
        arr = arr.astype(dtype.np)
    return arr


class OrtCompiledGraph:
    """A graph compiled for ONNX Runtime: ``compiled(inputs) -> outputs`` (numpy, graph order)."""

    def __init__(self, graph: Graph, options: dict | None = None) -> None:
        options = dict(options or {})
        self.graph = graph
        self.device = str(options.get("device") or "cpu")
        self.providers = providers_for(self.device, options.get("providers"))
        self.model = graph_to_onnx(graph, opset=options.get("opset"), export_params=False,
                                   fuse_mode=options.get("fuse_mode", "inline"), bf16_io_as_f32=True)
        self.session = make_session(self.model.SerializeToString(), self.providers,
                                    threads=options.get("threads"), optimization=options.get("optimization", "all"))
        self._in_names = [i.name for i in self.model.graph.input]
        self._out_names = [o.name for o in self.model.graph.output]
        self._in_types = [v.dtype for v in graph.inputs]
        self._out_types = [v.dtype for v in graph.outputs]
        kind = _ORT_DEVICE.get(_provider_name(self.providers[0]), "cpu")
        self._ort_device = kind
        self._device_id = int(self.device.partition(":")[2] or 0) if kind == "cuda" else 0
        # inputs that may stay resident: parameters, buffers, optimizer state
        self.resident = {v.name for v in graph.inputs if graph.input_roles.get(v.name, ROLE_INPUT) != ROLE_INPUT}
        self._resident_idx = [i for i, v in enumerate(graph.inputs) if v.name in self.resident]
        self._cache: dict[int, tuple[int, ort.OrtValue]] = {}  # input index -> (id(array), OrtValue)
        self._returned: dict[int, tuple[np.ndarray, ort.OrtValue]] = {}  # id(array) -> (array, value)
        self._binding = self.session.io_binding()
        self.calls = 0
        self.uploads = 0  # resident inputs that had to be (re)wrapped or copied in

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._in_names):
            raise ValueError(f"{self.graph.name}: expected {len(self._in_names)} inputs, got {len(inputs)}")
        b = self._binding
        resident = set(self._resident_idx)
        for i, (name, arr, dt) in enumerate(zip(self._in_names, inputs, self._in_types)):
            hit = self._returned.get(id(arr))
            if hit is not None and hit[0] is arr:
                value = hit[1]  # our own output of last call: already an OrtValue on the device
            else:
                value = to_ortvalue(arr, dt, self._ort_device, self._device_id)
                if i in resident:
                    self.uploads += 1
            b.bind_ortvalue_input(name, value)
            if i in resident:
                self._cache[i] = (id(arr), value)
        for name in self._out_names:
            b.bind_output(name, self._ort_device, self._device_id)
        self.session.run_with_iobinding(b)
        values = b.get_outputs()
        outs = [from_ortvalue(v, dt) for v, dt in zip(values, self._out_types)]
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        # remember what we handed out: when the caller feeds it back (a written-back parameter),
        # its OrtValue is reused instead of wrapping (or, on a GPU, uploading) it again
        self._returned = {id(a): (a, v) for a, v in zip(outs, values)}
        self.calls += 1
        return outs

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self(list(inputs))


def compile_onnxruntime(graph: Graph, options: dict) -> OrtCompiledGraph:
    """The ``"onnxruntime"`` backend: options ``device``, ``providers``, ``opset``, ``fuse_mode``, ``threads``."""
    return OrtCompiledGraph(graph, options)
