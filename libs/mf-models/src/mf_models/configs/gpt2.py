"""GPT-2 config and presets (Radford et al. 2019; MindFormers `GPT2Config`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import mindformers_block, norm
from mf_models.errors import ModelConfigError

# "gelu" is the tanh approximation, as in MindSpore's nn.GELU and MindFormers' configs (HF calls
# it "gelu_new"); "gelu_exact" is the erf form (HF "gelu"); "fast_gelu" is MindSpore's FastGelu.
ACTIVATIONS = ("gelu", "gelu_exact", "fast_gelu", "relu")
# Hugging Face's `activation_function` / `hidden_act` names <-> ours.
HF_ACTIVATIONS_IN = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu",
                     "gelu": "gelu_exact", "relu": "relu"}
HF_ACTIVATIONS_OUT = {"gelu": "gelu_new", "gelu_exact": "gelu", "relu": "relu"}

PRESETS: dict[str, dict[str, Any]] = {
    # HF `gpt2` config.json / MindFormers configs/gpt2/run_gpt2.yaml (124M).
    "gpt2": dict(seq_length=1024, vocab_size=50257, hidden_size=768, num_layers=12, num_heads=12),
    # MindFormers configs/gpt2/model_config/gpt2_13b.yaml.
    "gpt2_13b": dict(seq_length=1024, vocab_size=50257, hidden_size=5120, num_layers=40,
                     num_heads=40),
    # MindFormers configs/gpt2/model_config/gpt2_52b.yaml.
    "gpt2_52b": dict(seq_length=1024, vocab_size=50257, hidden_size=8192, num_layers=64,
                     num_heads=32),
    # Tiny flavour for tests: runs on a CPU in well under a second.
    "gpt2_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64, num_layers=2,
                       num_heads=4),
}

# MindFormers' shapes: dense1/2/3 (q, k, v) weights are (out, in), projection and mapping are
# (in, out). Megatron split: q/k/v and mapping by output column, the projections by input row.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "backbone.embedding.word_embedding.embedding_table": ("mp", None),
    "backbone.embedding.position_embedding.embedding_table": (None, None),
    "backbone.blocks.*.layernorm*.gamma": (None,),
    "backbone.blocks.*.layernorm*.beta": (None,),
    "backbone.blocks.*.attention.dense*.weight": ("mp", None),
    "backbone.blocks.*.attention.dense*.bias": ("mp",),
    "backbone.blocks.*.attention.projection.weight": ("mp", None),
    "backbone.blocks.*.attention.projection.bias": (None,),
    "backbone.blocks.*.output.mapping.weight": (None, "mp"),
    "backbone.blocks.*.output.mapping.bias": ("mp",),
    "backbone.blocks.*.output.projection.weight": ("mp", None),
    "backbone.blocks.*.output.projection.bias": (None,),
    "backbone.layernorm.gamma": (None,),
    "backbone.layernorm.beta": (None,),
}


@dataclasses.dataclass
class GPT2Config(ModelConfig):
    """GPT-2: learned positions, pre-LayerNorm blocks, GELU MLP, LM head tied to the embedding."""

    family: ClassVar[str] = "gpt2"
    hf_model_type: ClassVar[str | None] = "gpt2"
    hf_key_map: ClassVar[dict[str, str]] = {
        "n_positions": "seq_length", "n_embd": "hidden_size", "n_layer": "num_layers",
        "n_head": "num_heads", "n_inner": "ffn_hidden_size_override",
    }
    aliases: ClassVar[dict[str, str]] = {
        "embedding_size": "hidden_size", "layernorm_dtype": "layernorm_compute_type",
        "softmax_dtype": "softmax_compute_type",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    # MindFormers' model cards call the 124M model `gpt2_small`.
    preset_aliases: ClassVar[dict[str, str]] = {"gpt2_small": "gpt2"}
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 1024
    vocab_size: int = 50257
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    expand_ratio: int = 4
    # HF's `n_inner`: the MLP width when it is not expand_ratio * hidden_size.
    ffn_hidden_size_override: int | None = None
    hidden_act: str = "gelu"
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = 50256

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_act not in ACTIVATIONS:
            raise ModelConfigError(
                f"hidden_act={self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}"
            )

    @property
    def ffn_hidden_size(self) -> int:
        return self.ffn_hidden_size_override or self.expand_ratio * self.hidden_size

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c = self.hidden_size
        shapes = [("backbone.embedding.word_embedding.embedding_table", (self.vocab_size, c)),
                  ("backbone.embedding.position_embedding.embedding_table", (self.seq_length, c))]
        for i in range(self.num_layers):
            shapes += mindformers_block(f"backbone.blocks.{i}", c, self.ffn_hidden_size)
        return shapes + norm("backbone.layernorm", c)  # the LM head is the embedding table

    @classmethod
    def _from_hf_extra(cls, hf: Mapping[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
        act = hf.get("activation_function", "gelu_new")
        if act not in HF_ACTIVATIONS_IN:
            raise ModelConfigError(f"activation_function={act!r} is not supported for gpt2; "
                                   f"supported: {', '.join(HF_ACTIVATIONS_IN)}")
        mapped["hidden_act"] = HF_ACTIVATIONS_IN[act]
        return mapped

    def to_hf_dict(self) -> dict[str, Any]:
        if self.hidden_act not in HF_ACTIVATIONS_OUT:
            raise ModelConfigError(f"hidden_act={self.hidden_act!r} has no transformers "
                                   "equivalent; export supports gelu, gelu_exact, relu")
        return {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "n_positions": self.seq_length, "n_ctx": self.seq_length,
            "n_embd": self.hidden_size, "n_layer": self.num_layers, "n_head": self.num_heads,
            "n_inner": self.ffn_hidden_size_override, "vocab_size": self.vocab_size,
            "activation_function": HF_ACTIVATIONS_OUT[self.hidden_act],
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id, "tie_word_embeddings": True,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "torch_dtype": self.param_init_type,
        }
