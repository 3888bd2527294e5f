"""Element types and tensor types of ember's IR.

A ``DType`` is the single dtype object used everywhere: ``ember.float32`` *is*
``ember.ir.types.float32``. A ``TensorType`` pairs a dtype with a shape whose
dimensions are ints or named symbols (``"B"``), so one captured graph can serve
many batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import ml_dtypes
import numpy as np

Dim = Union[int, str]


class DType:
    """A tensor element type. Instances are singletons compared by identity."""

    __slots__ = ("name", "short", "np", "is_floating_point", "is_signed", "itemsize", "category")

    def __init__(self, name: str, short: str, np_dtype, category: int, is_signed: bool) -> None:
        self.name = name
        self.short = short
        self.np = np.dtype(np_dtype)
        # promotion categories: 0 bool, 1 integer, 2 floating
        self.category = category
        self.is_floating_point = category == 2
        self.is_signed = is_signed
        self.itemsize = self.np.itemsize

    @property
    def is_complex(self) -> bool:
        return False

    def to_numpy(self) -> np.dtype:
        return self.np

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


float16 = DType("float16", "f16", np.float16, 2, True)
bfloat16 = DType("bfloat16", "bf16", ml_dtypes.bfloat16, 2, True)
float32 = DType("float32", "f32", np.float32, 2, True)
float64 = DType("float64", "f64", np.float64, 2, True)
int8 = DType("int8", "i8", np.int8, 1, True)
int16 = DType("int16", "i16", np.int16, 1, True)
int32 = DType("int32", "i32", np.int32, 1, True)
int64 = DType("int64", "i64", np.int64, 1, True)
uint8 = DType("uint8", "u8", np.uint8, 1, False)
bool_ = DType("bool", "bool", np.bool_, 0, False)

ALL_DTYPES: tuple[DType, ...] = (
    bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64,
)
FLOAT_DTYPES = (float16, bfloat16, float32, float64)
INT_DTYPES = (uint8, int8, int16, int32, int64)

# PyTorch's ScalarType names, used in its error messages ("result type Float can't be cast to Long")
SCALAR_TYPE_NAMES = {float16: "Half", bfloat16: "BFloat16", float32: "Float", float64: "Double", int8: "Char",
                     int16: "Short", int32: "Int", int64: "Long", uint8: "Byte", bool_: "Bool"}

_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({d.short: d for d in ALL_DTYPES})
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64,
                 "int": int32, "short": int16, "bool_": bool_})
_BY_NP = {d.np: d for d in ALL_DTYPES}


def from_name(name: str) -> DType:
    """Look up a dtype by its name (``float32``) or short name (``f32``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TypeError(f"unknown dtype {name!r}; known: {sorted(d.name for d in ALL_DTYPES)}") from None


def from_numpy(np_dtype) -> DType:
    """The ember dtype of a numpy dtype; float64/int64 stay as they are."""
    dt = _BY_NP.get(np_dtype)
    if dt is None:
        dt = _BY_NP.get(np.dtype(np_dtype))
        if dt is None:
            raise TypeError(f"numpy dtype {np.dtype(np_dtype)} has no ember equivalent; "
                            f"supported: {', '.join(d.name for d in ALL_DTYPES)}")
    return dt


# ---------------------------------------------------------------- promotion
# PyTorch's promotion lattice for the dtypes ember has.
_ORDER = {bool_: 0, uint8: 1, int8: 1, int16: 2, int32: 3, int64: 4,
          float16: 5, bfloat16: 5, float32: 6, float64: 7}


def promote_types(a: DType, b: DType) -> DType:
    """``torch.promote_types``: the smallest dtype both ``a`` and ``b`` convert to."""
    if a is b:
        return a
    if {a, b} == {uint8, int8}:
        return int16
    if {a, b} == {float16, bfloat16}:
        return float32
    return a if _ORDER[a] >= _ORDER[b] else b


def result_type(dims: list[DType], zerodims: list[DType], scalar_kinds: list[int],
                default_float: DType = float32) -> DType:
    """PyTorch's result type of an operation.

    ``dims`` are the dtypes of tensors with at least one dimension, ``zerodims``
    those of 0-d tensors, ``scalar_kinds`` the categories (0 bool, 1 int, 2 float)
    of Python scalars. A higher category always wins; within a category a
    dimensioned tensor beats a 0-d tensor beats a Python scalar.
    """
    res = None
    for d in dims:
        res = d if res is None else promote_types(res, d)
    cat = -1 if res is None else res.category
    zres = None
    for d in zerodims:
        zres = d if zres is None else promote_types(zres, d)
    if zres is not None and zres.category > cat:
        res, cat = zres, zres.category
    elif zres is not None and res is None:
        res = zres
    if scalar_kinds:
        skind = max(scalar_kinds)
        if skind > cat:
            res = {0: bool_, 1: int64, 2: default_float}[skind]
            if skind == 2 and cat == -1:
                res = default_float
    if res is None:
        raise TypeError("result_type needs at least one operand")
    return res


@dataclass(frozen=True)
class TensorType:
    """The static type of a graph value: dtype plus shape (ints or symbols)."""

    dtype: DType
    shape: tuple[Dim, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(str(d) for d in self.shape)}]"


class ShapeError(ValueError):
    """An op was given operands whose shapes or dtypes it cannot accept."""


def fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes) -> tuple[Dim, ...]:
    """NumPy/PyTorch broadcasting of shapes whose dims may be symbols."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(ndim):
        dim: Dim = 1
        for s in shapes:
            k = i - (ndim - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1:
                continue
            if dim == 1:
                dim = d
            elif d != dim:
                raise ShapeError(
                    "shapes " + " and ".join(fmt_shape(s) for s in shapes)
                    + f" are not broadcastable (dimension {i - ndim} is {dim} vs {d})")
        out.append(dim)
    return tuple(out)
