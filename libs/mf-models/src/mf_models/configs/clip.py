"""CLIP config and presets (Radford et al. 2021, "Learning Transferable Visual Models From
Natural Language Supervision"; MindFormers `CLIPConfig`, Hugging Face `CLIPConfig`).

A CLIP config holds two towers, `text_config` and `vision_config`, with the field names
MindFormers' yaml files and Hugging Face's config.json share. The flat fields every mf config
has (`vocab_size`, `hidden_size`, `num_layers`, `num_heads`, `seq_length`) mirror the text tower.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig, check_heads_divide
from mf_models.configs.vision import check_activation
from mf_models.errors import ModelConfigError


@dataclasses.dataclass
class _Tower:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> _Tower:
        """From MindFormers' or Hugging Face's sub-config; unknown keys are dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def _check(self, tower: str, *extra: str) -> None:
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", *extra):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"{tower}.{name}={value!r} must be a positive integer")
        check_heads_divide(f"{tower}.num_attention_heads", self.num_attention_heads,
                           f"{tower}.hidden_size", self.hidden_size)
        check_activation(self.hidden_act)

    def layer_count(self) -> int:
        """Weights of one encoder layer: two LayerNorms, q/k/v/out with biases, the MLP."""
        w, f = self.hidden_size, self.intermediate_size
        return 4 * w + 4 * (w * w + w) + (w * f + f) + (f * w + w)


@dataclasses.dataclass
class CLIPTextConfig(_Tower):
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    vocab_size: int = 49408
    max_position_embeddings: int = 77
    # Hugging Face's defaults since transformers PR #24773. The text is pooled at the first
    # eos_token_id; an eos_token_id of 2 (older CLIP config.json files) pools at the largest
    # token id instead, which is where CLIP's tokenizer puts <|endoftext|>.
    bos_token_id: int = 49406
    eos_token_id: int = 49407
    pad_token_id: int = 1

    def __post_init__(self) -> None:
        self._check("text_config", "vocab_size", "max_position_embeddings")


@dataclasses.dataclass
class CLIPVisionConfig(_Tower):
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3

    def __post_init__(self) -> None:
        self._check("vision_config", "image_size", "patch_size", "num_channels")
        if self.image_size % self.patch_size:
            raise ModelConfigError(f"vision_config.patch_size({self.patch_size}) must divide "
                                   f"image_size({self.image_size})")

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


def _towers(text: dict[str, Any], vision: dict[str, Any], projection_dim: int) -> dict[str, Any]:
    return dict(text_config=text, vision_config=vision, projection_dim=projection_dim)


_B_TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
               num_attention_heads=8)
_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
               num_attention_heads=12)
_B_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, image_size=224)
_L_VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                 num_attention_heads=16, patch_size=14)

PRESETS: dict[str, dict[str, Any]] = {
    # OpenAI ViT-B/32 (openai/clip-vit-base-patch32 config.json; MindFormers
    # configs/clip/model_config/clip_vit_b_32.yaml).
    "clip_vit_b_32": _towers(_B_TEXT, {**_B_VISION, "patch_size": 32}, 512),
    # OpenAI ViT-B/16 (openai/clip-vit-base-patch16; MindFormers clip_vit_b_16.yaml).
    "clip_vit_b_16": _towers(_B_TEXT, {**_B_VISION, "patch_size": 16}, 512),
    # OpenAI ViT-L/14 (openai/clip-vit-large-patch14; MindFormers clip_vit_l_14.yaml).
    "clip_vit_l_14": _towers(_L_TEXT, {**_L_VISION, "image_size": 224}, 768),
    # OpenAI ViT-L/14 at 336 px (openai/clip-vit-large-patch14-336; MindFormers
    # clip_vit_l_14@336.yaml).
    "clip_vit_l_14@336": _towers(_L_TEXT, {**_L_VISION, "image_size": 336}, 768),
    # Tiny flavour for tests: a 1000-token vocabulary, 16 text positions, 32x32 images.
    "clip_debug": _towers(
        dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             vocab_size=1000, max_position_embeddings=16, bos_token_id=998, eos_token_id=999,
             pad_token_id=999),
        dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             image_size=32, patch_size=8), 32),
}

# Both towers' layers (`*transformer.resblocks.*` matches the text tower's and `visual.`'s).
# Weights (out, in). q/k/v are fused in in_proj, so attention stays whole (splitting its rows
# would hand a rank all of q and part of k); the MLP is Megatron-split: c_fc by output, c_proj
# by input. Embeddings, norms and projections stay whole.
_LAYER = "*transformer.resblocks.*."
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    _LAYER + "mlp.c_fc.weight": ("mp", None),
    _LAYER + "mlp.c_fc.bias": ("mp",),
    _LAYER + "mlp.c_proj.weight": (None, "mp"),
    _LAYER + "attn.*.weight": (None, None),
    "*.bias": (None,),
    "*.gamma": (None,),
    "*.beta": (None,),
    "token_embedding.embedding_table": (None, None),
    "*positional_embedding": (None, None),
    "visual.conv1.weight": (None, None, None, None),
    "visual.class_embedding": (None,),
    "visual.proj": (None, None),
    "text_projection": (None, None),
    "logit_scale": (),
}

# ModelConfig fields that mirror the text tower: derived, so not saved.
_MIRRORED = ("seq_length", "vocab_size", "hidden_size", "num_layers", "num_heads",
             "bos_token_id", "eos_token_id", "pad_token_id", "use_past")


@dataclasses.dataclass
class CLIPConfig(ModelConfig):
    """CLIP: a causal text transformer pooled at its end token and a ViT pooled at its class
    token, each projected to `projection_dim`; similarities are cosines times exp(logit_scale)."""

    family: ClassVar[str] = "clip"
    hf_model_type: ClassVar[str | None] = "clip"
    # MindFormers' CLIPConfig says `dtype` for the compute type.
    aliases: ClassVar[dict[str, str]] = {"dtype": "compute_dtype"}
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    text_config: CLIPTextConfig | dict[str, Any] = dataclasses.field(
        default_factory=CLIPTextConfig)
    vision_config: CLIPVisionConfig | dict[str, Any] = dataclasses.field(
        default_factory=CLIPVisionConfig)
    projection_dim: int = 512
    # ln(1 / 0.07): the temperature CLIP starts training from (paper, section 2.5).
    logit_scale_init_value: float = 2.6592

    def __post_init__(self) -> None:
        if isinstance(self.text_config, Mapping):
            self.text_config = CLIPTextConfig.from_dict(self.text_config)
        if isinstance(self.vision_config, Mapping):
            self.vision_config = CLIPVisionConfig.from_dict(self.vision_config)
        text = self.text_config
        self.seq_length = text.max_position_embeddings
        self.vocab_size = text.vocab_size
        self.hidden_size = text.hidden_size
        self.num_layers = text.num_hidden_layers
        self.num_heads = text.num_attention_heads
        self.bos_token_id = text.bos_token_id
        self.eos_token_id = text.eos_token_id
        self.pad_token_id = text.pad_token_id
        super().__post_init__()
        self._check_positive("projection_dim")

    @property
    def ffn_hidden_size(self) -> int:
        return self.text_config.intermediate_size

    @property
    def parameter_count(self) -> int:
        t, v, d = self.text_config, self.vision_config, self.projection_dim
        text = (t.vocab_size + t.max_position_embeddings) * t.hidden_size \
            + t.num_hidden_layers * t.layer_count() + 2 * t.hidden_size
        w = v.hidden_size
        vision = v.num_channels * v.patch_size ** 2 * w + w + v.num_tokens * w + 2 * w \
            + v.num_hidden_layers * v.layer_count() + 2 * w
        return text + vision + (t.hidden_size + w) * d + 1

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in _MIRRORED:
            out.pop(key, None)
        return out

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["CLIPModel"], "model_type": "clip",
            "text_config": {**dataclasses.asdict(self.text_config), "model_type": "clip_text_model",
                            "attention_dropout": 0.0, "dropout": 0.0},
            "vision_config": {**dataclasses.asdict(self.vision_config),
                              "model_type": "clip_vision_model", "attention_dropout": 0.0,
                              "dropout": 0.0},
            "projection_dim": self.projection_dim,
            "logit_scale_init_value": self.logit_scale_init_value,
            "initializer_range": self.initializer_range, "torch_dtype": self.param_init_type,
        }
