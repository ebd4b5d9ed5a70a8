"""The preallocated, static-shaped KV cache: one (batch, kv_heads, max_length, head_dim) key and
value buffer per layer, written in place.

Why this shape of API: under `ms.jit` a new shape or a new Python scalar recompiles (~5 s), so the
buffers never grow and the write slot is an int32 tensor. The buffers are `Parameter`s so that
`scatter_nd_update` writes them in place: a decode step touches T new rows, never copies the cache.
"""

from __future__ import annotations

import itertools

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.modules.layers import NP_DTYPE
from mf_models.weights.io import write_in_place

_ids = itertools.count()


class KVCache(nn.Cell):
    """Keys and values for every layer of one (batch_size, max_length) bucket."""

    def __init__(self, num_layers: int, batch_size: int, kv_heads: int, max_length: int,
                 head_dim: int, dtype: str = "float32"):
        super().__init__()
        self.batch_size = batch_size
        self.max_length = max_length
        self.shape = (batch_size, kv_heads, max_length, head_dim)
        # Unique names: two caches alive in one process must not share parameter names.
        tag = f"kv_cache{next(_ids)}"
        zeros = np.zeros(self.shape, NP_DTYPE.get(dtype, np.float32))
        self.keys = ParameterTuple(
            Parameter(Tensor(zeros), name=f"{tag}.key.{i}", requires_grad=False)
            for i in range(num_layers))
        self.values = ParameterTuple(
            Parameter(Tensor(zeros), name=f"{tag}.value.{i}", requires_grad=False)
            for i in range(num_layers))

    def reset(self) -> None:
        """Zero every buffer (not needed for correctness: unwritten slots are masked out)."""
        for p in (*self.keys, *self.values):
            write_in_place(p, np.zeros(self.shape, np.float32))


def cache_index(slot, batch: int, kv_heads: int, length: int):
    """Scatter indices (B, KV, T, 3) of slots [slot, slot + T) for every row and head.

    Built once per step and shared by every layer's key and value write.
    """
    shape = (batch, kv_heads, length)
    rows = ops.arange(batch, dtype=mstype.int32).reshape(batch, 1, 1).broadcast_to(shape)
    heads = ops.arange(kv_heads, dtype=mstype.int32).reshape(1, kv_heads, 1).broadcast_to(shape)
    slots = (ops.arange(length, dtype=mstype.int32) + slot).reshape(1, 1, length)
    return ops.stack([rows, heads, slots.broadcast_to(shape)], -1)  # (B, KV, T, 3)


def cache_write(buffer, index, x):
    """Write x (B, KV, T, D) into buffer (B, KV, S, D) at `index` (from `cache_index`), in place.

    Returns the updated buffer; using the return value orders later reads after the write.
    """
    return ops.scatter_nd_update(buffer, index, ops.cast(x, buffer.dtype))
