"""``ember.save`` / ``ember.load`` in PyTorch's zip checkpoint format.

A checkpoint is an uncompressed zip archive: ``<prefix>/data.pkl`` (a protocol-2
pickle whose tensors are ``torch._utils._rebuild_tensor_v2`` calls on storages named
by persistent ids ``('storage', torch.FloatStorage, key, 'cpu', numel)``) and one raw
little-endian ``<prefix>/data/<key>`` entry per storage. Writing PyTorch's own layout
means ``torch.load`` reads ember files and ``ember.load`` reads ``torch.save`` files;
neither side needs the other installed (ember maps the ``torch.*`` names itself).

``weights_only=True`` (the default) unpickles through an allow-list of constructors,
so a file cannot run arbitrary code; ``weights_only=False`` is plain pickle (whole
modules). Saves to a path are atomic: temp file in the same directory, fsync, rename.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import tempfile
import zipfile
from typing import Any, BinaryIO, Callable

import numpy as np

from ember.ir import types as _t

from ._tensor import Size, Tensor, _wrap, device

__all__ = ["save", "load", "DEFAULT_PROTOCOL"]

DEFAULT_PROTOCOL = 2
_ALIGN = 64

# dtype <-> legacy storage class names used in PyTorch's persistent ids
_STORAGE_OF = {_t.float32: "FloatStorage", _t.float64: "DoubleStorage", _t.float16: "HalfStorage",
               _t.bfloat16: "BFloat16Storage", _t.int64: "LongStorage", _t.int32: "IntStorage",
               _t.int16: "ShortStorage", _t.int8: "CharStorage", _t.uint8: "ByteStorage", _t.bool_: "BoolStorage"}
_DTYPE_OF_STORAGE = {v: k for k, v in _STORAGE_OF.items()}
_DTYPE_NAMES = {"float32": _t.float32, "float": _t.float32, "float64": _t.float64, "double": _t.float64,
                "float16": _t.float16, "half": _t.float16, "bfloat16": _t.bfloat16, "int64": _t.int64,
                "long": _t.int64, "int32": _t.int32, "int": _t.int32, "int16": _t.int16, "short": _t.int16,
                "int8": _t.int8, "uint8": _t.uint8, "bool": _t.bool_}


# ===================================================================== writing
class _Global:
    """A reference to ``module.name`` written into the pickle without importing it (e.g. torch's)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists a reduce function be callable; it is never called here
        raise RuntimeError(f"{self.module}.{self.name} is a reference for torch, not callable in ember")


class _StorageRef:
    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_DTYPE_GLOBALS = {d: _Global("torch", d.name) for d in _t.ALL_DTYPES}


class _Writer(pickle._Pickler):
    """Pure-Python pickler (it lets us emit ``torch.*`` globals) that diverts tensor data to storages."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, protocol: int) -> None:
        super().__init__(file, protocol)
        self.storages: dict[str, np.ndarray] = {}
        self._keys: dict[int, _StorageRef] = {}
        self._keep: list = []  # keeps saved arrays alive so id() stays unique

    def _save_global_ref(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[_Global] = _save_global_ref

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _Global("torch", _STORAGE_OF[obj.dtype]), obj.key, "cpu", obj.numel)
        return None

    def _storage(self, t: Tensor) -> _StorageRef:
        ref = self._keys.get(id(t))
        if ref is None:
            data = t._data
            if data is None:
                raise RuntimeError("ember.save: cannot save a tensor being traced (it has no data)")
            arr = np.ascontiguousarray(data)
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            ref = _StorageRef(str(len(self.storages)), t.dtype, int(arr.size))
            self.storages[ref.key] = arr
            self._keys[id(t)] = ref
            self._keep.append(t)
        return ref

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            ref = self._storage(obj)
            shape = tuple(obj.shape)
            strides = tuple(int(s) for s in _contiguous_strides(shape))
            rebuilt = (_REBUILD_TENSOR, (ref, 0, shape, strides, bool(obj.requires_grad), collections.OrderedDict()))
            if type(obj).__name__ == "Parameter":
                plain = _wrap(obj._data)
                self._keys[id(plain)] = ref
                self._keep.append(plain)
                return (_REBUILD_PARAMETER, (plain, bool(obj.requires_grad), collections.OrderedDict()))
            return rebuilt
        if isinstance(obj, device):
            return (_Global("torch", "device"), (str(obj),))
        if isinstance(obj, Size):
            return (_Global("torch", "Size"), (tuple(obj),))
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _t.DType):  # a dtype is a global (torch.float32), not a reduce call
            obj = _DTYPE_GLOBALS[obj]
        super().save(obj, save_persistent_id)


def _contiguous_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return list(reversed(strides))


def _zip_bytes(obj: Any, protocol: int) -> Callable[[BinaryIO], None]:
    buf = io.BytesIO()
    writer = _Writer(buf, protocol)
    writer.dump(obj)
    pkl = buf.getvalue()

    def write(fileobj: BinaryIO) -> None:
        with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            prefix = "archive/"
            _write_entry(zf, prefix + "data.pkl", pkl)
            _write_entry(zf, prefix + ".format_version", b"1")
            _write_entry(zf, prefix + ".storage_alignment", str(_ALIGN).encode())
            _write_entry(zf, prefix + "byteorder", b"little")
            for key, arr in writer.storages.items():
                _write_entry(zf, f"{prefix}data/{key}", arr.tobytes())
            _write_entry(zf, prefix + "version", b"3\n")
            _write_entry(zf, prefix + ".data/serialization_id", os.urandom(20).hex().encode())
    return write


def _write_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Write one stored entry whose data starts on a 64-byte boundary (mmap-friendly, as PyTorch)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 0
    offset = zf.fp.tell() if hasattr(zf.fp, "tell") else 0
    header = 30 + len(name.encode("utf-8"))
    pad = (-(offset + header + 4)) % _ALIGN
    info.extra = b"FB" + pad.to_bytes(2, "little") + b"Z" * pad
    zf.writestr(info, data)


def save(obj: Any, f, pickle_module=None, pickle_protocol: int = DEFAULT_PROTOCOL,
         _use_new_zipfile_serialization: bool = True, _disable_byteorder_record: bool = False) -> None:
    """Save ``obj`` (tensors, state dicts, containers, modules) to a path or binary file object."""
    write = _zip_bytes(obj, pickle_protocol)
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(os.fspath(f), write)
        return
    if not hasattr(f, "write"):
        raise AttributeError(f"ember.save: expected a path or a writable binary file object, got {type(f).__name__}")
    write(f)
    if hasattr(f, "flush"):
        f.flush()


def _atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RuntimeError(f"Parent directory {directory} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# ===================================================================== reading
class _StorageType:
    """What ``torch.FloatStorage`` & co. become when read: just their dtype."""

    def __init__(self, dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    arr = _view(storage, storage_offset, size, stride)
    t = _wrap(arr)
    t.requires_grad = bool(requires_grad) and t.dtype.is_floating_point
    return t


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _view(storage: np.ndarray, offset: int, size, stride) -> np.ndarray:
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    numel = int(np.prod(size)) if size else 1
    if numel == 0:
        return np.zeros(size, dtype=storage.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride))
    if offset < 0 or last >= storage.size:
        raise RuntimeError(f"ember.load: corrupt checkpoint: tensor of size {list(size)} at offset {offset} does not "
                           f"fit its storage of {storage.size} elements")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=tuple(s * item for s in stride))
    return np.array(view, copy=True)


def _rebuild_parameter(data, requires_grad, backward_hooks=None):
    return _as_parameter(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    p = _as_parameter(data, requires_grad)
    for k, v in (state or {}).items():
        setattr(p, k, v)
    return p


def _as_parameter(data: Tensor, requires_grad: bool):
    try:
        from .nn.parameter import Parameter
    except Exception:  # noqa: BLE001 - ember.nn not available: a plain tensor that requires grad
        Parameter = None
    if Parameter is None:
        data.requires_grad = bool(requires_grad)
        return data
    return Parameter(data, requires_grad=bool(requires_grad))


def _torch_device(spec, index=None):
    return device(spec, index) if index is not None else device(spec)


def _torch_size(dims=()):
    return Size(dims)


def _dtype_global(name: str):
    return _DTYPE_NAMES[name]


def _safe_globals() -> dict[tuple[str, str], Any]:
    """The allow-list of ``weights_only=True``: containers, tensors and their rebuild functions only."""
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("collections", "Counter"): collections.Counter,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
        ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): _codecs_encode,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch", "device"): _torch_device, ("torch", "Size"): _torch_size,
        ("ember", "device"): _torch_device, ("ember._tensor", "device"): _torch_device,
        ("ember._tensor", "Size"): _torch_size,
        ("ember.ir.types", "from_name"): _t.from_name,
    }
    for name in _DTYPE_NAMES:
        table[("torch", name)] = _DTYPE_NAMES[name]
    for name, dtype in _DTYPE_OF_STORAGE.items():
        table[("torch", name)] = _StorageType(dtype)
    table[("torch", "UntypedStorage")] = _StorageType(_t.uint8)
    return table


def _codecs_encode(obj, encoding="utf-8"):
    import codecs
    return codecs.encode(obj, encoding)


class _Reader(pickle.Unpickler):
    def __init__(self, file, zf: zipfile.ZipFile, prefix: str, weights_only: bool, map_location) -> None:
        super().__init__(file)
        self.zf, self.prefix, self.weights_only, self.map_location = zf, prefix, weights_only, map_location
        self.loaded: dict[str, np.ndarray] = {}
        self.safe = _safe_globals()

    def find_class(self, module: str, name: str):
        found = self.safe.get((module, name))
        if found is not None:
            return found
        if self.weights_only:
            raise pickle.UnpicklingError(
                "Weights only load failed. In ember.load, weights_only=True by default: the file refers to "
                f"{module}.{name}, which is not on the allow-list of safe constructors (tensors, state dicts, "
                "containers, numbers and strings). Re-running ember.load with weights_only=False will likely "
                "succeed, but it can result in arbitrary code execution. Do it only if you got the file from a "
                "trusted source.")
        if module.startswith("torch"):
            mapped = _map_torch_global(module, name)
            if mapped is not None:
                return mapped
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"ember.load: unsupported persistent id {pid!r}")
        _, storage_type, key, location, numel = pid[:5]
        _check_location(location, self.map_location)
        arr = self.loaded.get(key)
        if arr is None:
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else _t.uint8
            try:
                raw = self.zf.read(f"{self.prefix}data/{key}")
            except KeyError:
                raise RuntimeError(f"ember.load: corrupt checkpoint: storage {key!r} is missing") from None
            arr = np.frombuffer(raw, dtype=dtype.np.newbyteorder("<") if dtype.np.itemsize > 1 else dtype.np)
            if arr.dtype.byteorder == ">" or (sys.byteorder == "big" and arr.dtype.itemsize > 1):
                arr = arr.astype(dtype.np)
            if arr.size != int(numel):
                raise RuntimeError(f"ember.load: corrupt checkpoint: storage {key!r} holds {arr.size} elements, "
                                   f"expected {numel}")
            self.loaded[key] = arr
        return arr


def _map_torch_global(module: str, name: str):
    """``weights_only=False``: torch classes a pickle may name, mapped onto ember's."""
    import importlib
    if module == "torch.nn.parameter" and name == "Parameter":
        return importlib.import_module("ember.nn").Parameter
    target = "ember" + module[len("torch"):]
    try:
        return getattr(importlib.import_module(target), name)
    except (ImportError, AttributeError):
        return None


def _check_location(location: str, map_location) -> None:
    target = map_location
    if isinstance(map_location, dict):
        target = map_location.get(location, location)
    elif callable(map_location):
        return
    if target is None:
        target = location
    target = str(target)
    if target.startswith("cuda"):
        from . import cuda
        if not cuda.is_available():
            raise RuntimeError("Attempting to deserialize object on a CUDA device but ember.cuda.is_available() is "
                               "False. If you are running on a CPU-only machine, please use ember.load with "
                               "map_location=ember.device('cpu') to map your storages to the CPU.")


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap: bool | None = None,
         **pickle_load_args) -> Any:
    """Load an object saved by ``ember.save`` or ``torch.save`` (zip format)."""
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file object>")
    if isinstance(f, (str, os.PathLike)):
        if not os.path.exists(name):
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{name}'")
        with open(name, "rb") as fh:
            return _load_from(fh, name, map_location, weights_only)
    return _load_from(f, name, map_location, weights_only)


def _load_from(fh, name: str, map_location, weights_only: bool):
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as err:
        head = b""
        try:
            fh.seek(0)
            head = fh.read(2)
        except Exception:  # noqa: BLE001
            pass
        if head[:1] == b"\x80":
            raise RuntimeError(f"ember.load: {name} is in PyTorch's legacy (pre-1.6, non-zip) format, which ember "
                               "does not read; re-save it with a recent torch.save.") from None
        raise RuntimeError(f"ember.load: {name} is not a valid checkpoint (truncated or corrupt zip archive: "
                           f"{err})") from None
    with zf:
        names = zf.namelist()
        pkl_names = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl_names:
            raise RuntimeError(f"ember.load: {name} is not a valid checkpoint (no data.pkl record found)")
        prefix = pkl_names[0][: -len("data.pkl")]
        try:
            pkl = zf.read(pkl_names[0])
            reader = _Reader(io.BytesIO(pkl), zf, prefix, weights_only, map_location)
            return reader.load()
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
            raise RuntimeError(f"ember.load: {name} is corrupt ({type(err).__name__}: {err})") from None
        except pickle.UnpicklingError as err:
            if "Weights only load failed" in str(err):
                raise
            raise RuntimeError(f"ember.load: {name} is corrupt (UnpicklingError: {err})") from None
