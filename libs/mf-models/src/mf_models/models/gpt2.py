"""GPT-2 (Radford et al. 2019): token + learned position embeddings -> pre-LayerNorm blocks of
multi-head attention and a GELU MLP -> final LayerNorm -> LM head tied to the token embedding.

Single-device math, in reading order. Parameter names and shapes are MindFormers'
(`backbone.blocks.{i}.attention.dense1.weight` ...; see its gpt2 convert_weight.py): q/k/v
weights are (out, in), the two projections and the MLP mapping are (in, out).
"""

from __future__ import annotations

import numpy as np
from mindspore import nn, ops

from mf_models.configs.gpt2 import GPT2Config
from mf_models.kernels import fused_ops
from mf_models.models.base import CausalLM
from mf_models.modules.attention import attend, attend_cached, causal_allowed, mask_to_bias
from mf_models.modules.kv_cache import cache_index
from mf_models.modules.layers import (
    DTYPE,
    Embedding,
    LayerNorm,
    MappingMLP,
    TiedLMHead,
    linear,
    tied_table,
)


class GPT2Attention(nn.Cell):
    def __init__(self, config: GPT2Config, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.dense1 = linear(config, rng, c, c)  # query
        self.dense2 = linear(config, rng, c, c)  # key
        self.dense3 = linear(config, rng, c, c)  # value
        self.projection = linear(config, rng, c, c, transpose_b=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]
        fused = fused_ops()
        self.cached_attention = fused.cached_attention if fused is not None else None

    def construct(self, x, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q = self.dense1(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        k = self.dense2(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        v = self.dense3(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        if key_buffer is None:
            out = attend(q, k, v, bias, self.softmax_dtype)  # (B, T, C)
        else:  # over the keys/values of every slot so far
            out = attend_cached(q, k, v, key_buffer, value_buffer, index, bias,
                                self.softmax_dtype, self.cached_attention)
        return self.projection(out)


class GPT2Block(nn.Cell):
    def __init__(self, config: GPT2Config, rng: np.random.Generator):
        super().__init__()
        ln = (config.hidden_size, config.layer_norm_epsilon, config.param_init_type,
              config.layernorm_compute_type)
        self.layernorm1 = LayerNorm(*ln)
        self.attention = GPT2Attention(config, rng)
        self.layernorm2 = LayerNorm(*ln)
        self.output = MappingMLP(config, rng, config.hidden_act)

    def construct(self, x, bias, key_buffer, value_buffer, index):
        h = x + self.attention(self.layernorm1(x), bias, key_buffer, value_buffer, index)
        return h + self.output(self.layernorm2(h))


class GPT2Embedding(nn.Cell):
    def __init__(self, config: GPT2Config, rng: np.random.Generator):
        super().__init__()
        kw = dict(std=config.initializer_range, param_dtype=config.param_init_type, rng=rng)
        self.word_embedding = Embedding(config.vocab_size, config.hidden_size, **kw)
        self.position_embedding = Embedding(config.seq_length, config.hidden_size, **kw)

    def construct(self, input_ids, positions, table):
        return self.word_embedding(input_ids, table) + self.position_embedding(positions)


class GPT2Model(nn.Cell):
    def __init__(self, config: GPT2Config, rng: np.random.Generator):
        super().__init__()
        self.embedding = GPT2Embedding(config, rng)
        self.blocks = nn.CellList([GPT2Block(config, rng) for _ in range(config.num_layers)])
        self.layernorm = LayerNorm(config.hidden_size, config.layer_norm_epsilon,
                                   config.param_init_type, config.layernorm_compute_type)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_layers = config.num_layers

    def embed(self, input_ids, positions, table=None):
        return ops.cast(self.embedding(input_ids, positions, table), self.compute_dtype)  # (B,T,C)

    def layer_inputs(self, positions, slot, key_mask):
        """What every block reads besides x: the attention bias (B, 1, T, S)."""
        t = positions.shape[1]
        return (mask_to_bias(causal_allowed(slot, t, key_mask.shape[-1], key_mask)),)

    def construct(self, input_ids, positions, cache, slot, key_mask, table=None):
        t = input_ids.shape[1]
        x = self.embed(input_ids, positions, table)  # (B, T, C)
        (bias,) = self.layer_inputs(positions, slot, key_mask)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_layers):
            if cache is None:
                x = self.blocks[i](x, bias, None, None, None)
            else:
                x = self.blocks[i](x, bias, cache.keys[i], cache.values[i], index)
        return self.layernorm(x)


class GPT2LMHeadModel(CausalLM):
    """MindFormers' `GPT2LMHeadModel`; the head reuses the token embedding table."""

    config_class = GPT2Config

    def __init__(self, config: GPT2Config, seed: int = 0):
        super().__init__(config, seed)
        self.backbone = GPT2Model(config, self.rng)
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
        return self.lm_logits(h, table)

    def lm_logits(self, h, table):
        logits = self.lm_head(h, ops.cast(table, self.compute_dtype))  # (B, T, V)
        return ops.cast(logits, DTYPE["float32"])

    # ---- the cache-free forward in pieces (pipeline stages; see CausalLM) -------------------
    def embed(self, input_ids, positions):
        return self.backbone.embed(input_ids, positions)

    def layer_inputs(self, positions, key_mask):
        return self.backbone.layer_inputs(positions, 0, key_mask)

    def run_layer(self, i, x, inputs):
        return self.backbone.blocks[i](x, *inputs, None, None, None)

    def head(self, x):
        h = self.backbone.layernorm(x)
        return self.lm_logits(h, self.backbone.embedding.word_embedding.table)
