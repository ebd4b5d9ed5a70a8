"""ViT (Dosovitskiy et al. 2021): image -> 16x16 patches, each linearly embedded -> a class
token in front, learned positions added -> pre-LayerNorm encoder blocks -> the class token
after a final LayerNorm (Hugging Face), or the mean of the patch tokens through `fc_norm`
(MindFormers' vit_base_p16) -> linear head.

Single-device math, in reading order. Parameter names and shapes are MindFormers'
(`vit.blocks.{i}.attention.dense1.weight` ...; its vit convert_weight.py): q/k/v (out, in), the
attention projection and the MLP (in, out), the patch embedding a Conv2d weight (out, C, P, P).
MAE (models/mae.py) reuses the blocks.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, nn, ops

from mf_models.configs.vision import VisionConfig
from mf_models.configs.vit import ViTConfig
from mf_models.models.image_classification import ImageClassifier
from mf_models.modules.attention import attend_all
from mf_models.modules.layers import DTYPE, LayerNorm, MappingMLP, linear, normal
from mf_models.modules.vision import HF_TO_MF_ACTIVATION, PatchProjection

# MindFormers' ViT normalises the pooled patch tokens with this fixed epsilon (vit.py fc_norm).
FC_NORM_EPS = 1e-6


class ViTAttention(nn.Cell):
    def __init__(self, config: VisionConfig, rng: np.random.Generator, width: int, heads: int):
        super().__init__()
        self.num_heads, self.head_dim = heads, width // heads
        self.dense1 = linear(config, rng, width, width, bias=config.qkv_bias)  # query
        self.dense2 = linear(config, rng, width, width, bias=config.qkv_bias)  # key
        self.dense3 = linear(config, rng, width, width, bias=config.qkv_bias)  # value
        self.projection = linear(config, rng, width, width, transpose_b=False)

    def construct(self, x):
        b, t, _ = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q = self.dense1(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        k = self.dense2(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        v = self.dense3(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        return self.projection(attend_all(q, k, v))  # (B, T, C)


class ViTBlock(nn.Cell):
    """x + attention(LN(x)), then + MLP(LN(x)): MindFormers' `Block`. The MAE decoder passes
    its own width, heads and MLP width."""

    def __init__(self, config: VisionConfig, rng: np.random.Generator, width: int | None = None,
                 heads: int | None = None, ffn_width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        ln = (width, config.layer_norm_eps, config.param_init_type,
              config.layernorm_compute_type)
        self.layernorm1 = LayerNorm(*ln)
        self.attention = ViTAttention(config, rng, width, heads or config.num_heads)
        self.layernorm2 = LayerNorm(*ln)
        self.output = MappingMLP(config, rng, HF_TO_MF_ACTIVATION[config.hidden_act],
                                 width=width, ffn_width=ffn_width or config.intermediate_size)

    def construct(self, x):
        x = x + self.attention(self.layernorm1(x))
        return x + self.output(self.layernorm2(x))


class PatchEmbed(nn.Cell):
    """MindFormers' `patch_embed` holding the Conv2d `proj`."""

    def __init__(self, config: VisionConfig, rng: np.random.Generator):
        super().__init__()
        self.proj = PatchProjection(config, rng, config.num_channels, config.hidden_size,
                                    config.patch_size)

    def construct(self, pixel_values):
        return self.proj(pixel_values)  # (B, N, C)


class ViTModel(nn.Cell):
    """The encoder: pixels (B, C, H, W) -> pooled features (B, hidden)."""

    def __init__(self, config: ViTConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        std, dtype = config.initializer_range, config.param_init_type
        self.patch_embed = PatchEmbed(config, rng)
        self.cls_tokens = Parameter(normal((1, 1, c), std, dtype, rng), name="cls_tokens")
        self.pos_embed = Parameter(normal((1, config.num_tokens, c), std, dtype, rng),
                                   name="pos_embed")
        self.blocks = nn.CellList([ViTBlock(config, rng) for _ in range(config.num_layers)])
        self.use_mean_pooling = config.use_mean_pooling
        if config.use_mean_pooling:
            self.fc_norm = LayerNorm(c, FC_NORM_EPS, dtype, config.layernorm_compute_type)
        else:
            self.norm = LayerNorm(c, config.layer_norm_eps, dtype, config.layernorm_compute_type)
        self.compute_dtype = DTYPE[config.compute_dtype]

    def construct(self, pixel_values):
        tokens = self.patch_embed(pixel_values)  # (B, N, C)
        b, _, c = tokens.shape
        cls = ops.broadcast_to(ops.cast(self.cls_tokens, tokens.dtype), (b, 1, c))
        x = ops.concat((cls, tokens), 1) + ops.cast(self.pos_embed, tokens.dtype)  # (B, N+1, C)
        for block in self.blocks:
            x = block(x)
        if self.use_mean_pooling:
            return self.fc_norm(x[:, 1:, :].mean(1))  # (B, C)
        return self.norm(x)[:, 0, :]  # (B, C): the class token


class ViTForImageClassification(ImageClassifier):
    """MindFormers' and Hugging Face's `ViTForImageClassification`:
    `model(pixel_values, labels=None)` -> `ImageClassifierOutput(loss, logits)`."""

    config_class = ViTConfig

    def __init__(self, config: ViTConfig, seed: int = 0):
        super().__init__(config, seed)
        self.vit = ViTModel(config, self.rng)
        self.head = linear(config, self.rng, config.hidden_size, config.num_labels)
        self.load_checkpoint_from_config()

    def features(self, pixel_values):
        return self.vit(pixel_values)
