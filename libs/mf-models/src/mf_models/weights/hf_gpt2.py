"""GPT-2: Hugging Face `GPT2LMHeadModel` names <-> MindFormers' names.

HF GPT-2 uses Conv1D, whose weight is (in, out). MindFormers keeps q/k/v as (out, in) and the
projections and MLP as (in, out) (its gpt2 convert_weight.py), so `c_attn` is split in three
and each part transposed, while `c_proj`, `c_fc` and `mlp.c_proj` are copied as they are.
"""

import numpy as np

from mf_models.weights.hf import Convert, Table, layer, single


def _split_qkv_weight(a, config):
    return [np.ascontiguousarray(p.T) for p in np.split(a, 3, axis=1)]  # 3 x (C, C) (out, in)


def _merge_qkv_weight(parts, config):
    return np.ascontiguousarray(np.concatenate([p.T for p in parts], axis=1))  # (C, 3C)


QKV_WEIGHT = Convert(_split_qkv_weight, _merge_qkv_weight)
QKV_BIAS = Convert(lambda a, c: list(np.split(a, 3)), lambda parts, c: np.concatenate(parts))

_B = "backbone.blocks.{i}."
TABLE = Table(
    rules=[
        single("transformer.wte.weight", "backbone.embedding.word_embedding.embedding_table"),
        single("transformer.wpe.weight", "backbone.embedding.position_embedding.embedding_table"),
        layer("transformer.h.{i}.ln_1.weight", _B + "layernorm1.gamma"),
        layer("transformer.h.{i}.ln_1.bias", _B + "layernorm1.beta"),
        layer("transformer.h.{i}.attn.c_attn.weight",
              tuple(_B + f"attention.dense{n}.weight" for n in (1, 2, 3)), QKV_WEIGHT),
        layer("transformer.h.{i}.attn.c_attn.bias",
              tuple(_B + f"attention.dense{n}.bias" for n in (1, 2, 3)), QKV_BIAS),
        layer("transformer.h.{i}.attn.c_proj.weight", _B + "attention.projection.weight"),
        layer("transformer.h.{i}.attn.c_proj.bias", _B + "attention.projection.bias"),
        layer("transformer.h.{i}.ln_2.weight", _B + "layernorm2.gamma"),
        layer("transformer.h.{i}.ln_2.bias", _B + "layernorm2.beta"),
        layer("transformer.h.{i}.mlp.c_fc.weight", _B + "output.mapping.weight"),
        layer("transformer.h.{i}.mlp.c_fc.bias", _B + "output.mapping.bias"),
        layer("transformer.h.{i}.mlp.c_proj.weight", _B + "output.projection.weight"),
        layer("transformer.h.{i}.mlp.c_proj.bias", _B + "output.projection.bias"),
        single("transformer.ln_f.weight", "backbone.layernorm.gamma"),
        single("transformer.ln_f.bias", "backbone.layernorm.beta"),
    ],
    # The head is tied to wte; `attn.bias`/`masked_bias` are causal-mask buffers of old versions.
    ignore=["lm_head.weight", "transformer.h.*.attn.bias", "transformer.h.*.attn.masked_bias"],
    hf_prefix="transformer.",
)


def table_for(config) -> Table:
    return TABLE
