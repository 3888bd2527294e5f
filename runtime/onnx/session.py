"""ONNX Runtime sessions and the ``"onnxruntime"`` backend of ``ember.compile``.

``OrtCompiledGraph`` lowers a graph (every input stays a graph input, parameters
included), opens one ``InferenceSession`` and runs it through IO binding:

- inputs are wrapped as ``OrtValue``s without copying (CPU), and an input whose
  array is the very object this session returned last call (a parameter or
  optimizer state written back by the caller) reuses its ``OrtValue``, so on a
  device provider weights and optimizer state stay resident;
- outputs are allocated by ONNX Runtime and handed back as numpy views of its
  buffers (no copy on CPU);
- on CPU, a written-back output (new parameter, optimizer state, gradient) whose
  old value nothing in the graph reads after the output's producer ran is bound
  to the *input's own buffer*: ONNX Runtime writes the new value in place and the
  caller gets the input array back, so its write-back copy is skipped and views of
  parameters keep seeing the values (see ``inplace_writes``);
- on CPU, a zero-copy ``OrtValue`` wrapping an input array is kept while the caller
  feeds that same array object again (parameters and state every step).

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


# Workers spin between the operators of a run (ONNX Runtime's own default). Measured on the 2-core VM,
# each contestant in its own process, medians of 5 runs (ms per training step, 2 threads): MLP b64
# 2.84 -> 2.77, b512 12.07 -> 11.73, digits CNN 8.08 -> 6.78 (PyTorch eager: 3.19, 11.11, 4.83). A
# sleeping worker must be woken for every parallel operator otherwise. On a machine where other
# processes hold the cores, spinning loses (MLP b64 5.2 vs 8.4 ms): EMBER_ORT_SPIN=0 turns it off.
_SPIN_DEFAULT = "1"


def _program_threads() -> int:
    """What the program asked for with ``ember.set_num_threads`` (0: ONNX Runtime's default)."""
    try:
        from ember._settings import default_threads
    except ImportError:  # pragma: no cover - the runtime without the frontend
        return 0
    return default_threads() or 0


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
        # TF32 off: float32 matmuls keep float32 precision, as PyTorch's matmul default
        # (torch.backends.cuda.matmul.allow_tf32 = False) and ember's CPU backends do
        return [(_PROVIDERS["cuda"], {"device_id": int(index or 0), "use_tf32": "0"}), _PROVIDERS["cpu"]]
    return [_PROVIDERS["cpu"]]


def _provider_name(p) -> str:
    return p[0] if isinstance(p, tuple) else p


def make_session(model_bytes: bytes, providers: list, *, threads: int | None = None,
                 optimization: str = "all", spin: bool | None = None,
                 execution_mode: str = "sequential") -> ort.InferenceSession:
    """Open a session and check that every provider asked for actually started.

    ``spin``: whether ONNX Runtime's intra-op worker threads spin between the operators of one run
    (default: ``EMBER_ORT_SPIN``, else on; see ``_SPIN_DEFAULT``). Spinning never outlives a run
    (``session.force_spinning_stop``), so idle workers don't take the CPU from ember's Python work
    between steps. ``execution_mode``: ``"sequential"`` or ``"parallel"`` (independent operators
    concurrently).
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimization]
    so.log_severity_level = 3
    if spin is None:
        spin = os.environ.get("EMBER_ORT_SPIN", _SPIN_DEFAULT) == "1"
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.add_session_config_entry("session.force_spinning_stop", "1")
    if execution_mode not in ("sequential", "parallel"):
        raise ValueError(f"onnxruntime backend: execution_mode must be 'sequential' or 'parallel', "
                         f"got {execution_mode!r}")
    so.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if execution_mode == "parallel"
                         else ort.ExecutionMode.ORT_SEQUENTIAL)
    if threads is None:
        threads = int(os.environ.get("EMBER_ORT_THREADS", "0")) or _program_threads()
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


# ops whose output element j reads only element j of each same-shaped input: writing the output
# into an input's buffer is safe while the kernel runs
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Neg", "Where", "Relu", "Abs", "Sqrt", "Exp", "Log",
                          "Max", "Min", "Pow", "Reciprocal", "Sigmoid", "Tanh", "Clip", "Identity"})


def inplace_writes(model, writes: dict[int, int]) -> dict[int, int]:
    """The subset of ``writes`` (output index -> input index) that may write into the input's buffer.

    Output ``o`` may overwrite input ``i`` when every other node reading ``i`` is an ancestor of
    ``o``'s producer ``P`` (so it has run before ``P`` writes), and ``P`` either does not read ``i``
    or is elementwise over an ``i``-shaped result. ONNX Runtime only runs a node after its inputs
    exist, whatever its execution order or fusions; a fusion into ``P`` keeps ``P``'s readers.
    """
    g = model.graph
    producer = {o: n for n in g.node for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in g.node:
        for x in set(n.input):
            consumers.setdefault(x, []).append(n)
    in_names = [x.name for x in g.input]
    out_names = [x.name for x in g.output]

    def shape(vi):
        return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                     for d in vi.type.tensor_type.shape.dim)

    def ancestors(node) -> set:
        seen, stack = set(), [node]
        while stack:
            n = stack.pop()
            for x in n.input:
                p = producer.get(x)
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    stack.append(p)
        return seen

    safe, targets = {}, set()
    for o, i in writes.items():
        name_in, name_out = in_names[i], out_names[o]
        p = producer.get(name_out)
        if p is None or i in targets or name_in in out_names:
            continue
        if shape(g.input[i]) != shape(g.output[o]) or any(isinstance(d, str) for d in shape(g.input[i])):
            continue
        if g.input[i].type.tensor_type.elem_type != g.output[o].type.tensor_type.elem_type:
            continue
        if name_in in p.input and p.op_type not in _ELEMENTWISE:
            continue
        before = ancestors(p)
        if all(n is p or id(n) in before for n in consumers.get(name_in, [])):
            safe[o] = i
            targets.add(i)
    return safe


class OrtCompiledGraph:
    """A graph compiled for ONNX Runtime: ``compiled(inputs) -> outputs`` (numpy, graph order)."""

    def __init__(self, graph: Graph, options: dict | None = None) -> None:
        options = dict(options or {})
        self.graph = graph
        self.options = options
        self.device = str(options.get("device") or "cpu")
        self.providers = providers_for(self.device, options.get("providers"))
        self._variants: dict = {}
        self.run_models: dict = {}  # variant key -> the model the session runs (CPU rewrites applied)
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
        self._inplace: dict = {}  # variant key -> {output index: input index} written in place
        self._wrapped: dict[int, tuple] = {}  # id(array) -> (array, shape, OrtValue): CPU zero-copy wraps
        self._sticky: dict = {}  # variant key -> (OrtValue bound per input, per in-place output)
        self._sticky_binding = bool(self.options.get("sticky_binding", True))
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
            known_shapes: dict = {}
            model = graph_to_onnx(self.graph, opset=self.options.get("opset"), export_params=False,
                                  fuse_mode=self.options.get("fuse_mode", "inline"), bf16_io_as_f32=True,
                                  transposed_inputs=frozenset(names), transposed_outputs=frozenset(t_out),
                                  shapes_out=known_shapes)
            run_model = model
            on_cpu = _provider_name(self.providers[0]) == "CPUExecutionProvider"
            # the session's copy only: `model` stays plain ONNX
            if on_cpu and self.options.get("channel_affine", True):
                from .channel_affine import rewrite_channel_ops
                run_model = rewrite_channel_ops(run_model, known_shapes)
            if on_cpu and self.options.get("nchwc", True):
                from .nchwc import rewrite_convs
                run_model = rewrite_convs(run_model)
            sess = make_session(run_model.SerializeToString(), self.providers, threads=self.options.get("threads"),
                                optimization=self.options.get("optimization", "all"), spin=self.options.get("spin"),
                                execution_mode=self.options.get("execution_mode", "sequential"))
            self.run_models[key] = run_model
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
        key = (t_in, t_out)
        _, session, b, in_names = self._variant(key)
        cpu = self._ort_device == "cpu"
        # on CPU the binding persists between calls: an input or in-place output bound to the same
        # OrtValue as last call is not bound again (binding goes through several Python layers)
        sticky = self._sticky.setdefault(key, ([None] * len(in_names), [None] * len(self._out_types))) \
            if cpu and self._sticky_binding else None
        wrapped = {}
        reused: set = set()  # inputs fed as the very array (zero-copy wrapped) of last call
        bound = []
        for i, (name, arr, dt) in enumerate(zip(in_names, inputs, self._in_types)):
            hit = self._returned.get(id(arr))
            if hit is not None and hit[0] is arr:
                value = ort.OrtValue(hit[1])  # our own output of last call: already an OrtValue on the device
            elif cpu and (w := self._wrapped.get(id(arr))) is not None and w[0] is arr and w[1] == arr.shape:
                value = w[2]  # the same array as last call, wrapped without a copy: still its memory
                wrapped[id(arr)] = w
                reused.add(i)
            else:
                src = arr.T if i in t_in else arr
                value = to_ortvalue(src, dt, self._ort_device, self._device_id)
                if cpu and isinstance(arr, np.ndarray) and value.data_ptr() == src.ctypes.data and src.size:
                    wrapped[id(arr)] = (arr, arr.shape, value)
                if i in self._resident_idx:
                    self.uploads += 1
            bound.append(value)
            if sticky is None or sticky[0][i] is not value:
                b.bind_ortvalue_input(name, value)
                if sticky is not None:
                    sticky[0][i] = value
        self._wrapped = wrapped
        inplace = self._inplace_now(key, inputs, reused) if cpu else {}
        for o, name in enumerate(self._out_names(session)):
            i = inplace.get(o)
            if i is None:  # a fresh buffer every call: last call's outputs were handed out
                b.bind_output(name, self._ort_device, self._device_id)
                if sticky is not None:
                    sticky[1][o] = None
            elif sticky is None or sticky[1][o] is not bound[i]:
                b.bind_ortvalue_output(name, bound[i])
                if sticky is not None:
                    sticky[1][o] = bound[i]
        session.run_with_iobinding(b)
        # the raw output vector: wrapping every output in a Python OrtValue costs more than the reads
        values = b._iobinding.get_outputs() if hasattr(b, "_iobinding") else [v._ortvalue for v in b.get_outputs()]
        outs = [inputs[inplace[o]] if o in inplace else from_ortvalue(v, dt)
                for o, (v, dt) in enumerate(zip(values, self._out_types))]
        if sticky is None:
            b.clear_binding_inputs()
            b.clear_binding_outputs()
            self._sticky.pop(key, None)
        # remember what we handed out: when the caller feeds it back (a written-back parameter),
        # its OrtValue is reused instead of wrapping (or, on a GPU, uploading) it again
        self._returned = {id(a): (a, v) for i, (a, v) in enumerate(zip(outs, values))
                          if i not in t_out and i not in inplace}
        outs = [a.T if i in t_out else a for i, a in enumerate(outs)]
        self.calls += 1
        return outs

    def _out_names(self, session) -> list[str]:
        names = self.__dict__.setdefault("_out_name_cache", {})
        got = names.get(id(session))
        if got is None:
            got = names[id(session)] = [o.name for o in session.get_outputs()]
        return got

    def _inplace_now(self, key, inputs, reused: set) -> dict[int, int]:
        """The in-place writes this call can make: the input is a writable array ONNX Runtime reads
        without a copy, and no other input shares its memory. Among arrays fed again (kept alive by
        the wrap cache, so their ids are theirs) that is checked once; a newly fed array every call."""
        plan = self._inplace.get(key)
        if plan is None:
            t_in, t_out = key
            writes = {o: i for o, i in self._writes.items() if i not in t_in and o not in t_out}
            plan = self._inplace[key] = (inplace_writes(self._variants[key][0], writes)
                                         if self.options.get("inplace_outputs", True) else {})
        if not plan:
            return {}
        ids = tuple(id(inputs[j]) if j in reused else None for j in range(len(inputs)))
        last = self.__dict__.get("_inplace_last")
        if last is not None and last[0] == key and last[1] == ids:
            ok = last[2]
            if not all(inputs[i].flags.writeable for i in ok.values()):  # made read-only since
                ok = {o: i for o, i in ok.items() if inputs[i].flags.writeable}
        else:
            ok = {}
            for o, i in plan.items():
                a = inputs[i]
                if i not in reused or not a.flags.writeable:
                    continue
                if any(j != i and j in reused and np.may_share_memory(a, inputs[j]) for j in range(len(inputs))):
                    continue
                ok[o] = i
            self.__dict__["_inplace_last"] = (key, ids, ok)
        fresh = [x for j, x in enumerate(inputs) if j not in reused and isinstance(x, np.ndarray)]
        if fresh:
            ok = {o: i for o, i in ok.items() if not any(np.may_share_memory(inputs[i], x) for x in fresh)}
        return ok

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self(list(inputs))


def compile_onnxruntime(graph: Graph, options: dict) -> OrtCompiledGraph:
    """The ``"onnxruntime"`` backend: options ``device``, ``providers``, ``opset``, ``fuse_mode``, ``threads``,
    ``spin``, ``execution_mode`` (see ``make_session``), ``nchwc`` (default True: CPU convolutions in ONNX Runtime's
    blocked layout, see ``nchwc.py``), ``channel_affine`` (default True: CPU per-channel Mul/Add/Sub as
    BatchNormalization kernels, see ``channel_affine.py``), ``inplace_outputs`` (default True: written-back values go
    straight into their buffers where safe)."""
    return OrtCompiledGraph(graph, options)
