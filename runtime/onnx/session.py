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
        self.options = options
        self.device = str(options.get("device") or "cpu")
        self.providers = providers_for(self.device, options.get("providers"))
        self._variants: dict = {}
        self.model, self.session, _, _ = self._variant((frozenset(), frozenset()))
        self._in_types = [v.dtype for v in graph.inputs]
        self._out_types = [v.dtype for v in graph.outputs]
        kind = _ORT_DEVICE.get(_provider_name(self.providers[0]), "cpu")
        self._ort_device = kind
        self._device_id = int(self.device.partition(":")[2] or 0) if kind == "cuda" else 0
        # inputs that may stay resident: parameters, buffers, optimizer state
        self.resident = {v.name for v in graph.inputs if graph.input_roles.get(v.name, ROLE_INPUT) != ROLE_INPUT}
        self._resident_idx = frozenset(i for i, v in enumerate(graph.inputs) if v.name in self.resident)
        self._returned: dict[int, tuple[np.ndarray, ort.OrtValue]] = {}  # id(array) -> (array, value)
        # output index -> index of the input it is the new value of (functionalized write-backs)
        in_index = {v.name: i for i, v in enumerate(graph.inputs)}
        self._writes: dict[int, int] = {}
        for idx, kind_, name in graph.meta.get("writeback", []):
            target = name if kind_ == "value" else f"{name}.grad" if kind_ == "grad" else None
            if target in in_index and idx >= 0:
                self._writes[int(idx)] = in_index[target]
        self.calls = 0
        self.uploads = 0  # resident inputs that had to be (re)wrapped or copied in

    def _variant(self, key):
        """(model, session, binding, input names) for a boundary layout: which 2-D inputs/outputs are transposed.

        Parameters and optimizer state that eager code created column-major (a gradient computed
        as a transposed product) are fed as their row-major ``.T`` and written back the same way,
        instead of being copied into row-major order every step.
        """
        v = self._variants.get(key)
        if v is None:
            t_in, t_out = key
            names = [self.graph.inputs[i].name for i in t_in]
            model = graph_to_onnx(self.graph, opset=self.options.get("opset"), export_params=False,
                                  fuse_mode=self.options.get("fuse_mode", "inline"), bf16_io_as_f32=True,
                                  transposed_inputs=frozenset(names), transposed_outputs=frozenset(t_out))
            sess = make_session(model.SerializeToString(), self.providers, threads=self.options.get("threads"),
                                optimization=self.options.get("optimization", "all"))
            v = self._variants[key] = (model, sess, sess.io_binding(), [i.name for i in model.graph.input])
        return v

    @staticmethod
    def _column_major(a) -> bool:
        return (isinstance(a, np.ndarray) and a.ndim == 2 and not a.flags.c_contiguous and a.flags.f_contiguous
                and a.shape[0] > 1 and a.shape[1] > 1)

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._in_types):
            raise ValueError(f"{self.graph.name}: expected {len(self._in_types)} inputs, got {len(inputs)}")
        t_in = frozenset(i for i in self._resident_idx if self._column_major(inputs[i]))
        t_out = frozenset(o for o, i in self._writes.items() if i in t_in)
        _, session, b, in_names = self._variant((t_in, t_out))
        for i, (name, arr, dt) in enumerate(zip(in_names, inputs, self._in_types)):
            hit = self._returned.get(id(arr))
            if hit is not None and hit[0] is arr:
                value = hit[1]  # our own output of last call: already an OrtValue on the device
            else:
                value = to_ortvalue(arr.T if i in t_in else arr, dt, self._ort_device, self._device_id)
                if i in self._resident_idx:
                    self.uploads += 1
            b.bind_ortvalue_input(name, value)
        out_names = [o.name for o in session.get_outputs()]
        for name in out_names:
            b.bind_output(name, self._ort_device, self._device_id)
        session.run_with_iobinding(b)
        values = b.get_outputs()
        outs = [from_ortvalue(v, dt) for v, dt in zip(values, self._out_types)]
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        # remember what we handed out: when the caller feeds it back (a written-back parameter),
        # its OrtValue is reused instead of wrapping (or, on a GPU, uploading) it again
        self._returned = {id(a): (a, v) for i, (a, v) in enumerate(zip(outs, values)) if i not in t_out}
        outs = [a.T if i in t_out else a for i, a in enumerate(outs)]
        self.calls += 1
        return outs

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self(list(inputs))


def compile_onnxruntime(graph: Graph, options: dict) -> OrtCompiledGraph:
    """The ``"onnxruntime"`` backend: options ``device``, ``providers``, ``opset``, ``fuse_mode``, ``threads``."""
    return OrtCompiledGraph(graph, options)
