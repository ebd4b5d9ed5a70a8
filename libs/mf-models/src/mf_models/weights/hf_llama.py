"""LLaMA: Hugging Face `LlamaForCausalLM` names <-> MindFormers' names. Same shapes, same rotary
layout (rotate-half), so every rule is a rename."""

from mf_models.weights.hf import Table, layer, single

TABLE = Table(
    rules=[
        single("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight"),
        layer("model.layers.{i}.input_layernorm.weight", "model.layers.{i}.attention_norm.weight"),
        layer("model.layers.{i}.self_attn.q_proj.weight", "model.layers.{i}.attention.wq.weight"),
        layer("model.layers.{i}.self_attn.k_proj.weight", "model.layers.{i}.attention.wk.weight"),
        layer("model.layers.{i}.self_attn.v_proj.weight", "model.layers.{i}.attention.wv.weight"),
        layer("model.layers.{i}.self_attn.o_proj.weight", "model.layers.{i}.attention.wo.weight"),
        layer("model.layers.{i}.post_attention_layernorm.weight",
              "model.layers.{i}.ffn_norm.weight"),
        layer("model.layers.{i}.mlp.gate_proj.weight", "model.layers.{i}.feed_forward.w1.weight"),
        layer("model.layers.{i}.mlp.down_proj.weight", "model.layers.{i}.feed_forward.w2.weight"),
        layer("model.layers.{i}.mlp.up_proj.weight", "model.layers.{i}.feed_forward.w3.weight"),
        single("model.norm.weight", "model.norm_out.weight"),
        single("lm_head.weight", "lm_head.weight"),
    ],
    ignore=["model.layers.*.self_attn.rotary_emb.inv_freq"],
)


def table_for(config) -> Table:
    """Tied embeddings have no lm_head tensor in either format."""
    if getattr(config, "tie_word_embeddings", False):
        return Table([r for r in TABLE.rules if r.hf != "lm_head.weight"],
                     ignore=[*TABLE.ignore, "lm_head.weight"])
    return TABLE
