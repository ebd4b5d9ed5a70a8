"""The BERT and T5 pipelines against transformers' own pipelines on the same tiny random
checkpoints (mf-models' tests/fixtures/make_text_fixtures.py): fill-mask candidates,
text-classification with pairs, token-classification entities ("simple" and "none"),
question answering over a context longer than the window, T5's text2text and translation;
task names; one-line errors for bad input."""

from __future__ import annotations

import json
import math

import pytest
from generate_testing import MODEL_FIXTURES

from mf_generate import GenerateConfigError, pipeline

BERT = MODEL_FIXTURES / "bert"
T5 = MODEL_FIXTURES / "t5"
HEADS = {"fill_mask": "masked_lm", "text_classification": "sequence_classification",
         "token_classification": "token_classification",
         "question_answering": "question_answering"}
_PIPES: dict = {}


def pipe(task: str):
    """One pipeline per task for the whole module (each compiles its forward per bucket)."""
    if task not in _PIPES:
        _PIPES[task] = pipeline(task, model=BERT / HEADS[task] / "hf")
    return _PIPES[task]


def reference(task: str) -> list[dict]:
    return json.loads((BERT / HEADS[task] / "pipeline.json").read_text())


def same(ours, theirs, path="result"):
    """Equal structure and values; scores to 1e-5 (softmax in numpy vs torch, float32)."""
    assert type(ours) is type(theirs), f"{path}: {ours!r} != {theirs!r}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), f"{path}: keys {list(ours)} != {list(theirs)}"
        for key in theirs:
            same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{path}: {len(ours)} items != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert math.isclose(ours, theirs, abs_tol=1e-5), f"{path}: {ours} != {theirs}"
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"


def _input(value):
    return value if isinstance(value, str) else dict(value)


def test_fill_mask_equals_transformers():
    for case in reference("fill_mask"):  # one mask, two masks, a word piece and an accent
        same(pipe("fill_mask")(case["input"], top_k=3), case["output"])


def test_text_classification_equals_transformers_with_pairs():
    for case in reference("text_classification"):
        same(pipe("text_classification")(_input(case["input"])), case["top1"])
        same(pipe("text_classification")(_input(case["input"]), top_k=None), case["all"])
    pair = next(c["input"] for c in reference("text_classification") if isinstance(
        c["input"], dict))
    as_tuple = pipe("text_classification")((pair["text"], pair["text_pair"]))
    assert as_tuple == pipe("text_classification")(pair)


def test_token_classification_groups_word_pieces_like_transformers_simple():
    cases = reference("token_classification")  # one batch: one compiled shape
    texts = [c["input"] for c in cases]
    same(pipe("token_classification")(texts), [c["simple"] for c in cases])
    same(pipe("token_classification")(texts, aggregation_strategy="none"),
         [c["none"] for c in cases])


def test_question_answering_equals_transformers_over_strided_windows():
    # The second context is longer than the model's 64 positions: read in two windows.
    for case in reference("question_answering"):
        same(pipe("question_answering")(**case["input"]), case["output"])
        same(pipe("question_answering")(**case["input"], top_k=3), case["top3"])


def test_t5_text2text_and_translation_equal_transformers_generate():
    cases = json.loads((T5 / "pipeline.json").read_text())
    text2text = pipeline("text2text-generation", model=T5 / "hf", max_new_tokens=20)
    results = text2text([c["input"] for c in cases])
    assert results == [{"generated_text": c["generated_text"]} for c in cases]
    # MindFormers' output shape; the same model, so the compiled bucket is reused
    translate = pipeline("translation", model=text2text.model, tokenizer=text2text.tokenizer,
                         max_new_tokens=20)
    assert translate([c["input"] for c in cases]) == [
        {"translation_text": [c["generated_text"]]} for c in cases]
    # translation_en_to_de writes T5's task prefix in front of the text
    prefixed = pipeline("translation_en_to_de", model=text2text.model,
                        tokenizer=text2text.tokenizer)
    assert prefixed._prepare(["the house is wonderful."]) == [cases[0]["input"]]
    with pytest.raises(GenerateConfigError, match=r"src_lang/tgt_lang \['en', 'xx'\]"):
        pipeline("translation", model=text2text.model, tokenizer=text2text.tokenizer,
                 src_lang="en", tgt_lang="xx")


def test_task_names_and_bad_input_are_one_line_errors():
    with pytest.raises(GenerateConfigError, match="'fill_mak' is not a pipeline task; did you "
                                                  "mean 'fill_mask'"):
        pipeline("fill_mak", model=BERT / "masked_lm" / "hf")
    with pytest.raises(GenerateConfigError, match="'topk' is not a fill_mask setting; did you "
                                                  "mean 'top_k'"):
        pipeline("masked_language_modeling", model="/no/such/dir", topk=2)
    with pytest.raises(GenerateConfigError, match="the text pair 'a cat' is missing its second "
                                                  "part"):
        pipe("text_classification")({"text": "a cat", "text_pair": ""})
    with pytest.raises(GenerateConfigError, match="missing its second part"):
        pipe("text_classification")({"text": "a cat"})
    with pytest.raises(GenerateConfigError, match="a text pair is \\(text, text_pair\\); got a "
                                                  "tuple of 3"):
        pipe("text_classification")(("a", "b", "c"))
    with pytest.raises(GenerateConfigError, match="no \\[MASK\\] token in 'the cat'"):
        pipe("fill_mask")("the cat")
    with pytest.raises(GenerateConfigError, match="the question has 60 tokens"):
        pipe("question_answering")(question="cat " * 60, context="the cat sat")
    with pytest.raises(GenerateConfigError, match="has no context"):
        pipe("question_answering")(question="where?", context=" ")
    with pytest.raises(GenerateConfigError, match="the input has 81 tokens; the model takes "
                                                  "at most 64"):
        pipe("text_classification")("cat " * 79)
    with pytest.raises(GenerateConfigError, match="the fill_mask pipeline needs a "
                                                  "BertForMaskedLM, got "
                                                  "BertForSequenceClassification"):
        pipeline("fill_mask", model=pipe("text_classification").model,
                 tokenizer=pipe("text_classification").tokenizer)
    with pytest.raises(GenerateConfigError, match="aggregation_strategy='first' is not one"):
        pipe("token_classification")("john", aggregation_strategy="first")
