"""``scaled_dot_product_attention`` as a composition of primitives (so autodiff, tracing and export cover it)."""

from __future__ import annotations

import math

from ... import _creation as C
from ... import _ops as O
from ..._tensor import Tensor
from .activation import softmax
from .basic import dropout


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q @ k^T * scale + mask) @ v`` over the last two dims, as PyTorch's reference definition.

    A boolean ``attn_mask`` marks the positions that take part (True); a float one is added to the scores.
    ``is_causal`` masks every key after its query (no ``attn_mask`` with it, as in PyTorch)."""
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: explicit attn_mask should not be set when is_causal=True")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(f"scaled_dot_product_attention: query, key and value need at least 2 dims, got "
                           f"{list(query.shape)}, {list(key.shape)}, {list(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: query {list(query.shape)}, key {list(key.shape)} and "
                           f"value {list(value.shape)} do not match (q/k last dims, k/v sequence lengths)")
    if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(groups, -3), value.repeat_interleave(groups, -3)
    length, source = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = O.mul(O.matmul(query, key.transpose(-2, -1)), factor)
    if is_causal:
        keep = C.ones(length, source, dtype=_bool()).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == _bool():
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = O.add(scores, attn_mask)
    weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return O.matmul(weights, value)


def _bool():
    from ember.ir.types import bool_
    return bool_
