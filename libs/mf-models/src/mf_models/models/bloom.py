"""BLOOM (BigScience 2022, arXiv:2211.05100): token embedding -> LayerNorm -> pre-LayerNorm
blocks whose attention adds ALiBi biases (Press et al. 2021, arXiv:2108.12409) instead of
position embeddings -> final LayerNorm -> LM head tied to the embedding.

Single-device math, in reading order. Parameter names and shapes are MindFormers' (its bloom
convert_weight.py): q/k/v (`dense1/2/3`) are (out, in), `projection` and `mapping` (in, out).
The model reads no positions: ALiBi needs only each key's index among the real tokens, which
comes from the key mask, as in HF (`cumsum(mask) - 1`).
"""

from __future__ import annotations

import math

import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.bloom import BloomConfig
from mf_models.models.base import CausalLM
from mf_models.modules.attention import attend, causal_allowed, mask_to_bias
from mf_models.modules.kv_cache import cache_index, cache_write
from mf_models.modules.layers import (
    DTYPE,
    Embedding,
    LayerNorm,
    MappingMLP,
    TiedLMHead,
    linear,
    tied_table,
)


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Per-head slopes (H,) float32: a geometric series from 2^(-8/n), per the ALiBi paper; a
    head count that is not a power of two takes every other slope of the next power."""
    closest = 2 ** math.floor(math.log2(num_heads))
    base = np.float32(2 ** (-(2 ** -(math.log2(closest) - 3))))
    slopes = base ** np.arange(1, closest + 1, dtype=np.float32)
    if closest != num_heads:
        extra_base = np.float32(2 ** (-(2 ** -(math.log2(2 * closest) - 3))))
        n_extra = min(closest, num_heads - closest)
        extra = extra_base ** np.arange(1, 1 + 2 * n_extra, 2, dtype=np.float32)
        slopes = np.concatenate([slopes, extra])
    return slopes.astype(np.float32)


class BloomAttention(nn.Cell):
    def __init__(self, config: BloomConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.dense1 = linear(config, rng, c, c)  # query
        self.dense2 = linear(config, rng, c, c)  # key
        self.dense3 = linear(config, rng, c, c)  # value
        self.projection = linear(config, rng, c, c, transpose_b=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def construct(self, x, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q = self.dense1(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        k = self.dense2(x).reshape(shape).swapaxes(1, 2)
        v = self.dense3(x).reshape(shape).swapaxes(1, 2)
        if key_buffer is not None:  # (B, H, S, D)
            k = cache_write(key_buffer, index, k)
            v = cache_write(value_buffer, index, v)
        return self.projection(attend(q, k, v, bias, self.softmax_dtype))  # (B, T, C)


class BloomBlock(nn.Cell):
    def __init__(self, config: BloomConfig, rng: np.random.Generator):
        super().__init__()
        ln = (config.hidden_size, config.layer_norm_epsilon, config.param_init_type,
              config.layernorm_compute_type)
        self.layernorm1 = LayerNorm(*ln)
        self.attention = BloomAttention(config, rng)
        self.layernorm2 = LayerNorm(*ln)
        self.output = MappingMLP(config, rng, "gelu")  # BLOOM: tanh GELU

    def construct(self, x, bias, key_buffer, value_buffer, index):
        h = x + self.attention(self.layernorm1(x), bias, key_buffer, value_buffer, index)
        return h + self.output(self.layernorm2(h))


class BloomEmbedding(nn.Cell):
    def __init__(self, config: BloomConfig, rng: np.random.Generator):
        super().__init__()
        self.word_embedding = Embedding(config.vocab_size, config.hidden_size,
                                        std=config.initializer_range,
                                        param_dtype=config.param_init_type, rng=rng)
        # The embedding LayerNorm BLOOM added for fp16 training stability (paper, sec. 3.2.3).
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_epsilon,
                              config.param_init_type, config.layernorm_compute_type)

    def construct(self, input_ids, table):
        return self.norm(self.word_embedding(input_ids, table))  # (B, T, C)


class BloomModel(nn.Cell):
    def __init__(self, config: BloomConfig, rng: np.random.Generator):
        super().__init__()
        self.embedding = BloomEmbedding(config, rng)
        self.blocks = nn.CellList([BloomBlock(config, rng) for _ in range(config.num_layers)])
        self.ln_f = LayerNorm(config.hidden_size, config.layer_norm_epsilon,
                              config.param_init_type, config.layernorm_compute_type)
        self.slopes = Tensor(alibi_slopes(config.num_heads).reshape(1, -1, 1, 1))  # (1,H,1,1)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_layers = config.num_layers

    def construct(self, input_ids, cache, slot, key_mask, table=None):
        t = input_ids.shape[1]
        key_len = key_mask.shape[-1]
        x = ops.cast(self.embedding(input_ids, table), self.compute_dtype)  # (B, T, C)
        mask = ops.cast(key_mask, mstype.int32)
        key_pos = ops.cast((ops.cumsum(mask, -1) - 1) * mask, mstype.float32)  # (B, S)
        alibi = self.slopes * key_pos.reshape(key_pos.shape[0], 1, 1, key_len)  # (B, H, 1, S)
        bias = alibi + mask_to_bias(causal_allowed(slot, t, key_len, key_mask))  # (B, H, T, S)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_layers):
            if cache is None:
                x = self.blocks[i](x, bias, None, None, None)
            else:
                x = self.blocks[i](x, bias, cache.keys[i], cache.values[i], index)
        return self.ln_f(x)


class BloomLMHeadModel(CausalLM):
    """MindFormers' `BloomLMHeadModel`; the head reuses the token embedding table."""

    config_class = BloomConfig

    def __init__(self, config: BloomConfig, seed: int = 0):
        super().__init__(config, seed)
        self.transformer = BloomModel(config, self.rng)
        self.lm_head = TiedLMHead()  # logits from the token embedding table
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only=False):
        """`positions` is accepted for the common step API and unused: ALiBi reads key_mask."""
        if key_mask is None:
            key_mask = ops.ones_like(input_ids)
        table = tied_table(self.transformer.embedding.word_embedding.table, cache)
        h = self.transformer(input_ids, cache, slot, key_mask, table)  # (B, T, C)
        if last_only:
            h = h[:, -1:, :]  # (B, 1, C)
        logits = self.lm_head(h, ops.cast(table, self.compute_dtype))  # (B, T, V)
        return ops.cast(logits, DTYPE["float32"])
