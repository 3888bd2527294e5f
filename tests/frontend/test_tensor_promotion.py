"""Type promotion vs PyTorch: every dtype pair, 0-d tensors and Python scalars, both operand orders.

Result dtypes and values of the binary operators must match torch's, and where torch refuses
an operation (bool subtraction, bool floor division) ember must refuse it too.
"""

import itertools
import warnings

import numpy as np
import pytest

import ember

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
       "eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "pow": lambda a, b: a ** b,
       "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
       "maximum": lambda a, b: a.maximum(b) if not isinstance(b, (bool, int, float)) else None,
       "where": lambda a, b: (a.where(b > 1, b) if not isinstance(b, (bool, int, float)) else None)}
SCALARS = [True, 2, 2.5]


def _make(m, name, zero_d):
    t = m.tensor(2) if zero_d else m.tensor([1, 2, 3])
    return t.to(getattr(m, name))


def _result(m, fn):
    try:
        r = fn()
    except Exception as exc:  # noqa: BLE001 - the error class is compared
        return ("error", type(exc).__name__)
    if r is None:
        return None
    vals = np.asarray(r.tolist() if r.dtype == m.bool else r.float().tolist(), dtype=np.float64)
    return (str(r.dtype).split(".")[-1], vals)


def _same(t, e) -> bool:
    if t is None or e is None:
        return t is e
    if t[0] != e[0]:
        return False
    if t[0] == "error":
        return True
    return np.allclose(t[1], e[1], rtol=1e-2, equal_nan=True)


@pytest.mark.parametrize("op", list(OPS))
def test_binary_promotion_matches_torch(op):
    fn = OPS[op]
    mismatches = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for an, bn in itertools.product(DTYPES, DTYPES):
            for az, bz in itertools.product((False, True), repeat=2):
                t = _result(torch, lambda: fn(_make(torch, an, az), _make(torch, bn, bz)))
                e = _result(ember, lambda: fn(_make(ember, an, az), _make(ember, bn, bz)))
                if not _same(t, e):
                    mismatches.append((an, az, bn, bz, t, e))
        for an, s, az, rev in itertools.product(DTYPES, SCALARS, (False, True), (False, True)):
            def call(m):
                a = _make(m, an, az)
                return lambda: fn(s, a) if rev else fn(a, s)
            t, e = _result(torch, call(torch)), _result(ember, call(ember))
            if not _same(t, e):
                mismatches.append((an, az, repr(s), rev, t, e))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
