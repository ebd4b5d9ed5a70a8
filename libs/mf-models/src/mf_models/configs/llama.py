"""LLaMA config and presets (Touvron et al. 2023; MindFormers `LlamaConfig`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import linear
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # Touvron et al. 2023, table 2 / MindFormers configs/llama/run_llama_7b.yaml.
    "llama_7b": dict(seq_length=2048, vocab_size=32000, hidden_size=4096, num_layers=32,
                     num_heads=32, multiple_of=256),
    # Same sources, 13B row.
    "llama_13b": dict(seq_length=2048, vocab_size=32000, hidden_size=5120, num_layers=40,
                      num_heads=40, multiple_of=256),
    # Same sources, 65B row.
    "llama_65b": dict(seq_length=2048, vocab_size=32000, hidden_size=8192, num_layers=80,
                      num_heads=64, multiple_of=256),
    # MindFormers configs/llama/run_llama_7b_lora.yaml: LLaMA-7B with its model_config.pet_config
    # (LoRA rank 16, alpha 16, dropout 0.05 on wq/wk/wv/wo); mf-train applies it.
    "llama_7b_lora": dict(seq_length=2048, vocab_size=32000, hidden_size=4096, num_layers=32,
                          num_heads=32, multiple_of=256,
                          pet_config=dict(pet_type="lora", lora_rank=16, lora_alpha=16,
                                          lora_dropout=0.05,
                                          target_modules=r".*wq|.*wk|.*wv|.*wo")),
    # Tiny flavour for tests, with grouped-query attention (2 key/value heads for 4 heads).
    "llama_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64, num_layers=2,
                        num_heads=4, n_kv_heads=2, intermediate_size=128),
}

# Weights are (out, in). Megatron split: q/k/v, w1 (gate) and w3 (up) by output row; wo and
# w2 (down) by input column; embedding and LM head by vocabulary row.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "model.tok_embeddings.embedding_weight": ("mp", None),
    "model.layers.*.attention.wq.weight": ("mp", None),
    "model.layers.*.attention.wk.weight": ("mp", None),
    "model.layers.*.attention.wv.weight": ("mp", None),
    "model.layers.*.attention.wo.weight": (None, "mp"),
    "model.layers.*.feed_forward.w1.weight": ("mp", None),
    "model.layers.*.feed_forward.w3.weight": ("mp", None),
    "model.layers.*.feed_forward.w2.weight": (None, "mp"),
    "model.layers.*.attention_norm.weight": (None,),
    "model.layers.*.ffn_norm.weight": (None,),
    "model.norm_out.weight": (None,),
    "lm_head.weight": ("mp", None),
}


@dataclasses.dataclass
class LlamaConfig(ModelConfig):
    """LLaMA: RMSNorm, rotary positions, SwiGLU MLP, optional grouped-query attention."""

    gated_mlp: ClassVar[bool] = True  # SwiGLU
    family: ClassVar[str] = "llama"
    hf_model_type: ClassVar[str | None] = "llama"
    hf_key_map: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
        "num_key_value_heads": "n_kv_heads", "max_position_embeddings": "seq_length",
        "rope_theta": "theta",
    }
    aliases: ClassVar[dict[str, str]] = {"max_position_embedding": "seq_length"}
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 2048
    vocab_size: int = 32000
    hidden_size: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    n_kv_heads: int | None = None
    intermediate_size: int | None = None
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    rms_norm_eps: float = 1e-5
    theta: float = 10000.0
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        kv = self.kv_heads
        if kv < 1 or self.num_heads % kv:
            raise ModelConfigError(
                f"n_kv_heads({kv}) must divide num_heads({self.num_heads}): "
                f"{self.num_heads} / {kv} = {self.num_heads / max(kv, 1):g}"
            )
        if self.head_dim % 2:
            raise ModelConfigError(
                f"rotary positions need an even head_dim, got hidden_size({self.hidden_size}) "
                f"/ num_heads({self.num_heads}) = {self.head_dim}"
            )

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.num_heads

    @property
    def ffn_hidden_size(self) -> int:
        if self.intermediate_size:
            return self.intermediate_size
        # Meta's reference `FeedForward`: 2/3 of 4*hidden, scaled, rounded up to multiple_of.
        hidden = int(2 * 4 * self.hidden_size / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c, f, d = self.hidden_size, self.ffn_hidden_size, self.head_dim
        shapes = [("model.tok_embeddings.embedding_weight", (self.vocab_size, c))]
        for i in range(self.num_layers):
            block = f"model.layers.{i}"
            shapes += [(f"{block}.attention_norm.weight", (c,))]
            shapes += linear(f"{block}.attention.wq", self.num_heads * d, c, bias=False)
            shapes += linear(f"{block}.attention.wk", self.kv_heads * d, c, bias=False)
            shapes += linear(f"{block}.attention.wv", self.kv_heads * d, c, bias=False)
            shapes += linear(f"{block}.attention.wo", c, self.num_heads * d, bias=False)
            shapes += [(f"{block}.ffn_norm.weight", (c,))]
            shapes += linear(f"{block}.feed_forward.w1", f, c, bias=False)
            shapes += linear(f"{block}.feed_forward.w3", f, c, bias=False)
            shapes += linear(f"{block}.feed_forward.w2", c, f, bias=False)
        shapes += [("model.norm_out.weight", (c,))]
        if not self.tie_word_embeddings:
            shapes += [("lm_head.weight", (self.vocab_size, c))]
        return shapes

    @classmethod
    def _from_hf_extra(cls, hf: Mapping[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
        # transformers 5 keeps rope settings under `rope_parameters`.
        rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
        if rope.get("rope_type", "default") not in ("default", None):
            raise ModelConfigError(f"rope_type={rope.get('rope_type')!r} is not supported; "
                                   "only the default rotary embedding is")
        if "rope_theta" in rope:
            mapped["theta"] = rope["rope_theta"]
        heads, hidden = hf.get("num_attention_heads"), hf.get("hidden_size")
        if hf.get("head_dim") and heads and hidden and hf["head_dim"] != hidden // heads:
            raise ModelConfigError(
                f"head_dim({hf['head_dim']}) != hidden_size({hidden}) / num_attention_heads"
                f"({heads}) = {hidden // heads}; a separate head_dim is not supported")
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise ModelConfigError("attention_bias/mlp_bias=true is not supported for llama")
        return mapped

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": self.hidden_size, "intermediate_size": self.ffn_hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.kv_heads, "max_position_embeddings": self.seq_length,
            "vocab_size": self.vocab_size, "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.theta, "hidden_act": "silu",
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range, "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id,
            "attention_bias": False, "mlp_bias": False, "torch_dtype": self.param_init_type,
        }
