"""Swin: Hugging Face `SwinForImageClassification` names <-> MindFormers' names.

MindFormers' names are timm's (microsoft/Swin-Transformer) under `encoder.`, with q/k/v split
(its swin convert_weight.py): `encoder.layers.{stage}.blocks.{block}.attn.q.weight`. q/k/v,
the attention projection and the patch-merging reduction are (out, in) as in HF; the MLP is
(in, out). The relative position index is recomputed, never loaded.
"""

from mf_models.weights.hf import COPY, TRANSPOSE, Table, single


def _block(hf: str, mf: str) -> list:
    pairs = [
        ("layernorm_before.weight", "norm1.gamma", COPY),
        ("layernorm_before.bias", "norm1.beta", COPY),
        ("attention.self.relative_position_bias_table",
         "attn.relative_position_bias.relative_position_bias_table", COPY),
        ("attention.output.dense.weight", "attn.proj.weight", COPY),
        ("attention.output.dense.bias", "attn.proj.bias", COPY),
        ("layernorm_after.weight", "norm2.gamma", COPY),
        ("layernorm_after.bias", "norm2.beta", COPY),
        ("intermediate.dense.weight", "mlp.mapping.weight", TRANSPOSE),
        ("intermediate.dense.bias", "mlp.mapping.bias", COPY),
        ("output.dense.weight", "mlp.projection.weight", TRANSPOSE),
        ("output.dense.bias", "mlp.projection.bias", COPY),
    ]
    for hf_name, short in (("query", "q"), ("key", "k"), ("value", "v")):
        pairs += [(f"attention.self.{hf_name}.weight", f"attn.{short}.weight", COPY),
                  (f"attention.self.{hf_name}.bias", f"attn.{short}.bias", COPY)]
    return [single(hf + a, mf + b, convert) for a, b, convert in pairs]


def table_for(config) -> Table:
    rules = [
        single("swin.embeddings.patch_embeddings.projection.weight",
               "encoder.patch_embed.projection.weight"),
        single("swin.embeddings.patch_embeddings.projection.bias",
               "encoder.patch_embed.projection.bias"),
        single("swin.embeddings.norm.weight", "encoder.patch_embed.norm.gamma"),
        single("swin.embeddings.norm.bias", "encoder.patch_embed.norm.beta"),
    ]
    if config.use_absolute_embeddings:
        rules.append(single("swin.embeddings.position_embeddings", "encoder.absolute_pos_embed"))
    for stage, depth in enumerate(config.depths):
        for block in range(depth):
            rules += _block(f"swin.encoder.layers.{stage}.blocks.{block}.",
                            f"encoder.layers.{stage}.blocks.{block}.")
        if stage < len(config.depths) - 1:
            hf = f"swin.encoder.layers.{stage}.downsample."
            mf = f"encoder.layers.{stage}.downsample."
            rules += [single(hf + "norm.weight", mf + "norm.gamma"),
                      single(hf + "norm.bias", mf + "norm.beta"),
                      single(hf + "reduction.weight", mf + "reduction.weight")]
    rules += [single("swin.layernorm.weight", "encoder.norm.gamma"),
              single("swin.layernorm.bias", "encoder.norm.beta"),
              single("classifier.weight", "head.weight"),
              single("classifier.bias", "head.bias")]
    # transformers 4 saved the relative position index as a buffer.
    return Table(rules, ignore=["*.relative_position_index"])
