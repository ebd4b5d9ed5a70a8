"""PanGu-Alpha (Zeng et al. 2021, arXiv:2104.12369): token + learned position embeddings ->
num_layers - 1 pre-LayerNorm blocks -> LayerNorm -> the top query layer -> LM head tied to the
token embedding.

The top query layer (paper sec. 3.1) is a block whose attention takes its *query* from a
learned embedding of the position (`top_query_embedding`, one vector per position) instead of
from the hidden states; keys and values come from the hidden states as usual. Its output goes
straight to the head: MindFormers' single-device path (no pipeline) puts the backbone's
LayerNorm before the top query layer and none after it, and so do we.

Parameter names and shapes are MindFormers' (`backbone.blocks.{i}.attention.dense1.weight` ...):
q/k/v (`dense1/2/3`) are (out, in); `projection` and `mapping` are (in, out).
"""

from __future__ import annotations

import numpy as np
from mindspore import nn, ops

from mf_models.configs.pangualpha import PanguAlphaConfig
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


class PanguAlphaAttention(nn.Cell):
    def __init__(self, config: PanguAlphaConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.dense1 = linear(config, rng, c, c)  # query
        self.dense2 = linear(config, rng, c, c)  # key
        self.dense3 = linear(config, rng, c, c)  # value
        self.projection = linear(config, rng, c, c, transpose_b=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def construct(self, query_input, x, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q = self.dense1(query_input).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        k = self.dense2(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        v = self.dense3(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        if key_buffer is not None:  # (B, H, S, D)
            k = cache_write(key_buffer, index, k)
            v = cache_write(value_buffer, index, v)
        return self.projection(attend(q, k, v, bias, self.softmax_dtype))  # (B, T, C)


class PanguAlphaBlock(nn.Cell):
    """Pre-LayerNorm block; with `query` given it is the top query layer."""

    def __init__(self, config: PanguAlphaConfig, rng: np.random.Generator):
        super().__init__()
        ln = (config.hidden_size, config.layernorm_epsilon, config.param_init_type,
              config.layernorm_compute_type)
        self.layernorm1 = LayerNorm(*ln)
        self.attention = PanguAlphaAttention(config, rng)
        self.layernorm2 = LayerNorm(*ln)
        self.output = MappingMLP(config, rng, config.hidden_act)

    def construct(self, x, query, bias, key_buffer, value_buffer, index):
        h = self.layernorm1(x)
        if query is None:
            query = h
        x = x + self.attention(query, h, bias, key_buffer, value_buffer, index)
        return x + self.output(self.layernorm2(x))


class PanguAlphaEmbedding(nn.Cell):
    def __init__(self, config: PanguAlphaConfig, rng: np.random.Generator):
        super().__init__()
        kw = dict(std=config.initializer_range, param_dtype=config.param_init_type, rng=rng)
        self.word_embedding = Embedding(config.vocab_size, config.hidden_size, **kw)
        self.position_embedding = Embedding(config.seq_length, config.hidden_size, **kw)

    def construct(self, input_ids, positions, table):
        return self.word_embedding(input_ids, table) + self.position_embedding(positions)


class PanguAlphaModel(nn.Cell):
    def __init__(self, config: PanguAlphaConfig, rng: np.random.Generator):
        super().__init__()
        self.embedding = PanguAlphaEmbedding(config, rng)
        self.blocks = nn.CellList([PanguAlphaBlock(config, rng)
                                   for _ in range(config.num_layers - 1)])
        self.layernorm = LayerNorm(config.hidden_size, config.layernorm_epsilon,
                                   config.param_init_type, config.layernorm_compute_type)
        self.top_query_embedding = Embedding(config.seq_length, config.hidden_size,
                                             std=config.initializer_range,
                                             param_dtype=config.param_init_type, rng=rng)
        self.top_query_layer = PanguAlphaBlock(config, rng)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_blocks = config.num_layers - 1

    def construct(self, input_ids, positions, cache, slot, key_mask, table=None):
        t = input_ids.shape[1]
        x = ops.cast(self.embedding(input_ids, positions, table), self.compute_dtype)  # (B, T, C)
        bias = mask_to_bias(causal_allowed(slot, t, key_mask.shape[-1], key_mask))  # (B,1,T,S)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_blocks):
            if cache is None:
                x = self.blocks[i](x, None, bias, None, None, None)
            else:
                x = self.blocks[i](x, None, bias, cache.keys[i], cache.values[i], index)
        h = self.layernorm(x)
        query = ops.cast(self.top_query_embedding(positions), self.compute_dtype)  # (B, T, C)
        top = self.num_blocks  # the top query layer's keys/values are the cache's last layer
        if cache is None:
            return self.top_query_layer(h, query, bias, None, None, None)
        return self.top_query_layer(h, query, bias, cache.keys[top], cache.values[top], index)


class PanguAlphaHeadModel(CausalLM):
    """MindFormers' `PanguAlphaHeadModel`; the head reuses the token embedding table."""

    config_class = PanguAlphaConfig

    def __init__(self, config: PanguAlphaConfig, seed: int = 0):
        super().__init__(config, seed)
        self.backbone = PanguAlphaModel(config, self.rng)
        self.lm_head = TiedLMHead()  # logits from the token embedding table
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only=False):
        if key_mask is None:
            key_mask = ops.ones_like(input_ids)
        table = tied_table(self.backbone.embedding.word_embedding.table, cache)
        h = self.backbone(input_ids, positions, cache, slot, key_mask, table)  # (B, T, C)
        if last_only:
            h = h[:, -1:, :]  # (B, 1, C)
        logits = self.lm_head(h, ops.cast(table, self.compute_dtype))  # (B, T, V)
        return ops.cast(logits, DTYPE["float32"])
