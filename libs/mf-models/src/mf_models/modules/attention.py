"""Scaled dot-product attention over a static cache, with the masks every family shares."""

from __future__ import annotations

import math

from mindspore import dtype as mstype
from mindspore import ops

_BATCH_MATMUL_NT = ops.BatchMatMul(transpose_b=True)

# A large finite negative: -inf would turn a fully masked row (a left-pad query) into NaNs.
MASK_VALUE = -1e9


def causal_allowed(slot, query_len: int, key_len: int, key_mask):
    """Which keys each query may see: bool (B, 1, T, S).

    Query t sits in cache slot `slot + t` and sees slots <= its own whose key_mask is 1
    (left padding and not-yet-written slots are 0). Without a cache slot is 0 and S == T.
    """
    q_slot = ops.arange(query_len, dtype=mstype.int32).reshape(query_len, 1) + slot  # (T, 1)
    k_slot = ops.arange(key_len, dtype=mstype.int32).reshape(1, key_len)  # (1, S)
    causal = k_slot <= q_slot  # (T, S)
    keys = ops.cast(key_mask, mstype.bool_).reshape(key_mask.shape[0], 1, 1, key_len)
    return ops.logical_and(causal.reshape(1, 1, query_len, key_len), keys)  # (B, 1, T, S)


def mask_to_bias(allowed):
    """bool (B, 1, T, S) -> additive float32 bias: 0 where allowed, MASK_VALUE elsewhere."""
    return (1.0 - ops.cast(allowed, mstype.float32)) * MASK_VALUE


def attend(q, k, v, bias, softmax_dtype=mstype.float32):
    """softmax(q k^T / sqrt(D) + bias) v with grouped-query heads, no copy of k or v.

    q: (B, H, T, D); k, v: (B, KV, S, D) with H = KV * G; bias: (B, 1 or H, T, S) float32.
    Returns (B, T, H * D).
    """
    b, h, t, d = q.shape
    kv, s = k.shape[1], k.shape[2]
    g = h // kv
    qg = q.reshape(b, kv, g * t, d)  # (B, KV, G*T, D): heads of one group share k and v
    # transpose_b reads k in place; k.swapaxes(-1, -2) would copy the whole cache every step.
    scores = _BATCH_MATMUL_NT(qg, k) * (1.0 / math.sqrt(d))  # (B, KV, G*T, S)
    scores = ops.cast(scores, softmax_dtype).reshape(b, kv, g, t, s)
    if bias.shape[1] == 1:  # one mask for every head
        bias = bias.reshape(b, 1, 1, t, s)
    else:  # per-head biases (ALiBi): head h = group h // G, member h % G
        bias = bias.reshape(b, kv, g, t, s)
    scores = scores + bias
    probs = ops.softmax(scores, -1).reshape(b, kv, g * t, s)
    out = ops.matmul(ops.cast(probs, v.dtype), v)  # (B, KV, G*T, D)
    return out.reshape(b, h, t, d).swapaxes(1, 2).reshape(b, t, h * d)  # (B, T, H*D)
