"""The preallocated, static-shaped KV cache: one (batch, kv_heads, max_length, head_dim) key and
value buffer per layer, written in place.

Why this shape of API: under `ms.jit` a new shape or a new Python scalar recompiles (~5 s), so the
buffers never grow and the write slot is an int32 tensor. The buffers are `Parameter`s stored as
rows, (batch * kv_heads * max_length, head_dim), so that `ScatterUpdate` writes the T new rows of
a step in place. `scatter_nd_update` on the 4-D buffer copied the whole buffer on every write on
CPU: 0.34 ms per layer and tensor at batch 8 x 160 slots, 5.4 of a 28 ms LLaMA decode step
(MindSpore's profiler); ScatterUpdate costs ~40 us at any cache size.
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
        self.shape = (batch_size, kv_heads, max_length, head_dim)  # what attention reads
        self.rows_shape = (batch_size * kv_heads * max_length, head_dim)  # how it is stored
        # Unique names: two caches alive in one process must not share parameter names.
        tag = f"kv_cache{next(_ids)}"
        zeros = np.zeros(self.rows_shape, NP_DTYPE.get(dtype, np.float32))
        self.keys = ParameterTuple(
            Parameter(Tensor(zeros), name=f"{tag}.key.{i}", requires_grad=False)
            for i in range(num_layers))
        self.values = ParameterTuple(
            Parameter(Tensor(zeros), name=f"{tag}.value.{i}", requires_grad=False)
            for i in range(num_layers))

    @property
    def nbytes(self) -> int:
        """Bytes held by every key and value buffer."""
        return sum(buffer.nbytes for buffer in (*self.keys, *self.values))

    def reset(self) -> None:
        """Zero every buffer (not needed for correctness: unwritten slots are masked out)."""
        for p in (*self.keys, *self.values):
            write_in_place(p, np.zeros(self.rows_shape, np.float32))


_SCATTER_UPDATE = ops.ScatterUpdate()


def cache_index(cache: KVCache, slot, length: int):
    """Row indices (B * KV, T) of slots [slot, slot + T) for every batch row and head.

    Row (b * KV + h) * max_length + s of a buffer holds slot s of head h of batch row b.
    Built once per step and shared by every layer's key and value write.
    """
    batch, kv_heads, max_length, _ = cache.shape
    firsts = ops.arange(batch * kv_heads, dtype=mstype.int32).reshape(-1, 1) * max_length
    return firsts + (ops.arange(length, dtype=mstype.int32) + slot).reshape(1, length)


def cache_write(buffer, index, x):
    """Write x (B, KV, T, D) into buffer rows (B * KV * S, D) at `index` (from `cache_index`),
    in place; returns the updated buffer as (B, KV, S, D).

    Using the return value orders later reads after the write. The reshape to (B, KV, S, D)
    copies the whole buffer (MindSpore cannot alias the output of an in-place write);
    `cache_write_rows` returns the rows for a reader that takes them as they are.
    """
    b, kv, _, d = x.shape
    return cache_write_rows(buffer, index, x).reshape(b, kv, -1, d)


def cache_write_rows(buffer, index, x):
    """`cache_write` returning the updated buffer as it is stored, rows (B * KV * S, D)."""
    b, kv, t, d = x.shape
    return _SCATTER_UPDATE(buffer, index, ops.cast(x, buffer.dtype).reshape(b * kv, t, d))
