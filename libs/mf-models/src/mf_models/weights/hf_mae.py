"""MAE: Hugging Face `ViTMAEForPreTraining` names <-> MindFormers' names.

The encoder is ViT's (weights/hf_vit.py); the decoder layers are the same layers under
`decoder.decoder_layers.{i}` (MindFormers: `decoder_blocks.{i}`).
"""

from mf_models.weights.hf import Table, repeat, single
from mf_models.weights.hf_vit import EMBEDDINGS, encoder_layer_rules


def table_for(config) -> Table:
    return Table(
        rules=[
            *EMBEDDINGS,
            *repeat(encoder_layer_rules("vit.encoder.layer.{i}.", "vit.blocks.{i}."),
                    config.num_layers),
            single("vit.layernorm.weight", "vit.norm.gamma"),
            single("vit.layernorm.bias", "vit.norm.beta"),
            single("decoder.decoder_embed.weight", "decoder_embed.weight"),
            single("decoder.decoder_embed.bias", "decoder_embed.bias"),
            single("decoder.mask_token", "mask_tokens"),
            single("decoder.decoder_pos_embed", "decoder_pos_embed"),
            *repeat(encoder_layer_rules("decoder.decoder_layers.{i}.", "decoder_blocks.{i}."),
                    config.decoder_num_layers),
            single("decoder.decoder_norm.weight", "decoder_norm.gamma"),
            single("decoder.decoder_norm.bias", "decoder_norm.beta"),
            single("decoder.decoder_pred.weight", "decoder_pred.weight"),
            single("decoder.decoder_pred.bias", "decoder_pred.bias"),
        ],
        # transformers 5.24 writes the decoder layers under this name (its reverse renaming
        # of `encoder.layer.` -> `layers.`); the Hub's checkpoints use `decoder_layers.`.
        hf_renames=[("decoder.decoder_encoder.layer.", "decoder.decoder_layers.")],
    )
