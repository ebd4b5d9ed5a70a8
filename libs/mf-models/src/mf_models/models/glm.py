"""ChatGLM-6B (GLM, Du et al. 2022, arXiv:2103.10360; THUDM/chatglm-6b): token embedding ->
blocks of [LayerNorm -> 2-D rotary attention under a prefix-LM mask -> residual scaled by
alpha -> LayerNorm -> GeLU MLP -> residual scaled by alpha] -> final LayerNorm -> LM head.

What sets GLM apart, in the order this file handles it:

* 2-D positions (B, 2, T): a position id and a block position id. Context tokens (before the
  first <sop>) get (their index, 0); <sop> and every token after it get (the index of [gMASK],
  1, 2, 3, ...). Indices count real tokens only, so left padding changes nothing.
* Rotary embedding on two halves of each head: the first half turned by the position id, the
  second by the block position id, each in the rotate-half layout over head_dim / 2.
* The prefix-LM mask: context tokens see each other both ways; from <sop> on, causal.
  A context token is one whose block position is 0, so the mask follows from the positions
  and the step API needs nothing more than other families.
* alpha = sqrt(2 * num_layers) (GLM-130B's DeepNorm): each residual adds the sub-layer output
  to alpha times its *normalised* input.

A row with no <sop> has no context: every token reads as generated, (index of [gMASK] in the
context, so 0; index + 1), under a plain causal mask. Prompts for generation must hold
[gMASK] and <sop> (`prefill_positions` checks); training sequences may be anything.

Parameter names and shapes are MindFormers' (THUDM's names with `embedding_table`,
`gamma`/`beta`, see its glm convert_weight.py); every Linear is (out, in).
"""

from __future__ import annotations

import math

import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.glm import GLMConfig
from mf_models.errors import ModelConfigError
from mf_models.models.base import CausalLM
from mf_models.modules.attention import attend, causal_allowed, mask_to_bias
from mf_models.modules.kv_cache import cache_index, cache_write
from mf_models.modules.layers import DTYPE, Embedding, LayerNorm, gelu_tanh, linear
from mf_models.modules.rope import apply_rope, rope_tables

ROPE_BASE = 10000.0  # THUDM/chatglm-6b RotaryEmbedding(base=10000)


# ---- positions and the prefix-LM mask (graph-friendly: used by the compiled forward too) ----
def glm_positions(input_ids, attention_mask, gmask_id: int, mask_id: int, sop_id: int):
    """2-D positions (B, 2, T) int32 of left-padded rows; pads get (0, 0).

    `rel` is each token's index among the real tokens of its row; `c` the index of the first
    <sop> (0 if none); the mask position is the first [gMASK] before `c`, else the first
    [MASK], else 0 (THUDM: gMASK if present, else MASK).
    """
    t = input_ids.shape[-1]
    real = ops.cast(attention_mask, mstype.int32)  # (B, T)
    is_real = real > 0
    rel = ops.relu(ops.cumsum(real, -1) - 1)  # (B, T)
    none = ops.full_like(rel, t)  # larger than any index: "not found"

    def first(condition):  # (B, 1): the smallest rel where condition holds, else t
        return ops.amin(ops.where(condition, rel, none), -1, keepdims=True)

    c = first(ops.logical_and(input_ids == sop_id, is_real))
    c = ops.where(c == t, ops.zeros_like(c), c)  # no <sop>: no context
    in_context = rel < c  # (B, T)
    in_prompt = ops.logical_and(is_real, in_context)
    g_gmask = first(ops.logical_and(input_ids == gmask_id, in_prompt))
    g_mask = first(ops.logical_and(input_ids == mask_id, in_prompt))
    g = ops.where(g_gmask < t, g_gmask, ops.where(g_mask < t, g_mask, ops.zeros_like(g_mask)))
    position = ops.where(in_context, rel, g.broadcast_to(rel.shape)) * real  # (B, T)
    block = ops.where(in_context, ops.zeros_like(rel), rel - c + 1) * real  # (B, T)
    return ops.stack([position, block], 1)  # (B, 2, T)


def prefix_lm_allowed(slot, block_positions, key_len: int, key_mask):
    """Causal, plus: a context query (block position 0) sees every context key of its chunk.

    The context keys of the chunk are its slots [slot, slot + ctx_end), ctx_end being one past
    the last context token (pads before it are masked by key_mask). bool (B, 1, T, S).
    """
    b, t = block_positions.shape
    allowed = causal_allowed(slot, t, key_len, key_mask)  # (B, 1, T, S)
    is_ctx = block_positions == 0  # (B, T)
    one_past = ops.arange(1, t + 1, dtype=mstype.int32).reshape(1, t)
    ctx_end = ops.amax(ops.cast(is_ctx, mstype.int32) * one_past, -1, keepdims=True)  # (B, 1)
    k_slot = ops.arange(key_len, dtype=mstype.int32).reshape(1, key_len)  # (1, S)
    ctx_key = ops.logical_and(k_slot < ctx_end + slot, ops.cast(key_mask, mstype.bool_))
    both = ops.logical_and(is_ctx.reshape(b, 1, t, 1), ctx_key.reshape(b, 1, 1, key_len))
    return ops.logical_or(allowed, both)  # (B, 1, T, S)


class GLMMLP(nn.Cell):
    def __init__(self, config: GLMConfig, rng: np.random.Generator):
        super().__init__()
        self.dense_h_to_4h = linear(config, rng, config.hidden_size, config.ffn_hidden_size)
        self.dense_4h_to_h = linear(config, rng, config.ffn_hidden_size, config.hidden_size)

    def construct(self, x):
        # THUDM's gelu_impl and MindSpore's nn.GELU are the tanh approximation.
        return self.dense_4h_to_h(gelu_tanh(self.dense_h_to_4h(x)))


def rotate_2d(x, rope):
    """x (B, H, T, D): first half turned by the position ids, second by the block ids."""
    cos_p, sin_p, cos_b, sin_b = rope  # each (B, 1, T, D/2)
    half = x.shape[-1] // 2
    return ops.concat([apply_rope(x[..., :half], cos_p, sin_p),
                       apply_rope(x[..., half:], cos_b, sin_b)], -1)


class GLMSelfAttention(nn.Cell):
    def __init__(self, config: GLMConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.query_key_value = linear(config, rng, c, 3 * c)
        self.dense = linear(config, rng, c, c)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def construct(self, x, rope, bias, key_buffer, value_buffer, index):
        b, t, _ = x.shape
        d = self.head_dim
        # Per head, q, k and v sit side by side: (B, T, H, 3 * D).
        qkv = self.query_key_value(x).reshape(b, t, self.num_heads, 3 * d)
        q = qkv[..., :d].swapaxes(1, 2)  # (B, H, T, D)
        k = qkv[..., d:2 * d].swapaxes(1, 2)  # (B, H, T, D)
        v = qkv[..., 2 * d:].swapaxes(1, 2)  # (B, H, T, D)
        q = rotate_2d(q, rope)
        k = rotate_2d(k, rope)
        if key_buffer is not None:  # (B, H, S, D)
            k = cache_write(key_buffer, index, k)
            v = cache_write(value_buffer, index, v)
        return self.dense(attend(q, k, v, bias, self.softmax_dtype))  # (B, T, C)


class GLMBlock(nn.Cell):
    """MindFormers' DeepNormWithGLULayer with layernorm_order "post"."""

    def __init__(self, config: GLMConfig, rng: np.random.Generator):
        super().__init__()
        ln = (config.hidden_size, config.layernorm_epsilon, config.param_init_type,
              config.layernorm_compute_type)
        self.input_layernorm = LayerNorm(*ln)
        self.attention = GLMSelfAttention(config, rng)
        self.post_attention_layernorm = LayerNorm(*ln)
        self.mlp = GLMMLP(config, rng)
        self.alpha = math.sqrt(2 * config.num_layers)

    def construct(self, x, rope, bias, key_buffer, value_buffer, index):
        attention_input = self.input_layernorm(x)
        h = attention_input * self.alpha + self.attention(attention_input, rope, bias,
                                                          key_buffer, value_buffer, index)
        mlp_input = self.post_attention_layernorm(h)
        return mlp_input * self.alpha + self.mlp(mlp_input)


class GLMModel(nn.Cell):
    def __init__(self, config: GLMConfig, rng: np.random.Generator):
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size,
                                         std=config.initializer_range,
                                         param_dtype=config.param_init_type, rng=rng)
        self.layers = nn.CellList([GLMBlock(config, rng) for _ in range(config.num_layers)])
        self.final_layernorm = LayerNorm(config.hidden_size, config.layernorm_epsilon,
                                         config.param_init_type, config.layernorm_compute_type)
        # Block positions reach seq_length (a row whose first token is <sop>): one more row.
        cos, sin = rope_tables(config.head_dim // 2, config.max_positions + 1, ROPE_BASE)
        self.cos_table = Tensor(cos)  # (P + 1, D/2), constants
        self.sin_table = Tensor(sin)
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.num_layers = config.num_layers

    def _rope(self, ids, b: int, t: int):
        cos = ops.cast(ops.gather(self.cos_table, ids, 0), self.compute_dtype)  # (B, T, D/2)
        sin = ops.cast(ops.gather(self.sin_table, ids, 0), self.compute_dtype)
        return cos.reshape(b, 1, t, -1), sin.reshape(b, 1, t, -1)  # (B, 1, T, D/2)

    def construct(self, input_ids, positions, cache, slot, key_mask):
        b, t = input_ids.shape
        x = ops.cast(self.word_embeddings(input_ids), self.compute_dtype)  # (B, T, C)
        cos_p, sin_p = self._rope(positions[:, 0, :], b, t)
        cos_b, sin_b = self._rope(positions[:, 1, :], b, t)
        rope = (cos_p, sin_p, cos_b, sin_b)
        bias = mask_to_bias(prefix_lm_allowed(slot, positions[:, 1, :], key_mask.shape[-1],
                                              key_mask))  # (B, 1, T, S)
        # Where this step's keys/values go in the cache: computed once, shared by every layer.
        index = None if cache is None else cache_index(cache, slot, t)
        for i in range(self.num_layers):
            if cache is None:
                x = self.layers[i](x, rope, bias, None, None, None)
            else:
                x = self.layers[i](x, rope, bias, cache.keys[i], cache.values[i], index)
        return self.final_layernorm(x)


class GLMForConditionalGeneration(CausalLM):
    """ChatGLM-6B as a causal LM (MindFormers' GLMForPreTraining / GLMChatModel weights).

    The training forward is `model(input_ids, labels=None, attention_mask=None,
    position_ids=None)`: 2-D positions are derived from the tokens unless given (B, 2, T).
    """

    config_class = GLMConfig
    # THUDM's per-layer rotary buffer, which MindFormers' convert_weight.py copies along.
    derived_buffers = (r"\.rotary_emb\.inv_freq$",)

    def __init__(self, config: GLMConfig, seed: int = 0):
        super().__init__(config, seed)
        self.transformer = GLMModel(config, self.rng)
        self.lm_head = linear(config, self.rng, config.hidden_size, config.vocab_size, bias=False)
        self.special_ids = (config.gmask_token_id, config.mask_token_id, config.bos_token_id)
        self.load_checkpoint_from_config()

    # ---- positions ----------------------------------------------------------------------------
    def prefill_positions(self, attention_mask: np.ndarray,
                          input_ids: np.ndarray | None = None) -> np.ndarray:
        """(B, 2, T) int32 positions of a left-padded prompt; each row must hold [gMASK] (or
        [MASK]) and then <sop>. Without input_ids the rows read as holding no <sop>."""
        mask = np.asarray(attention_mask, np.int32)
        if input_ids is None:
            ids = np.full(mask.shape, -1, np.int32)  # no special token anywhere
        else:
            ids = np.asarray(input_ids, np.int32)
            self.check_prompt(ids, mask)
        gmask, mask_id, sop = self.special_ids
        return glm_positions(Tensor(ids), Tensor(mask), gmask, mask_id, sop).asnumpy()

    def next_positions(self, positions: np.ndarray) -> np.ndarray:
        """(B, 2, 1): the position id stays at [gMASK], the block position counts on."""
        last = np.asarray(positions)[..., -1:]  # (B, 2, 1)
        return (last + np.array([0, 1]).reshape(1, 2, 1)).astype(np.int32)

    def check_prompt(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        """One-line errors for a prompt GLM cannot generate from (THUDM would fail on
        `seq.index(...)`)."""
        cfg = self.config
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask, strict=True)):
            real = [int(i) for i, m in zip(ids, mask, strict=True) if m]
            sop = real.index(cfg.bos_token_id) if cfg.bos_token_id in real else None
            context = real if sop is None else real[:sop]
            if cfg.gmask_token_id not in context and cfg.mask_token_id not in context:
                raise ModelConfigError(
                    f"prompt row {row} has no [gMASK] (gmask_token_id {cfg.gmask_token_id})"
                    f"{'' if sop is None else ' before <sop>'}: a GLM prompt ends with "
                    f"[gMASK] <sop> (ids {cfg.gmask_token_id}, {cfg.bos_token_id})")
            if sop is None:
                raise ModelConfigError(
                    f"prompt row {row} has no <sop> (bos_token_id {cfg.bos_token_id}) after "
                    f"[gMASK]: a GLM prompt ends with [gMASK] <sop> (ids "
                    f"{cfg.gmask_token_id}, {cfg.bos_token_id})")

    def check_positions(self, positions: np.ndarray) -> None:
        positions = np.asarray(positions)
        if positions.ndim == 3 and positions.shape[1] == 2:
            super().check_positions(positions[:, 0])
            top = int(positions[:, 1].max()) if positions.size else 0
            if top > self.config.max_positions:  # block ids reach seq_length, no further
                raise ModelConfigError(
                    f"block position {top} is beyond the model's seq_length"
                    f"({self.config.max_positions})")
            return
        super().check_positions(positions)
        raise ModelConfigError(
            f"GLM positions are (batch, 2, tokens): position ids and block position ids; got "
            f"shape {positions.shape} (use model.prefill_positions / next_positions)")

    # ---- forward ------------------------------------------------------------------------------
    def construct(self, input_ids, labels=None, attention_mask=None, position_ids=None):
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        mask = ops.cast(attention_mask, mstype.int32)
        if position_ids is None:
            gmask, mask_id, sop = self.special_ids
            position_ids = glm_positions(input_ids, mask, gmask, mask_id, sop)  # (B, 2, T)
        logits = self.forward_step(input_ids, ops.cast(position_ids, mstype.int32), None, 0,
                                   mask, False)
        if labels is None:
            return logits
        return self.loss(logits, labels), logits

    def forward_step(self, input_ids, positions, cache=None, slot=0, key_mask=None,
                     last_only=False):
        if key_mask is None:
            key_mask = ops.ones_like(input_ids)
        h = self.transformer(input_ids, positions, cache, slot, key_mask)  # (B, T, C)
        if last_only:
            h = h[:, -1:, :]  # (B, 1, C)
        return ops.cast(self.lm_head(h), DTYPE["float32"])  # (B, T, V)


class GLMChatModel(GLMForConditionalGeneration):
    """MindFormers' inference class for ChatGLM-6B: the same weights and math, and prompts are
    checked on every full forward (each row holds [gMASK] then <sop>)."""

    def __call__(self, *args, **kwargs):
        ids = args[0] if args else kwargs.get("input_ids")
        mask = args[2] if len(args) > 2 else kwargs.get("attention_mask")
        if ids is not None:
            ids = ids.asnumpy() if isinstance(ids, Tensor) else np.asarray(ids)
            mask = (np.ones_like(ids) if mask is None else
                    mask.asnumpy() if isinstance(mask, Tensor) else np.asarray(mask))
            self.check_prompt(ids.reshape(-1, ids.shape[-1]), mask.reshape(-1, ids.shape[-1]))
        return super().__call__(*args, **kwargs)

    def prompt_inputs(self, prompts: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Token lists -> (input_ids, attention_mask) (B, T) int32: [gMASK] <sop> appended (as
        the ChatGLM tokenizer does), left-padded with pad_token_id."""
        cfg = self.config
        rows = [list(p) + [cfg.gmask_token_id, cfg.bos_token_id] for p in prompts]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), cfg.pad_token_id or 0, np.int32)
        mask = np.zeros((len(rows), width), np.int32)
        for i, row in enumerate(rows):
            ids[i, width - len(row):] = row
            mask[i, width - len(row):] = 1
        return ids, mask
