"""MAE config and presets (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners";
MindFormers `ViTMAEConfig`, Hugging Face `ViTMAEConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.base import check_heads_divide
from mf_models.configs.vision import VisionConfig
from mf_models.configs.vit import encoder_layer_plan
from mf_models.errors import ModelConfigError

# MindFormers' and Hugging Face's spellings of the same fields.
_NAMES = {
    "embed_dim": "hidden_size", "depth": "num_layers", "decoder_embed_dim": "decoder_hidden_size",
    "decoder_depth": "decoder_num_layers", "decoder_num_hidden_layers": "decoder_num_layers",
    "decoder_num_attention_heads": "decoder_num_heads", "norm_pixel_loss": "norm_pix_loss",
}

PRESETS: dict[str, dict[str, Any]] = {
    # MindFormers configs/mae/run_mae_vit_base_p16_224_800ep.yaml (MAE paper's ViT-B/16
    # pre-training): decoder 8 x 512 wide, 16 heads; 75% of the patches masked; the loss on
    # per-patch normalised pixels.
    "mae_vit_base_p16": dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12,
                             num_heads=12, intermediate_size=3072, layer_norm_eps=1e-6,
                             decoder_hidden_size=512, decoder_num_layers=8,
                             decoder_num_heads=16, decoder_intermediate_size=2048,
                             mask_ratio=0.75, norm_pix_loss=True),
    # Tiny flavour for tests.
    "mae_debug": dict(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=4,
                      intermediate_size=64, decoder_hidden_size=32, decoder_num_layers=1,
                      decoder_num_heads=4, decoder_intermediate_size=64, mask_ratio=0.75),
}

# ViT's layer plan for the encoder and the decoder; embeddings, norms and heads stay whole.
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "vit.patch_embed.proj.weight": (None, None, None, None),
    "vit.patch_embed.proj.bias": (None,),
    "vit.cls_tokens": (None, None, None),
    "vit.pos_embed": (None, None, None),
    **encoder_layer_plan("vit.blocks.*."),
    **encoder_layer_plan("decoder_blocks.*."),
    "vit.norm.*": (None,),
    "decoder_norm.*": (None,),
    "decoder_embed.weight": (None, None),
    "decoder_pred.weight": (None, None),
    "decoder_*.bias": (None,),
    "mask_tokens": (None, None, None),
    "decoder_pos_embed": (None, None, None),
}


@dataclasses.dataclass
class ViTMAEConfig(VisionConfig):
    """MAE: a ViT encoder over a random subset of the patches, a light decoder that fills in
    mask tokens and predicts every patch's pixels; the loss is over the masked patches."""

    family: ClassVar[str] = "mae"
    hf_model_type: ClassVar[str | None] = "vit_mae"
    hf_key_map: ClassVar[dict[str, str]] = {**VisionConfig.hf_key_map, **_NAMES}
    aliases: ClassVar[dict[str, str]] = {**VisionConfig.aliases, **_NAMES}
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    decoder_hidden_size: int = 512
    decoder_num_layers: int = 8
    decoder_num_heads: int = 16
    decoder_intermediate_size: int = 2048
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive("decoder_hidden_size", "decoder_num_layers", "decoder_num_heads",
                             "decoder_intermediate_size")
        check_heads_divide("decoder_num_heads", self.decoder_num_heads, "decoder_hidden_size",
                           self.decoder_hidden_size)
        if not 0.0 <= self.mask_ratio < 1.0 or self.num_kept < 1:
            raise ModelConfigError(f"mask_ratio={self.mask_ratio!r} must be in [0, 1) and keep "
                                   f"at least one of the {self.num_patches} patches")

    @property
    def num_kept(self) -> int:
        """Patches the encoder sees: int(L * (1 - mask_ratio)), as in the paper's code."""
        return int(self.num_patches * (1 - self.mask_ratio))

    @property
    def parameter_count(self) -> int:
        c, d, p = self.hidden_size, self.decoder_hidden_size, self.patch_size
        pixels = self.num_channels * p * p
        encoder = pixels * c + c + c + self.num_tokens * c \
            + self.num_layers * self.encoder_layer_count(c, self.intermediate_size) + 2 * c
        decoder_layer = self.encoder_layer_count(d, self.decoder_intermediate_size)
        decoder = c * d + d + d + self.num_tokens * d + self.decoder_num_layers * decoder_layer \
            + 2 * d + d * pixels + pixels
        return encoder + decoder

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["ViTMAEForPreTraining"], "model_type": "vit_mae",
            "image_size": self.image_size, "patch_size": self.patch_size,
            "num_channels": self.num_channels, "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size, "hidden_act": self.hidden_act,
            "layer_norm_eps": self.layer_norm_eps, "qkv_bias": self.qkv_bias,
            "decoder_hidden_size": self.decoder_hidden_size,
            "decoder_num_hidden_layers": self.decoder_num_layers,
            "decoder_num_attention_heads": self.decoder_num_heads,
            "decoder_intermediate_size": self.decoder_intermediate_size,
            "mask_ratio": self.mask_ratio, "norm_pix_loss": self.norm_pix_loss,
            "initializer_range": self.initializer_range, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "torch_dtype": self.param_init_type,
        }
