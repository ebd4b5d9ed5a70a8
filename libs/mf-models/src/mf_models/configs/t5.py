"""T5 config and presets (Raffel et al. 2020, arXiv:1910.10683; MindFormers `T5Config`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # google-t5/t5-small config.json (d_model 512, d_ff 2048, 6 + 6 layers, 8 heads of 64,
    # 32 buckets up to 128 positions, vocab 32128) / MindFormers configs/t5/run_t5_small.yaml.
    "t5_small": dict(vocab_size=32128, hidden_size=512, d_ff=2048, d_kv=64, num_layers=6,
                     num_decoder_layers=6, num_heads=8, seq_length=512),
    # Tiny flavour for tests: runs on a CPU in well under a second. Its heads are not
    # hidden_size / num_heads wide, as T5's need not be.
    "t5_debug": dict(vocab_size=512, hidden_size=32, d_ff=64, d_kv=16, num_layers=2,
                     num_decoder_layers=2, num_heads=4, seq_length=128,
                     relative_attention_num_buckets=16, relative_attention_max_distance=32),
}

FEED_FORWARD = ("relu",)

# MindFormers' shapes: q/k/v (`dense1/2/3`) are (out, in); `projection` and the MLP are
# (in, out). Megatron split as for GPT-2 (no biases); the position-bias tables split by head.
_ATTENTION = {
    "dense*.weight": ("mp", None),
    "projection.weight": ("mp", None),
}
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "t5_model.tfm_embedding_lookup.embedding_table": ("mp", None),
    **{f"t5_model.tfm_*coder.blocks.*.attention.{k}": v for k, v in _ATTENTION.items()},
    **{f"t5_model.tfm_decoder.blocks.*.cross_attention.{k}": v for k, v in _ATTENTION.items()},
    "t5_model.tfm_*coder.blocks.0.attention.bias_generator.embeddings_table": (None, "mp"),
    "t5_model.tfm_*coder.blocks.*.output.mapping.weight": (None, "mp"),
    "t5_model.tfm_*coder.blocks.*.output.projection.weight": ("mp", None),
    "t5_model.tfm_*coder.blocks.*.*layernorm*.gamma": (None,),
    "t5_model.*coder_layernorm.gamma": (None,),
    "lm_head.weight": ("mp", None),
}


@dataclasses.dataclass
class T5Config(ModelConfig):
    """T5: encoder-decoder, RMS LayerNorm before each sublayer, no biases, relative position
    buckets shared by every layer of a stack, unscaled attention, ReLU MLP, LM head tied to
    the shared embedding (its input scaled by hidden_size ** -0.5)."""

    memory_kind: ClassVar[str] = "encoder_decoder"
    family: ClassVar[str] = "t5"
    hf_model_type: ClassVar[str | None] = "t5"
    heads_split_hidden: ClassVar[bool] = False
    hf_key_map: ClassVar[dict[str, str]] = {
        "d_model": "hidden_size", "n_positions": "seq_length",
    }
    # MindFormers' yaml spellings (its T5Config).
    aliases: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "d_model": "hidden_size",
        "layernorm_dtype": "layernorm_compute_type", "softmax_dtype": "softmax_compute_type",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 512  # the longest input, and the decoder's cache
    vocab_size: int = 32128
    hidden_size: int = 512
    num_layers: int = 6  # encoder layers
    num_decoder_layers: int = 6
    num_heads: int = 8
    d_kv: int = 64
    d_ff: int = 2048
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"
    tie_word_embeddings: bool = True
    # Kept for config round trips; mf applies no dropout (as in every other family).
    dropout_rate: float = 0.1
    decoder_start_token_id: int = 0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = 1
    pad_token_id: int | None = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("num_decoder_layers", "d_kv", "d_ff", "relative_attention_num_buckets",
                      "relative_attention_max_distance"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"{field}={value!r} must be a positive integer")
        if self.relative_attention_num_buckets < 4:
            raise ModelConfigError(
                f"relative_attention_num_buckets={self.relative_attention_num_buckets} must be "
                ">= 4 (half per direction, half of that exact)")
        if self.feed_forward_proj not in FEED_FORWARD:
            raise ModelConfigError(
                f"feed_forward_proj={self.feed_forward_proj!r} is not supported; only "
                f"{', '.join(FEED_FORWARD)} (T5's) is")

    @property
    def head_dim(self) -> int:
        return self.d_kv

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.d_kv

    @property
    def ffn_hidden_size(self) -> int:
        return self.d_ff

    @property
    def parameter_count(self) -> int:
        c, inner, f = self.hidden_size, self.inner_dim, self.d_ff
        attention = 4 * c * inner  # q, k, v, o; no biases
        encoder = self.num_layers * (attention + 2 * c * f + 2 * c) + c
        decoder = self.num_decoder_layers * (2 * attention + 2 * c * f + 3 * c) + c
        buckets = 2 * self.relative_attention_num_buckets * self.num_heads
        head = 0 if self.tie_word_embeddings else self.vocab_size * c
        return self.vocab_size * c + encoder + decoder + buckets + head

    def relative_buckets(self, bidirectional: bool) -> np.ndarray:
        """The bucket of every relative position (key - query) in [-D, D], D =
        relative_attention_max_distance: (2D + 1,) int32, index rel + D.

        T5's rule (HF `T5Attention._relative_position_bucket`): half the buckets per
        direction when bidirectional, the first half of those exact, the rest log-spaced up to
        D; every distance >= D shares the last bucket, so relative positions are clipped to
        +-D before the lookup. Computed in float32 as transformers does."""
        buckets = self.relative_attention_num_buckets
        distance = self.relative_attention_max_distance
        rel = np.arange(-distance, distance + 1, dtype=np.int64)
        out = np.zeros_like(rel)
        if bidirectional:
            buckets //= 2
            out += (rel > 0) * buckets
            rel = np.abs(rel)
        else:
            rel = -np.minimum(rel, 0)
        exact = buckets // 2
        with np.errstate(divide="ignore"):
            scaled = (np.log(rel.astype(np.float32) / np.float32(exact))
                      / np.float32(math.log(distance / exact)) * np.float32(buckets - exact))
        large = np.minimum(exact + np.nan_to_num(scaled, neginf=0).astype(np.int64),
                           buckets - 1)
        return (out + np.where(rel < exact, rel, large)).astype(np.int32)

    @classmethod
    def _from_hf_extra(cls, hf: Mapping[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
        if hf.get("is_gated_act") or hf.get("feed_forward_proj", "relu") != "relu":
            raise ModelConfigError(
                f"feed_forward_proj={hf.get('feed_forward_proj')!r} is not supported; only "
                "'relu' (T5's, t5-small ... t5-11b) is")
        if hf.get("num_decoder_layers") is None:
            mapped["num_decoder_layers"] = hf.get("num_layers", cls.num_layers)
        if not hf.get("scale_decoder_outputs", True) and hf.get("tie_word_embeddings", True):
            raise ModelConfigError("scale_decoder_outputs=false with tied embeddings is not "
                                   "supported; T5 scales the decoder output before its head")
        return mapped

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
            "vocab_size": self.vocab_size, "d_model": self.hidden_size, "d_kv": self.d_kv,
            "d_ff": self.d_ff, "num_layers": self.num_layers,
            "num_decoder_layers": self.num_decoder_layers, "num_heads": self.num_heads,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "feed_forward_proj": self.feed_forward_proj, "dense_act_fn": "relu",
            "is_gated_act": False, "tie_word_embeddings": self.tie_word_embeddings,
            "dropout_rate": self.dropout_rate, "n_positions": self.seq_length,
            "is_encoder_decoder": True, "decoder_start_token_id": self.decoder_start_token_id,
            "eos_token_id": self.eos_token_id, "pad_token_id": self.pad_token_id,
            "initializer_factor": 1.0, "torch_dtype": self.param_init_type,
        }
