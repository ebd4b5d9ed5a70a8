"""Independent numpy forwards of ChatGLM-6B, ChatGLM2-6B and PanGu-Alpha, for the tests.

Written from the equations of the papers and the published configs/code descriptions, not
from mf_models: one unpadded row at a time, float64, plain loops over layers and heads, the
masks and positions built the way THUDM / MindFormers build them for one sequence. Weights
are read by MindFormers' parameter names (MindFormers' shapes: Linear weights (out, in) except
PanGu's projection/mapping, which are (in, out)).
"""

from __future__ import annotations

import math

import numpy as np


# ---- shared equations ---------------------------------------------------------------------
def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def rms_norm(x, weight, eps=1e-5):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def fast_gelu(x):  # MindSpore FastGelu: x / (1 + exp(-1.702 x))
    return x / (1.0 + np.exp(-1.702 * x))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(q, k, v, allowed):
    """q (T, D), k/v (S, D), allowed bool (T, S): softmax(q k^T / sqrt(D)) v over allowed keys."""
    scores = q @ k.T / math.sqrt(q.shape[-1])
    scores = np.where(allowed, scores, -np.inf)
    return softmax(scores) @ v


def rotate_halves(x, angles):
    """RoPE in the rotate-half layout: dim j pairs with dim j + n/2, turned by angles[:, j]."""
    n = x.shape[-1] // 2
    a, b = x[..., :n], x[..., n:]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)


def rotate_adjacent(x, angles):
    """RoPE in the interleaved layout: dims (2i, 2i+1) turned by angles[:, i]."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = b * cos + a * sin
    return out


def rope_angles(positions, dim, base=10000.0):
    """(T, dim/2) angles position * base^(-2i/dim)."""
    inv_freq = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    return np.outer(np.asarray(positions, np.float64), inv_freq)


def linear(x, weight, bias=None):  # weight (out, in)
    y = x @ weight.T
    return y if bias is None else y + bias


def _w(weights, name):
    return np.asarray(weights[name], np.float64)


# ---- ChatGLM-6B -----------------------------------------------------------------------------
def glm_positions_and_mask(ids, gmask_id, mask_id, sop_id):
    """THUDM's rule for one sequence: context = tokens before the first <sop>; positions
    (index, 0) there and (index of [gMASK] (else [MASK]), 1, 2, ...) from <sop> on; the
    context attends both ways, the rest causally."""
    ids = list(ids)
    t = len(ids)
    c = ids.index(sop_id)
    g = ids.index(gmask_id) if gmask_id in ids else ids.index(mask_id)
    position = np.arange(t)
    position[c:] = g
    block = np.concatenate([np.zeros(c, int), np.arange(1, t - c + 1)])
    allowed = np.tril(np.ones((t, t), bool))
    allowed[:, :c] = True
    return position, block, allowed


def glm_logits(weights, config, ids):
    """Logits (T, V) of one sequence that holds [gMASK] (or [MASK]) and <sop>."""
    position, block, allowed = glm_positions_and_mask(
        ids, config.gmask_token_id, config.mask_token_id, config.bos_token_id)
    h_, d = config.num_heads, config.hidden_size // config.num_heads
    alpha = math.sqrt(2 * config.num_layers)
    eps = config.layernorm_epsilon
    x = _w(weights, "transformer.word_embeddings.embedding_table")[list(ids)]
    angles_p = rope_angles(position, d // 2)
    angles_b = rope_angles(block, d // 2)
    for i in range(config.num_layers):
        p = f"transformer.layers.{i}."
        a_in = layer_norm(x, _w(weights, p + "input_layernorm.gamma"),
                          _w(weights, p + "input_layernorm.beta"), eps)
        qkv = linear(a_in, _w(weights, p + "attention.query_key_value.weight"),
                     _w(weights, p + "attention.query_key_value.bias"))
        heads = []
        for head in range(h_):
            block_ = qkv[:, head * 3 * d:(head + 1) * 3 * d]  # this head's [q | k | v]
            q, k, v = block_[:, :d], block_[:, d:2 * d], block_[:, 2 * d:]
            half = d // 2
            q = np.concatenate([rotate_halves(q[:, :half], angles_p),
                                rotate_halves(q[:, half:], angles_b)], -1)
            k = np.concatenate([rotate_halves(k[:, :half], angles_p),
                                rotate_halves(k[:, half:], angles_b)], -1)
            heads.append(attention(q, k, v, allowed))
        attn = linear(np.concatenate(heads, -1), _w(weights, p + "attention.dense.weight"),
                      _w(weights, p + "attention.dense.bias"))
        h = a_in * alpha + attn
        m_in = layer_norm(h, _w(weights, p + "post_attention_layernorm.gamma"),
                          _w(weights, p + "post_attention_layernorm.beta"), eps)
        mlp = linear(gelu_tanh(linear(m_in, _w(weights, p + "mlp.dense_h_to_4h.weight"),
                                      _w(weights, p + "mlp.dense_h_to_4h.bias"))),
                     _w(weights, p + "mlp.dense_4h_to_h.weight"),
                     _w(weights, p + "mlp.dense_4h_to_h.bias"))
        x = m_in * alpha + mlp
    x = layer_norm(x, _w(weights, "transformer.final_layernorm.gamma"),
                   _w(weights, "transformer.final_layernorm.beta"), eps)
    return linear(x, _w(weights, "lm_head.weight"))


# ---- ChatGLM2-6B ----------------------------------------------------------------------------
def glm2_logits(weights, config, ids):
    """Logits (T, V) of one sequence: causal, positions 0..T-1."""
    t = len(ids)
    h_, g_ = config.num_heads, config.multi_query_group_num
    d = config.kv_channels or config.hidden_size // h_
    rot = d // 2  # ChatGLM2 turns the first half of each head
    eps = config.layernorm_epsilon
    angles = rope_angles(np.arange(t), rot, 10000.0 * config.rope_ratio)  # (T, rot/2)
    allowed = np.tril(np.ones((t, t), bool))
    x = _w(weights, "transformer.embedding.embedding_table")[list(ids)]
    for i in range(config.num_layers):
        p = f"transformer.encoder.layers.{i}."
        a_in = rms_norm(x, _w(weights, p + "input_layernorm.weight"), eps)
        qkv = linear(a_in, _w(weights, p + "self_attention.query_key_value.weight"),
                     _w(weights, p + "self_attention.query_key_value.bias"))
        q_all = qkv[:, :h_ * d]
        k_all = qkv[:, h_ * d:(h_ + g_) * d]
        v_all = qkv[:, (h_ + g_) * d:]
        heads = []
        for head in range(h_):
            group = head // (h_ // g_)
            q = q_all[:, head * d:(head + 1) * d]
            k = k_all[:, group * d:(group + 1) * d]
            v = v_all[:, group * d:(group + 1) * d]
            q = np.concatenate([rotate_adjacent(q[:, :rot], angles), q[:, rot:]], -1)
            k = np.concatenate([rotate_adjacent(k[:, :rot], angles), k[:, rot:]], -1)
            heads.append(attention(q, k, v, allowed))
        x = x + linear(np.concatenate(heads, -1), _w(weights, p + "self_attention.dense.weight"))
        m_in = rms_norm(x, _w(weights, p + "post_attention_layernorm.weight"), eps)
        gate_up = linear(m_in, _w(weights, p + "mlp.dense_h_to_4h.weight"))
        f = gate_up.shape[-1] // 2
        x = x + linear(silu(gate_up[:, :f]) * gate_up[:, f:],
                       _w(weights, p + "mlp.dense_4h_to_h.weight"))
    x = rms_norm(x, _w(weights, "transformer.encoder.final_layernorm.weight"), eps)
    return linear(x, _w(weights, "transformer.output_layer.weight"))


# ---- PanGu-Alpha ----------------------------------------------------------------------------
def _pangu_attention(weights, p, query_in, kv_in, num_heads, allowed):
    d = kv_in.shape[-1] // num_heads
    q = linear(query_in, _w(weights, p + "dense1.weight"), _w(weights, p + "dense1.bias"))
    k = linear(kv_in, _w(weights, p + "dense2.weight"), _w(weights, p + "dense2.bias"))
    v = linear(kv_in, _w(weights, p + "dense3.weight"), _w(weights, p + "dense3.bias"))
    heads = [attention(q[:, i * d:(i + 1) * d], k[:, i * d:(i + 1) * d],
                       v[:, i * d:(i + 1) * d], allowed) for i in range(num_heads)]
    # projection is (in, out) in MindFormers
    return np.concatenate(heads, -1) @ _w(weights, p + "projection.weight") + _w(
        weights, p + "projection.bias")


def _pangu_layer(weights, p, x, query, num_heads, allowed, eps):
    """Pre-LN block; the query comes from `query` when given (the top query layer)."""
    h = layer_norm(x, _w(weights, p + "layernorm1.gamma"), _w(weights, p + "layernorm1.beta"),
                   eps)
    x = x + _pangu_attention(weights, p + "attention.", h if query is None else query, h,
                             num_heads, allowed)
    m = layer_norm(x, _w(weights, p + "layernorm2.gamma"), _w(weights, p + "layernorm2.beta"),
                   eps)
    hidden = fast_gelu(m @ _w(weights, p + "output.mapping.weight")
                       + _w(weights, p + "output.mapping.bias"))
    return x + hidden @ _w(weights, p + "output.projection.weight") + _w(
        weights, p + "output.projection.bias")


def pangualpha_logits(weights, config, ids):
    """Logits (T, V) of one sequence: causal, positions 0..T-1, fast_gelu MLPs."""
    t = len(ids)
    eps = config.layernorm_epsilon
    allowed = np.tril(np.ones((t, t), bool))
    table = _w(weights, "backbone.embedding.word_embedding.embedding_table")
    x = table[list(ids)] + _w(weights, "backbone.embedding.position_embedding.embedding_table")[:t]
    for i in range(config.num_layers - 1):
        x = _pangu_layer(weights, f"backbone.blocks.{i}.", x, None, config.num_heads, allowed, eps)
    x = layer_norm(x, _w(weights, "backbone.layernorm.gamma"),
                   _w(weights, "backbone.layernorm.beta"), eps)
    query = _w(weights, "backbone.top_query_embedding.embedding_table")[:t]
    x = _pangu_layer(weights, "backbone.top_query_layer.", x, query, config.num_heads, allowed,
                     eps)
    return x @ table.T


# ---- weights that make the tests see the equations ------------------------------------------
def sharp_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights large enough that attention is far from uniform.

    With the init std of 0.02, q.k / sqrt(D) is ~1e-3: every softmax is flat, and a wrong
    position or mask moves the logits by less than 1e-4. Matrices of std 0.25 on 64-wide debug
    models give scores of a few units, so each mask and rotary angle shows in the logits.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma",) or (leaf == "weight" and len(shape) == 1):  # LayerNorm / RMSNorm
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif leaf in ("beta", "bias"):
            value = 0.1 * rng.standard_normal(shape)
        elif "embedding" in leaf:  # embedding_table: unit scale, as LayerNorm outputs are
            value = rng.standard_normal(shape)
        else:
            value = 0.25 * rng.standard_normal(shape)
        out[name] = value.astype(np.float32)
    return out
