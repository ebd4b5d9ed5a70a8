"""ViT config and presets (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words";
MindFormers `ViTConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.vision import ImageClassifierConfig
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # MindFormers configs/vit/run_vit_base_p16_224_100ep.yaml: ViT-B/16 fine-tuned from MAE,
    # mean-pooled patch tokens (fc_norm) instead of the class token, LayerNorm eps 1e-6.
    "vit_base_p16": dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12,
                         num_heads=12, intermediate_size=3072, layer_norm_eps=1e-6,
                         use_mean_pooling=True, num_labels=1000),
    # Tiny flavour for tests: 32x32 images in 16 patches, runs on a CPU in milliseconds.
    "vit_debug": dict(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=4,
                      intermediate_size=64, num_labels=10),
}

def encoder_layer_plan(prefix: str) -> dict[str, tuple[str | None, ...]]:
    """One ViT layer's plan (MAE's encoder and decoder too). Weights as MindFormers stores
    them: q/k/v (out, in), projection and MLP (in, out). Megatron split: q/k/v and the MLP's
    first layer by output, the projections by input."""
    return {
        prefix + "layernorm*.gamma": (None,),
        prefix + "layernorm*.beta": (None,),
        prefix + "attention.dense*.weight": ("mp", None),
        prefix + "attention.dense*.bias": ("mp",),
        prefix + "attention.projection.weight": ("mp", None),
        prefix + "attention.projection.bias": (None,),
        prefix + "output.mapping.weight": (None, "mp"),
        prefix + "output.mapping.bias": ("mp",),
        prefix + "output.projection.weight": ("mp", None),
        prefix + "output.projection.bias": (None,),
    }


# Embeddings, norms and the head stay whole.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "vit.patch_embed.proj.weight": (None, None, None, None),
    "vit.patch_embed.proj.bias": (None,),
    "vit.cls_tokens": (None, None, None),
    "vit.pos_embed": (None, None, None),
    **encoder_layer_plan("vit.blocks.*."),
    "vit.*norm.gamma": (None,),
    "vit.*norm.beta": (None,),
    "head.weight": (None, None),
    "head.bias": (None,),
}


@dataclasses.dataclass
class ViTConfig(ImageClassifierConfig):
    """ViT: patch embedding + class token + learned positions -> pre-LayerNorm encoder -> the
    class token (or, `use_mean_pooling`, the mean of the patch tokens) -> linear head."""

    family: ClassVar[str] = "vit"
    hf_model_type: ClassVar[str | None] = "vit"
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    # MindFormers' ViT pools the patch tokens and normalises them with `fc_norm` (eps 1e-6);
    # Hugging Face's reads the class token after a final LayerNorm.
    use_mean_pooling: bool = False

    @property
    def parameter_count(self) -> int:
        c, p = self.hidden_size, self.patch_size
        embed = self.num_channels * p * p * c + c + c + self.num_tokens * c
        layers = self.num_layers * self.encoder_layer_count(c, self.intermediate_size)
        return embed + layers + 2 * c + c * self.num_labels + self.num_labels

    def to_hf_dict(self) -> dict[str, Any]:
        if self.use_mean_pooling:
            raise ModelConfigError("use_mean_pooling=True (MindFormers' fc_norm over the patch "
                                   "tokens) has no transformers ViT equivalent to export to")
        return {
            "architectures": ["ViTForImageClassification"], "model_type": "vit",
            "image_size": self.image_size, "patch_size": self.patch_size,
            "num_channels": self.num_channels, "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size, "hidden_act": self.hidden_act,
            "layer_norm_eps": self.layer_norm_eps, "qkv_bias": self.qkv_bias,
            "initializer_range": self.initializer_range, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "torch_dtype": self.param_init_type,
            **self.hf_labels(),
        }
