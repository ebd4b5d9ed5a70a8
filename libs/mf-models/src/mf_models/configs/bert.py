"""BERT config and presets (Devlin et al. 2019, arXiv:1810.04805; MindFormers `BertConfig`).

One config serves the bare encoder and every task head; `architecture` names the head a
preset builds (MindFormers' `model.arch.type`, Hugging Face's `architectures[0]`), and
`num_labels` / `id2label` describe a classifier's classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.configs.gpt2 import ACTIVATIONS, HF_ACTIVATIONS_IN, HF_ACTIVATIONS_OUT
from mf_models.errors import ModelConfigError

ARCHITECTURES = ("BertForMaskedLM", "BertModel", "BertForSequenceClassification",
                 "BertForTokenClassification", "BertForQuestionAnswering")
# MindFormers' class names for the same heads. Its BertForMultipleChoice classifies the pooled
# [CLS] vector (a sequence classifier, despite the name); its BertForPreTraining adds the
# next-sentence head to the MLM head, which mf does not build (the MLM head loads alone).
ARCHITECTURE_ALIASES = {"BertForMultipleChoice": "BertForSequenceClassification",
                        "BertTokenClassification": "BertForTokenClassification",
                        "BertForPreTraining": "BertForMaskedLM"}
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")

# GLUE MNLI's label order (the `glue/mnli` dataset's ClassLabel: 0 entailment, 1 neutral,
# 2 contradiction).
MNLI_LABELS = ("entailment", "neutral", "contradiction")
# MindFormers mindformers/dataset/labels.py `cluener_labels`: CLUENER2020's ten entity types
# in BIOS tags, "O" first.
_CLUENER_TYPES = ("address", "book", "company", "game", "government", "movie", "name",
                  "organization", "position", "scene")
CLUENER_LABELS = ("O", *(f"{tag}-{t}" for tag in "BIS" for t in _CLUENER_TYPES))

_BASE = dict(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12,
             intermediate_size=3072, seq_length=512, type_vocab_size=2)
_CHINESE = {**_BASE, "vocab_size": 21128}


def _labels(names) -> dict[str, Any]:
    return {"num_labels": len(names), "id2label": dict(enumerate(names))}


PRESETS: dict[str, dict[str, Any]] = {
    # google-bert/bert-base-uncased config.json; MindFormers configs/bert/run_bert_base_uncased.yaml
    # (its BertForPreTraining; the masked-LM head here).
    "bert_base_uncased": dict(_BASE, architecture="BertForMaskedLM"),
    # MindFormers configs/txtcls/model_config/txtcls_bert_base_uncased.yaml: bert-base-uncased
    # with a 3-way classifier (num_labels 3), the start of an MNLI fine-tune.
    "txtcls_bert_base_uncased": dict(_BASE, architecture="BertForSequenceClassification",
                                     num_labels=3),
    # MindFormers configs/txtcls/run_txtcls_bert_base_uncased_mnli.yaml (fine-tuned on MNLI).
    "txtcls_bert_base_uncased_mnli": dict(_BASE, architecture="BertForSequenceClassification",
                                          **_labels(MNLI_LABELS)),
    # MindFormers configs/tokcls/model_config/tokcls_bert_base_chinese.yaml: bert-base-chinese
    # (vocab 21128) with a 31-way token classifier.
    "tokcls_bert_base_chinese": dict(_CHINESE, architecture="BertForTokenClassification",
                                     num_labels=31),
    # MindFormers configs/tokcls/run_tokcls_bert_base_chinese_cluener.yaml (fine-tuned on
    # CLUENER2020, labels from its dataset/labels.py).
    "tokcls_bert_base_chinese_cluener": dict(_CHINESE, architecture="BertForTokenClassification",
                                             **_labels(CLUENER_LABELS)),
    # MindFormers configs/qa/run_qa_bert_base_uncased.yaml (SQuAD v1.1); the span head has two
    # outputs, start and end (its yaml's num_labels 3 is unused by its BertForQuestionAnswering).
    "qa_bert_base_uncased": dict(_BASE, architecture="BertForQuestionAnswering", num_labels=2),
    # MindFormers' model matrix: the same head over bert-base-chinese (vocab 21128).
    "qa_bert_base_chinese_uncased": dict(_CHINESE, architecture="BertForQuestionAnswering",
                                         num_labels=2),
    # Tiny flavour for tests: runs on a CPU in well under a second.
    "bert_debug": dict(vocab_size=1024, hidden_size=64, num_layers=2, num_heads=4,
                       intermediate_size=128, seq_length=128, type_vocab_size=2,
                       architecture="BertForMaskedLM"),
}

# MindFormers' shapes (its transformer module, as in GPT-2): dense1/2/3 (q, k, v) are (out, in);
# projection and mapping are (in, out). The Megatron split of GPT-2 for the blocks; embeddings
# tables other than the words', the pooler and the task heads stay whole. (MindFormers trains
# BERT data-parallel only.)
_ENC = "bert.bert_encoder.encoder.blocks.*."
_WHOLE = (None, None)
SHARDING_PLAN: dict[str, tuple[str | None, ...]] = {
    "bert.word_embedding.embedding_table": ("mp", None),
    "bert.embedding_postprocessor.*.embedding_table": _WHOLE,
    "bert.embedding_postprocessor.layernorm.*": (None,),
    _ENC + "attention.dense*.weight": ("mp", None),
    _ENC + "attention.dense*.bias": ("mp",),
    _ENC + "attention.projection.weight": ("mp", None),
    _ENC + "attention.projection.bias": (None,),
    _ENC + "layernorm*.*": (None,),
    _ENC + "output.mapping.weight": (None, "mp"),
    _ENC + "output.mapping.bias": ("mp",),
    _ENC + "output.projection.weight": ("mp", None),
    _ENC + "output.projection.bias": (None,),
    **{f"{head}.weight": _WHOLE for head in ("bert.dense", "mlmloss.dense", "classifier",
                                              "qa_outputs")},
    **{f"{head}.bias": (None,) for head in ("bert.dense", "mlmloss.dense", "classifier",
                                            "qa_outputs")},
    "mlmloss.layernorm.*": (None,),
    "mlmloss.output_bias": (None,),
}


@dataclasses.dataclass
class BertConfig(ModelConfig):
    """BERT: learned absolute positions + token types, post-LayerNorm blocks, GELU MLP."""

    memory_kind: ClassVar[str] = "encoder"
    family: ClassVar[str] = "bert"
    hf_model_type: ClassVar[str | None] = "bert"
    hf_key_map: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
        "max_position_embeddings": "seq_length",
    }
    # MindFormers' yaml spellings (its BertConfig).
    aliases: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
        "embedding_size": "hidden_size", "layernorm_dtype": "layernorm_compute_type",
        "softmax_dtype": "softmax_compute_type",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = SHARDING_PLAN

    seq_length: int = 512  # the position table (HF max_position_embeddings)
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    type_vocab_size: int = 2
    hidden_act: str = "gelu_exact"  # HF "gelu" (erf); see configs/gpt2.py ACTIVATIONS
    layer_norm_eps: float = 1e-12
    architecture: str = "BertForMaskedLM"
    num_labels: int = 2
    id2label: dict[int, str] | None = None
    problem_type: str | None = None
    # Kept for config round trips; mf applies no dropout (as in every other family).
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.architecture = ARCHITECTURE_ALIASES.get(self.architecture, self.architecture)
        if self.architecture not in ARCHITECTURES:
            raise ModelConfigError(f"architecture={self.architecture!r} is not a BERT model "
                                   f"class; supported: {', '.join(ARCHITECTURES)}")
        if self.hidden_act not in ACTIVATIONS:
            raise ModelConfigError(
                f"hidden_act={self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        for field in ("intermediate_size", "type_vocab_size", "num_labels"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"{field}={value!r} must be a positive integer")
        if self.problem_type not in (None, *PROBLEM_TYPES):
            raise ModelConfigError(f"problem_type={self.problem_type!r} is not one of "
                                   f"{', '.join(PROBLEM_TYPES)}")
        if self.architecture == "BertForQuestionAnswering" and self.num_labels != 2:
            raise ModelConfigError(f"num_labels={self.num_labels}: a question-answering head "
                                   "has 2 outputs (start and end)")
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in dict(self.id2label).items()}
            if sorted(self.id2label) != list(range(self.num_labels)):
                raise ModelConfigError(
                    f"id2label has ids {sorted(self.id2label)[:8]}; a {self.num_labels}-way "
                    f"head needs exactly 0..{self.num_labels - 1}")

    def replace(self, **changes: Any) -> ModelConfig:
        """As transformers does, a new num_labels without id2label drops class names that no
        longer fit (a 3-way MNLI checkpoint fine-tuned as a 5-way classifier)."""
        labels = changes.get("num_labels")
        if (labels is not None and "id2label" not in changes and self.id2label is not None
                and len(self.id2label) != labels):
            changes["id2label"] = None
        return super().replace(**changes)

    @property
    def ffn_hidden_size(self) -> int:
        return self.intermediate_size

    @property
    def labels(self) -> list[str]:
        """Class names by id: id2label, or LABEL_0, LABEL_1, ... as transformers names them."""
        names = self.id2label or {}
        return [names.get(i, f"LABEL_{i}") for i in range(self.num_labels)]

    @property
    def parameter_count(self) -> int:
        c, f = self.hidden_size, self.ffn_hidden_size
        embeddings = (self.vocab_size + self.seq_length + self.type_vocab_size) * c + 2 * c
        block = 4 * (c * c + c) + (c * f + f) + (f * c + c) + 4 * c  # q/k/v/o, MLP, 2 norms
        body = embeddings + self.num_layers * block
        heads = {
            "BertModel": c * c + c,  # pooler
            "BertForMaskedLM": c * c + c + 2 * c + self.vocab_size,  # transform, norm, bias
            "BertForSequenceClassification": c * c + c + (c + 1) * self.num_labels,
            "BertForTokenClassification": (c + 1) * self.num_labels,
            "BertForQuestionAnswering": (c + 1) * 2,
        }
        return body + heads[self.architecture]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **overrides: Any) -> ModelConfig:
        values = dict(values)
        # MindFormers' yaml: seq_length is the padded input length (128), the position table is
        # max_position_embeddings (512); expand_ratio * hidden is the MLP width.
        if "max_position_embeddings" in values:
            values["seq_length"] = values.pop("max_position_embeddings")
        ratio = values.pop("expand_ratio", None)
        if ratio is not None and "intermediate_size" not in values:
            hidden = values.get("hidden_size", values.get("embedding_size", cls.hidden_size))
            values["intermediate_size"] = int(ratio) * int(hidden)
        return super().from_dict(values, **overrides)

    @classmethod
    def _from_hf_extra(cls, hf: Mapping[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
        act = hf.get("hidden_act", "gelu")
        if act not in HF_ACTIVATIONS_IN:
            raise ModelConfigError(f"hidden_act={act!r} is not supported for bert; "
                                   f"supported: {', '.join(HF_ACTIVATIONS_IN)}")
        mapped["hidden_act"] = HF_ACTIVATIONS_IN[act]
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ModelConfigError(f"position_embedding_type="
                                   f"{hf['position_embedding_type']!r} is not supported; only "
                                   "'absolute' (BERT's) is")
        architectures = hf.get("architectures") or ["BertForMaskedLM"]
        mapped["architecture"] = architectures[0]
        if "id2label" in hf and "num_labels" not in hf:
            mapped["num_labels"] = len(hf["id2label"])
        if mapped["architecture"] == "BertForQuestionAnswering":
            mapped.pop("id2label", None)  # transformers writes LABEL_0/1 for the span head
        return mapped

    def to_hf_dict(self) -> dict[str, Any]:
        if self.hidden_act not in HF_ACTIVATIONS_OUT:
            raise ModelConfigError(f"hidden_act={self.hidden_act!r} has no transformers "
                                   "equivalent; export supports gelu, gelu_exact, relu")
        return {
            "architectures": [self.architecture], "model_type": "bert",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": HF_ACTIVATIONS_OUT[self.hidden_act],
            "max_position_embeddings": self.seq_length, "type_vocab_size": self.type_vocab_size,
            "layer_norm_eps": self.layer_norm_eps, "initializer_range": self.initializer_range,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "pad_token_id": self.pad_token_id, "position_embedding_type": "absolute",
            "id2label": {str(i): name for i, name in enumerate(self.labels)},
            "label2id": {name: i for i, name in enumerate(self.labels)},
            **({"problem_type": self.problem_type} if self.problem_type else {}),
            "torch_dtype": self.param_init_type,
        }
