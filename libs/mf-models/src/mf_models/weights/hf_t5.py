"""T5: Hugging Face `T5ForConditionalGeneration` names <-> MindFormers' names (its t5
convert_weight.py). HF's nn.Linear weights are (out, in); MindFormers keeps q/k/v that way and
stores the attention output `o` and the MLP's `wi` / `wo` transposed, (in, out)."""

from mf_models.weights.hf import TRANSPOSE, Table, layer, single

_E = "t5_model.tfm_encoder.blocks.{i}."
_D = "t5_model.tfm_decoder.blocks.{i}."


def _attention(hf: str, mf: str) -> list:
    return [layer(f"{hf}.q.weight", f"{mf}.dense1.weight"),
            layer(f"{hf}.k.weight", f"{mf}.dense2.weight"),
            layer(f"{hf}.v.weight", f"{mf}.dense3.weight"),
            layer(f"{hf}.o.weight", f"{mf}.projection.weight", TRANSPOSE)]


def _mlp(hf: str, mf: str) -> list:
    return [layer(f"{hf}.wi.weight", f"{mf}.mapping.weight", TRANSPOSE),
            layer(f"{hf}.wo.weight", f"{mf}.projection.weight", TRANSPOSE)]


_BIAS = "layer.0.SelfAttention.relative_attention_bias.weight"
RULES = [
    single("shared.weight", "t5_model.tfm_embedding_lookup.embedding_table"),
    layer("encoder.block.{i}.layer.0.layer_norm.weight", _E + "layernorm1.gamma"),
    *_attention("encoder.block.{i}.layer.0.SelfAttention", _E + "attention"),
    layer("encoder.block.{i}.layer.1.layer_norm.weight", _E + "layernorm2.gamma"),
    *_mlp("encoder.block.{i}.layer.1.DenseReluDense", _E + "output"),
    single(f"encoder.block.0.{_BIAS}",
           "t5_model.tfm_encoder.blocks.0.attention.bias_generator.embeddings_table"),
    single("encoder.final_layer_norm.weight", "t5_model.encoder_layernorm.gamma"),
    layer("decoder.block.{i}.layer.0.layer_norm.weight", _D + "layernorm1.gamma"),
    *_attention("decoder.block.{i}.layer.0.SelfAttention", _D + "attention"),
    layer("decoder.block.{i}.layer.1.layer_norm.weight", _D + "cross_attention_layernorm.gamma"),
    *_attention("decoder.block.{i}.layer.1.EncDecAttention", _D + "cross_attention"),
    layer("decoder.block.{i}.layer.2.layer_norm.weight", _D + "layernorm2.gamma"),
    *_mlp("decoder.block.{i}.layer.2.DenseReluDense", _D + "output"),
    single(f"decoder.block.0.{_BIAS}",
           "t5_model.tfm_decoder.blocks.0.attention.bias_generator.embeddings_table"),
    single("decoder.final_layer_norm.weight", "t5_model.decoder_layernorm.gamma"),
]
# The stacks' embed_tokens are the shared table (transformers may save the tied copies).
TIED = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]


def table_for(config) -> Table:
    """The tied head has no tensor of its own; an untied one is `lm_head.weight`. The decoder
    stack's layer count may differ from the encoder's: its rules expand over num_layers, so a
    model with other decoder depth gets its decoder rules listed per layer here."""
    enc = [r for r in RULES if not r.hf.startswith("decoder.block.{i}")]
    dec = [r for r in RULES if r.hf.startswith("decoder.block.{i}")]
    rules = enc + [single(r.hf.format(i=i), tuple(m.format(i=i) for m in r.mf), r.convert)
                   for i in range(config.num_decoder_layers) for r in dec]
    if config.tie_word_embeddings:
        return Table(rules, ignore=[*TIED, "lm_head.weight"])
    return Table([*rules, single("lm_head.weight", "lm_head.weight")], ignore=TIED)
