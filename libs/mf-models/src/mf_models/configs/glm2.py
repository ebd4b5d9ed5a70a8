"""ChatGLM2-6B config and presets (THUDM/chatglm2-6b; MindFormers `ChatGLM2Config`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import linear
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # THUDM/chatglm2-6b config.json (seq_length 32768, padded_vocab_size 65024, ffn 13696,
    # kv_channels 128, 2 multi-query groups) / MindFormers configs/glm2/run_glm2_6b.yaml (the
    # same sizes; it pads fine-tuning inputs to 193).
    "glm2_6b": dict(seq_length=32768, vocab_size=65024, hidden_size=4096, num_layers=28,
                    num_heads=32, ffn_hidden_size=13696, kv_channels=128,
                    multi_query_group_num=2),
    # Tiny flavour for tests: 4 query heads sharing 2 key/value groups.
    "glm2_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64, num_layers=2,
                       num_heads=4, ffn_hidden_size=96, kv_channels=16, multi_query_group_num=2,
                       gmask_token_id=1, bos_token_id=2, eos_token_id=3, pad_token_id=0),
}

# MindFormers' shapes: every Linear is (out, in). query_key_value is [q of every head | k of
# every group | v of every group] and dense_h_to_4h is [gate | up]: a contiguous row split of
# either would give one rank only queries (or only gates), so both stay whole, and so do the
# projections that consume their outputs. Embedding and output layer split by vocabulary row.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "transformer.embedding.embedding_table": ("mp", None),
    "transformer.encoder.layers.*_layernorm.weight": (None,),
    "transformer.encoder.layers.*.self_attention.query_key_value.weight": (None, None),
    "transformer.encoder.layers.*.self_attention.query_key_value.bias": (None,),
    "transformer.encoder.layers.*.self_attention.dense.weight": (None, None),
    "transformer.encoder.layers.*.mlp.dense_h_to_4h.weight": (None, None),
    "transformer.encoder.layers.*.mlp.dense_4h_to_h.weight": (None, None),
    "transformer.encoder.final_layernorm.weight": (None,),
    "transformer.output_layer.weight": ("mp", None),
}


@dataclasses.dataclass
class ChatGLM2Config(ModelConfig):
    """ChatGLM2-6B: RMSNorm, multi-query attention, rotary on half of each head, SwiGLU."""

    gated_mlp: ClassVar[bool] = True  # SwiGLU
    family: ClassVar[str] = "glm2"
    hf_model_type: ClassVar[str | None] = None  # THUDM's own code, model_type "chatglm"
    hf_key_map: ClassVar[dict[str, str]] = {
        "padded_vocab_size": "vocab_size", "num_attention_heads": "num_heads",
    }
    # MindFormers' ChatGLM2Config spells these as THUDM does.
    aliases: ClassVar[dict[str, str]] = {
        "padded_vocab_size": "vocab_size", "num_attention_heads": "num_heads",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 32768
    vocab_size: int = 65024
    hidden_size: int = 4096
    num_layers: int = 28
    num_heads: int = 32
    # The SwiGLU width: dense_h_to_4h produces 2 * ffn_hidden_size (gate and up).
    ffn_hidden_size: int = 13696
    # Per-head width; None means hidden_size / num_heads.
    kv_channels: int | None = 128
    multi_query_attention: bool = True
    multi_query_group_num: int = 2
    layernorm_epsilon: float = 1e-5
    add_qkv_bias: bool = True
    add_bias_linear: bool = False
    rmsnorm: bool = True
    post_layer_norm: bool = True
    apply_residual_connection_post_layernorm: bool = False
    # Rotary base = 10000 * rope_ratio (ChatGLM3-6B-32K uses 50).
    rope_ratio: float = 1.0
    # THUDM/chatglm2-6b tokenizer: [gMASK] 64790 and sop 64792 start every prompt; </s> 2.
    gmask_token_id: int | None = 64790
    bos_token_id: int | None = 64792
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.ffn_hidden_size, bool) or not isinstance(
                self.ffn_hidden_size, int) or self.ffn_hidden_size < 1:
            raise ModelConfigError(
                f"ffn_hidden_size={self.ffn_hidden_size!r} must be a positive integer")
        if self.kv_channels is not None and self.kv_channels < 1:
            raise ModelConfigError(f"kv_channels={self.kv_channels!r} must be a positive integer")
        kv = self.kv_heads
        if kv < 1 or self.num_heads % kv:
            raise ModelConfigError(
                f"multi_query_group_num({kv}) must divide num_heads({self.num_heads}): "
                f"{self.num_heads} / {kv} = {self.num_heads / max(kv, 1):g}")
        if self.head_dim % 4:
            raise ModelConfigError(
                f"rotary positions turn pairs within the first half of each head, so the head "
                f"width must be a multiple of 4; got {self.head_dim}")
        for field, allowed in (("rmsnorm", True), ("post_layer_norm", True),
                               ("apply_residual_connection_post_layernorm", False),
                               ("add_bias_linear", False)):
            if getattr(self, field) != allowed:
                raise ModelConfigError(f"{field}={getattr(self, field)!r} is not supported for "
                                       f"glm2; only {allowed!r} (ChatGLM2-6B's) is")

    @property
    def head_dim(self) -> int:
        return self.kv_channels or self.hidden_size // self.num_heads

    @property
    def kv_heads(self) -> int:
        return self.multi_query_group_num if self.multi_query_attention else self.num_heads

    @property
    def rotary_dim(self) -> int:
        """The leading part of each head that is rotated: half of it, as ChatGLM2 does."""
        return self.head_dim // 2

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c, f, d = self.hidden_size, self.ffn_hidden_size, self.head_dim
        q, kv = self.num_heads * d, self.kv_heads * d
        shapes = [("transformer.embedding.embedding_table", (self.vocab_size, c))]
        for i in range(self.num_layers):
            layer = f"transformer.encoder.layers.{i}"
            shapes += [(f"{layer}.input_layernorm.weight", (c,))]
            shapes += linear(f"{layer}.self_attention.query_key_value", q + 2 * kv, c,
                             self.add_qkv_bias)
            shapes += linear(f"{layer}.self_attention.dense", c, q, bias=False)
            shapes += [(f"{layer}.post_attention_layernorm.weight", (c,))]
            shapes += linear(f"{layer}.mlp.dense_h_to_4h", 2 * f, c, bias=False)  # gate | up
            shapes += linear(f"{layer}.mlp.dense_4h_to_h", c, f, bias=False)
        shapes += [("transformer.encoder.final_layernorm.weight", (c,))]
        return shapes + [("transformer.output_layer.weight", (self.vocab_size, c))]
