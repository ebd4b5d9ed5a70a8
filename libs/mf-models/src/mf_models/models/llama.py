"""LLaMA (Touvron et al. 2023, arXiv:2302.13971): RMSNorm -> rotary attention (grouped-query
when n_kv_heads < num_heads) -> SwiGLU MLP, pre-norm residual blocks, untied LM head.

Single-device math, in reading order. Parameter names are MindFormers':
`model.layers.{i}.attention.wq.weight`, `model.tok_embeddings.embedding_weight`, `lm_head.weight`.
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.llama import LlamaConfig
from mf_models.kernels import fused_ops
from mf_models.models.base import CausalLM
from mf_models.modules.attention import attend, attend_cached, causal_allowed, mask_to_bias
from mf_models.modules.kv_cache import cache_index
from mf_models.modules.layers import DTYPE, Embedding, RMSNorm, TiedLMHead, linear, tied_table
from mf_models.modules.rope import apply_rope, rope_tables


class LlamaFeedForward(nn.Cell):
    """SwiGLU (Shazeer 2020): w2(silu(w1 x) * w3 x); w1 is the gate, w3 the up projection."""

    def __init__(self, config: LlamaConfig, rng: np.random.Generator):
        super().__init__()
        c, f = config.hidden_size, config.ffn_hidden_size
        self.w1 = linear(config, rng, c, f, bias=False)
        self.w3 = linear(config, rng, c, f, bias=False)
        self.w2 = linear(config, rng, f, c, bias=False)
        fused = fused_ops()
        self.silu_mul = fused.silu_mul if fused is not None else None  # 1 kernel, not 3

    def construct(self, x):
        gate, up = self.w1(x), self.w3(x)
        if self.silu_mul is not None and gate.dtype == mstype.float32:
            return self.w2(self.silu_mul(gate, up))
        return self.w2(ops.silu(gate) * up)


class LlamaAttention(nn.Cell):
    def __init__(self, config: LlamaConfig, rng: np.random.Generator):
        super().__init__()
        self.num_heads = config.num_heads
        self.kv_heads = config.kv_heads
        self.head_dim = config.head_dim
        c = config.hidden_size
        q_size, kv_size = self.num_heads * self.head_dim, self.kv_heads * self.head_dim
        self.wq = linear(config, rng, c, q_size, bias=False)
        self.wk = linear(config, rng, c, kv_size, bias=False)
        self.wv = linear(config, rng, c, kv_size, bias=False)
        self.wo = linear(config, rng, q_size, c, bias=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]
        fused = fused_ops()
        self.rope = fused.rope if fused is not None else None
        self.cached_attention = fused.cached_attention if fused is not None else None

    def construct(self, x, cos, sin, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        q = self.wq(x).reshape(b, t, self.num_heads, self.head_dim).swapaxes(1, 2)  # (B, H, T, D)
        k = self.wk(x).reshape(b, t, self.kv_heads, self.head_dim).swapaxes(1, 2)  # (B, KV, T, D)
        v = self.wv(x).reshape(b, t, self.kv_heads, self.head_dim).swapaxes(1, 2)  # (B, KV, T, D)
        q = apply_rope(q, cos, sin, self.rope)
        k = apply_rope(k, cos, sin, self.rope)
        if key_buffer is None:
            out = attend(q, k, v, bias, self.softmax_dtype)  # (B, T, H*D)
        else:  # over the keys/values of every slot so far
            out = attend_cached(q, k, v, key_buffer, value_buffer, index, bias,
                                self.softmax_dtype, self.cached_attention)
        return self.wo(out)


class LlamaDecoderLayer(nn.Cell):
    def __init__(self, config: LlamaConfig, rng: np.random.Generator):
        super().__init__()
        eps, dtype = config.rms_norm_eps, config.param_init_type
        self.attention_norm = RMSNorm(config.hidden_size, eps, dtype,
                                      config.layernorm_compute_type)
        self.attention = LlamaAttention(config, rng)
        self.ffn_norm = RMSNorm(config.hidden_size, eps, dtype, config.layernorm_compute_type)
        self.feed_forward = LlamaFeedForward(config, rng)

    def construct(self, x, cos, sin, bias, key_buffer, value_buffer, index):
        h = x + self.attention(self.attention_norm(x), cos, sin, bias, key_buffer, value_buffer,
                               index)
        return h + self.feed_forward(self.ffn_norm(h))


class LlamaModel(nn.Cell):
    def __init__(self, config: LlamaConfig, rng: np.random.Generator):
        super().__init__()
        self.tok_embeddings = Embedding(config.vocab_size, config.hidden_size,
                                        std=config.initializer_range,
                                        param_dtype=config.param_init_type, rng=rng,
                                        param_name="embedding_weight")
        self.layers = nn.CellList([LlamaDecoderLayer(config, rng)
                                   for _ in range(config.num_layers)])
        self.norm_out = RMSNorm(config.hidden_size, config.rms_norm_eps, config.param_init_type,
                                config.layernorm_compute_type)
        cos, sin = rope_tables(config.head_dim, config.max_positions, config.theta)
        self.cos_table = Tensor(cos)  # (P, D), a constant, not a parameter
        self.sin_table = Tensor(sin)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_layers = config.num_layers

    def embed(self, input_ids, table=None):
        return ops.cast(self.tok_embeddings(input_ids, table), self.compute_dtype)  # (B, T, C)

    def layer_inputs(self, positions, slot, key_mask):
        """What every layer reads besides x: rotary cos and sin (B, 1, T, D) and the attention
        bias (B, 1, T, S)."""
        b, t = positions.shape
        cos = ops.gather(self.cos_table, positions, 0).reshape(b, 1, t, -1)  # (B, 1, T, D)
        sin = ops.gather(self.sin_table, positions, 0).reshape(b, 1, t, -1)
        cos = ops.cast(cos, self.compute_dtype)
        sin = ops.cast(sin, self.compute_dtype)
        key_len = key_mask.shape[-1]
        bias = mask_to_bias(causal_allowed(slot, t, key_len, key_mask))  # (B, 1, T, S)
        return cos, sin, bias

    def construct(self, input_ids, positions, cache, slot, key_mask, table=None):
        t = input_ids.shape[1]
        x = self.embed(input_ids, table)  # (B, T, C)
        cos, sin, bias = self.layer_inputs(positions, slot, key_mask)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_layers):
            if cache is None:
                x = self.layers[i](x, cos, sin, bias, None, None, None)
            else:
                x = self.layers[i](x, cos, sin, bias, cache.keys[i], cache.values[i], index)
        return self.norm_out(x)


class LlamaForCausalLM(CausalLM):
    """MindFormers' `LlamaForCausalLM`."""

    config_class = LlamaConfig

    def __init__(self, config: LlamaConfig, seed: int = 0):
        super().__init__(config, seed)
        self.model = LlamaModel(config, self.rng)
        self.tie_word_embeddings = config.tie_word_embeddings
        if config.tie_word_embeddings:
            self.lm_head = TiedLMHead()  # logits from the token embedding table
        else:
            self.lm_head = linear(config, self.rng, config.hidden_size, config.vocab_size,
                                  bias=False)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only=False):
        if key_mask is None:
            key_mask = ops.ones_like(input_ids)
        table = tied_table(self.model.tok_embeddings.table, cache)
        h = self.model(input_ids, positions, cache, slot, key_mask, table)  # (B, T, C)
        if last_only:
            h = h[:, -1:, :]  # (B, 1, C): the LM head over every prompt token is wasted work
        return self.lm_logits(h, table)

    def lm_logits(self, h, table):
        if self.tie_word_embeddings:
            logits = self.lm_head(h, ops.cast(table, self.compute_dtype))
        else:
            logits = self.lm_head(h)
        return ops.cast(logits, DTYPE["float32"])  # (B, T, V)

    # ---- the cache-free forward in pieces (pipeline stages; see CausalLM) -------------------
    def embed(self, input_ids, positions):
        return self.model.embed(input_ids)

    def layer_inputs(self, positions, key_mask):
        return self.model.layer_inputs(positions, 0, key_mask)

    def run_layer(self, i, x, inputs):
        return self.model.layers[i](x, *inputs, None, None, None)

    def head(self, x):
        return self.lm_logits(self.model.norm_out(x), self.model.tok_embeddings.table)
