"""BERT: Hugging Face `Bert*` names <-> MindFormers' names (its bert convert_weight.py).

HF's nn.Linear weights are (out, in). MindFormers keeps q/k/v (`dense1/2/3`), the pooler and
the heads as (out, in) and the attention output and MLP as (in, out), so those three are
transposed. One table serves every BERT class: the encoder rules always apply, each head's
rules only when that head is in the checkpoint (or the model).
"""

from mf_models.weights.hf import TRANSPOSE, Table, head, layer, single

_H = "bert.encoder.layer.{i}."
_B = "bert.bert_encoder.encoder.blocks.{i}."
_P = "bert.embedding_postprocessor."
TABLE = Table(
    rules=[
        single("bert.embeddings.word_embeddings.weight", "bert.word_embedding.embedding_table"),
        single("bert.embeddings.position_embeddings.weight",
               _P + "full_position_embedding.embedding_table"),
        single("bert.embeddings.token_type_embeddings.weight",
               _P + "token_type_embedding.embedding_table"),
        single("bert.embeddings.LayerNorm.weight", _P + "layernorm.gamma"),
        single("bert.embeddings.LayerNorm.bias", _P + "layernorm.beta"),
        layer(_H + "attention.self.query.weight", _B + "attention.dense1.weight"),
        layer(_H + "attention.self.query.bias", _B + "attention.dense1.bias"),
        layer(_H + "attention.self.key.weight", _B + "attention.dense2.weight"),
        layer(_H + "attention.self.key.bias", _B + "attention.dense2.bias"),
        layer(_H + "attention.self.value.weight", _B + "attention.dense3.weight"),
        layer(_H + "attention.self.value.bias", _B + "attention.dense3.bias"),
        layer(_H + "attention.output.dense.weight", _B + "attention.projection.weight",
              TRANSPOSE),
        layer(_H + "attention.output.dense.bias", _B + "attention.projection.bias"),
        layer(_H + "attention.output.LayerNorm.weight", _B + "layernorm2.gamma"),
        layer(_H + "attention.output.LayerNorm.bias", _B + "layernorm2.beta"),
        layer(_H + "intermediate.dense.weight", _B + "output.mapping.weight", TRANSPOSE),
        layer(_H + "intermediate.dense.bias", _B + "output.mapping.bias"),
        layer(_H + "output.dense.weight", _B + "output.projection.weight", TRANSPOSE),
        layer(_H + "output.dense.bias", _B + "output.projection.bias"),
        layer(_H + "output.LayerNorm.weight", _B + "layernorm1.gamma"),
        layer(_H + "output.LayerNorm.bias", _B + "layernorm1.beta"),
        head("bert.pooler.dense.weight", "bert.dense.weight"),
        head("bert.pooler.dense.bias", "bert.dense.bias"),
        head("cls.predictions.transform.dense.weight", "mlmloss.dense.weight"),
        head("cls.predictions.transform.dense.bias", "mlmloss.dense.bias"),
        head("cls.predictions.transform.LayerNorm.weight", "mlmloss.layernorm.gamma"),
        head("cls.predictions.transform.LayerNorm.bias", "mlmloss.layernorm.beta"),
        head("cls.predictions.bias", "mlmloss.output_bias"),
        head("classifier.weight", "classifier.weight"),
        head("classifier.bias", "classifier.bias"),
        head("qa_outputs.weight", "qa_outputs.weight"),
        head("qa_outputs.bias", "qa_outputs.bias"),
        # BertForPreTraining's next-sentence head: read so the loader can drop it by name.
        head("cls.seq_relationship.weight", "nsploss.dense.weight"),
        head("cls.seq_relationship.bias", "nsploss.dense.bias"),
    ],
    # The decoder is the word embedding (tied) and its bias is cls.predictions.bias; the
    # position/token-type id buffers are saved by older transformers versions.
    ignore=["cls.predictions.decoder.*", "bert.embeddings.position_ids",
            "bert.embeddings.token_type_ids"],
    hf_prefix="bert.",
)


def table_for(config) -> Table:
    return TABLE
