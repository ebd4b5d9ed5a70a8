"""ChatGLM-6B config and presets (Du et al. 2022, GLM, arXiv:2103.10360; THUDM/chatglm-6b;
MindFormers `GLMConfig`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.shapes import linear, norm
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # THUDM/chatglm-6b config.json (max_sequence_length 2048, vocab 130528, inner 16384) and
    # MindFormers configs/glm/run_glm_6b_infer.yaml (the same sizes; it pads inputs to 512).
    "glm_6b": dict(seq_length=2048, vocab_size=130528, hidden_size=4096, num_layers=28,
                   num_heads=32, inner_hidden_size=16384),
    # MindFormers configs/glm/run_glm_6b_lora.yaml: ChatGLM-6B with its pet_config (LoRA rank 8,
    # alpha 32, dropout 0.1; target query_key_value, hard-wired in its GLMForPreTrainingWithLora
    # and mf-train's glm default); mf-train applies it.
    "glm_6b_lora": dict(seq_length=2048, vocab_size=130528, hidden_size=4096, num_layers=28,
                        num_heads=32, inner_hidden_size=16384,
                        pet_config=dict(pet_type="lora", lora_rank=8, lora_alpha=32,
                                        lora_dropout=0.1)),
    # Tiny flavour for tests. The special ids sit below the ids the test prompts draw (>= 4),
    # so a random prompt holds [gMASK] / <sop> only where a test puts them.
    "glm_debug": dict(seq_length=128, vocab_size=1024, hidden_size=64, num_layers=2,
                      num_heads=4, inner_hidden_size=256, mask_token_id=0, gmask_token_id=1,
                      bos_token_id=2, eos_token_id=3, pad_token_id=3),
}

# MindFormers' shapes: every Linear is (out, in). query_key_value holds, per head, that head's
# q, k and v rows next to each other ((heads, 3, head_dim) rows), so a row split over "mp" hands
# each rank whole heads. Megatron pairing: qkv and dense_h_to_4h by output row, dense and
# dense_4h_to_h by input column, embedding and head by vocabulary row.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "transformer.word_embeddings.embedding_table": ("mp", None),
    "transformer.layers.*_layernorm.gamma": (None,),
    "transformer.layers.*_layernorm.beta": (None,),
    "transformer.layers.*.attention.query_key_value.weight": ("mp", None),
    "transformer.layers.*.attention.query_key_value.bias": ("mp",),
    "transformer.layers.*.attention.dense.weight": (None, "mp"),
    "transformer.layers.*.attention.dense.bias": (None,),
    "transformer.layers.*.mlp.dense_h_to_4h.weight": ("mp", None),
    "transformer.layers.*.mlp.dense_h_to_4h.bias": ("mp",),
    "transformer.layers.*.mlp.dense_4h_to_h.weight": (None, "mp"),
    "transformer.layers.*.mlp.dense_4h_to_h.bias": (None,),
    "transformer.final_layernorm.gamma": (None,),
    "transformer.final_layernorm.beta": (None,),
    "lm_head.weight": ("mp", None),
}


@dataclasses.dataclass
class GLMConfig(ModelConfig):
    """ChatGLM-6B: 2-D rotary positions, prefix-LM mask around [gMASK], GeLU MLP, residuals
    scaled by sqrt(2 * num_layers) on the normalised input (GLM-130B's DeepNorm)."""

    family: ClassVar[str] = "glm"
    # No transformers architecture: THUDM ships its own modeling code (model_type "chatglm").
    hf_model_type: ClassVar[str | None] = None
    hf_key_map: ClassVar[dict[str, str]] = {
        "num_attention_heads": "num_heads", "max_sequence_length": "seq_length",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 2048
    vocab_size: int = 130528
    hidden_size: int = 4096
    num_layers: int = 28
    num_heads: int = 32
    inner_hidden_size: int = 16384
    # MindFormers: None means hidden_size / num_heads (the only layout ChatGLM-6B uses).
    hidden_size_per_attention_head: int | None = None
    layernorm_order: str = "post"
    layernorm_epsilon: float = 1e-5
    use_final_layernorm: bool = True
    activation_func: str = "GELU"
    position_encoding_2d: bool = True
    # THUDM/chatglm-6b ice_text.model with num_image_tokens 0: <sop> 130004, <eop> 130005.
    bos_token_id: int | None = 130004
    eos_token_id: int | list[int] | None = 130005
    mask_token_id: int = 130000
    gmask_token_id: int = 130001
    pad_token_id: int | None = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.inner_hidden_size, bool) or not isinstance(
                self.inner_hidden_size, int) or self.inner_hidden_size < 1:
            raise ModelConfigError(
                f"inner_hidden_size={self.inner_hidden_size!r} must be a positive integer")
        per_head = self.hidden_size_per_attention_head
        if per_head not in (None, self.head_dim):
            raise ModelConfigError(
                f"hidden_size_per_attention_head({per_head}) must be hidden_size"
                f"({self.hidden_size}) / num_heads({self.num_heads}) = {self.head_dim} or None")
        if self.head_dim % 4:
            raise ModelConfigError(
                f"2-D rotary positions rotate each half of a head in pairs, so head_dim must be a "
                f"multiple of 4; got hidden_size({self.hidden_size}) / num_heads"
                f"({self.num_heads}) = {self.head_dim}")
        unsupported = {"layernorm_order": (self.layernorm_order, "post"),
                       "activation_func": (self.activation_func, "GELU"),
                       "position_encoding_2d": (self.position_encoding_2d, True),
                       "use_final_layernorm": (self.use_final_layernorm, True)}
        for field, (value, allowed) in unsupported.items():
            if value != allowed:
                raise ModelConfigError(f"{field}={value!r} is not supported for glm; only "
                                       f"{allowed!r} (ChatGLM-6B's) is")
        for field in ("bos_token_id", "gmask_token_id", "mask_token_id"):
            value = getattr(self, field)
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ModelConfigError(f"{field}={value!r} must be a token id in "
                                       f"[0, vocab_size({self.vocab_size}))")

    @property
    def ffn_hidden_size(self) -> int:
        return self.inner_hidden_size

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        c, f = self.hidden_size, self.ffn_hidden_size
        shapes = [("transformer.word_embeddings.embedding_table", (self.vocab_size, c))]
        for i in range(self.num_layers):
            layer = f"transformer.layers.{i}"
            shapes += norm(f"{layer}.input_layernorm", c)
            shapes += linear(f"{layer}.attention.query_key_value", 3 * c, c)
            shapes += linear(f"{layer}.attention.dense", c, c)
            shapes += norm(f"{layer}.post_attention_layernorm", c)
            shapes += linear(f"{layer}.mlp.dense_h_to_4h", f, c)
            shapes += linear(f"{layer}.mlp.dense_4h_to_h", c, f)
        shapes += norm("transformer.final_layernorm", c)
        # MindFormers keeps lm_head.weight beside the embedding (THUDM ties the two, which is
        # why ChatGLM-6B is called a 6.2B model: this count is 6.7B).
        return shapes + [("lm_head.weight", (self.vocab_size, c))]

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """A THUDM `config.json`. ChatGLM-6B and ChatGLM2-6B both say model_type "chatglm";
        ChatGLM2's is told apart by its multi-query keys."""
        if "multi_query_group_num" in hf or "padded_vocab_size" in hf:
            from mf_models.configs.glm2 import ChatGLM2Config

            return ChatGLM2Config.from_hf_dict(hf)
        return super().from_hf_dict(hf)
