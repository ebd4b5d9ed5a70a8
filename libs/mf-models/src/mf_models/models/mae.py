"""MAE (He et al. 2022): image -> patches embedded with fixed 2-D sin-cos positions -> a random
75% of them dropped (per image: argsort of uniform noise) -> ViT encoder over the rest and a
class token -> a light decoder that puts mask tokens where the dropped patches were, adds its
own positions and predicts every patch's pixels -> mean squared error over the masked patches
(on per-patch normalised pixels when `norm_pix_loss`).

Hugging Face's `ViTMAEForPreTraining` semantics: `model(pixel_values, noise=None)` returns
`loss`, `logits` (B, patches, P*P*C in (row, column, channel) order), `mask` (1 = dropped) and
`ids_restore`. Pass `noise` (B, patches) to fix the masking; otherwise it is drawn from the
model's seeded generator. Single-device math; ViT's blocks (models/vit.py). Parameter names
are MindFormers' (`vit.blocks.{i}...`, `decoder_blocks.{i}...`, `decoder_pred`).
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.mae import ViTMAEConfig
from mf_models.errors import ModelConfigError
from mf_models.models.pretrained import TaskModel
from mf_models.models.vit import PatchEmbed, ViTBlock
from mf_models.modules.layers import DTYPE, LayerNorm, linear, normal
from mf_models.modules.vision import check_pixel_values
from mf_models.outputs import ViTMAEForPreTrainingOutput

# (var + eps) under the square root of the per-patch normalisation (the paper's code).
NORM_PIX_EPS = 1e-6


def sincos_positions(width: int, grid: int) -> np.ndarray:
    """(1, grid^2 + 1, width) float32 fixed positions (MAE's get_2d_sincos_pos_embed): a zero
    row for the class token, then per patch [sin, cos] of its column then of its row, at
    frequencies 1 / 10000^(k / (width/4))."""
    omega = 1.0 / 10000 ** (np.arange(width // 4, dtype=np.float64) / (width / 4))
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

    def encode(pos):
        angles = np.outer(pos.reshape(-1), omega)  # (grid^2, width/4)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([encode(cols), encode(rows)], axis=1)  # (grid^2, width)
    return np.concatenate([np.zeros((1, width)), table])[None].astype(np.float32)


def patchify_pixels(pixel_values, patch: int):
    """(B, C, H, W) -> (B, patches, P*P*C) in (row, column, channel) order: the layout of the
    decoder's predictions (Hugging Face's `patchify`)."""
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // patch, patch, w // patch, patch)
    x = x.transpose(0, 2, 4, 3, 5, 1)  # (B, h, w, P, P, C)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


class MAEEncoder(nn.Cell):
    """MindFormers' `ViTMAEModel` (`vit.`): patch tokens + fixed positions, masking, ViT."""

    def __init__(self, config: ViTMAEConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.patch_embed = PatchEmbed(config, rng)
        self.cls_tokens = Parameter(normal((1, 1, c), config.initializer_range,
                                           config.param_init_type, rng), name="cls_tokens")
        grid = config.image_size // config.patch_size
        self.pos_embed = Parameter(Tensor(sincos_positions(c, grid)), name="pos_embed",
                                   requires_grad=False)
        self.blocks = nn.CellList([ViTBlock(config, rng) for _ in range(config.num_layers)])
        self.norm = LayerNorm(c, config.layer_norm_eps, config.param_init_type,
                              config.layernorm_compute_type)
        self.num_kept = config.num_kept

    def construct(self, pixel_values, noise):
        tokens = self.patch_embed(pixel_values)  # (B, L, C)
        b, length, c = tokens.shape
        pos = ops.cast(self.pos_embed, tokens.dtype)
        tokens = tokens + pos[:, 1:, :]
        # Per image, keep the patches with the smallest noise (the paper's random_masking).
        ids_shuffle = ops.sort(noise, 1)[1]  # (B, L) int32
        ids_restore = ops.sort(ops.cast(ids_shuffle, mstype.float32), 1)[1]  # its inverse
        keep = ids_shuffle[:, :self.num_kept]  # (B, K)
        kept = ops.gather_elements(tokens, 1, ops.broadcast_to(keep.reshape(b, -1, 1),
                                                               (b, self.num_kept, c)))
        mask = ops.concat((ops.zeros((b, self.num_kept), mstype.float32),
                           ops.ones((b, length - self.num_kept), mstype.float32)), 1)
        mask = ops.gather_elements(mask, 1, ids_restore)  # (B, L): 1 = dropped, image order
        cls = ops.broadcast_to(ops.cast(self.cls_tokens, tokens.dtype) + pos[:, :1, :],
                               (b, 1, c))
        x = ops.concat((cls, kept), 1)  # (B, 1+K, C)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, ids_restore


class ViTMAEForPreTraining(TaskModel):
    """MindFormers' and Hugging Face's `ViTMAEForPreTraining`."""

    config_class = ViTMAEConfig
    output_class = ViTMAEForPreTrainingOutput
    # The pixels are the targets: the loss is always computed.
    label_names = ("pixel_values",)

    def __init__(self, config: ViTMAEConfig, seed: int = 0):
        super().__init__(config, seed)
        rng, d = self.rng, config.decoder_hidden_size
        self.vit = MAEEncoder(config, rng)
        self.decoder_embed = linear(config, rng, config.hidden_size, d)
        self.mask_tokens = Parameter(normal((1, 1, d), config.initializer_range,
                                            config.param_init_type, rng), name="mask_tokens")
        grid = config.image_size // config.patch_size
        self.decoder_pos_embed = Parameter(Tensor(sincos_positions(d, grid)),
                                           name="decoder_pos_embed", requires_grad=False)
        self.decoder_blocks = nn.CellList([
            ViTBlock(config, rng, d, config.decoder_num_heads, config.decoder_intermediate_size)
            for _ in range(config.decoder_num_layers)])
        self.decoder_norm = LayerNorm(d, config.layer_norm_eps, config.param_init_type,
                                      config.layernorm_compute_type)
        pixels = config.patch_size ** 2 * config.num_channels
        self.decoder_pred = linear(config, rng, d, pixels)
        self.patch = config.patch_size
        self.norm_pix_loss = config.norm_pix_loss
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    def decode(self, latent, ids_restore):
        """Encoder output (B, 1+K, C) -> pixel predictions (B, L, P*P*C) for every patch."""
        h = self.decoder_embed(latent)  # (B, 1+K, D)
        b, kept, d = h.shape
        length = ids_restore.shape[1]
        fill = ops.broadcast_to(ops.cast(self.mask_tokens, h.dtype), (b, length + 1 - kept, d))
        shuffled = ops.concat((h[:, 1:, :], fill), 1)  # (B, L, D): kept first, then masks
        unshuffled = ops.gather_elements(
            shuffled, 1, ops.broadcast_to(ids_restore.reshape(b, length, 1), (b, length, d)))
        x = ops.concat((h[:, :1, :], unshuffled), 1) + ops.cast(self.decoder_pos_embed, h.dtype)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]  # drop the class token

    def construct(self, pixel_values, noise):
        latent, mask, ids_restore = self.vit(pixel_values, ops.cast(noise, mstype.float32))
        logits = ops.cast(self.decode(latent, ids_restore), mstype.float32)  # (B, L, P*P*C)
        target = patchify_pixels(ops.cast(pixel_values, mstype.float32), self.patch)
        if self.norm_pix_loss:  # each patch to zero mean, unit (unbiased) variance
            mean = target.mean(-1, keep_dims=True)
            var = ((target - mean) ** 2).sum(-1, keepdims=True) / (target.shape[-1] - 1)
            target = (target - mean) / ops.sqrt(var + NORM_PIX_EPS)
        per_patch = ((logits - target) ** 2).mean(-1)  # (B, L)
        loss = (per_patch * mask).sum() / mask.sum()
        return loss, logits, mask, ids_restore

    def __call__(self, pixel_values, noise=None):
        """`noise` (B, patches) decides which patches are masked (the lowest kept); without it
        it is drawn from the model's seeded generator (transformers draws torch.rand)."""
        if noise is None:
            batch = np.shape(pixel_values.asnumpy() if isinstance(pixel_values, Tensor)
                             else pixel_values)[0]
            noise = self.rng.random((batch, self.config.num_patches), dtype=np.float32)
        return super().__call__(pixel_values, noise)

    def check_inputs(self, arguments: dict) -> None:
        cfg = self.config
        pixels = check_pixel_values(arguments.get("pixel_values"), cfg.num_channels,
                                    cfg.image_size)
        noise = arguments.get("noise")
        shape = (pixels.shape[0], cfg.num_patches)
        if noise is None or tuple(noise.shape) != shape:
            got = None if noise is None else tuple(noise.shape)
            raise ModelConfigError(f"noise shape {got} must be (batch, patches) = {shape}")

    def unpatchify(self, logits) -> np.ndarray:
        """Predictions (B, L, P*P*C) -> images (B, C, H, W), numpy (Hugging Face's
        `unpatchify`)."""
        array = logits.asnumpy() if isinstance(logits, Tensor) else np.asarray(logits)
        cfg, p = self.config, self.patch
        grid = cfg.image_size // p
        x = array.reshape(-1, grid, grid, p, p, cfg.num_channels)  # (B, h, w, P, P, C)
        return x.transpose(0, 5, 1, 3, 2, 4).reshape(-1, cfg.num_channels, grid * p, grid * p)
