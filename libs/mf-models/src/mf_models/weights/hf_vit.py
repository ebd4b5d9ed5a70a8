"""ViT: Hugging Face `ViTForImageClassification` names <-> MindFormers' names.

HF keeps query/key/value apart, as MindFormers' dense1/2/3 (both (out, in)); MindFormers
stores the attention projection and the MLP (in, out), the transpose of HF's nn.Linear. MAE's
encoder (weights/hf_mae.py) uses the same layer rules.
"""

from mf_models.weights.hf import TRANSPOSE, Table, layer, single


def encoder_layer_rules(hf: str, mf: str) -> list:
    """One pre-LayerNorm ViT layer, `{i}` for its index: HF prefix -> MindFormers prefix."""
    rules = [layer(hf + "layernorm_before.weight", mf + "layernorm1.gamma"),
             layer(hf + "layernorm_before.bias", mf + "layernorm1.beta")]
    for hf_name, dense in (("query", "dense1"), ("key", "dense2"), ("value", "dense3")):
        rules += [layer(hf + f"attention.attention.{hf_name}.weight",
                        mf + f"attention.{dense}.weight"),
                  layer(hf + f"attention.attention.{hf_name}.bias", mf + f"attention.{dense}.bias")]
    return rules + [
        layer(hf + "attention.output.dense.weight", mf + "attention.projection.weight",
              TRANSPOSE),
        layer(hf + "attention.output.dense.bias", mf + "attention.projection.bias"),
        layer(hf + "layernorm_after.weight", mf + "layernorm2.gamma"),
        layer(hf + "layernorm_after.bias", mf + "layernorm2.beta"),
        layer(hf + "intermediate.dense.weight", mf + "output.mapping.weight", TRANSPOSE),
        layer(hf + "intermediate.dense.bias", mf + "output.mapping.bias"),
        layer(hf + "output.dense.weight", mf + "output.projection.weight", TRANSPOSE),
        layer(hf + "output.dense.bias", mf + "output.projection.bias"),
    ]


EMBEDDINGS = [
    single("vit.embeddings.patch_embeddings.projection.weight", "vit.patch_embed.proj.weight"),
    single("vit.embeddings.patch_embeddings.projection.bias", "vit.patch_embed.proj.bias"),
    single("vit.embeddings.cls_token", "vit.cls_tokens"),
    single("vit.embeddings.position_embeddings", "vit.pos_embed"),
]

TABLE = Table(
    rules=[
        *EMBEDDINGS,
        *encoder_layer_rules("vit.encoder.layer.{i}.", "vit.blocks.{i}."),
        single("vit.layernorm.weight", "vit.norm.gamma"),
        single("vit.layernorm.bias", "vit.norm.beta"),
        single("classifier.weight", "head.weight"),
        single("classifier.bias", "head.bias"),
    ],
    # ViTModel's pooler is not part of the classification model.
    ignore=["vit.pooler.*"],
)


def table_for(config) -> Table:
    return TABLE
