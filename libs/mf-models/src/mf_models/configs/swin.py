"""Swin Transformer config and presets (Liu et al. 2021, "Swin Transformer: Hierarchical Vision
Transformer using Shifted Windows"; MindFormers `SwinConfig`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mf_models.configs.base import check_heads_divide
from mf_models.configs.vision import ImageClassifierConfig
from mf_models.errors import ModelConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # MindFormers configs/swin/run_swin_base_p4w7_224_100ep.yaml and microsoft's
    # swin_base_patch4_window7_224: embed 128, depths 2-2-18-2, heads 4-8-16-32, window 7.
    "swin_base_p4w7": dict(image_size=224, patch_size=4, embed_dim=128, depths=(2, 2, 18, 2),
                           num_heads=(4, 8, 16, 32), window_size=7, num_labels=1000),
    # Tiny flavour for tests: 32x32 images, two stages (the first with shifted windows).
    "swin_debug": dict(image_size=32, patch_size=4, embed_dim=16, depths=(2, 2),
                       num_heads=(2, 4), window_size=4, num_labels=10),
}

# MindFormers' layout: q/k/v, the attention projection and the reduction (out, in), the MLP
# (in, out). Megatron split: q/k/v (and their heads' relative position biases) and the MLP's
# first layer by output, the projections by input; embeddings, norms, patch merging and the
# head stay whole.
_BLOCK = "encoder.layers.*.blocks.*."
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "encoder.patch_embed.projection.weight": (None, None, None, None),
    "encoder.patch_embed.projection.bias": (None,),
    _BLOCK + "attn.[qkv].weight": ("mp", None),
    _BLOCK + "attn.[qkv].bias": ("mp",),
    _BLOCK + "attn.relative_position_bias.relative_position_bias_table": (None, "mp"),
    _BLOCK + "attn.proj.weight": (None, "mp"),
    _BLOCK + "attn.proj.bias": (None,),
    _BLOCK + "mlp.mapping.weight": (None, "mp"),
    _BLOCK + "mlp.mapping.bias": ("mp",),
    _BLOCK + "mlp.projection.weight": ("mp", None),
    _BLOCK + "mlp.projection.bias": (None,),
    "encoder.absolute_pos_embed": (None, None, None),
    "encoder.layers.*.downsample.reduction.weight": (None, None),
    "encoder.*.gamma": (None,),
    "encoder.*.beta": (None,),
    "head.weight": (None, None),
    "head.bias": (None,),
}


@dataclasses.dataclass
class SwinConfig(ImageClassifierConfig):
    """Swin: stages of windowed attention with a relative position bias, every second block's
    windows shifted by half a window, and patch merging (2x2 tokens -> 1, width x2) between
    stages; the mean of the last stage's tokens feeds the head.

    `num_heads` and `depths` are per stage; `hidden_size` (the last stage's width) and
    `num_layers` (the number of stages) follow from them, as in Hugging Face's SwinConfig.
    """

    family: ClassVar[str] = "swin"
    hf_model_type: ClassVar[str | None] = "swin"

    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    image_size: int = 224
    patch_size: int = 4
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)  # type: ignore[assignment]
    window_size: int = 7
    mlp_ratio: float = 4.0
    use_absolute_embeddings: bool = False
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.depths = tuple(self.depths)
        self.num_heads = tuple(self.num_heads)
        if not self.depths or len(self.depths) != len(self.num_heads):
            raise ModelConfigError(f"depths {list(self.depths)} and num_heads "
                                   f"{list(self.num_heads)} must give one entry per stage")
        self.num_layers = len(self.depths)
        self.hidden_size = self.stage_width(self.num_layers - 1)
        self.intermediate_size = int(self.mlp_ratio * self.hidden_size)
        super().__post_init__()
        for stage, size in enumerate(self.stage_resolutions):
            if size < self.window_size:
                raise ModelConfigError(
                    f"stage {stage} sees {size}x{size} tokens, fewer than window_size"
                    f"({self.window_size}): use a larger image_size or a smaller window_size")

    def _check_sizes(self) -> None:
        self._check_positive("embed_dim", "window_size")
        for stage, (depth, heads) in enumerate(zip(self.depths, self.num_heads, strict=True)):
            for name, value in ((f"depths[{stage}]", depth), (f"num_heads[{stage}]", heads)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ModelConfigError(f"{name}={value!r} must be a positive integer")
            check_heads_divide(f"num_heads[{stage}]", heads, f"stage {stage} width",
                               self.stage_width(stage))

    def stage_width(self, stage: int) -> int:
        return self.embed_dim * 2 ** stage

    @property
    def stage_resolutions(self) -> list[int]:
        """Tokens per side entering each stage: patch merging halves it, rounding up."""
        sizes = [self.image_size // self.patch_size]
        for _ in self.depths[1:]:
            sizes.append((sizes[-1] + 1) // 2)
        return sizes

    @property
    def num_tokens(self) -> int:
        return self.num_patches  # no class token

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads[0]

    @property
    def parameter_count(self) -> int:
        e, p, w = self.embed_dim, self.patch_size, self.window_size
        total = self.num_channels * p * p * e + e + 2 * e  # patch projection and its norm
        if self.use_absolute_embeddings:
            total += self.num_patches * e
        for stage, (depth, heads) in enumerate(zip(self.depths, self.num_heads, strict=True)):
            d = self.stage_width(stage)
            block = self.encoder_layer_count(d, int(self.mlp_ratio * d))
            total += depth * (block + (2 * w - 1) ** 2 * heads)
            if stage < self.num_layers - 1:  # patch merging: norm over 4d, 4d -> 2d
                total += 2 * 4 * d + 4 * d * 2 * d
        c = self.hidden_size
        return total + 2 * c + c * self.num_labels + self.num_labels

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "architectures": ["SwinForImageClassification"], "model_type": "swin",
            "image_size": self.image_size, "patch_size": self.patch_size,
            "num_channels": self.num_channels, "embed_dim": self.embed_dim,
            "depths": list(self.depths), "num_heads": list(self.num_heads),
            "window_size": self.window_size, "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias, "hidden_act": self.hidden_act,
            "use_absolute_embeddings": self.use_absolute_embeddings,
            "layer_norm_eps": self.layer_norm_eps, "initializer_range": self.initializer_range,
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "drop_path_rate": 0.0, "torch_dtype": self.param_init_type, **self.hf_labels(),
        }
