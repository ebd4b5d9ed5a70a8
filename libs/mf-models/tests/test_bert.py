"""BERT against transformers: every head's outputs and loss from the same tiny random
checkpoints (tests/fixtures/make_text_fixtures.py), loaded through our Hugging Face importer;
head swaps, save/convert round trips, and one-line errors for bad labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mindspore import Tensor
from safetensors.numpy import load_file

from mf_models import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    preset_config,
)
from mf_models.errors import CheckpointMismatchError, ModelConfigError
from mf_models.weights.convert import convert

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bert"
HEADS = {
    "masked_lm": "BertForMaskedLM",
    "sequence_classification": "BertForSequenceClassification",
    "token_classification": "BertForTokenClassification",
    "question_answering": "BertForQuestionAnswering",
}
LABELS = ("labels", "start_positions", "end_positions")


@pytest.fixture(scope="module")
def loaded():
    """Each head loaded once from its Hugging Face directory, with its expected outputs."""
    return {head: (AutoModel.from_pretrained(FIXTURES / head / "hf"),
                   load_file(str(FIXTURES / head / "expected.safetensors"))) for head in HEADS}


def _inputs(expected, with_labels=False):
    names = ["input_ids", "attention_mask", "token_type_ids"]
    kwargs = {n: expected[n] for n in names}
    if with_labels:
        kwargs.update({n: expected[n] for n in LABELS if n in expected})
    return kwargs


@pytest.mark.parametrize("head", HEADS)
def test_outputs_and_loss_match_transformers(loaded, head):
    model, expected = loaded[head]
    assert type(model).__name__ == HEADS[head]
    assert model.load_report == []
    out = model(**_inputs(expected, with_labels=True))
    fields = ("start_logits", "end_logits") if head == "question_answering" else ("logits",)
    for field in fields:
        np.testing.assert_allclose(out[field].asnumpy(), expected[field], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.loss.asnumpy().reshape(1), expected["loss"], atol=1e-4)
    assert list(out.keys())[0] == "loss" and out[0] is out.loss
    # Without labels the loss field is absent, as in transformers.
    plain = model(**_inputs(expected))
    assert "loss" not in plain and plain[0].shape == out[fields[0]].shape


def test_compiled_forward_equals_the_eager_one(loaded):
    model, expected = loaded["token_classification"]
    args = [expected[n] for n in ("input_ids", "attention_mask", "token_type_ids")]
    compiled = model.forward_function()(*args)
    np.testing.assert_allclose(compiled.logits.asnumpy(), expected["logits"], atol=1e-4, rtol=0)


def test_bare_encoder_matches_transformers_bert_model(loaded):
    _, expected = loaded["sequence_classification"]
    model = BertModel.from_pretrained(FIXTURES / "sequence_classification" / "hf")
    assert any("classifier" in note for note in model.load_report)  # the head is not used
    out = model(**_inputs(expected))
    np.testing.assert_allclose(out.last_hidden_state.asnumpy(), expected["last_hidden_state"],
                               atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.pooler_output.asnumpy(), expected["pooler_output"],
                               atol=1e-4, rtol=0)


def test_a_new_head_starts_from_the_encoder_of_another(loaded):
    """A masked-LM checkpoint fine-tunes into a classifier: encoder loaded, pooler and
    classifier at random (reported), the MLM head dropped (reported)."""
    _, expected = loaded["masked_lm"]
    model = AutoModelForSequenceClassification.from_pretrained(FIXTURES / "masked_lm" / "hf",
                                                               num_labels=4)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 4 and model.config.architecture == type(model).__name__
    report = " ".join(model.load_report)
    assert "classifier.weight" in report and "bert.dense.weight" in report
    assert "mlmloss" in report
    hidden = model.bert(*[Tensor(expected[n]) for n in
                          ("input_ids", "attention_mask", "token_type_ids")]).asnumpy()
    np.testing.assert_allclose(hidden, expected["last_hidden_state"], atol=1e-4, rtol=0)
    assert model(**_inputs(expected)).logits.shape == (2, 4)


def test_half_a_head_is_a_mismatch(tmp_path, loaded):
    model, _ = loaded["question_answering"]
    weights = model.state_dict()
    del weights["qa_outputs.bias"]
    model.config.save_pretrained(tmp_path)
    from mf_models.weights.io import write_safetensors

    write_safetensors(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointMismatchError, match="qa_outputs.bias"):
        AutoModelForQuestionAnswering.from_pretrained(tmp_path)


def test_save_and_convert_round_trips(tmp_path, loaded):
    model, expected = loaded["token_classification"]
    model.save_pretrained(tmp_path / "mf", fmt="ckpt")
    again = AutoModel.from_pretrained(tmp_path / "mf")
    assert type(again) is type(model) and again.config == model.config
    assert again.config.id2label == model.config.id2label
    np.testing.assert_array_equal(again(**_inputs(expected)).logits.asnumpy(),
                                  model(**_inputs(expected)).logits.asnumpy())
    # ours -> Hugging Face: the same tensors, bit for bit, as transformers wrote them
    convert(tmp_path / "mf", tmp_path / "hf")
    original = load_file(str(FIXTURES / "token_classification" / "hf" / "model.safetensors"))
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert set(exported) == set(original)
    for name, array in original.items():
        np.testing.assert_array_equal(exported[name], array)


def test_bad_labels_and_inputs_are_one_line_errors(loaded):
    model, expected = loaded["sequence_classification"]
    ids = expected["input_ids"]
    with pytest.raises(ModelConfigError, match=r"label 3 is outside the head's classes "
                                               r"\[0, 3\): negative, neutral, positive"):
        model(ids, labels=np.array([0, 3]))
    mlm, _ = loaded["masked_lm"]
    with pytest.raises(ModelConfigError, match=r"label 500 is outside the vocabulary"):
        mlm(ids, labels=np.full(ids.shape, 500))
    with pytest.raises(ModelConfigError, match=r"token type id 2 is outside the token types"):
        model(ids, token_type_ids=np.full(ids.shape, 2))
    with pytest.raises(ModelConfigError, match=r"attention_mask has shape \(2, 3\)"):
        model(ids, attention_mask=np.ones((2, 3), np.int32))
    qa, _ = loaded["question_answering"]
    with pytest.raises(ModelConfigError, match="start_positions and end_positions go together"):
        qa(ids, start_positions=np.array([1, 2]))


def test_presets_carry_mindformers_heads_and_labels():
    mnli = preset_config("txtcls_bert_base_uncased_mnli")
    assert mnli.architecture == "BertForSequenceClassification"
    assert mnli.labels == ["entailment", "neutral", "contradiction"]
    cluener = preset_config("tokcls_bert_base_chinese_cluener")
    assert (cluener.num_labels, cluener.vocab_size) == (31, 21128)
    assert cluener.labels[0] == "O" and cluener.labels[1] == "B-address"
    # bert-base-uncased with its MLM head: transformers counts 109,514,298 weights.
    assert preset_config("bert_base_uncased").parameter_count == 109_514_298
    # MindFormers' run yaml spellings: arch name, embedding_size, expand_ratio, seq_length 128
    # beside max_position_embeddings 512.
    config = BertConfig.from_dict({"embedding_size": 64, "num_layers": 2, "num_heads": 4,
                                   "expand_ratio": 4, "seq_length": 128, "vocab_size": 100,
                                   "max_position_embeddings": 512,
                                   "architecture": "BertForMultipleChoice"})
    assert (config.hidden_size, config.intermediate_size, config.seq_length) == (64, 256, 512)
    assert config.architecture == "BertForSequenceClassification"
    with pytest.raises(ModelConfigError, match="id2label has ids"):
        BertConfig.from_name("bert_debug", num_labels=3, id2label={0: "a", 1: "b"})
    # a new number of classes drops names that no longer fit (transformers' behaviour)
    assert mnli.replace(num_labels=5).labels == [f"LABEL_{i}" for i in range(5)]
    with pytest.raises(ModelConfigError, match="AutoModelForCausalLM builds causal LMs"):
        AutoModelForCausalLM.from_config("bert_debug")


def test_the_classifier_loss_trains_under_jit_and_grad():
    """What a trainer needs: construct's loss compiles with value_and_grad and falls."""
    import mindspore as ms
    from mindspore import nn

    model = BertForSequenceClassification.from_config("bert_debug", num_labels=2, seed=1)
    rng = np.random.default_rng(0)
    ids = Tensor(rng.integers(5, 1024, (4, 12)).astype(np.int32))
    labels = Tensor(np.array([0, 1, 0, 1], np.int32))
    params = model.trainable_params()
    optimizer = nn.Adam(params, learning_rate=5e-3)

    def loss_fn(ids, labels):
        return model(ids, None, None, labels)[0]

    step = ms.jit(ms.value_and_grad(loss_fn, None, params))
    losses = []
    for _ in range(8):
        loss, grads = step(ids, labels)
        optimizer(grads)
        losses.append(float(loss.asnumpy()))
    assert losses[-1] < 0.5 * losses[0], losses
