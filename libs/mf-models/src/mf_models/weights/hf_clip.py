"""CLIP: Hugging Face `CLIPModel` names <-> MindFormers' names.

MindFormers' CLIP keeps OpenAI's layout (its clip convert_weight.py): the text tower at the top
level (`token_embedding`, `positional_embedding`, `transformer.resblocks.{i}`, `ln_final`,
`text_projection`), the vision tower under `visual.`, q/k/v fused in `attn.in_proj` (rows q,
then k, then v), MLP `c_fc` / `c_proj`, and the projections stored (width, projection_dim), the
transpose of HF's nn.Linear.
"""

import numpy as np

from mf_models.weights.hf import TRANSPOSE, Convert, Table, join, layer, repeat, single

# HF's q_proj, k_proj, v_proj <-> one in_proj (3W, ...), rows in that order.
QKV = Convert(lambda parts, c: [np.ascontiguousarray(np.concatenate(parts, axis=0))],
              lambda fused, c: [np.ascontiguousarray(p) for p in np.split(fused[0], 3, axis=0)])


def _tower_layers(hf: str, mf: str) -> list:
    qkv = ("q_proj", "k_proj", "v_proj")
    return [
        layer(hf + "layer_norm1.weight", mf + "ln_1.gamma"),
        layer(hf + "layer_norm1.bias", mf + "ln_1.beta"),
        join(tuple(hf + f"self_attn.{p}.weight" for p in qkv), mf + "attn.in_proj.weight", QKV),
        join(tuple(hf + f"self_attn.{p}.bias" for p in qkv), mf + "attn.in_proj.bias", QKV),
        layer(hf + "self_attn.out_proj.weight", mf + "attn.out_proj.weight"),
        layer(hf + "self_attn.out_proj.bias", mf + "attn.out_proj.bias"),
        layer(hf + "layer_norm2.weight", mf + "ln_2.gamma"),
        layer(hf + "layer_norm2.bias", mf + "ln_2.beta"),
        layer(hf + "mlp.fc1.weight", mf + "mlp.c_fc.weight"),
        layer(hf + "mlp.fc1.bias", mf + "mlp.c_fc.bias"),
        layer(hf + "mlp.fc2.weight", mf + "mlp.c_proj.weight"),
        layer(hf + "mlp.fc2.bias", mf + "mlp.c_proj.bias"),
    ]


def table_for(config) -> Table:
    text, vision = config.text_config, config.vision_config
    return Table(
        rules=[
            single("text_model.embeddings.token_embedding.weight",
                   "token_embedding.embedding_table"),
            single("text_model.embeddings.position_embedding.weight", "positional_embedding"),
            *repeat(_tower_layers("text_model.encoder.layers.{i}.", "transformer.resblocks.{i}."),
                    text.num_hidden_layers),
            single("text_model.final_layer_norm.weight", "ln_final.gamma"),
            single("text_model.final_layer_norm.bias", "ln_final.beta"),
            single("text_projection.weight", "text_projection", TRANSPOSE),
            single("vision_model.embeddings.class_embedding", "visual.class_embedding"),
            single("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
            single("vision_model.embeddings.position_embedding.weight",
                   "visual.positional_embedding"),
            single("vision_model.pre_layrnorm.weight", "visual.ln_pre.gamma"),
            single("vision_model.pre_layrnorm.bias", "visual.ln_pre.beta"),
            *repeat(_tower_layers("vision_model.encoder.layers.{i}.",
                                  "visual.transformer.resblocks.{i}."),
                    vision.num_hidden_layers),
            single("vision_model.post_layernorm.weight", "visual.ln_post.gamma"),
            single("vision_model.post_layernorm.bias", "visual.ln_post.beta"),
            single("visual_projection.weight", "visual.proj", TRANSPOSE),
            single("logit_scale", "logit_scale"),
        ],
        # transformers 4 saved the position ids as buffers.
        ignore=["*.position_ids"],
    )
