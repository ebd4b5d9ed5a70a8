"""BLOOM config and presets (BigScience 2022; MindFormers `BloomConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import mindformers_block, norm

PRESETS: dict[str, dict[str, Any]] = {
    # HF bigscience/bloom-560m config.json / MindFormers configs/bloom/run_bloom_560m.yaml.
    "bloom_560m": dict(seq_length=2048, vocab_size=250880, hidden_size=1024, num_layers=24,
                       num_heads=16),
    # HF bigscience/bloom-7b1 / MindFormers configs/bloom/run_bloom_7.1b.yaml.
    "bloom_7.1b": dict(seq_length=2048, vocab_size=250880, hidden_size=4096, num_layers=30,
                       num_heads=32),
    # MindFormers configs/bloom/run_bloom_65b.yaml (embedding_size 8192, 80 layers, 64 heads).
    "bloom_65b": dict(seq_length=2048, vocab_size=250880, hidden_size=8192, num_layers=80,
                      num_heads=64),
    # HF bigscience/bloom / MindFormers configs/bloom/run_bloom_176b.yaml.
    "bloom_176b": dict(seq_length=2048, vocab_size=250880, hidden_size=14336, num_layers=70,
                       num_heads=112),
    # Tiny flavour for tests.
    "bloom_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64, num_layers=2,
                        num_heads=4),
}

# MindFormers' shapes (its convert_weight.py): dense1/2/3 (q, k, v) are (out, in); projection
# and mapping are (in, out). Same Megatron split as GPT-2; the head is tied to the embedding.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "transformer.embedding.word_embedding.embedding_table": ("mp", None),
    "transformer.embedding.norm.gamma": (None,),
    "transformer.embedding.norm.beta": (None,),
    "transformer.blocks.*.layernorm*.gamma": (None,),
    "transformer.blocks.*.layernorm*.beta": (None,),
    "transformer.blocks.*.attention.dense*.weight": ("mp", None),
    "transformer.blocks.*.attention.dense*.bias": ("mp",),
    "transformer.blocks.*.attention.projection.weight": ("mp", None),
    "transformer.blocks.*.attention.projection.bias": (None,),
    "transformer.blocks.*.output.mapping.weight": (None, "mp"),
    "transformer.blocks.*.output.mapping.bias": ("mp",),
    "transformer.blocks.*.output.projection.weight": ("mp", None),
    "transformer.blocks.*.output.projection.bias": (None,),
    "transformer.ln_f.gamma": (None,),
    "transformer.ln_f.beta": (None,),
}


@dataclasses.dataclass
class BloomConfig(ModelConfig):
    """BLOOM: ALiBi attention biases instead of positions, LayerNorm after the embedding."""

    family: ClassVar[str] = "bloom"
    hf_model_type: ClassVar[str | None] = "bloom"
    hf_key_map: ClassVar[dict[str, str]] = {
        "n_layer": "num_layers", "n_head": "num_heads", "num_hidden_layers": "num_layers",
        "num_attention_heads": "num_heads", "n_embed": "hidden_size",
    }
    aliases: ClassVar[dict[str, str]] = {"embedding_size": "hidden_size"}
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 2048
    vocab_size: int = 250880
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    expand_ratio: int = 4
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = 3

    @property
    def ffn_hidden_size(self) -> int:
        return self.expand_ratio * self.hidden_size

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c = self.hidden_size
        shapes = [("transformer.embedding.word_embedding.embedding_table", (self.vocab_size, c))]
        shapes += norm("transformer.embedding.norm", c)
        for i in range(self.num_layers):
            shapes += mindformers_block(f"transformer.blocks.{i}", c, self.ffn_hidden_size)
        return shapes + norm("transformer.ln_f", c)  # the LM head is the embedding table

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["BloomForCausalLM"], "model_type": "bloom",
            "hidden_size": self.hidden_size, "n_layer": self.num_layers,
            "seq_length": self.seq_length,  # not read by transformers; keeps our limit
            "n_head": self.num_heads, "vocab_size": self.vocab_size,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range, "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id,
            "apply_residual_connection_post_layernorm": False, "hidden_dropout": 0.0,
            "attention_dropout": 0.0, "tie_word_embeddings": True,
            "torch_dtype": self.param_init_type,
        }
