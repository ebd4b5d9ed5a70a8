"""CLIP (Radford et al. 2021): a text transformer (causal, pooled at its end token) and a
vision transformer (pooled at its class token), each projected into one embedding space;
image-text similarities are cosines scaled by exp(logit_scale), and training pulls matching
pairs together with a symmetric cross-entropy over the batch.

Hugging Face's `CLIPModel` semantics: `model(input_ids, pixel_values, attention_mask=None,
return_loss=False)` -> `CLIPOutput(loss, logits_per_image, logits_per_text, text_embeds,
image_embeds)`; `get_text_features` / `get_image_features` give the projected features.
Single-device math, in reading order. Parameter names and shapes are MindFormers' (OpenAI's
layout: `transformer.resblocks.{i}.attn.in_proj` holds q, k and v; `visual.` is the vision
tower; projections (width, projection_dim)).
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.clip import CLIPConfig
from mf_models.errors import ModelConfigError
from mf_models.models.pretrained import TaskModel
from mf_models.modules.attention import attend_all, causal_allowed, mask_to_bias
from mf_models.modules.layers import DTYPE, Embedding, LayerNorm, filled, linear, normal
from mf_models.modules.losses import cross_entropy
from mf_models.modules.vision import PatchProjection, check_pixel_values, hf_activation
from mf_models.outputs import CLIPOutput

_MATMUL = ops.MatMul()
_MATMUL_NT = ops.MatMul(transpose_b=True)


class MultiheadAttention(nn.Cell):
    """OpenAI's attention: q, k, v from one fused projection `in_proj` (3W, W)."""

    def __init__(self, config: CLIPConfig, rng: np.random.Generator, width: int, heads: int):
        super().__init__()
        self.num_heads, self.head_dim = heads, width // heads
        self.in_proj = linear(config, rng, width, 3 * width)
        self.out_proj = linear(config, rng, width, width)

    def construct(self, x, bias):
        b, t, w = x.shape
        qkv = self.in_proj(x).reshape(b, t, 3, self.num_heads, self.head_dim)
        qkv = qkv.transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D)
        return self.out_proj(attend_all(qkv[0], qkv[1], qkv[2], bias))  # (B, T, W)


class MLP(nn.Cell):
    def __init__(self, config: CLIPConfig, rng: np.random.Generator, width: int, ffn: int,
                 act: str):
        super().__init__()
        self.c_fc = linear(config, rng, width, ffn)
        self.c_proj = linear(config, rng, ffn, width)
        self.act = act

    def construct(self, x):
        return self.c_proj(hf_activation(self.act, self.c_fc(x)))


class ResidualAttentionBlock(nn.Cell):
    def __init__(self, config: CLIPConfig, rng: np.random.Generator, tower):
        super().__init__()
        w = tower.hidden_size
        ln = (w, tower.layer_norm_eps, config.param_init_type, config.layernorm_compute_type)
        self.ln_1 = LayerNorm(*ln)
        self.attn = MultiheadAttention(config, rng, w, tower.num_attention_heads)
        self.ln_2 = LayerNorm(*ln)
        self.mlp = MLP(config, rng, w, tower.intermediate_size, tower.hidden_act)

    def construct(self, x, bias):
        x = x + self.attn(self.ln_1(x), bias)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Cell):
    def __init__(self, config: CLIPConfig, rng: np.random.Generator, tower):
        super().__init__()
        self.resblocks = nn.CellList([ResidualAttentionBlock(config, rng, tower)
                                      for _ in range(tower.num_hidden_layers)])

    def construct(self, x, bias=None):
        for block in self.resblocks:
            x = block(x, bias)
        return x


class VisionTransformer(nn.Cell):
    """pixels (B, C, H, W) -> pooled (B, width) -> `proj` -> (B, projection_dim)."""

    def __init__(self, config: CLIPConfig, rng: np.random.Generator):
        super().__init__()
        v = config.vision_config
        w, std, dtype = v.hidden_size, config.initializer_range, config.param_init_type
        self.conv1 = PatchProjection(config, rng, v.num_channels, w, v.patch_size, bias=False)
        self.class_embedding = Parameter(normal((w,), std, dtype, rng), name="class_embedding")
        self.positional_embedding = Parameter(normal((v.num_tokens, w), std, dtype, rng),
                                              name="positional_embedding")
        ln = (w, v.layer_norm_eps, dtype, config.layernorm_compute_type)
        self.ln_pre = LayerNorm(*ln)
        self.transformer = Transformer(config, rng, v)
        self.ln_post = LayerNorm(*ln)
        self.proj = Parameter(normal((w, config.projection_dim), std, dtype, rng), name="proj")

    def construct(self, pixel_values):
        tokens = self.conv1(pixel_values)  # (B, N, W)
        b, _, w = tokens.shape
        cls = ops.broadcast_to(ops.cast(self.class_embedding, tokens.dtype).reshape(1, 1, w),
                               (b, 1, w))
        x = ops.concat((cls, tokens), 1) + ops.cast(self.positional_embedding, tokens.dtype)
        x = self.transformer(self.ln_pre(x))  # (B, N+1, W)
        pooled = self.ln_post(x[:, 0, :])  # (B, W): the class token
        return _MATMUL(pooled, ops.cast(self.proj, pooled.dtype))  # (B, projection_dim)


class CLIPModel(TaskModel):
    """MindFormers' and Hugging Face's `CLIPModel`."""

    config_class = CLIPConfig
    output_class = CLIPOutput
    label_names = ("return_loss",)  # given only when true (see __call__)

    def __init__(self, config: CLIPConfig, seed: int = 0):
        super().__init__(config, seed)
        t, rng = config.text_config, self.rng
        std, dtype = config.initializer_range, config.param_init_type
        self.token_embedding = Embedding(t.vocab_size, t.hidden_size, std=std, param_dtype=dtype,
                                         rng=rng)
        self.positional_embedding = Parameter(
            normal((t.max_position_embeddings, t.hidden_size), std, dtype, rng),
            name="positional_embedding")
        self.transformer = Transformer(config, rng, t)
        self.ln_final = LayerNorm(t.hidden_size, t.layer_norm_eps, dtype,
                                  config.layernorm_compute_type)
        self.text_projection = Parameter(normal((t.hidden_size, config.projection_dim), std,
                                                dtype, rng), name="text_projection")
        self.visual = VisionTransformer(config, rng)
        self.logit_scale = Parameter(filled((), config.logit_scale_init_value, "float32"),
                                     name="logit_scale")
        # An eos_token_id of 2 marks configs from before transformers PR #24773: they pool at
        # the largest id, which is where CLIP's tokenizer puts <|endoftext|>.
        self.pool_at_max_id = t.eos_token_id == 2
        self.eos_token_id = t.eos_token_id
        self.compute_dtype = DTYPE[config.compute_dtype]
        self.load_checkpoint_from_config()

    # ---- the two towers -----------------------------------------------------------------------
    def encode_text(self, input_ids, attention_mask):
        """Token ids (B, T) -> projected features (B, projection_dim), pooled at the end token."""
        b, t = input_ids.shape
        x = self.token_embedding(input_ids) + self.positional_embedding[:t]  # (B, T, W)
        x = ops.cast(x, self.compute_dtype)
        bias = mask_to_bias(causal_allowed(0, t, t, attention_mask))  # (B, 1, T, T)
        x = self.ln_final(self.transformer(x, bias))
        if self.pool_at_max_id:
            where = ops.argmax(ops.cast(input_ids, mstype.float32), -1)
        else:  # the first end token (padding may repeat it)
            where = ops.argmax(ops.cast(input_ids == self.eos_token_id, mstype.float32), -1)
        index = ops.broadcast_to(where.reshape(b, 1, 1).astype(mstype.int32), (b, 1, x.shape[2]))
        pooled = ops.gather_elements(x, 1, index).reshape(b, -1)  # (B, W)
        return _MATMUL(pooled, ops.cast(self.text_projection, pooled.dtype))

    def encode_image(self, pixel_values):
        return self.visual(ops.cast(pixel_values, self.compute_dtype))

    # ---- the forward ----------------------------------------------------------------------------
    def construct(self, input_ids, pixel_values, attention_mask=None, return_loss=None):
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        image = ops.cast(self.encode_image(pixel_values), mstype.float32)
        text = ops.cast(self.encode_text(input_ids, attention_mask), mstype.float32)
        image = image / ops.sqrt((image * image).sum(-1, keepdims=True))
        text = text / ops.sqrt((text * text).sum(-1, keepdims=True))
        logits_per_text = _MATMUL_NT(text, image) * ops.exp(self.logit_scale)  # (T, I)
        logits_per_image = logits_per_text.swapaxes(0, 1)  # (I, T)
        outputs = (logits_per_image, logits_per_text, text, image)
        if not return_loss:
            return outputs
        targets = ops.arange(logits_per_text.shape[0], dtype=mstype.int32)
        loss = (cross_entropy(logits_per_text, targets) +
                cross_entropy(logits_per_image, targets)) / 2.0
        return (loss, *outputs)

    def __call__(self, input_ids, pixel_values, attention_mask=None, return_loss=False):
        loss = {"return_loss": True} if return_loss else {}
        return super().__call__(input_ids, pixel_values, attention_mask, **loss)

    def check_inputs(self, arguments: dict) -> None:
        ids, _ = self.check_text(arguments.get("input_ids"), arguments.get("attention_mask"))
        v = self.config.vision_config
        pixels = check_pixel_values(arguments.get("pixel_values"), v.num_channels, v.image_size)
        if arguments.get("return_loss") and ids.shape[0] != pixels.shape[0]:
            raise ModelConfigError(f"return_loss pairs text i with image i: got "
                                   f"{ids.shape[0]} texts and {pixels.shape[0]} images")

    def get_text_features(self, input_ids, attention_mask=None) -> Tensor:
        """Projected, unnormalised text features (B, projection_dim)."""
        return self.encode_text(*self.check_text(input_ids, attention_mask))

    def get_image_features(self, pixel_values) -> Tensor:
        """Projected, unnormalised image features (B, projection_dim)."""
        v = self.config.vision_config
        return self.encode_image(check_pixel_values(pixel_values, v.num_channels, v.image_size))

    def check_text(self, input_ids, attention_mask) -> tuple[Tensor, Tensor]:
        t = self.config.text_config
        ids = input_ids.asnumpy() if isinstance(input_ids, Tensor) else np.asarray(input_ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer) or ids.size == 0:
            raise ModelConfigError(f"input_ids must be integer token ids (batch, length), got "
                                   f"shape {ids.shape} dtype {ids.dtype}")
        if ids.shape[1] > t.max_position_embeddings:
            raise ModelConfigError(f"text length {ids.shape[1]} is longer than the model's "
                                   f"max_position_embeddings({t.max_position_embeddings})")
        if ids.min() < 0 or ids.max() >= t.vocab_size:
            bad = int(ids.min() if ids.min() < 0 else ids.max())
            raise ModelConfigError(f"token id {bad} is outside the vocabulary [0, "
                                   f"{t.vocab_size})")
        if not self.pool_at_max_id and not (ids == self.eos_token_id).any(axis=1).all():
            raise ModelConfigError(f"every text needs its end token (id {self.eos_token_id}), "
                                   "where CLIP pools it: tokenize with the CLIP tokenizer")
        if attention_mask is None:
            mask = np.ones_like(ids)
        else:
            mask = (attention_mask.asnumpy() if isinstance(attention_mask, Tensor)
                    else np.asarray(attention_mask))
            if mask.shape != ids.shape:
                raise ModelConfigError(f"attention_mask shape {mask.shape} must match input_ids "
                                       f"{ids.shape}")
        return Tensor(ids.astype(np.int32)), Tensor(mask.astype(np.int32))
