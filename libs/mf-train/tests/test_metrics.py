"""Metrics against references nobody here wrote: sacrebleu, nltk, rouge-score, MindSpore."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mf_train.errors import TrainConfigError
from mf_train.metrics import (
    METRICS,
    AccuracyMetric,
    BleuRougeMetric,
    EmF1Metric,
    PerplexityMetric,
    accuracy,
    bleu,
    build_metric,
    em_f1,
    entity_f1,
    entity_spans,
    exact_match,
    f1,
    normalize_answer,
    perplexity,
    rouge,
    token_nll,
)

# A small vocabulary so that random sentences share n-grams (else BLEU is 0 everywhere).
WORDS = st.sampled_from("the cat sat on a mat dog ran to red big hat".split())
SENTENCE = st.lists(WORDS, min_size=1, max_size=14)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_perplexity_matches_mindspore_perplexity():
    from mindspore.train import Perplexity

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 11, 50)) * 3
    labels = rng.integers(0, 50, size=(3, 11))
    reference = Perplexity()
    reference.update(_softmax(logits).reshape(-1, 50), labels.reshape(-1))
    ours = PerplexityMetric()
    ours.update(logits[:2], labels[:2])  # two updates accumulate like one
    ours.update(logits[2:], labels[2:])
    assert ours.eval()["perplexity"] == pytest.approx(reference.eval(), rel=1e-9)


def test_ignored_labels_do_not_count():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 6, 9))
    labels = rng.integers(0, 9, size=(2, 6))
    masked = labels.copy()
    masked[0, :2] = -100
    nll, count = token_nll(logits, masked)
    keep = masked != -100
    kept_nll, kept_count = token_nll(logits[keep][None], labels[keep][None])
    assert count == 10 == kept_count
    assert nll == pytest.approx(kept_nll)


def test_uniform_logits_give_vocab_sized_perplexity():
    assert perplexity(*token_nll(np.zeros((4, 32)), np.arange(4))) == pytest.approx(32.0)


def test_accuracy_matches_mindspore_accuracy():
    from mindspore.train import Accuracy

    rng = np.random.default_rng(2)
    scores = rng.normal(size=(40, 5))
    labels = rng.integers(0, 5, size=40)
    reference = Accuracy()
    reference.update(scores, labels)
    assert accuracy(list(scores.argmax(-1)), list(labels)) == pytest.approx(reference.eval())
    metric = AccuracyMetric()
    metric.update(list(scores.argmax(-1)), list(labels))
    assert metric.eval()["accuracy"] == pytest.approx(reference.eval())


@FAST
@given(pairs=st.lists(st.tuples(SENTENCE, SENTENCE, SENTENCE), min_size=1, max_size=6))
def test_bleu4_matches_sacrebleu(pairs):
    import sacrebleu

    hyps = [" ".join(h) for h, _, _ in pairs]
    refs_a = [" ".join(a) for _, a, _ in pairs]
    refs_b = [" ".join(b) for _, _, b in pairs]
    ours = bleu(hyps, [[a, b] for a, b in zip(refs_a, refs_b, strict=True)])
    sacre = sacrebleu.corpus_bleu(hyps, [refs_a, refs_b], tokenize="none",
                                  smooth_method="none", force=True).score / 100
    assert ours == pytest.approx(sacre, abs=1e-9)


LONG_SENTENCE = st.lists(WORDS, min_size=4, max_size=14)


@FAST
@given(pairs=st.lists(st.tuples(LONG_SENTENCE, st.lists(SENTENCE, min_size=1, max_size=3)),
                      min_size=1, max_size=6))
def test_bleu4_matches_nltk(pairs):
    # nltk counts at least 1 in each n-gram denominator per sentence, so it differs from
    # sacrebleu (and from Papineni's definition) for hypotheses shorter than 4 tokens: compare
    # on hypotheses of 4+ tokens, with a varying number of references per hypothesis.
    from nltk.translate.bleu_score import corpus_bleu

    ours = bleu([h for h, _ in pairs], [refs for _, refs in pairs])
    with warnings.catch_warnings():  # nltk warns when an n-gram order has no match
        warnings.simplefilter("ignore")
        reference = corpus_bleu([refs for _, refs in pairs], [h for h, _ in pairs])
    assert ours == pytest.approx(reference, abs=1e-9)


def test_bleu_of_a_perfect_match_is_one_and_of_nothing_shared_is_zero():
    assert bleu(["a b c d e"], [["a b c d e"]]) == pytest.approx(1.0)
    assert bleu(["a b c d"], [["e f g h"]]) == 0.0


@FAST
@given(pairs=st.lists(st.tuples(SENTENCE, SENTENCE), min_size=1, max_size=5),
       punctuation=st.sampled_from(["", ",", ".", " !"]))
def test_rouge_matches_rouge_score(pairs, punctuation):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    preds = [" ".join(p) + punctuation for p, _ in pairs]
    refs = [" ".join(r).upper() for _, r in pairs]  # rouge-score lower-cases too
    ours = rouge(preds, refs)
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r, p)[key].fmeasure for p, r in zip(preds, refs,
                                                                             strict=True)])
        assert ours[key] == pytest.approx(expected, abs=1e-12), key


def test_squad_normalisation_and_scores_by_the_definition():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower", "Paris"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # prediction "big red cat" vs answer "the red cat": 2 common tokens of 3 and 2
    assert f1("big red cat", ["the red cat"]) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1("dog", ["cat", "dog"]) == 1.0  # the best answer counts
    assert f1("dog", ["cat"]) == 0.0
    scores = em_f1(["Paris", "big red cat"], [["paris"], ["the red cat", "a cat"]])
    assert scores["em"] == 0.5
    assert scores["f1"] == pytest.approx((1.0 + 0.8) / 2)


def test_accumulators_and_registry():
    assert set(METRICS) >= {"PerplexityMetric", "EmF1Metric", "ADGENMetric", "Accuracy"}
    metric = build_metric("EmF1Metric")
    assert isinstance(metric, EmF1Metric)
    metric.update(["Paris"], ["paris"])
    assert metric.eval() == {"em": 1.0, "f1": 1.0}
    metric.clear()
    with pytest.raises(TrainConfigError):
        metric.eval()
    generated = BleuRougeMetric()
    generated.update(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert generated.eval() == pytest.approx(
        {"bleu4": 1.0, "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0})
    with pytest.raises(TrainConfigError, match="metric.type = 'BLEU'; allowed: "):
        build_metric("BLEU")


@pytest.mark.parametrize("call", [
    lambda: accuracy([1, 2], [1]),
    lambda: bleu([], []),
    lambda: rouge(["a"], []),
    lambda: em_f1([], []),
    lambda: perplexity(0.0, 0),
    lambda: token_nll(np.zeros((2, 3, 4)), np.zeros((3, 2), dtype=int)),
])
def test_bad_inputs_are_one_line_errors(call):
    with pytest.raises(TrainConfigError) as info:
        call()
    assert "\n" not in str(info.value)


def test_perplexity_is_exp_of_mean_nll():
    assert perplexity(math.log(5.0) * 3, 3) == pytest.approx(5.0)


def test_bleu_by_hand():
    # hypothesis "the cat sat on the mat" (6 tokens), reference "the cat sat on a mat"
    # (6 tokens): matched 1..4-grams 5/6, 3/5, 2/4, 1/3; no brevity penalty.
    expected = math.exp((math.log(5 / 6) + math.log(3 / 5) + math.log(2 / 4)
                         + math.log(1 / 3)) / 4)
    assert bleu(["the cat sat on the mat"], [["the cat sat on a mat"]]) == \
        pytest.approx(expected, rel=1e-12)
    # a 4-token hypothesis against a 6-token reference: brevity penalty exp(1 - 6/4)
    assert bleu(["the cat sat on"], [["the cat sat on a mat"]]) == \
        pytest.approx(math.exp(1 - 6 / 4), rel=1e-12)


def test_entity_spans_follow_conlleval():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 1), ("LOC", 3, 3)}
    # an I- after O starts an entity; a change of type ends one and starts another
    assert entity_spans(["O", "I-PER", "I-LOC"]) == {("PER", 1, 1), ("LOC", 2, 2)}
    # B- after B- of the same type: two entities
    assert entity_spans(["B-PER", "B-PER"]) == {("PER", 0, 0), ("PER", 1, 1)}
    # IOBES: E- and S- close their own
    assert entity_spans(["B-ORG", "E-ORG", "S-LOC", "I-LOC"]) == {
        ("ORG", 0, 1), ("LOC", 2, 2), ("LOC", 3, 3)}


def test_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # sentence 1: PER right, LOC missed and an extra LOC found one token early;
    # sentence 2: ORG found with the wrong span
    guess = [["B-PER", "I-PER", "B-LOC", "O"], ["B-ORG", "I-ORG"]]
    scores = entity_f1(gold, guess)  # 1 correct of 3 found, of 3 true
    assert scores == {"precision": 1 / 3, "recall": 1 / 3, "f1": pytest.approx(1 / 3)}
    assert entity_f1(gold, gold)["f1"] == 1.0
    with pytest.raises(TrainConfigError, match="a sentence has 2 reference tags and 1"):
        entity_f1([["O", "O"]], [["O"]])
