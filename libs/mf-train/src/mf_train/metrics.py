"""Evaluation metrics: perplexity, accuracy, EM/F1, BLEU-4, entity F1, ROUGE-1/2/L (numpy).

Every score is a fraction in [0, 1] (multiply by 100 for the percentages papers print).
Definitions follow the references the tests compare against: SQuAD v1.1's evaluation script
(answer normalisation, token F1), Papineni et al. 2002 corpus BLEU as in sacrebleu/nltk
(clipped n-gram precision, geometric mean, brevity penalty against the closest reference
length, no smoothing), seqeval's entity F1 (conlleval's chunks), and Lin 2004 ROUGE as in
Google's rouge-score (F-measure, its tokenizer: lower case, runs of [a-z0-9]).

The accumulator classes follow MindSpore's Metric protocol (`clear`, `update`, `eval`) and are
registered under MindFormers' metric type names in `METRICS`.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from mf_train.errors import TrainConfigError

IGNORE_INDEX = -100  # the label value that masks a position out of the loss (HF/MindFormers)


# --- perplexity -------------------------------------------------------------------------------

def token_nll(logits: np.ndarray, labels: np.ndarray,
              ignore_index: int = IGNORE_INDEX) -> tuple[float, int]:
    """(sum of -log p(label), number of counted tokens) for logits (..., V) and labels (...).

    Labels are already aligned with the logits (the caller shifts them); positions whose label
    is `ignore_index` do not count.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.shape[:-1] != labels.shape:
        raise TrainConfigError(f"logits shape {logits.shape} does not fit labels shape "
                               f"{labels.shape}; expected logits (..., vocab) over labels (...)")
    flat_logits = logits.reshape(-1, logits.shape[-1])  # (N, V)
    flat_labels = labels.reshape(-1)  # (N,)
    keep = flat_labels != ignore_index
    flat_logits, flat_labels = flat_logits[keep], flat_labels[keep]
    if flat_labels.size == 0:
        return 0.0, 0
    peak = flat_logits.max(axis=-1, keepdims=True)
    log_z = peak[:, 0] + np.log(np.exp(flat_logits - peak).sum(axis=-1))
    picked = flat_logits[np.arange(flat_labels.size), flat_labels]
    return float((log_z - picked).sum()), int(flat_labels.size)


def perplexity(nll_sum: float, num_tokens: int) -> float:
    """exp(mean negative log-likelihood per token)."""
    if num_tokens <= 0:
        raise TrainConfigError("perplexity of 0 tokens is undefined; the eval set is empty")
    return math.exp(nll_sum / num_tokens)


# --- accuracy ---------------------------------------------------------------------------------

def accuracy(predictions: Sequence, references: Sequence) -> float:
    """The fraction of predictions equal to their reference."""
    if len(predictions) != len(references):
        raise TrainConfigError(f"accuracy got {len(predictions)} predictions for "
                               f"{len(references)} references; they must pair up")
    if not predictions:
        raise TrainConfigError("accuracy of 0 examples is undefined")
    return sum(p == r for p, r in zip(predictions, references, strict=True)) / len(predictions)


# --- SQuAD exact match and F1 -----------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, drop punctuation and articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    """1.0 if the normalised prediction equals any normalised answer, else 0.0."""
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(a) for a in answers))


def f1(prediction: str, answers: Iterable[str]) -> float:
    """The best token-overlap F1 of the prediction against any answer."""
    return max(_token_f1(prediction, a) for a in answers)


def _token_f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def em_f1(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 over examples; each example may have several answers."""
    if len(predictions) != len(answers) or not predictions:
        raise TrainConfigError(f"em_f1 got {len(predictions)} predictions for {len(answers)} "
                               "answer lists; they must pair up and not be empty")
    n = len(predictions)
    return {"em": sum(exact_match(p, a) for p, a in zip(predictions, answers, strict=True)) / n,
            "f1": sum(f1(p, a) for p, a in zip(predictions, answers, strict=True)) / n}


# --- BLEU-4 -----------------------------------------------------------------------------------

def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _as_tokens(text: str | Sequence[str]) -> list[str]:
    return text.split() if isinstance(text, str) else list(text)


def bleu(hypotheses: Sequence[str | Sequence[str]],
         references: Sequence[Sequence[str | Sequence[str]]], max_order: int = 4) -> float:
    """Corpus BLEU (BLEU-4 by default) of tokenised hypotheses, each with one or more references.

    Strings are split on whitespace; pass token lists to use another tokenizer.
    """
    if len(hypotheses) != len(references) or not hypotheses:
        raise TrainConfigError(f"bleu got {len(hypotheses)} hypotheses for {len(references)} "
                               "reference lists; they must pair up and not be empty")
    matches = [0] * max_order
    totals = [0] * max_order
    hyp_len = ref_len = 0
    for hyp_text, refs_text in zip(hypotheses, references, strict=True):
        hyp = _as_tokens(hyp_text)
        refs = [_as_tokens(r) for r in refs_text]
        hyp_len += len(hyp)
        # the closest reference length; ties go to the shorter one (sacrebleu, nltk)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, max_order + 1):
            counts = _ngrams(hyp, n)
            max_ref: Counter = Counter()
            for ref in refs:
                max_ref |= _ngrams(ref, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in counts.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if min(matches) == 0:
        return 0.0  # no smoothing: a missing n-gram order makes the geometric mean 0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return brevity * math.exp(log_precision)


# --- entities (named-entity recognition) ------------------------------------------------------
def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of every entity in a BIO/IOBES tag sequence, by seqeval's default
    (conlleval) rules: B- or S- starts an entity, so does an I- or E- that follows O or another
    type; O, B-, S- or a new type end the one before, E- and S- end their own."""
    spans: set[tuple[str, int, int]] = set()
    start, kind, previous = None, "", "O"
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-") if tag != "O" else ("O", "", "")
        ends = start is not None and (prefix in ("O", "B", "S") or label != kind
                                      or previous in ("E", "S"))
        if ends:
            spans.add((kind, start, i - 1))
            start = None
        if prefix in ("B", "S") or (prefix in ("I", "E") and start is None):
            start, kind = i, label
        previous = prefix
    return spans


def entity_f1(references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]],
              ) -> dict[str, float]:
    """Micro precision, recall and F1 of whole entities over sentences (seqeval's
    classification_report 'micro avg'): an entity counts only with its exact span and type."""
    if len(references) != len(predictions):
        raise TrainConfigError(f"entity_f1 got {len(predictions)} predicted sentences for "
                               f"{len(references)} references")
    true = found = correct = 0
    for ref, pred in zip(references, predictions, strict=True):
        if len(ref) != len(pred):
            raise TrainConfigError(f"a sentence has {len(ref)} reference tags and {len(pred)} "
                                   "predicted ones")
        gold, guessed = entity_spans(ref), entity_spans(pred)
        true, found, correct = true + len(gold), found + len(guessed), correct + len(gold & guessed)
    precision = correct / found if found else 0.0
    recall = correct / true if true else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f}


# --- ROUGE ------------------------------------------------------------------------------------

def rouge_tokenize(text: str) -> list[str]:
    """rouge-score's default tokenizer: lower case, then the runs of [a-z0-9]."""
    return re.findall(r"[a-z0-9]+", text.lower())


def _f_measure(overlap: int, pred_total: int, ref_total: int) -> float:
    if overlap == 0 or pred_total == 0 or ref_total == 0:
        return 0.0
    precision, recall = overlap / pred_total, overlap / ref_total
    return 2 * precision * recall / (precision + recall)


def rouge_n(prediction: Sequence[str], reference: Sequence[str], n: int) -> float:
    """ROUGE-N F-measure of two token lists."""
    pred, ref = _ngrams(prediction, n), _ngrams(reference, n)
    overlap = sum((pred & ref).values())
    return _f_measure(overlap, sum(pred.values()), sum(ref.values()))


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b):
            current.append(previous[j] + 1 if token_a == token_b
                           else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L (sentence-level longest common subsequence) F-measure of two token lists."""
    return _f_measure(_lcs_length(prediction, reference), len(prediction), len(reference))


def rouge(predictions: Sequence[str], references: Sequence[str],
          tokenize: Callable[[str], list[str]] = rouge_tokenize) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures over (prediction, reference) pairs.

    For text without spaces between words (Chinese), pass `tokenize=list` (characters).
    """
    if len(predictions) != len(references) or not predictions:
        raise TrainConfigError(f"rouge got {len(predictions)} predictions for {len(references)} "
                               "references; they must pair up and not be empty")
    scores = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred_text, ref_text in zip(predictions, references, strict=True):
        pred, ref = tokenize(pred_text), tokenize(ref_text)
        scores["rouge1"] += rouge_n(pred, ref, 1)
        scores["rouge2"] += rouge_n(pred, ref, 2)
        scores["rougeL"] += rouge_l(pred, ref)
    return {k: v / len(predictions) for k, v in scores.items()}


# --- accumulators (MindSpore's Metric protocol) -----------------------------------------------

class PerplexityMetric:
    """Accumulates token NLL over batches: update(logits, labels) or update_loss(sum, count)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index
        self.clear()

    def clear(self) -> None:
        self.nll_sum, self.num_tokens = 0.0, 0

    def update(self, logits: np.ndarray, labels: np.ndarray) -> None:
        nll, count = token_nll(logits, labels, self.ignore_index)
        self.update_loss(nll, count)

    def update_loss(self, nll_sum: float, num_tokens: int) -> None:
        self.nll_sum += float(nll_sum)
        self.num_tokens += int(num_tokens)

    def eval(self) -> dict[str, float]:
        return {"perplexity": perplexity(self.nll_sum, self.num_tokens),
                "loss": self.nll_sum / self.num_tokens}


class _PairMetric:
    """Collects (prediction, reference) pairs; `eval` scores them all at once."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.predictions: list = []
        self.references: list = []

    def update(self, predictions: Sequence, references: Sequence) -> None:
        self.predictions.extend(predictions)
        self.references.extend(references)


class AccuracyMetric(_PairMetric):
    def eval(self) -> dict[str, float]:
        return {"accuracy": accuracy(self.predictions, self.references)}


class EmF1Metric(_PairMetric):
    """References are answer lists (or single answers)."""

    def eval(self) -> dict[str, float]:
        answers = [[r] if isinstance(r, str) else list(r) for r in self.references]
        return em_f1(self.predictions, answers)


class BleuRougeMetric(_PairMetric):
    """BLEU-4 and ROUGE-1/2/L over generated text (MindFormers' ADGENMetric reports these)."""

    def __init__(self, tokenize: Callable[[str], list[str]] = rouge_tokenize) -> None:
        self.tokenize = tokenize
        super().__init__()

    def eval(self) -> dict[str, float]:
        hyps = [self.tokenize(p) for p in self.predictions]
        refs = [[self.tokenize(r)] for r in self.references]
        out = {"bleu4": bleu(hyps, refs)}
        out.update(rouge(self.predictions, self.references, self.tokenize))
        return out


METRICS: dict[str, type] = {
    "PerplexityMetric": PerplexityMetric,
    "Accuracy": AccuracyMetric,
    "EmF1Metric": EmF1Metric,
    "ADGENMetric": BleuRougeMetric,
}
"""Run-YAML `metric.type` -> accumulator class."""


def build_metric(type_name: str, **kwargs) -> object:
    """The accumulator for a run YAML's `metric: {type: ...}`; unknown names list the allowed."""
    if type_name not in METRICS:
        raise TrainConfigError(f"metric.type = {type_name!r}; allowed: {', '.join(METRICS)}")
    return METRICS[type_name](**kwargs)
