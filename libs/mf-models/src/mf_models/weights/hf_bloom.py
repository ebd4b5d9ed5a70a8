"""BLOOM: Hugging Face `BloomForCausalLM` names <-> MindFormers' names.

HF fuses q/k/v in `query_key_value` (3C, C) interleaved per head: rows are (head, {q,k,v}, D).
MindFormers keeps them apart (`dense1/2/3`, (out, in)); its projection and MLP weights are
(in, out), the transpose of HF's nn.Linear.
"""

import numpy as np

from mf_models.weights.hf import TRANSPOSE, Convert, Table, layer, single


def _split_heads(a, config):
    h, d = config.num_heads, config.head_dim
    grouped = a.reshape(h, 3, d, *a.shape[1:])  # (H, 3, D[, C])
    return [np.ascontiguousarray(grouped[:, n].reshape(h * d, *a.shape[1:])) for n in range(3)]


def _merge_heads(parts, config):
    h, d = config.num_heads, config.head_dim
    tail = parts[0].shape[1:]
    stacked = np.stack([p.reshape(h, d, *tail) for p in parts], axis=1)  # (H, 3, D[, C])
    return np.ascontiguousarray(stacked.reshape(3 * h * d, *tail))


QKV = Convert(_split_heads, _merge_heads)

_B = "transformer.blocks.{i}."
_H = "transformer.h.{i}."
TABLE = Table(
    rules=[
        single("transformer.word_embeddings.weight",
               "transformer.embedding.word_embedding.embedding_table"),
        single("transformer.word_embeddings_layernorm.weight", "transformer.embedding.norm.gamma"),
        single("transformer.word_embeddings_layernorm.bias", "transformer.embedding.norm.beta"),
        layer(_H + "input_layernorm.weight", _B + "layernorm1.gamma"),
        layer(_H + "input_layernorm.bias", _B + "layernorm1.beta"),
        layer(_H + "self_attention.query_key_value.weight",
              tuple(_B + f"attention.dense{n}.weight" for n in (1, 2, 3)), QKV),
        layer(_H + "self_attention.query_key_value.bias",
              tuple(_B + f"attention.dense{n}.bias" for n in (1, 2, 3)), QKV),
        layer(_H + "self_attention.dense.weight", _B + "attention.projection.weight", TRANSPOSE),
        layer(_H + "self_attention.dense.bias", _B + "attention.projection.bias"),
        layer(_H + "post_attention_layernorm.weight", _B + "layernorm2.gamma"),
        layer(_H + "post_attention_layernorm.bias", _B + "layernorm2.beta"),
        layer(_H + "mlp.dense_h_to_4h.weight", _B + "output.mapping.weight", TRANSPOSE),
        layer(_H + "mlp.dense_h_to_4h.bias", _B + "output.mapping.bias"),
        layer(_H + "mlp.dense_4h_to_h.weight", _B + "output.projection.weight", TRANSPOSE),
        layer(_H + "mlp.dense_4h_to_h.bias", _B + "output.projection.bias"),
        single("transformer.ln_f.weight", "transformer.ln_f.gamma"),
        single("transformer.ln_f.bias", "transformer.ln_f.beta"),
    ],
    ignore=["lm_head.weight"],  # tied to the word embedding
    hf_prefix="transformer.",
)


def table_for(config) -> Table:
    return TABLE
