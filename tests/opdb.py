"""ember's op database: sample inputs and references for every primitive and public function.

Two tables, in the spirit of PyTorch's OpInfo:

* ``primitive_cases()`` yields ``PrimCase`` objects, one per (primitive, sample): numpy
  ``inputs``, canonical ``attrs``, an independent numpy ``ref`` (computed in float64
  where that matters), tolerances, and whether the gradient check applies. Backends
  (the graph interpreter, ONNX, TVM) iterate it to compare themselves with the numpy
  kernels::

      from tests import opdb
      for case in opdb.primitive_cases():
          got = my_backend_run(case.prim, case.inputs, case.attrs)
          case.assert_close(got)                 # vs the reference, with the case's tolerances

* ``function_cases()`` yields ``FuncCase`` objects for the PyTorch-level API
  (``ember.add``, ``x @ y``, ``x.max(1)``, ``x[mask]``, ...): ``case.call(module, *tensors)``
  runs the same expression against ``ember`` or ``torch``; parity tests compare values,
  dtypes, shapes and gradients.

Samples cover edge cases: empty tensors, 0-d tensors, broadcasting, non-contiguous views
(numpy arrays with transposed/stepped strides), several dtypes and, at the function level,
mixed dtypes with Python scalars and 0-d tensors (type promotion).

Primitives defined outside this file (e.g. conv/pooling) contribute cases from a module
``tests/opdb_<area>.py`` defining ``primitive_cases()`` (and optionally ``function_cases()``);
such modules are picked up automatically.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ember.ir import PRIMITIVES, Primitive
from ember.ir import types as T

F32, F64, I64, I32, BOOL = np.float32, np.float64, np.int64, np.int32, np.bool_


# ====================================================================== cases
@dataclass
class PrimCase:
    """One sample of one primitive."""

    prim: Primitive
    inputs: tuple
    attrs: dict
    ref: Optional[Callable[..., np.ndarray]]  # ref(*inputs, **attrs); None: use ``check``
    desc: str = ""
    rtol: float = 1e-6
    atol: float = 1e-6
    grad: bool = True  # run the finite-difference gradient check (ignored for non-differentiable prims)
    check: Optional[Callable[[np.ndarray, "PrimCase"], None]] = None  # custom check (random ops)

    @property
    def name(self) -> str:
        return self.prim.name

    @property
    def id(self) -> str:
        return f"{self.prim.name}-{self.desc}" if self.desc else self.prim.name

    @property
    def differentiable(self) -> bool:
        return self.prim.vjp is not None and self.grad

    def input_types(self) -> list:
        return [T.TensorType(T.from_numpy(x.dtype), tuple(x.shape)) for x in self.inputs]

    def expected_type(self) -> T.TensorType:
        """The output type the primitive's type rule infers for these inputs."""
        return self.prim.infer(*self.input_types(), **self.attrs)

    def expected(self) -> np.ndarray:
        return np.asarray(self.ref(*self.inputs, **self.attrs))

    def assert_close(self, got, *, rtol: float | None = None, atol: float | None = None) -> None:
        """Check an output array against the reference and the type rule."""
        got = np.asarray(got)
        et = self.expected_type()
        assert tuple(got.shape) == tuple(et.shape), f"{self.id}: shape {got.shape} != {et.shape}"
        assert got.dtype == et.dtype.np, f"{self.id}: dtype {got.dtype} != {et.dtype.np}"
        if self.check is not None:
            self.check(got, self)
            return
        want = self.expected()
        assert tuple(want.shape) == tuple(got.shape), f"{self.id}: reference shape {want.shape} != {got.shape}"
        if got.dtype.kind in "biu":
            np.testing.assert_array_equal(got, want, err_msg=self.id)
        else:
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=self.rtol if rtol is None else rtol,
                                       atol=self.atol if atol is None else atol, equal_nan=True, err_msg=self.id)


@dataclass
class FuncCase:
    """One call of a public function/method/operator, runnable against ember or torch."""

    name: str
    fn: Callable  # fn(module, *converted_args) -> tensor | tuple | scalar
    args: tuple  # numpy arrays (become tensors), Python scalars (passed through)
    desc: str = ""
    rtol: float = 1e-5
    atol: float = 1e-6
    grad: bool = True  # compare gradients with torch (float tensor args require grad)
    kwargs: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.desc}" if self.desc else self.name

    def call(self, module, *args):
        return self.fn(module, *args, **self.kwargs)


# ====================================================================== helpers
def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def noncontig(a: np.ndarray) -> np.ndarray:
    """The same values in a non-contiguous layout (every other element of a wider buffer)."""
    if a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    big[..., ::2] = a
    out = big[..., ::2]
    assert not out.flags.c_contiguous or out.size <= 1
    return out


def away_from_zero(shape, seed, dtype=F32, lo=0.3, hi=2.0) -> np.ndarray:
    r = _rng(seed)
    return (r.uniform(lo, hi, shape) * r.choice([-1.0, 1.0], shape)).astype(dtype)


def uniform(shape, seed, lo=-2.0, hi=2.0, dtype=F32) -> np.ndarray:
    return _rng(seed).uniform(lo, hi, shape).astype(dtype)


def ints(shape, seed, lo=-5, hi=6, dtype=I64) -> np.ndarray:
    return _rng(seed).integers(lo, hi, shape).astype(dtype)


def f64(fn):
    """A reference computed in float64 and cast back to the input's dtype."""
    def ref(*xs, **attrs):
        dt = np.result_type(*[x.dtype for x in xs])
        out = fn(*[x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs], **attrs)
        return np.asarray(out).astype(dt)
    return ref


_erf64 = np.vectorize(math.erf, otypes=[np.float64])

# samples for elementwise ops: (desc, shape, layout)
_SHAPES = [("2d", (3, 4), False), ("0d", (), False), ("empty", (0, 3), False),
           ("noncontig", (4, 3), True), ("3d", (2, 3, 2), False)]


def _layout(a: np.ndarray, nc: bool) -> np.ndarray:
    return noncontig(a) if nc else a


# ====================================================================== primitives
def _unary_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    # name: (reference in float64, domain generator, extra dtypes, tolerances)
    table = {
        "neg": (np.negative, "any", (F64, I64, I32)),
        "abs": (np.abs, "nonzero", (F64, I64)),
        "exp": (np.exp, "any", (F64,)),
        "log": (np.log, "pos", (F64,)),
        "log1p": (np.log1p, "gt-1", (F64,)),
        "expm1": (np.expm1, "any", (F64,)),
        "sqrt": (np.sqrt, "pos", (F64,)),
        "rsqrt": (lambda x: 1.0 / np.sqrt(x), "pos", (F64,)),
        "sin": (np.sin, "any", (F64,)),
        "cos": (np.cos, "any", (F64,)),
        "tanh": (np.tanh, "any", (F64,)),
        "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), "any", (F64,)),
        "relu": (lambda x: np.where(x > 0, x, 0).astype(x.dtype), "nonzero", (F64, I64)),
        "erf": (_erf64, "any", (F64,)),
        "sign": (np.sign, "nonzero", (F64, I64)),
        "floor": (np.floor, "offint", (F64,)),
        "ceil": (np.ceil, "offint", (F64,)),
        "round": (np.round, "offint", (F64,)),
    }
    for k, (name, (ref, domain, dtypes)) in enumerate(table.items()):
        prim = P[name]

        def gen(shape, seed, dtype=F32, domain=domain):
            if dtype in (I64, I32):
                return ints(shape, seed, dtype=dtype)
            if domain == "pos":
                return uniform(shape, seed, 0.3, 3.0, dtype)
            if domain == "gt-1":
                return uniform(shape, seed, -0.7, 3.0, dtype)
            if domain == "nonzero":
                return away_from_zero(shape, seed, dtype)
            if domain == "offint":  # stay clear of the jumps of floor/ceil/round
                r = _rng(seed)
                return (r.integers(-3, 3, shape) + r.choice([0.2, 0.35, 0.65, 0.8], shape)).astype(dtype)
            return uniform(shape, seed, dtype=dtype)

        tol = dict(rtol=2e-6, atol=1e-6) if name not in ("exp", "expm1") else dict(rtol=3e-6, atol=1e-6)
        for j, (desc, shape, nc) in enumerate(_SHAPES):
            yield PrimCase(prim, (_layout(gen(shape, 100 * k + j), nc),), {}, f64(ref), desc, **tol)
        for dt in dtypes:
            yield PrimCase(prim, (gen((2, 3), 100 * k + 9, dt),), {}, f64(ref), np.dtype(dt).name, **tol)
    # special values
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0], F32)
    for name in ("isnan", "isinf", "logical_not", "neg", "abs", "sign", "exp", "tanh", "sigmoid"):
        refs = {"isnan": np.isnan, "isinf": np.isinf, "logical_not": np.logical_not,
                "neg": np.negative, "abs": np.abs, "sign": np.sign, "exp": np.exp, "tanh": np.tanh,
                "sigmoid": lambda x: np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))),
                                              np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))}
        ref = refs[name]
        with np.errstate(all="ignore"):
            yield PrimCase(P[name], (special,), {}, (lambda x, ref=ref: ref(x)) if name in
                           ("isnan", "isinf", "logical_not") else f64(ref), "special", grad=False)
    for name, ref in (("isnan", np.isnan), ("isinf", np.isinf)):
        yield PrimCase(P[name], (uniform((0, 2), 1),), {}, ref, "empty")
        yield PrimCase(P[name], (np.array(np.nan, F64),), {}, ref, "0d")
    for desc, x in (("2d", _rng(3).random((3, 4)) > 0.5), ("0d", np.array(True)),
                    ("empty", np.zeros((0,), bool)), ("noncontig", noncontig(_rng(4).random((3, 4)) > 0.5))):
        yield PrimCase(P["logical_not"], (x,), {}, np.logical_not, desc)


def _binary_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES

    def pair(name, k, shape, nc, dtype=F32):
        if dtype in (I64, I32, np.int8, np.uint8, np.int16):
            lo = 0 if dtype == np.uint8 else -6
            a, b = ints(shape, k, lo, 7, dtype), ints(shape, k + 1, lo, 7, dtype)
            if name in ("div", "remainder", "floor_divide"):
                b = np.where(b == 0, 3, b).astype(dtype)
            if name == "pow":
                a, b = ints(shape, k, 0, 4, dtype), ints(shape, k + 1, 0, 4, dtype)
            return a, b
        if name == "pow":
            return uniform(shape, k, 0.4, 2.5, dtype), uniform(shape, k + 1, -2.0, 2.0, dtype)
        if name in ("div", "remainder", "floor_divide"):
            a, b = uniform(shape, k, -3, 3, dtype), away_from_zero(shape, k + 1, dtype, 0.5, 2.0)
            if name in ("remainder", "floor_divide"):  # keep a/b off the integers (jumps)
                q = np.floor(a.astype(F64) / b) + _rng(k).choice([0.25, 0.5, 0.75], shape)
                a = (q * b).astype(dtype)
            return a, b
        return uniform(shape, k, dtype=dtype), uniform(shape, k + 1, dtype=dtype)

    arith = {
        "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
        "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
        "remainder": np.mod, "floor_divide": lambda a, b: np.floor(a / b),
    }
    cmp_ = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
            "gt": np.greater, "ge": np.greater_equal}
    for k, (name, ref) in enumerate({**arith, **cmp_}.items()):
        prim = P[name]
        for j, (desc, shape, nc) in enumerate(_SHAPES):
            a, b = pair(name, 50 * k + j, shape, nc)
            if name in cmp_:
                b = np.where(_rng(k + j).random(shape) < 0.3, a, b).astype(a.dtype)  # some equal pairs
            r = ref if name in cmp_ else f64(ref)
            yield PrimCase(prim, (_layout(a, nc), _layout(b, nc)), {}, r, desc, rtol=2e-6)
        for dt in (F64, I64, I32, np.uint8):
            if name == "div" and dt != F64:
                continue  # the front end casts integer division to float
            a, b = pair(name, 50 * k + 7, (2, 3), False, dt)
            r = ref if (name in cmp_ or dt != F64) else f64(ref)
            if name == "floor_divide" and dt != F64:
                r = np.floor_divide
            yield PrimCase(prim, (a, b), {}, r, np.dtype(dt).name)
    # ties: gradients split evenly between equal operands, as PyTorch (and central differences) agree
    a = uniform((2, 3), 5)
    b = a.copy()
    b[0] += 1.0
    for name in ("maximum", "minimum"):
        yield PrimCase(P[name], (a, b), {}, f64(arith[name]), "ties")
    # integer remainder / floor division with negative operands: Python semantics (as torch)
    a = np.array([-7, -7, 7, 7, 0], I64)
    b = np.array([2, -2, 2, -2, 3], I64)
    yield PrimCase(P["remainder"], (a, b), {}, np.mod, "int-signs")
    yield PrimCase(P["floor_divide"], (a, b), {}, np.floor_divide, "int-signs")
    # pow with a zero base and an integer-valued exponent
    yield PrimCase(P["pow"], (np.array([0.0, 2.0, 0.0], F64), np.array([2.0, 3.0, 0.0], F64)), {},
                   np.power, "zero-base", grad=False)
    # logical binaries on bool
    for name, ref in (("logical_and", np.logical_and), ("logical_or", np.logical_or),
                      ("logical_xor", np.logical_xor)):
        for desc, shape in (("2d", (3, 4)), ("0d", ()), ("empty", (0, 2))):
            r = _rng(len(name) + len(shape))
            yield PrimCase(P[name], (r.random(shape) > 0.5, r.random(shape) > 0.5), {}, ref, desc)


def _where_cast_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    for j, (desc, shape, nc) in enumerate(_SHAPES):
        c = _rng(j).random(shape) > 0.5
        a, b = uniform(shape, j), uniform(shape, j + 10)
        yield PrimCase(P["where"], (_layout(c, nc), _layout(a, nc), _layout(b, nc)), {}, np.where, desc)
    yield PrimCase(P["where"], (np.array([True, False]), np.array([1, 2], I64), np.array([3, 4], I64)), {},
                   np.where, "int64")
    # casts between all dtype families (float -> int truncates toward zero, as torch)
    x = np.array([[-2.7, -0.5, 0.0], [0.5, 1.5, 3.9]], F32)
    for dt in (T.float64, T.float16, T.bfloat16, T.int64, T.int32, T.int8, T.bool_):
        yield PrimCase(P["cast"], (x,), {"dtype": dt}, lambda x, dtype: x.astype(dtype.np), f"f32-{dt.name}",
                       rtol=1e-2 if dt in (T.float16, T.bfloat16) else 1e-6)
    i = np.array([-3, 0, 5, 200], I64)
    for dt in (T.float32, T.int32, T.uint8, T.bool_, T.float64):
        ref = (lambda x, dtype: x.astype(dtype.np)) if dt is not T.uint8 else \
            (lambda x, dtype: (x % 256).astype(np.uint8))
        yield PrimCase(P["cast"], (i,), {"dtype": dt}, ref, f"i64-{dt.name}")
    yield PrimCase(P["cast"], (np.array([True, False]),), {"dtype": T.float32},
                   lambda x, dtype: x.astype(np.float32), "bool-f32")
    yield PrimCase(P["cast"], (np.zeros((0, 2), F32),), {"dtype": T.int64},
                   lambda x, dtype: x.astype(np.int64), "empty")
    yield PrimCase(P["cast"], (noncontig(uniform((3, 2), 3)),), {"dtype": T.float64},
                   lambda x, dtype: x.astype(np.float64), "noncontig")


def _creation_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    v = uniform((2, 3), 1)
    yield PrimCase(P["constant"], (), {"value": v}, lambda value: value, "2d")
    yield PrimCase(P["constant"], (), {"value": np.array(3, I64)}, lambda value: value, "0d")
    for shape, value, dt in (((2, 3), 1.5, T.float32), ((), 7, T.int64), ((0, 4), 0, T.float32),
                             ((3,), True, T.bool_), ((2, 2), -1, T.int32)):
        yield PrimCase(P["full"], (), {"shape": shape, "value": value, "dtype": dt},
                       lambda shape, value, dtype: np.full(shape, value, dtype.np), f"{dt.name}{list(shape)}")

    def stats(lo, hi, mean=None, std=None, integer=False):
        def check(out, case):
            if out.size == 0:
                return
            assert out.min() >= lo and out.max() < hi, f"{case.id}: values outside [{lo}, {hi})"
            if mean is not None and out.size >= 1000:
                assert abs(out.astype(F64).mean() - mean) < 0.1 * max(std, 1), f"{case.id}: mean {out.mean()}"
                assert abs(out.astype(F64).std() - std) < 0.1 * max(std, 1), f"{case.id}: std {out.std()}"
            if integer:
                assert len(np.unique(out)) == hi - lo, f"{case.id}: not every integer drawn"
        return check

    yield PrimCase(P["uniform"], (), {"shape": (4000,), "low": -1.0, "high": 3.0, "dtype": T.float32}, None,
                   "f32", check=stats(-1.0, 3.0, 1.0, 4 / math.sqrt(12)))
    yield PrimCase(P["uniform"], (), {"shape": (0, 3), "low": 0.0, "high": 1.0, "dtype": T.float64}, None,
                   "empty", check=stats(0, 1))
    yield PrimCase(P["normal"], (), {"shape": (50, 80), "mean": 2.0, "std": 0.5, "dtype": T.float32}, None,
                   "f32", check=stats(-np.inf, np.inf, 2.0, 0.5))
    yield PrimCase(P["normal"], (), {"shape": (), "mean": 0.0, "std": 1.0, "dtype": T.float64}, None,
                   "0d", check=stats(-np.inf, np.inf))
    yield PrimCase(P["randint"], (), {"shape": (2000,), "low": -3, "high": 4, "dtype": T.int64}, None,
                   "i64", check=stats(-3, 4, integer=True))
    yield PrimCase(P["randint"], (), {"shape": (3, 3), "low": 0, "high": 10, "dtype": T.int32}, None,
                   "i32", check=stats(0, 10))


def _reduction_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    x = uniform((3, 4, 2), 7)
    nc = noncontig(uniform((4, 3), 8))
    refs = {"sum": np.sum, "prod": np.prod, "amax": np.amax, "amin": np.amin}
    for name, ref in refs.items():
        def r(x, *, dims, keepdim, ref=ref):
            return f64(lambda y: ref(y, axis=dims, keepdims=keepdim))(x)
        for dims in ((0,), (1,), (2,), (0, 2), (0, 1, 2)):
            for keepdim in (False, True):
                yield PrimCase(P[name], (x,), {"dims": dims, "keepdim": keepdim}, r,
                               f"dims{list(dims)}-keep{int(keepdim)}", rtol=1e-5)
        yield PrimCase(P[name], (nc,), {"dims": (1,), "keepdim": False}, r, "noncontig", rtol=1e-5)
        yield PrimCase(P[name], (np.array(2.5, F32),), {"dims": (), "keepdim": False}, r, "0d")
        yield PrimCase(P[name], (ints((3, 4), 2),), {"dims": (1,), "keepdim": False}, r, "int64")
        yield PrimCase(P[name], (uniform((2, 3), 9, dtype=F64),), {"dims": (0, 1), "keepdim": False}, r, "f64")
        if name in ("sum", "prod"):  # empty reductions give the identity
            yield PrimCase(P[name], (np.zeros((0, 3), F32),), {"dims": (0,), "keepdim": False}, r, "empty")
    # ties in amax/amin (two equal extremes share the gradient)
    t = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 0.5]], F64)
    yield PrimCase(P["amax"], (t,), {"dims": (1,), "keepdim": False}, lambda x, dims, keepdim: np.amax(x, 1),
                   "ties")
    yield PrimCase(P["amin"], (-t,), {"dims": (1,), "keepdim": False}, lambda x, dims, keepdim: np.amin(x, 1),
                   "ties")
    # prod with zeros: the gradient is the product of the other elements
    z = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, 2.0, -1.0]], F64)
    yield PrimCase(P["prod"], (z,), {"dims": (1,), "keepdim": False},
                   lambda x, dims, keepdim: np.prod(x, 1), "zeros")
    for name, ref in (("argmax", np.argmax), ("argmin", np.argmin)):
        def ra(x, *, dim, keepdim, ref=ref):
            if x.ndim == 0:
                return np.array(0, I64)
            return ref(x, axis=dim, keepdims=keepdim).astype(I64)
        for dim in (0, 1, 2):
            yield PrimCase(P[name], (x,), {"dim": dim, "keepdim": False}, ra, f"dim{dim}")
        yield PrimCase(P[name], (x,), {"dim": 1, "keepdim": True}, ra, "keepdim")
        yield PrimCase(P[name], (nc,), {"dim": 0, "keepdim": False}, ra, "noncontig")
        yield PrimCase(P[name], (np.array(1.0, F32),), {"dim": 0, "keepdim": False}, ra, "0d")
        yield PrimCase(P[name], (np.array([[1, 5, 5], [7, 7, 0]], I64),), {"dim": 1, "keepdim": False}, ra,
                       "first-of-ties")


def _movement_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    x = uniform((2, 3, 4), 11)
    nc = noncontig(uniform((4, 3), 12))
    for desc, inp, shape in (("merge", x, (6, 4)), ("split", x, (2, 3, 2, 2)), ("flat", x, (24,)),
                             ("0d-to-1", np.array(1.5, F32), (1, 1)), ("to-0d", np.ones((1, 1), F32), ()),
                             ("empty", np.zeros((0, 3), F32), (3, 0)), ("noncontig", nc, (12,))):
        yield PrimCase(P["reshape"], (inp,), {"shape": shape}, lambda a, shape: np.reshape(a, shape), desc)
    for desc, inp, dims in (("3d", x, (2, 0, 1)), ("2d", nc, (1, 0)), ("0d", np.array(2.0, F32), ()),
                            ("id", x, (0, 1, 2))):
        yield PrimCase(P["permute"], (inp,), {"dims": dims}, lambda a, dims: np.transpose(a, dims), desc)
    for desc, inp, shape in (("lead", uniform((3,), 1), (2, 3)), ("ones", uniform((3, 1), 2), (2, 3, 4)),
                             ("0d", np.array(1.0, F32), (2, 2)), ("empty", uniform((1, 3), 3), (0, 3)),
                             ("noncontig", noncontig(uniform((1, 3), 4)), (4, 1, 3))):
        yield PrimCase(P["broadcast_to"], (inp,), {"shape": shape}, lambda a, shape: np.broadcast_to(a, shape), desc)

    def sl(a, *, starts, stops, steps):
        return a[tuple(slice(*t) for t in zip(starts, stops, steps))]
    for desc, inp, spec in (("basic", x, ((0, 1, 1), (2, 3, 3), (1, 1, 1))),
                            ("steps", x, ((0, 0, 1), (2, 3, 4), (1, 2, 2))),
                            ("step3", uniform((8,), 5), ((1,), (8,), (3,))),
                            ("empty", x, ((0, 2, 0), (2, 2, 4), (1, 1, 1))),
                            ("noncontig", nc, ((1, 0), (4, 3), (2, 1))),
                            ("0d", np.array(3.0, F32), ((), (), ()))):
        yield PrimCase(P["slice"], (inp,), dict(zip(("starts", "stops", "steps"), spec)), sl, desc)
    for desc, inp, dims in (("one", x, (1,)), ("two", x, (0, 2)), ("noncontig", nc, (0,)),
                            ("empty", np.zeros((0, 2), F32), (1,))):
        yield PrimCase(P["flip"], (inp,), {"dims": dims}, lambda a, dims: np.flip(a, dims), desc)
    for desc, ins, dim in (("dim0", (uniform((2, 3), 1), uniform((1, 3), 2)), 0),
                           ("dim1", (uniform((2, 3), 1), uniform((2, 1), 2), uniform((2, 2), 3)), 1),
                           ("one", (uniform((2, 3), 4),), 0),
                           ("empty-part", (uniform((2, 3), 1), np.zeros((0, 3), F32)), 0),
                           ("noncontig", (nc, uniform((4, 2), 5)), 1),
                           ("int", (ints((2,), 1), ints((3,), 2)), 0)):
        yield PrimCase(P["concat"], ins, {"dim": dim}, lambda *a, dim: np.concatenate(a, dim), desc)
    for desc, inp, pads, value in (("2d", uniform((2, 3), 1), ((1, 0), (2, 1)), 0.0),
                                   ("value", uniform((3,), 2), ((2, 2),), -1.5),
                                   ("none", uniform((2, 2), 3), ((0, 0), (0, 0)), 0.0),
                                   ("empty", np.zeros((0, 2), F32), ((1, 1), (0, 0)), 0.0),
                                   ("noncontig", nc, ((0, 1), (1, 0)), 0.0)):
        yield PrimCase(P["pad"], (inp,), {"pads": pads, "value": value},
                       lambda a, pads, value: np.pad(a, pads, constant_values=value), desc)


def _index_add_ref(x, idx, src, *, dim):
    out = x.astype(F64).copy()
    xm, sm = np.moveaxis(out, dim, 0), np.moveaxis(src.astype(F64), dim, 0)
    flat_idx = idx.reshape(-1)
    sm = sm.reshape((flat_idx.size,) + xm.shape[1:])
    for k, i in enumerate(flat_idx):
        xm[i] += sm[k]
    return out.astype(x.dtype)


def _scatter_add_ref(x, idx, src, *, dim):
    out = x.astype(F64).copy()
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        out[tuple(tgt)] += src[pos]
    return out.astype(x.dtype)


def _indexing_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    x = uniform((4, 3), 21)
    take = lambda a, i, dim: np.take(a, i, axis=dim)  # noqa: E731
    yield PrimCase(P["take"], (x, np.array([2, 0, 2], I64)), {"dim": 0}, take, "dup")
    yield PrimCase(P["take"], (x, np.array([[1, 0], [2, 2]], I64)), {"dim": 1}, take, "2d-index")
    yield PrimCase(P["take"], (x, np.array(3, I64)), {"dim": 0}, take, "0d-index")
    yield PrimCase(P["take"], (x, np.zeros((0,), I64)), {"dim": 0}, take, "empty-index")
    yield PrimCase(P["take"], (noncontig(x), np.array([1, 0], I32)), {"dim": 1}, take, "noncontig-i32")
    yield PrimCase(P["index_add"], (x, np.array([0, 3, 0], I64), uniform((3, 3), 22)), {"dim": 0},
                   _index_add_ref, "dup")
    yield PrimCase(P["index_add"], (x, np.array([2, 1], I64), uniform((4, 2), 23)), {"dim": 1},
                   _index_add_ref, "dim1")
    yield PrimCase(P["index_add"], (x, np.zeros((0,), I64), np.zeros((0, 3), F32)), {"dim": 0},
                   _index_add_ref, "empty")
    gi = np.array([[0, 1, 0], [3, 3, 2]], I64)
    gat = lambda a, i, dim: np.take_along_axis(a, i, dim)  # noqa: E731
    yield PrimCase(P["gather"], (x, gi), {"dim": 0}, gat, "dim0")
    yield PrimCase(P["gather"], (x, np.array([[2, 0], [1, 1], [0, 0], [2, 2]], I64)), {"dim": 1}, gat, "dim1")
    yield PrimCase(P["gather"], (noncontig(x), gi), {"dim": 0}, gat, "noncontig")
    yield PrimCase(P["scatter_add"], (x, gi, uniform((2, 3), 24)), {"dim": 0}, _scatter_add_ref, "dim0")
    yield PrimCase(P["scatter_add"], (x, np.array([[2, 2], [0, 1], [1, 1], [0, 2]], I64), uniform((4, 2), 25)),
                   {"dim": 1}, _scatter_add_ref, "dim1")


def _linalg_cases() -> Iterator[PrimCase]:
    P = PRIMITIVES
    mm = f64(lambda a, b: np.einsum("...ij,...jk->...ik", a, b))
    yield PrimCase(P["matmul"], (uniform((3, 4), 1), uniform((4, 2), 2)), {}, mm, "2d", rtol=1e-5)
    yield PrimCase(P["matmul"], (uniform((2, 3, 4), 3), uniform((2, 4, 5), 4)), {}, mm, "batched", rtol=1e-5)
    yield PrimCase(P["matmul"], (noncontig(uniform((3, 4), 5)), noncontig(uniform((4, 3), 6))), {}, mm,
                   "noncontig", rtol=1e-5)
    yield PrimCase(P["matmul"], (uniform((0, 4), 7), uniform((4, 2), 8)), {}, mm, "empty-m")
    yield PrimCase(P["matmul"], (uniform((2, 0), 7), uniform((0, 3), 8)), {}, mm, "empty-k")
    yield PrimCase(P["matmul"], (uniform((2, 3), 9, dtype=F64), uniform((3, 2), 10, dtype=F64)), {}, mm, "f64")
    yield PrimCase(P["matmul"], (ints((2, 3), 1), ints((3, 2), 2)), {},
                   lambda a, b: np.einsum("ij,jk->ik", a, b), "int64")


_GENERATORS = [_unary_cases, _binary_cases, _where_cast_cases, _creation_cases, _reduction_cases,
               _movement_cases, _indexing_cases, _linalg_cases]


def _plugins():
    """``tests/opdb_<area>.py`` modules contributed by other areas (conv, pooling, ...)."""
    import tests
    mods = []
    for info in pkgutil.iter_modules(tests.__path__):
        if info.name.startswith("opdb_"):
            mods.append(importlib.import_module(f"tests.{info.name}"))
    return mods


def primitive_cases(name: str | None = None) -> Iterator[PrimCase]:
    """Every primitive sample (optionally only those of primitive ``name``)."""
    gens = list(_GENERATORS) + [m.primitive_cases for m in _plugins() if hasattr(m, "primitive_cases")]
    for gen in gens:
        for case in gen():
            if name is None or case.prim.name == name:
                yield case


def grad_cases() -> Iterator[PrimCase]:
    """Samples whose gradient is checked: differentiable primitives, inputs in float64."""
    for case in primitive_cases():
        if not case.differentiable or not any(x.dtype.kind == "f" for x in case.inputs):
            continue
        if not all(x.dtype in (np.dtype(F32), np.dtype(F64)) or x.dtype.kind in "iub" for x in case.inputs):
            continue
        if case.prim.name == "cast" and case.attrs["dtype"] not in (T.float32, T.float64):
            continue
        yield PrimCase(case.prim, tuple(x.astype(F64) if x.dtype.kind == "f" else x for x in case.inputs),
                       dict(case.attrs), case.ref, case.desc, grad=True)


# ====================================================================== public functions
def _f(name, **kw):
    """``module.name(*args)``."""
    return lambda m, *a, **k: getattr(m, name)(*a, **{**kw, **k})


def _m(name, *extra, **kw):
    """``args[0].name(*args[1:], *extra)``: a Tensor method."""
    return lambda m, x, *a, **k: getattr(x, name)(*a, *extra, **{**kw, **k})


def _function_table() -> list[FuncCase]:
    C = FuncCase
    a34, b34 = uniform((3, 4), 1), uniform((3, 4), 2)
    b4, b31 = uniform((4,), 3), uniform((3, 1), 4)
    pos = uniform((3, 4), 5, 0.5, 2.0)
    i34 = ints((3, 4), 6)
    i32 = ints((3, 4), 7, dtype=I32)
    s0 = np.array(1.5, F32)
    d0 = np.array(2.5, F64)
    i0 = np.array(3, I64)
    nz = away_from_zero((3, 4), 8)
    empty = np.zeros((0, 4), F32)
    ncx = noncontig(uniform((3, 4), 9))
    u8 = ints((4,), 10, 0, 9, np.uint8)
    i8 = ints((4,), 11, -5, 5, np.int8)
    h4 = uniform((4,), 12, dtype=np.float16)
    mask = _rng(13).random((3, 4)) > 0.5
    cases = [
        # --- arithmetic, broadcasting, reflected operators
        C("add", _f("add"), (a34, b34)), C("add", _f("add"), (a34, b4), "bcast"),
        C("add", _f("add"), (a34, b31), "bcast2"), C("add", _f("add"), (a34, 2), "int-scalar"),
        C("add", _f("add", alpha=2), (a34, b34), "alpha"), C("add", _f("add"), (a34, s0), "0d"),
        C("add", _f("add"), (empty, b4), "empty"), C("add", _f("add"), (ncx, b34), "noncontig"),
        C("sub", _f("sub"), (a34, b31)), C("mul", _f("mul"), (a34, b4)), C("div", _f("div"), (a34, nz)),
        C("__add__", lambda m, x: x + 2.5, (a34,)), C("__radd__", lambda m, x: 2.5 + x, (a34,)),
        C("__rsub__", lambda m, x: 1 - x, (a34,)), C("__rmul__", lambda m, x: 3 * x, (a34,)),
        C("__rtruediv__", lambda m, x: 2 / x, (nz,)), C("__pow__", lambda m, x: x ** 2, (a34,)),
        C("__pow__", lambda m, x: x ** 0.5, (pos,), "sqrt"), C("__pow__", lambda m, x: x ** -1, (nz,), "neg"),
        C("__rpow__", lambda m, x: 2 ** x, (a34,)), C("__pow__", lambda m, x, y: x ** y, (pos, b34), "tensor"),
        C("__neg__", lambda m, x: -x, (a34,)), C("__matmul__", lambda m, x, y: x @ y, (a34, uniform((4, 2), 1))),
        C("__floordiv__", lambda m, x: x // 0.7, (a34,), grad=False), C("__mod__", lambda m, x: x % 0.7, (a34,)),
        C("remainder", _f("remainder"), (i34, 3), "int"), C("remainder", _f("remainder"), (i34, -3), "int-neg"),
        C("floor_divide", _f("floor_divide"), (i34, 3), "int"),
        C("fmod", _f("fmod"), (uniform((3, 4), 1, -5, 5), 1.5)),
        # --- promotion: mixed dtypes, Python scalars and 0-d tensors
        C("add", _f("add"), (i34, 2.5), "int+float-scalar"), C("add", _f("add"), (i34, s0), "int+0d-float"),
        C("add", _f("add"), (a34, d0), "f32+0d-f64"), C("add", _f("add"), (i32, i0), "i32+0d-i64"),
        C("add", _f("add"), (i32, i34), "i32+i64"), C("add", _f("add"), (u8, i8), "u8+i8"),
        C("add", _f("add"), (h4, b4), "f16+f32"), C("add", _f("add"), (h4, 1.5), "f16+scalar"),
        C("add", _f("add"), (h4, d0), "f16+0d-f64"), C("mul", _f("mul"), (u8, True), "u8*bool"),
        C("mul", _f("mul"), (mask, 2), "bool*int"), C("add", _f("add"), (mask, mask), "bool+bool"),
        C("div", _f("div"), (i34, 2), "int/int"), C("div", _f("div"), (i34, 2, ), "floor", kwargs={
            "rounding_mode": "floor"}),
        C("div", _f("div"), (i34, 3), "trunc", kwargs={"rounding_mode": "trunc"}),
        C("mul", _f("mul"), (i0, s0), "0d*0d"), C("add", _f("add"), (i0, 2.5), "0d-int+scalar"),
        C("__truediv__", lambda m, x, y: x / y, (u8, u8 + 1), "u8/u8"),
        C("pow", _f("pow"), (i34 % 4, 2), "int"), C("pow", _f("pow"), (i34 % 4, 0.5), "int^float"),
        C("sub", _f("sub"), (i0, i32), "0d-i64-i32"),
        # --- unary math
        *[C(n, _f(n), (x,)) for n, x in (("exp", a34), ("log", pos), ("log1p", pos), ("expm1", a34),
                                         ("sqrt", pos), ("rsqrt", pos), ("abs", nz), ("sin", a34),
                                         ("cos", a34), ("tanh", a34), ("sigmoid", a34), ("relu", nz),
                                         ("sign", nz), ("floor", a34), ("ceil", a34), ("round", a34),
                                         ("neg", a34), ("erf", a34), ("trunc", a34), ("frac", a34),
                                         ("log2", pos), ("log10", pos), ("reciprocal", nz), ("square", a34),
                                         ("tan", a34))],
        *[C(n, _f(n), (i34 % 5 + 1,), "int") for n in ("exp", "log", "sqrt", "sin", "sigmoid", "tanh")],
        *[C(n, _f(n), (i34,), "int") for n in ("abs", "neg", "sign", "relu")],
        C("round", _f("round", decimals=1), (a34,), "decimals"),
        C("clamp", _f("clamp", min=-0.5), (a34,), "min"), C("clamp", _f("clamp", max=0.5), (a34,), "max"),
        C("clamp", _f("clamp", min=-0.5, max=0.5), (a34,), "both"),
        C("clamp", _f("clamp"), (a34, uniform((4,), 20, -1, 0), uniform((4,), 21, 0, 1)), "tensors"),
        C("clamp", _f("clamp", min=1), (i34,), "int"),
        C("where", lambda m, c, x, y: m.where(c, x, y), (mask, a34, b4)),
        C("where", lambda m, c, x: m.where(c, x, 0.0), (mask, a34), "scalar"),
        C("where", lambda m, c, x: m.where(c, x, 1), (mask, i34), "int-scalar"),
        C("maximum", _f("maximum"), (a34, b31)), C("minimum", _f("minimum"), (a34, b34)),
        C("maximum", _f("maximum"), (i32, i34), "int"),
        # --- comparisons and logic
        *[C(n, _f(n), (a34, b4)) for n in ("eq", "ne", "lt", "le", "gt", "ge")],
        C("__lt__", lambda m, x: x < 0.5, (a34,)), C("__ge__", lambda m, x: x >= 2, (i34,)),
        C("__eq__", lambda m, x: x == 1, (i34,)),
        C("logical_and", _f("logical_and"), (mask, mask.T.copy().T[::-1])),
        C("logical_or", _f("logical_or"), (mask, a34)), C("logical_xor", _f("logical_xor"), (i34, mask)),
        C("logical_not", _f("logical_not"), (i34,)),
        C("__and__", lambda m, x, y: x & y, (mask, mask[::-1].copy())),
        C("__or__", lambda m, x, y: x | y, (mask, mask[::-1].copy())),
        C("__invert__", lambda m, x: ~x, (mask,)), C("isnan", _f("isnan"), (np.array([0.0, np.nan], F32),)),
        # --- matmul
        C("matmul", _f("matmul"), (b4, uniform((4,), 30)), "1d@1d"),
        C("matmul", _f("matmul"), (a34, b4), "2d@1d"),
        C("matmul", _f("matmul"), (uniform((3,), 31), a34), "1d@2d"),
        C("matmul", _f("matmul"), (uniform((2, 3, 4), 32), uniform((2, 4, 5), 33)), "batched"),
        C("matmul", _f("matmul"), (uniform((2, 3, 4), 32), uniform((4, 5), 33)), "batched@2d"),
        C("matmul", _f("matmul"), (uniform((4,), 32), uniform((2, 4, 5), 33)), "1d@batched"),
        C("matmul", _f("matmul"), (uniform((2, 1, 3, 4), 34), uniform((5, 4, 2), 35)), "bcast-batch"),
        C("matmul", _f("matmul"), (ncx, uniform((4, 2), 36)), "noncontig"),
        C("mm", _f("mm"), (a34, uniform((4, 2), 37))), C("bmm", _f("bmm"), (uniform((2, 3, 4), 38),
                                                                             uniform((2, 4, 2), 39))),
        C("dot", _f("dot"), (b4, uniform((4,), 40))), C("mv", _f("mv"), (a34, b4)),
        C("outer", _f("outer"), (b4, uniform((3,), 41))),
        # --- reductions
        C("sum", _f("sum"), (a34,)), C("sum", _f("sum", dim=1), (a34,), "dim"),
        C("sum", _f("sum", dim=-1, keepdim=True), (a34,), "keepdim"),
        C("sum", _f("sum", dim=(0, 1)), (a34,), "dims"), C("sum", _f("sum"), (i32,), "int"),
        C("sum", _f("sum"), (mask,), "bool"), C("sum", _f("sum", dim=0), (empty,), "empty"),
        C("sum", _f("sum"), (s0,), "0d"), C("sum", lambda m, x: m.sum(x, dtype=m.float64), (a34,), "dtype"),
        C("sum", _f("sum", dim=0), (ncx,), "noncontig"),
        C("mean", _f("mean"), (a34,)), C("mean", _f("mean", dim=(0,), keepdim=True), (a34,), "dim"),
        C("prod", _f("prod"), (a34,)), C("prod", _f("prod", dim=1), (a34,), "dim"),
        C("prod", _f("prod", dim=0), (i34,), "int"),
        C("max", _f("max"), (a34,)), C("max", _f("max", dim=1), (a34,), "dim"),
        C("max", _f("max", dim=0, keepdim=True), (a34,), "keepdim"), C("min", _f("min"), (a34,)),
        C("min", _f("min", dim=-1), (a34,), "dim"), C("max", _f("max"), (a34, b34), "binary"),
        C("max", _f("max", dim=1), (i34,), "int-dim"),
        C("amax", _f("amax", dim=1), (a34,)), C("amin", _f("amin", dim=(0, 1)), (a34,)),
        C("argmax", _f("argmax"), (a34,)), C("argmax", _f("argmax", dim=1), (a34,), "dim"),
        C("argmin", _f("argmin", dim=0, keepdim=True), (a34,), "keepdim"),
        C("std", _f("std"), (a34,)), C("std", _f("std", dim=1), (a34,), "dim"),
        C("var", _f("var", dim=0, unbiased=False), (a34,), "biased"),
        C("var", _f("var", correction=0), (a34,), "correction"),
        C("var", _f("var", dim=1, keepdim=True), (a34,), "keepdim"),
        C("norm", _f("norm"), (a34,)), C("norm", _f("norm", p=1, dim=1), (nz,), "p1"),
        C("norm", _f("norm", dim=0), (a34,), "dim"),
        C("all", _f("all"), (mask,)), C("any", _f("any", dim=1), (mask,), "dim"),
        C("all", _f("all", dim=0), (i34,), "int"), C("any", _f("any"), (empty,), "empty"),
        C("logsumexp", _f("logsumexp", dim=1), (a34,)),
        C("logsumexp", _f("logsumexp", dim=(0, 1), keepdim=True), (a34 * 30,), "large"),
        C("cumsum", _f("cumsum", dim=1), (a34,)),
        # --- shape ops
        C("view", _m("view", -1), (a34,)), C("view", _m("view", 2, 6), (a34,), "2d"),
        C("view", _m("view", 4, -1), (a34,), "infer"), C("reshape", _f("reshape", shape=(2, -1)), (a34,)),
        C("reshape", _m("reshape", 4, 3), (ncx,), "noncontig"), C("reshape", _m("reshape", ()), (s0,), "0d"),
        C("transpose", _f("transpose", dim0=0, dim1=1), (a34,)),
        C("transpose", _m("transpose", -1, 0), (uniform((2, 3, 4), 50),), "3d"),
        C("permute", _m("permute", 2, 0, 1), (uniform((2, 3, 4), 51),)),
        C("permute", _m("permute", (1, 0)), (a34,), "tuple"),
        C("t", _f("t"), (a34,)), C("t", _f("t"), (b4,), "1d"), C("T", lambda m, x: x.T, (a34,)),
        C("mT", lambda m, x: x.mT, (uniform((2, 3, 4), 52),)),
        C("squeeze", _f("squeeze"), (uniform((3, 1, 2, 1), 53),)),
        C("squeeze", _m("squeeze", 1), (uniform((3, 1, 2), 54),), "dim"),
        C("squeeze", _m("squeeze", 0), (a34,), "noop"),
        C("unsqueeze", _m("unsqueeze", 0), (a34,)), C("unsqueeze", _m("unsqueeze", -1), (a34,), "neg"),
        C("unsqueeze", _m("unsqueeze", 0), (s0,), "0d"),
        C("flatten", _f("flatten"), (uniform((2, 3, 4), 55),)),
        C("flatten", _f("flatten", start_dim=1), (uniform((2, 3, 4), 55),), "start"),
        C("flatten", _f("flatten"), (s0,), "0d"),
        C("expand", _m("expand", 2, 3, 4), (b4,)), C("expand", _m("expand", -1, 4), (b31,), "minus1"),
        C("repeat", _m("repeat", 2, 1), (a34,)), C("repeat", _m("repeat", 2, 2, 3), (b4,), "newdims"),
        C("cat", lambda m, x, y: m.cat([x, y]), (a34, b34)),
        C("cat", lambda m, x, y: m.cat([x, y], dim=1), (a34, b31), "dim1"),
        C("cat", lambda m, x, y: m.cat((x, y), -1), (a34, i34), "promote"),
        C("cat", lambda m, x, y: m.cat([x, y]), (a34, empty), "empty"),
        C("stack", lambda m, x, y: m.stack([x, y]), (a34, b34)),
        C("stack", lambda m, x, y: m.stack([x, y], dim=2), (a34, b34), "dim2"),
        C("split", _f("split", split_size_or_sections=2), (a34,)),
        C("split", lambda m, x: m.split(x, [1, 3], dim=1), (a34,), "sizes"),
        C("chunk", _f("chunk", chunks=2, dim=1), (a34,)), C("chunk", _f("chunk", chunks=2), (a34,), "uneven"),
        C("contiguous", _m("contiguous"), (ncx,)), C("flip", _f("flip", dims=(0,)), (a34,)),
        C("unbind", _f("unbind"), (a34,)), C("narrow", _f("narrow", dim=1, start=1, length=2), (a34,)),
        C("movedim", _f("movedim", source=0, destination=2), (uniform((2, 3, 4), 56),)),
        C("roll", _f("roll", shifts=1, dims=1), (a34,)),
        C("tril", _f("tril"), (uniform((4, 4), 57),)), C("triu", _f("triu", diagonal=1), (uniform((4, 4), 58),)),
        C("gather", lambda m, x, i: m.gather(x, 1, i), (a34, np.array([[0, 0], [1, 3], [2, 1]], I64))),
        C("index_select", lambda m, x, i: m.index_select(x, 0, i), (a34, np.array([2, 0, 2], I64))),
        C("masked_fill", lambda m, x, k: x.masked_fill(k, -1.0), (a34, mask)),
        # --- in-place ops on non-leaf tensors (values and gradients through the in-place history)
        C("add_", lambda m, x, y: (x * 1).add_(y), (a34, b4)),
        C("mul_", lambda m, x, y: (x * 1).mul_(y), (a34, b31)),
        C("sub_", lambda m, x: (x * 1).sub_(0.5, alpha=2), (a34,)),
        C("div_", lambda m, x, y: (x * 1).div_(y), (a34, nz)),
        C("clamp_", lambda m, x: (x * 1).clamp_(-0.5, 0.5), (a34,)),
        C("zero_", lambda m, x: (x * 2).zero_() + x, (a34,)),
        C("fill_", lambda m, x: (x * 2).fill_(3.0) * x, (a34,)),
        C("copy_", lambda m, x, y: (x * 2).copy_(y) * x, (a34, b4)),
        C("exp_", lambda m, x: (x * 1).exp_(), (a34,)),
        C("view-inplace", lambda m, x: _inplace_through_view(x * 1), (a34,)),
        C("setitem", lambda m, x, y: _setitem(x * 1, (slice(None), 1), y), (a34, uniform((3,), 60))),
        C("setitem", lambda m, x, k: _setitem(x * 1, k, 0.0), (a34, mask), "mask"),
        # --- indexing
        C("getitem", lambda m, x: x[1], (a34,), "int"), C("getitem", lambda m, x: x[-1], (a34,), "neg"),
        C("getitem", lambda m, x: x[::2], (a34,), "step"), C("getitem", lambda m, x: x[1:3, ::2], (a34,), "slices"),
        C("getitem", lambda m, x: x[None], (a34,), "none"), C("getitem", lambda m, x: x[..., 0], (a34,), "ellipsis"),
        C("getitem", lambda m, x: x[:, None, 1:], (a34,), "mixed"),
        C("getitem", lambda m, x: x[-2:, -3::2], (a34,), "neg-slices"),
        C("getitem", lambda m, x: x[5:], (a34,), "empty-slice"),
        C("getitem", lambda m, x, i: x[i], (a34, np.array([2, 0, 2], I64)), "int-tensor"),
        C("getitem", lambda m, x, i: x[:, i], (a34, np.array([[1, 0], [3, 3]], I64)), "int-tensor-2d"),
        C("getitem", lambda m, x, k: x[k], (a34, mask), "bool-mask"),
        C("getitem", lambda m, x, k: x[k], (a34, mask[:, 0].copy()), "bool-rows"),
        C("getitem", lambda m, x: x[[0, 2]], (a34,), "list"),
        C("getitem", lambda m, x, i, j: x[i, j], (a34, np.array([0, 2], I64), np.array([3, 1], I64)), "pair"),
        C("getitem", lambda m, x, i: x[1:, i], (a34, np.array([0, 2], I64)), "slice+tensor"),
        C("getitem", lambda m, x: x[()], (s0,), "0d"),
        C("getitem", lambda m, x: x[0, 1], (a34,), "scalar"),
        C("getitem", lambda m, x: x[1], (ncx,), "noncontig"),
    ]
    return cases


def _inplace_through_view(x):
    x[1:, ::2].mul_(3.0)
    x.t()[0].add_(1.0)
    return x


def _setitem(x, idx, value):
    x[idx] = value
    return x


def function_cases(name: str | None = None) -> Iterator[FuncCase]:
    """Every public-API sample (optionally only those named ``name``)."""
    cases = _function_table()
    for m in _plugins():
        if hasattr(m, "function_cases"):
            cases += list(m.function_cases())
    for case in cases:
        if name is None or case.name == name:
            yield case


def dtype_name(dt: Any) -> str:
    """'float32' for ember.float32, torch.float32 and np.float32 alike."""
    s = str(dt)
    return s.split(".")[-1]
