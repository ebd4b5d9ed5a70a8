"""Swin Transformer (Liu et al. 2021): image -> 4x4 patches embedded and normalised -> stages
of blocks that attend within 7x7 windows (every second block's windows shifted by half a
window, so information crosses window borders), each stage but the last ending in patch
merging (2x2 neighbours concatenated, normalised, projected to twice the width) -> LayerNorm ->
mean over tokens -> linear head.

Single-device math, in reading order. Each block's geometry (tokens per side, window, shift,
padding) follows from the config's image size, so the relative-position index and the
shifted-window mask are built once, in numpy, and the compiled graph sees constants.
Hugging Face's rules are followed where they matter for its checkpoints: windows are padded
(zeros after the first LayerNorm) to a multiple of the window, the padded tokens stay visible
to attention, and a stage whose side equals the window neither shifts nor pads.

Parameter names are MindFormers' (timm's under `encoder.`; its swin convert_weight.py).
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.swin import SwinConfig
from mf_models.models.image_classification import ImageClassifier
from mf_models.modules.attention import attend_all
from mf_models.modules.layers import DTYPE, LayerNorm, MappingMLP, linear, normal
from mf_models.modules.vision import HF_TO_MF_ACTIVATION, PatchProjection

# nn.LayerNorm's default epsilon, which Hugging Face's Swin (and timm's) use for the patch
# embedding's and patch merging's norms whatever layer_norm_eps says.
DEFAULT_EPS = 1e-5
# What Hugging Face (and the original code) add to scores across shifted-window regions.
REGION_MASK = -100.0


def relative_position_index(window: int) -> np.ndarray:
    """(window^2 * window^2,) int32: for each (query, key) pair in a window, the row of the
    (2w-1)^2-entry bias table for their offset (dy, dx)."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij"))
    coords = coords.reshape(2, -1)  # (2, w*w)
    offset = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, w*w, w*w), >= 0
    return (offset[0] * (2 * window - 1) + offset[1]).reshape(-1).astype(np.int32)


def partition(x, window: int):
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C), windows in row-major order per image."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def merge_windows(x, window: int, b: int, h: int, w: int):
    """The inverse of `partition`: (B * H/w * W/w, w*w, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.reshape(b, h // window, w // window, window, window, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def roll(x, shift: int):
    """torch.roll(x, (shift, shift), dims=(1, 2)) for x (B, H, W, C), as two concats."""
    s = -shift % x.shape[1]
    x = ops.concat((x[:, s:], x[:, :s]), 1)
    s = -shift % x.shape[2]
    return ops.concat((x[:, :, s:], x[:, :, :s]), 2)


def shifted_window_mask(side: int, window: int, shift: int) -> np.ndarray:
    """(windows, w*w, w*w) float32: REGION_MASK between tokens that the cyclic shift brought
    from different regions of the (padded) map into one window, 0 elsewhere."""
    idx = np.arange(side)
    region = (idx >= side - window).astype(int) + (idx >= side - shift).astype(int)  # 0, 1, 2
    labels = (region[:, None] * 3 + region[None, :]).astype(np.float32)  # (side, side)
    windows = labels.reshape(side // window, window, side // window, window)
    windows = windows.transpose(0, 2, 1, 3).reshape(-1, window * window)  # (nW, w*w)
    differ = windows[:, None, :] != windows[:, :, None]
    return np.where(differ, REGION_MASK, 0.0).astype(np.float32)


class RelativePositionBias(nn.Cell):
    def __init__(self, config: SwinConfig, rng: np.random.Generator, heads: int):
        super().__init__()
        w = config.window_size
        self.relative_position_bias_table = Parameter(
            normal(((2 * w - 1) ** 2, heads), config.initializer_range, config.param_init_type,
                   rng), name="relative_position_bias_table")
        self.index = Tensor(relative_position_index(w))
        self.tokens, self.heads = w * w, heads

    def construct(self):
        bias = ops.gather(self.relative_position_bias_table, self.index, 0)  # (N*N, heads)
        return bias.reshape(self.tokens, self.tokens, self.heads).transpose(2, 0, 1)  # (H, N, N)


class WindowAttention(nn.Cell):
    def __init__(self, config: SwinConfig, rng: np.random.Generator, width: int, heads: int):
        super().__init__()
        self.num_heads, self.head_dim = heads, width // heads
        self.q = linear(config, rng, width, width, bias=config.qkv_bias)
        self.k = linear(config, rng, width, width, bias=config.qkv_bias)
        self.v = linear(config, rng, width, width, bias=config.qkv_bias)
        self.proj = linear(config, rng, width, width)
        self.relative_position_bias = RelativePositionBias(config, rng, heads)

    def construct(self, windows, mask):
        n, t, _ = windows.shape  # (B * nW, w*w, C)
        shape = (n, t, self.num_heads, self.head_dim)
        q = self.q(windows).reshape(shape).swapaxes(1, 2)  # (B*nW, H, N, D)
        k = self.k(windows).reshape(shape).swapaxes(1, 2)
        v = self.v(windows).reshape(shape).swapaxes(1, 2)
        bias = self.relative_position_bias().reshape(1, self.num_heads, t, t)  # (1, H, N, N)
        if mask is not None:  # (nW, 1, N, N): one mask per window position
            bias = bias + mask
        return self.proj(attend_all(q, k, v, bias))  # (B*nW, N, C)


class SwinBlock(nn.Cell):
    """LN -> (shifted) window attention -> residual; LN -> MLP -> residual."""

    def __init__(self, config: SwinConfig, rng: np.random.Generator, width: int, heads: int,
                 side: int, shifted: bool):
        super().__init__()
        ln = (width, config.layer_norm_eps, config.param_init_type,
              config.layernorm_compute_type)
        self.norm1 = LayerNorm(*ln)
        self.attn = WindowAttention(config, rng, width, heads)
        self.norm2 = LayerNorm(*ln)
        self.mlp = MappingMLP(config, rng, HF_TO_MF_ACTIVATION[config.hidden_act], width=width,
                              ffn_width=int(config.mlp_ratio * width))
        self.side, self.window = side, config.window_size
        # A map no wider than the window is one window: no shift (Hugging Face's rule).
        self.shift = config.window_size // 2 if shifted and side > config.window_size else 0
        self.padded = -(-side // self.window) * self.window
        mask = shifted_window_mask(self.padded, self.window, self.shift) if self.shift else None
        self.mask = None if mask is None else Tensor(mask[:, None])  # (nW, 1, N, N)

    def construct(self, x):
        b, _, c = x.shape  # (B, side*side, C)
        side, padded = self.side, self.padded
        h = self.norm1(x).reshape(b, side, side, c)
        if padded > side:  # zeros to the right and below, to a whole number of windows
            h = ops.concat((h, ops.zeros((b, side, padded - side, c), h.dtype)), 2)
            h = ops.concat((h, ops.zeros((b, padded - side, padded, c), h.dtype)), 1)
        if self.shift:
            h = roll(h, -self.shift)
        h = self.attn(partition(h, self.window), self.mask)  # (B*nW, w*w, C)
        h = merge_windows(h, self.window, b, padded, padded)  # (B, padded, padded, C)
        if self.shift:
            h = roll(h, self.shift)
        h = h[:, :side, :side, :].reshape(b, side * side, c)
        x = x + h
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Cell):
    """(B, side^2, C) -> (B, ceil(side/2)^2, 2C): each 2x2 group concatenated (Hugging Face's
    order: top-left, bottom-left, top-right, bottom-right), normalised, projected."""

    def __init__(self, config: SwinConfig, rng: np.random.Generator, width: int, side: int):
        super().__init__()
        self.norm = LayerNorm(4 * width, DEFAULT_EPS, config.param_init_type,
                              config.layernorm_compute_type)
        self.reduction = linear(config, rng, 4 * width, 2 * width, bias=False)
        self.side = side

    def construct(self, x):
        b, _, c = x.shape
        side = self.side
        x = x.reshape(b, side, side, c)
        if side % 2:  # an odd side gets a row and a column of zeros
            x = ops.concat((x, ops.zeros((b, side, 1, c), x.dtype)), 2)
            x = ops.concat((x, ops.zeros((b, 1, side + 1, c), x.dtype)), 1)
        half = x.shape[1] // 2
        # Index a reshape rather than slice with step 2: MindSpore's CPU StridedSliceGrad of
        # x[:, 0::2, 0::2] reads out of bounds in training (measured, MindSpore 2.10).
        x = x.reshape(b, half, 2, half, 2, c)  # (B, row pair, row in it, col pair, col in it, C)
        x = ops.concat((x[:, :, 0, :, 0], x[:, :, 1, :, 0], x[:, :, 0, :, 1], x[:, :, 1, :, 1]),
                       -1)  # (B, side/2, side/2, 4C)
        x = x.reshape(b, -1, 4 * c)
        return self.reduction(self.norm(x))  # (B, (side/2)^2, 2C)


class SwinStage(nn.Cell):
    def __init__(self, config: SwinConfig, rng: np.random.Generator, stage: int):
        super().__init__()
        width, side = config.stage_width(stage), config.stage_resolutions[stage]
        heads = config.num_heads[stage]
        self.blocks = nn.CellList([SwinBlock(config, rng, width, heads, side, shifted=i % 2 == 1)
                                   for i in range(config.depths[stage])])
        last = stage == config.num_layers - 1
        self.downsample = None if last else PatchMerging(config, rng, width, side)

    def construct(self, x):
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class PatchEmbed(nn.Cell):
    """MindFormers' `patch_embed`: the Conv2d `projection` and its LayerNorm `norm`."""

    def __init__(self, config: SwinConfig, rng: np.random.Generator):
        super().__init__()
        self.projection = PatchProjection(config, rng, config.num_channels, config.embed_dim,
                                          config.patch_size)
        self.norm = LayerNorm(config.embed_dim, DEFAULT_EPS, config.param_init_type,
                              config.layernorm_compute_type)

    def construct(self, pixel_values):
        return self.norm(self.projection(pixel_values))  # (B, N, E)


class SwinEncoder(nn.Cell):
    """pixels (B, C, H, W) -> mean of the last stage's normalised tokens (B, hidden)."""

    def __init__(self, config: SwinConfig, rng: np.random.Generator):
        super().__init__()
        self.patch_embed = PatchEmbed(config, rng)
        self.absolute_pos_embed = None
        if config.use_absolute_embeddings:
            self.absolute_pos_embed = Parameter(
                normal((1, config.num_patches, config.embed_dim), config.initializer_range,
                       config.param_init_type, rng), name="absolute_pos_embed")
        self.layers = nn.CellList([SwinStage(config, rng, s) for s in range(config.num_layers)])
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_eps, config.param_init_type,
                              config.layernorm_compute_type)
        self.compute_dtype = DTYPE[config.compute_dtype]

    def construct(self, pixel_values):
        x = self.patch_embed(pixel_values)  # (B, N, E)
        if self.absolute_pos_embed is not None:
            x = x + ops.cast(self.absolute_pos_embed, x.dtype)
        for stage in self.layers:
            x = stage(x)
        return ops.cast(self.norm(x), mstype.float32).mean(1)  # (B, hidden)


class SwinForImageClassification(ImageClassifier):
    """MindFormers' and Hugging Face's `SwinForImageClassification`:
    `model(pixel_values, labels=None)` -> `ImageClassifierOutput(loss, logits)`."""

    config_class = SwinConfig

    def __init__(self, config: SwinConfig, seed: int = 0):
        super().__init__(config, seed)
        self.encoder = SwinEncoder(config, self.rng)
        self.head = linear(config, self.rng, config.hidden_size, config.num_labels)
        self.load_checkpoint_from_config()

    def features(self, pixel_values):
        return self.encoder(pixel_values)
