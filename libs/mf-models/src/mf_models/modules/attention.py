"""Scaled dot-product attention over a static cache, with the masks every family shares."""

from __future__ import annotations

import math

from mindspore import dtype as mstype
from mindspore import nn, ops
from mindspore.ops.auto_generate.gen_ops_prim import LogSoftmaxGrad

from mf_models.modules.kv_cache import cache_write_rows

_BATCH_MATMUL = ops.BatchMatMul()
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


def keys_allowed(key_mask, query_len: int):
    """Bidirectional attention (encoders, cross-attention): every query sees every key whose
    key_mask (B, S) is 1. bool (B, 1, T, S)."""
    b, s = key_mask.shape
    keys = ops.cast(key_mask, mstype.bool_).reshape(b, 1, 1, s)
    return ops.broadcast_to(keys, (b, 1, query_len, s))


def mask_to_bias(allowed):
    """bool (B, 1, T, S) -> additive float32 bias: 0 where allowed, MASK_VALUE elsewhere."""
    return (1.0 - ops.cast(allowed, mstype.float32)) * MASK_VALUE


class _Softmax(nn.Cell):
    """softmax over the last axis, with a backward through MindSpore's LogSoftmaxGrad kernel.

    The gradient of y = softmax(x) is y * (dy - sum(dy * y)); MindSpore's CPU autodiff expands
    it into broadcasting Mul/ReduceSum/Sub ops that take 24 ms on (8, 8, 256, 256). That is
    LogSoftmaxGrad(log y, dy * y) = dy * y - y * sum(dy * y), one fused kernel: 11 ms
    (measured under ms.jit). A masked y of 0 gives log 0 = -inf and exp(-inf) * ... = 0.
    """

    def __init__(self):
        super().__init__()
        self.log_softmax_grad = LogSoftmaxGrad()

    def construct(self, x):
        return ops.softmax(x, -1)

    def bprop(self, x, out, dout):
        return (self.log_softmax_grad(ops.log(out), dout * out),)


_SOFTMAX = _Softmax()


def attend(q, k, v, bias, softmax_dtype=mstype.float32, scale: float | None = None):
    """softmax(q k^T * scale + bias) v with grouped-query heads, no copy of k or v.

    q: (B, H, T, D); k, v: (B, KV, S, D) with H = KV * G; bias: (B, 1 or H, T, S) float32.
    `scale` defaults to 1 / sqrt(D) (Vaswani et al. 2017); T5 passes 1.0 (it folds the scale
    into its initialisation). Returns (B, T, H * D).
    """
    b, h, t, d = q.shape
    kv, s = k.shape[1], k.shape[2]
    g = h // kv
    qg = q.reshape(b, kv, g * t, d)  # (B, KV, G*T, D): heads of one group share k and v
    # transpose_b reads k in place; k.swapaxes(-1, -2) would copy the whole cache every step.
    # The scale goes on q, T*D numbers, not on the T*S scores.
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if scale != 1.0:
        qg = qg * scale
    scores = _BATCH_MATMUL_NT(qg, k)  # (B, KV, G*T, S)
    scores = ops.cast(scores, softmax_dtype).reshape(b, kv, g, t, s)
    if bias.shape[1] == 1:  # one mask for every head
        bias = bias.reshape(b, 1, 1, t, s)
    else:  # per-head biases (ALiBi): head h = group h // G, member h % G
        bias = bias.reshape(b, kv, g, t, s)
    scores = scores + bias
    probs = _SOFTMAX(scores).reshape(b, kv, g * t, s)
    # BatchMatMul, not ops.matmul: the latter's backward copies both operands transposed.
    out = _BATCH_MATMUL(ops.cast(probs, v.dtype), v)  # (B, KV, G*T, D)
    return out.reshape(b, h, t, d).swapaxes(1, 2).reshape(b, t, h * d)  # (B, T, H*D)


def attend_cached(q, k, v, key_buffer, value_buffer, index, bias,
                  softmax_dtype=mstype.float32, fused=None):
    """Write this step's k, v (B, KV, T, D) into the cache at `index`, then `attend` q over
    every cached slot. Returns (B, T, H * D).

    `fused` (mf's `cached_attention` kernel, float32 only) reads the cache rows in place:
    one kernel for the scores, mask, softmax and weighted sum, and no copy of either cache,
    which reading them as (B, KV, S, D) costs (see `cache_write`).
    """
    key_rows = cache_write_rows(key_buffer, index, k)  # (B * KV * S, D)
    value_rows = cache_write_rows(value_buffer, index, v)
    if fused is not None and q.dtype == mstype.float32 and softmax_dtype == mstype.float32:
        return fused(q, key_rows, value_rows, bias)
    b, kv, _, d = k.shape
    return attend(q, key_rows.reshape(b, kv, -1, d), value_rows.reshape(b, kv, -1, d), bias,
                  softmax_dtype)  # (B, KV, S, D) each


def attend_all(q, k, v, bias=None):
    """softmax(q k^T / sqrt(D) + bias) v without causality: every query sees every key, as in
    the image encoders (ViT, Swin windows, MAE, CLIP's vision tower).

    q, k, v: (B, H, T, D). bias: None or float32 (G, H or 1, T, T) with G dividing B, added to
    the scores of rows b * G + g (CLIP's causal text mask: G = B; Swin's relative position bias
    and shifted-window mask: G = windows per image). Returns (B, T, H * D).
    """
    b, h, t, d = q.shape
    scores = _BATCH_MATMUL_NT(q * (1.0 / math.sqrt(d)), k)  # (B, H, T, T)
    scores = ops.cast(scores, mstype.float32)
    if bias is not None:
        g = bias.shape[0]
        scores = (scores.reshape(b // g, g, h, t, t) + bias).reshape(b, h, t, t)
    probs = _SOFTMAX(scores)
    out = _BATCH_MATMUL(ops.cast(probs, v.dtype), v)  # (B, H, T, D)
    return out.swapaxes(1, 2).reshape(b, t, h * d)  # (B, T, H*D)
