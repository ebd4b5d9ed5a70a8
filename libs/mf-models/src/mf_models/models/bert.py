"""BERT (Devlin et al. 2019, arXiv:1810.04805): word + token-type + position embeddings ->
LayerNorm -> post-LayerNorm blocks of bidirectional attention and a GELU MLP -> a task head:
masked LM, sequence classifier (over the pooled [CLS] vector), token classifier, or span
(question answering) head.

Single-device math, in reading order; the math is Hugging Face's `modeling_bert.py` (the
reference the tests hold it to). Parameter names and shapes are MindFormers' (its bert.py and
convert_weight.py): the encoder lives under `bert.bert_encoder.encoder.blocks.{i}` with
GPT-2's layout (q/k/v `dense1/2/3` (out, in); `projection` and the MLP (in, out)), so a
MindFormers `.ckpt` loads by name.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, nn, ops
from mindspore import dtype as mstype

from mf_models.configs.bert import BertConfig
from mf_models.errors import ModelConfigError
from mf_models.models.pretrained import TaskModel
from mf_models.modules.attention import attend, keys_allowed, mask_to_bias
from mf_models.modules.layers import (
    DTYPE,
    Embedding,
    LayerNorm,
    MappingMLP,
    activation,
    filled,
    linear,
    tied_logits,
)
from mf_models.modules.losses import cross_entropy
from mf_models.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)


def _layer_norm(config: BertConfig) -> LayerNorm:
    return LayerNorm(config.hidden_size, config.layer_norm_eps, config.param_init_type,
                     config.layernorm_compute_type)


class BertEmbeddingPostprocessor(nn.Cell):
    """Adds token-type and position embeddings to the word embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        kw = dict(std=config.initializer_range, param_dtype=config.param_init_type, rng=rng)
        self.token_type_embedding = Embedding(config.type_vocab_size, config.hidden_size, **kw)
        self.full_position_embedding = Embedding(config.seq_length, config.hidden_size, **kw)
        self.layernorm = _layer_norm(config)

    def construct(self, words, token_type_ids):
        t = words.shape[1]
        positions = ops.arange(t, dtype=mstype.int32).reshape(1, t)  # (1, T): absolute
        x = words + self.token_type_embedding(token_type_ids)  # HF's order of the two sums
        return self.layernorm(x + self.full_position_embedding(positions))  # (B, T, C)


class BertSelfAttention(nn.Cell):
    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        c = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.dense1 = linear(config, rng, c, c)  # query
        self.dense2 = linear(config, rng, c, c)  # key
        self.dense3 = linear(config, rng, c, c)  # value
        self.projection = linear(config, rng, c, c, transpose_b=False)
        self.softmax_dtype = DTYPE[config.softmax_compute_type]

    def construct(self, x, bias):
        b, t, _ = x.shape
        shape = (b, t, self.num_heads, self.head_dim)
        q = self.dense1(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        k = self.dense2(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        v = self.dense3(x).reshape(shape).swapaxes(1, 2)  # (B, H, T, D)
        return self.projection(attend(q, k, v, bias, self.softmax_dtype))  # (B, T, C)


class BertBlock(nn.Cell):
    """Post-LayerNorm: h = LN(x + attention(x)); out = LN(h + MLP(h)).

    MindFormers' converter puts HF's `attention.output.LayerNorm` (between attention and MLP)
    in `layernorm2` and the block's closing `output.LayerNorm` in `layernorm1`; the names
    follow it so its checkpoints load.
    """

    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        self.attention = BertSelfAttention(config, rng)
        self.layernorm2 = _layer_norm(config)
        self.output = MappingMLP(config, rng, config.hidden_act)
        self.layernorm1 = _layer_norm(config)

    def construct(self, x, bias):
        h = self.layernorm2(x + self.attention(x, bias))
        return self.layernorm1(h + self.output(h))


class BertEncoder(nn.Cell):
    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        self.blocks = nn.CellList([BertBlock(config, rng) for _ in range(config.num_layers)])

    def construct(self, x, bias):
        for block in self.blocks:
            x = block(x, bias)
        return x


class BertTransformer(nn.Cell):
    """Holds the encoder only: MindFormers builds BERT's encoder as a Transformer with no
    decoder, whence the `bert_encoder.encoder.` in every block's name."""

    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        self.encoder = BertEncoder(config, rng)

    def construct(self, x, bias):
        return self.encoder(x, bias)


class BertMainLayer(nn.Cell):
    """Embeddings and encoder, plus the pooler (tanh(W h[CLS] + b)) when a head uses it."""

    def __init__(self, config: BertConfig, rng: np.random.Generator, pooler: bool):
        super().__init__()
        self.word_embedding = Embedding(config.vocab_size, config.hidden_size,
                                        std=config.initializer_range,
                                        param_dtype=config.param_init_type, rng=rng)
        self.embedding_postprocessor = BertEmbeddingPostprocessor(config, rng)
        self.bert_encoder = BertTransformer(config, rng)
        self.dense = linear(config, rng, config.hidden_size, config.hidden_size) if pooler \
            else None
        self.compute_dtype = DTYPE[config.compute_dtype]

    def construct(self, input_ids, attention_mask, token_type_ids):
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        x = self.embedding_postprocessor(self.word_embedding(input_ids), token_type_ids)
        x = ops.cast(x, self.compute_dtype)  # (B, T, C)
        bias = mask_to_bias(keys_allowed(attention_mask, input_ids.shape[1]))  # (B, 1, T, T)
        return self.bert_encoder(x, bias)  # (B, T, C)

    def pool(self, h):
        """The pooled [CLS] vector (B, C) of hidden states h (B, T, C)."""
        return ops.tanh(self.dense(h[:, 0]))


class BertPreTrainedModel(TaskModel):
    """What the BERT classes share: inputs (input_ids, attention_mask, token_type_ids) and
    their checks. A checkpoint of any BERT class loads into any other: the encoder by name,
    the new head at random (`fresh_parameters`), the old one dropped."""

    config_class = BertConfig
    # Every head's parameters and the pooler: a checkpoint may carry those of another class.
    HEADS = (r"^mlmloss\.", r"^classifier\.", r"^qa_outputs\.", r"^bert\.dense\.",
             r"^nsploss\.")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.unused_checkpoint_tensors = tuple(h for h in cls.HEADS
                                              if h not in cls.fresh_parameters)

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        if config.architecture != type(self).__name__:
            self.config = config = config.replace(architecture=type(self).__name__)
        self.compute_dtype = DTYPE[config.compute_dtype]

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        ids = arguments.get("input_ids")
        shape = None if ids is None else tuple(ids.shape)
        for name in ("attention_mask", "token_type_ids"):
            value = arguments.get(name)
            if value is not None and tuple(value.shape) != shape:
                raise ModelConfigError(f"{name} has shape {tuple(value.shape)}; it must match "
                                       f"input_ids {shape}")
        types = arguments.get("token_type_ids")
        if types is not None:
            _check_range("token type id", _numpy(types), 0, self.config.type_vocab_size,
                         "the token types")


class BertModel(BertPreTrainedModel):
    """The bare encoder: last_hidden_state (B, T, C) and pooler_output (B, C)."""

    output_class = BaseModelOutputWithPooling
    label_names = ()
    fresh_parameters = (r"^bert\.dense\.",)  # a masked-LM checkpoint has no pooler

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        self.bert = BertMainLayer(self.config, self.rng, pooler=True)
        self.load_checkpoint_from_config()

    def construct(self, input_ids, attention_mask=None, token_type_ids=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)
        return h, self.bert.pool(h)


class BertMLMHead(nn.Cell):
    """transform (dense, activation, LayerNorm), then the word embedding table (tied) + bias."""

    def __init__(self, config: BertConfig, rng: np.random.Generator):
        super().__init__()
        self.dense = linear(config, rng, config.hidden_size, config.hidden_size)
        self.layernorm = _layer_norm(config)
        self.output_bias = Parameter(filled((config.vocab_size,), 0.0, config.param_init_type),
                                     name="output_bias")
        self.act = config.hidden_act

    def construct(self, h, table):
        h = self.layernorm(activation(self.act, self.dense(h)))
        return tied_logits(h, ops.cast(table, h.dtype)) + ops.cast(self.output_bias, h.dtype)


class BertForMaskedLM(BertPreTrainedModel):
    """Scores for every vocabulary token at every position; `labels` -100 where not masked."""

    output_class = MaskedLMOutput
    fresh_parameters = (r"^mlmloss\.",)

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        self.bert = BertMainLayer(self.config, self.rng, pooler=False)
        self.mlmloss = BertMLMHead(self.config, self.rng)
        self.load_checkpoint_from_config()

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        _check_labels(arguments, "labels", self.config.vocab_size, "the vocabulary")

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)
        logits = ops.cast(self.mlmloss(h, self.bert.word_embedding.table), mstype.float32)
        if labels is None:
            return logits  # (B, T, V)
        vocab = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1)), logits


class BertForSequenceClassification(BertPreTrainedModel):
    """One score per class from the pooled [CLS] vector. The loss follows `problem_type`
    (HF's rule): regression (MSE) for one label, single-label cross-entropy otherwise, or
    multi-label binary cross-entropy when the config says so."""

    output_class = SequenceClassifierOutput
    fresh_parameters = (r"^classifier\.", r"^bert\.dense\.")

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        self.bert = BertMainLayer(self.config, self.rng, pooler=True)
        self.classifier = linear(self.config, self.rng, self.config.hidden_size,
                                 self.config.num_labels)
        self.problem_type = self.config.problem_type or (
            "regression" if self.config.num_labels == 1 else "single_label_classification")
        self.load_checkpoint_from_config()

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        if self.problem_type == "single_label_classification":
            _check_labels(arguments, "labels", self.config.num_labels, "the head's classes",
                          self.config.labels)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        pooled = self.bert.pool(self.bert(input_ids, attention_mask, token_type_ids))
        logits = ops.cast(self.classifier(pooled), mstype.float32)  # (B, num_labels)
        if labels is None:
            return logits
        if self.problem_type == "regression":
            loss = ops.mean(ops.square(logits.reshape(-1) - ops.cast(labels, mstype.float32)
                                       .reshape(-1)))
        elif self.problem_type == "multi_label_classification":
            loss = ops.binary_cross_entropy_with_logits(logits, ops.cast(labels, mstype.float32))
        else:
            loss = cross_entropy(logits, labels.reshape(-1))
        return loss, logits


class BertForTokenClassification(BertPreTrainedModel):
    """One score per class at every token (named-entity tags); `labels` -100 are ignored."""

    output_class = TokenClassifierOutput
    fresh_parameters = (r"^classifier\.",)

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        self.bert = BertMainLayer(self.config, self.rng, pooler=False)
        self.classifier = linear(self.config, self.rng, self.config.hidden_size,
                                 self.config.num_labels)
        self.load_checkpoint_from_config()

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        _check_labels(arguments, "labels", self.config.num_labels, "the head's classes",
                      self.config.labels)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)
        logits = ops.cast(self.classifier(h), mstype.float32)  # (B, T, num_labels)
        if labels is None:
            return logits
        n = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, n), labels.reshape(-1)), logits


class BertForQuestionAnswering(BertPreTrainedModel):
    """Start and end scores of the answer span at every token (SQuAD). The loss is the mean
    of the start and end cross-entropies; positions outside the sequence are ignored, as HF
    clamps them to T and ignores T."""

    output_class = QuestionAnsweringModelOutput
    label_names = ("start_positions", "end_positions")
    fresh_parameters = (r"^qa_outputs\.",)

    def __init__(self, config: BertConfig, seed: int = 0):
        super().__init__(config, seed)
        self.bert = BertMainLayer(self.config, self.rng, pooler=False)
        self.qa_outputs = linear(self.config, self.rng, self.config.hidden_size, 2)
        self.load_checkpoint_from_config()

    def check_inputs(self, arguments) -> None:
        super().check_inputs(arguments)
        given = [arguments.get(n) is not None for n in self.label_names]
        if any(given) and not all(given):
            raise ModelConfigError("start_positions and end_positions go together: give both "
                                   "for the loss, or neither")

    def construct(self, input_ids, attention_mask=None, token_type_ids=None,
                  start_positions=None, end_positions=None):
        h = self.bert(input_ids, attention_mask, token_type_ids)
        logits = ops.cast(self.qa_outputs(h), mstype.float32)  # (B, T, 2)
        start, end = logits[..., 0], logits[..., 1]  # (B, T) each
        if start_positions is None or end_positions is None:
            return start, end
        t = start.shape[1]
        start_positions = ops.clip(start_positions.reshape(-1), 0, t)
        end_positions = ops.clip(end_positions.reshape(-1), 0, t)
        loss = (cross_entropy(start, start_positions, t) + cross_entropy(end, end_positions, t))
        return loss / 2, start, end


# ---- host-side checks: one line naming the bad value ------------------------------------------
def _numpy(x) -> np.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


def _check_range(what: str, values: np.ndarray, low: int, high: int, where: str,
                 names=None) -> None:
    bad = values[(values < low) | (values >= high)]
    if bad.size:
        listed = f": {', '.join(names)}" if names else ""
        raise ModelConfigError(f"{what} {int(bad.flat[0])} is outside {where} "
                               f"[{low}, {high}){listed}")


def _check_labels(arguments, name: str, count: int, where: str, names=None) -> None:
    labels = arguments.get(name)
    if labels is None:
        return
    values = _numpy(labels)
    if not np.issubdtype(values.dtype, np.integer):
        raise ModelConfigError(f"{name} must be integer class ids, got {values.dtype}")
    values = values[values != -100]  # ignored positions (HF's ignore_index)
    _check_range("label", values, 0, count, where, names if count <= 12 else None)
