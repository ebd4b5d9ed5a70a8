"""ChatGLM2-6B (THUDM/chatglm2-6b): token embedding -> pre-RMSNorm blocks of multi-query
attention (query heads share `multi_query_group_num` key/value groups; bias on the fused qkv
projection only) and a SwiGLU MLP -> final RMSNorm -> untied output layer.

Positions are the plain 1-D ones (index among real tokens), turned into rotary angles that
ChatGLM2 applies to the first half of each head only, to *adjacent* pairs (x0, x1), (x2, x3) ...
(GPT-J's interleaved layout, not LLaMA's rotate-half); the second half is left as it is.

Parameter names and shapes are MindFormers' (THUDM's names, `embedding_table` for the word
embedding; see its glm2 convert_weight.py); every Linear is (out, in).
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

from mf_models.configs.glm2 import ChatGLM2Config
from mf_models.models.base import CausalLM
from mf_models.modules.attention import attend, causal_allowed, mask_to_bias
from mf_models.modules.kv_cache import cache_index, cache_write
from mf_models.modules.layers import DTYPE, Embedding, RMSNorm, linear
from mf_models.modules.rope import rope_tables

ROPE_BASE = 10000.0  # THUDM/chatglm2-6b RotaryEmbedding: base 10000 (times rope_ratio)


class ChatGLM2MLP(nn.Cell):
    """SwiGLU: dense_h_to_4h yields [gate | up] (2 * ffn); dense_4h_to_h(silu(gate) * up)."""

    def __init__(self, config: ChatGLM2Config, rng: np.random.Generator):
        super().__init__()
        c, f = config.hidden_size, config.ffn_hidden_size
        self.ffn = f
        self.dense_h_to_4h = linear(config, rng, c, 2 * f, bias=False)
        self.dense_4h_to_h = linear(config, rng, f, c, bias=False)

    def construct(self, x):
        h = self.dense_h_to_4h(x)  # (B, T, 2F)
        return self.dense_4h_to_h(ops.silu(h[..., :self.ffn]) * h[..., self.ffn:])


def apply_half_rope(x, cos, sin):
    """x (B, H, T, D); cos, sin (B, 1, T, R/2) for the first R = D/2 dims, turned in adjacent
    pairs; dims [R, D) pass through."""
    b, h, t, d = x.shape
    r = 2 * cos.shape[-1]
    pairs = x[..., :r].reshape(b, h, t, r // 2, 2)  # (B, H, T, R/2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]  # (B, H, T, R/2)
    turned = ops.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], -1)  # (B, H, T, R/2, 2)
    return ops.concat([turned.reshape(b, h, t, r), x[..., r:]], -1)  # (B, H, T, D)


class ChatGLM2SelfAttention(nn.Cell):
    def __init__(self, config: ChatGLM2Config, rng: np.random.Generator):
        super().__init__()
        self.num_heads, self.kv_heads = config.num_heads, config.kv_heads
        self.head_dim = config.head_dim
        q_size = self.num_heads * self.head_dim
        kv_size = self.kv_heads * self.head_dim
        self.q_size, self.kv_size = q_size, kv_size
        self.query_key_value = linear(config, rng, config.hidden_size, q_size + 2 * kv_size,
                                       bias=config.add_qkv_bias)
        self.dense = linear(config, rng, q_size, config.hidden_size, bias=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def construct(self, x, cos, sin, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        qs, kvs, d = self.q_size, self.kv_size, self.head_dim
        qkv = self.query_key_value(x)  # (B, T, H*D + 2*G*D): [q | k | v]
        q = qkv[..., :qs].reshape(b, t, self.num_heads, d).swapaxes(1, 2)  # (B, H, T, D)
        k = qkv[..., qs:qs + kvs].reshape(b, t, self.kv_heads, d).swapaxes(1, 2)  # (B, G, T, D)
        v = qkv[..., qs + kvs:].reshape(b, t, self.kv_heads, d).swapaxes(1, 2)  # (B, G, T, D)
        q = apply_half_rope(q, cos, sin)
        k = apply_half_rope(k, cos, sin)
        if key_buffer is not None:  # (B, G, S, D)
            k = cache_write(key_buffer, index, k)
            v = cache_write(value_buffer, index, v)
        # Query head h reads group h // (H / G), THUDM's expand of k/v over the group axis.
        return self.dense(attend(q, k, v, bias, self.softmax_dtype))  # (B, T, C)


class ChatGLM2Block(nn.Cell):
    def __init__(self, config: ChatGLM2Config, rng: np.random.Generator):
        super().__init__()
        norm = (config.hidden_size, config.layernorm_epsilon, config.param_init_type,
                config.layernorm_compute_type)
        self.input_layernorm = RMSNorm(*norm)
        self.self_attention = ChatGLM2SelfAttention(config, rng)
        self.post_attention_layernorm = RMSNorm(*norm)
        self.mlp = ChatGLM2MLP(config, rng)

    def construct(self, x, cos, sin, bias, key_buffer, value_buffer, index):
        h = x + self.self_attention(self.input_layernorm(x), cos, sin, bias, key_buffer,
                                    value_buffer, index)
        return h + self.mlp(self.post_attention_layernorm(h))


class ChatGLM2Transformer(nn.Cell):
    """MindFormers' `encoder`: the blocks and the final RMSNorm."""

    def __init__(self, config: ChatGLM2Config, rng: np.random.Generator):
        super().__init__()
        self.layers = nn.CellList([ChatGLM2Block(config, rng) for _ in range(config.num_layers)])
        self.final_layernorm = RMSNorm(config.hidden_size, config.layernorm_epsilon,
                                       config.param_init_type, config.layernorm_compute_type)
        self.num_layers = config.num_layers

    def construct(self, x, cos, sin, bias, cache, index):
        for i in range(self.num_layers):
            if cache is None:
                x = self.layers[i](x, cos, sin, bias, None, None, None)
            else:
                x = self.layers[i](x, cos, sin, bias, cache.keys[i], cache.values[i], index)
        return self.final_layernorm(x)


class ChatGLM2Model(nn.Cell):
    def __init__(self, config: ChatGLM2Config, rng: np.random.Generator):
        super().__init__()
        self.embedding = Embedding(config.vocab_size, config.hidden_size,
                                   std=config.initializer_range,
                                   param_dtype=config.param_init_type, rng=rng)
        self.encoder = ChatGLM2Transformer(config, rng)
        self.output_layer = linear(config, rng, config.hidden_size, config.vocab_size,
                                    bias=False)
        # Angles over the rotated part R = head_dim / 2: theta_i = base^(-2i / R), i < R/2.
        cos, sin = rope_tables(config.rotary_dim, config.max_positions,
                               ROPE_BASE * config.rope_ratio)
        half = config.rotary_dim // 2
        self.cos_table = Tensor(np.ascontiguousarray(cos[:, :half]))  # (P, R/2), constants
        self.sin_table = Tensor(np.ascontiguousarray(sin[:, :half]))
        self.compute_dtype = DTYPE[config.compute_dtype]

    def construct(self, input_ids, positions, cache, slot, key_mask):
        b, t = input_ids.shape
        x = ops.cast(self.embedding(input_ids), self.compute_dtype)  # (B, T, C)
        cos = ops.cast(ops.gather(self.cos_table, positions, 0), self.compute_dtype)
        sin = ops.cast(ops.gather(self.sin_table, positions, 0), self.compute_dtype)
        cos, sin = cos.reshape(b, 1, t, -1), sin.reshape(b, 1, t, -1)  # (B, 1, T, R/2)
        bias = mask_to_bias(causal_allowed(slot, t, key_mask.shape[-1], key_mask))  # (B,1,T,S)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        return self.encoder(x, cos, sin, bias, cache, index)  # (B, T, C)


class ChatGLM2ForConditionalGeneration(CausalLM):
    """MindFormers' `ChatGLM2ForConditionalGeneration`."""

    config_class = ChatGLM2Config
    # THUDM's rotary buffer, which MindFormers' convert_weight.py copies along.
    derived_buffers = (r"(^|\.)rotary_pos_emb\.inv_freq$",)

    def __init__(self, config: ChatGLM2Config, seed: int = 0):
        super().__init__(config, seed)
        self.transformer = ChatGLM2Model(config, self.rng)
        self.load_checkpoint_from_config()

    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only=False):
        if key_mask is None:
            key_mask = ops.ones_like(input_ids)
        h = self.transformer(input_ids, positions, cache, slot, key_mask)  # (B, T, C)
        if last_only:
            h = h[:, -1:, :]  # (B, 1, C)
        return ops.cast(self.transformer.output_layer(h), DTYPE["float32"])  # (B, T, V)
