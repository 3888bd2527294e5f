"""Bad input gets an error naming the op, the shapes and dtypes, and the user's line.

Never a raw numpy traceback, never a silently wrong answer.
"""

import re

import numpy as np
import pytest

import ember

HERE = re.escape(__file__.rsplit("/", 1)[-1])


def _err(fn, exc=RuntimeError):
    with pytest.raises(exc) as info:
        fn()
    return str(info.value)


def test_matmul_names_shapes_dtype_and_line():
    msg = _err(lambda: ember.ones(4, 7) @ ember.ones(20, 32))
    assert "matmul" in msg and "[4, 7]" in msg and "[20, 32]" in msg and "float32" in msg
    assert re.search(HERE + r":\d+", msg), msg
    msg = _err(lambda: ember.matmul(ember.ones(2, 3, 4), ember.ones(3, 4, 2)))
    assert "matmul" in msg and "[2, 3, 4]" in msg and "[3, 4, 2]" in msg
    msg = _err(lambda: ember.ones(3, dtype=ember.float64) @ ember.ones(3))
    assert "float64" in msg and "float32" in msg


@pytest.mark.parametrize("grad", [False, True])
def test_broadcast_errors_name_op_and_shapes(grad):
    a = ember.ones(2, 3, requires_grad=grad)
    msg = _err(lambda: a + ember.ones(4, 5))
    assert msg.startswith("add:") and "size of tensor a (3) must match the size of tensor b (5)" in msg
    assert "float32[2, 3]" in msg and "float32[4, 5]" in msg and re.search(HERE + r":\d+", msg)
    msg = _err(lambda: ember.where(a > 0, ember.ones(3, 2), 0.0))
    assert msg.startswith("where:") and "[3, 2]" in msg


def test_kernel_failures_keep_the_real_reason():
    msg = _err(lambda: ember.tensor([1, 2]) ** -1)
    assert msg.startswith("pow:") and "negative integer powers" in msg and "int64[2]" in msg


def test_shape_op_errors():
    msg = _err(lambda: ember.ones(2, 3).view(4))
    assert "reshape" in msg and "[2, 3]" in msg and "[4]" in msg
    assert "invalid for input of size 6" in _err(lambda: ember.ones(2, 3).reshape(5, -1))
    assert "Dimension out of range" in _err(lambda: ember.ones(2, 3).sum(dim=3), IndexError)
    assert "Dimension out of range" in _err(lambda: ember.ones(2, 3).transpose(0, 2), IndexError)
    msg = _err(lambda: ember.cat([ember.ones(2, 3), ember.ones(3, 2)]))
    assert "Sizes of tensors must match" in msg and "[2, 3]" in msg and "[3, 2]" in msg
    assert "stack expects each tensor to be equal size" in _err(
        lambda: ember.stack([ember.ones(2, 3), ember.ones(3, 2)]))
    assert "expanded size" in _err(lambda: ember.ones(2, 3).expand(4, 3))
    assert "view size is not compatible" in _err(lambda: ember.ones(3, 4).t().view(12))


def test_indexing_errors():
    x = ember.arange(12.0).reshape(3, 4)
    assert "out of bounds for dimension 0 with size 3" in _err(lambda: x[3], IndexError)
    assert "out of bounds" in _err(lambda: x[:, 4], IndexError)
    assert "too many indices" in _err(lambda: x[0, 0, 0], IndexError)
    assert "out of bounds for dimension 0 with size 3" in _err(lambda: x[ember.tensor([3])], IndexError)
    assert "must be long, int, byte or bool" in _err(lambda: x[ember.tensor([1.0])], IndexError)


def test_dtype_errors():
    assert "Long" in _err(lambda: ember.tensor([1, 2]).mean())
    assert "can't be cast to the desired output type Long" in _err(lambda: ember.ones(3, dtype=ember.int64).add_(1.5))
    assert "bool" in _err(lambda: -ember.tensor([True]))
    assert "only Tensors of floating point" in _err(lambda: ember.tensor([1, 2]).requires_grad_())
    assert "Could not infer dtype of str" in _err(lambda: ember.tensor("abc"), TypeError)
    assert "ragged" in _err(lambda: ember.tensor([[1, 2], [3]]), ValueError)


def test_type_rule_errors_at_primitive_level_are_runtime_errors_with_context():
    from ember.ir import ops as P
    msg = _err(lambda: P.matmul(ember.ones(4, 7), ember.ones(20, 32)))
    assert msg.startswith("matmul:") and "[4, 7]" in msg and "[20, 32]" in msg and re.search(HERE, msg)


def test_no_silent_wrong_answers_on_overflowing_int_repr():
    # uint8 wraps like torch rather than raising a raw numpy OverflowError
    np.testing.assert_array_equal(ember.tensor([-1, 256], dtype=ember.uint8).numpy(), [255, 0])


def test_negative_or_out_of_range_indices_are_refused_not_wrapped():
    x = ember.arange(6.0).reshape(2, 3)
    assert "out of bounds" in _err(lambda: x.index_select(0, ember.tensor([-1])), IndexError)
    assert "out of bounds" in _err(lambda: x.index_select(0, ember.tensor([5])), IndexError)
    assert "out of bounds" in _err(lambda: x.gather(1, ember.tensor([[-1]])))
    assert "out of bounds" in _err(lambda: ember.zeros(3).scatter_add(0, ember.tensor([7]), ember.ones(1)))
    assert "greater than 0" in _err(lambda: ember.chunk(x, 0))
    assert x[ember.tensor([-1])].tolist() == [[3.0, 4.0, 5.0]]  # advanced indexing does accept negatives


def test_creation_argument_errors_like_torch():
    assert "non-negative" in _err(lambda: ember.linspace(0, 1, -1))
    assert "greater or equal to 0" in _err(lambda: ember.eye(-1))
    assert "must be Number" in _err(lambda: ember.full((2,), "x"), TypeError)
    assert "must be ember.dtype" in _err(lambda: ember.tensor([1], dtype="float32"), TypeError)
    assert "floating-point" in _err(lambda: ember.rand(2, dtype=ember.int64), NotImplementedError)
    assert "negative dimension" in _err(lambda: ember.zeros(-1))
    assert "non-empty" in _err(lambda: ember.cat([]), ValueError)
    assert "step must be nonzero" in _err(lambda: ember.arange(0, 10, 0))
