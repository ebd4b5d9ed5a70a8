"""A task's eval metrics from the model's outputs on the host (no MindSpore): accuracy for
classifiers, seqeval-style entity F1 for token classification, SQuAD EM/F1 for question
answering, masked-token accuracy for fill_mask, corpus BLEU for translation, retrieval accuracy
in the batch for CLIP.

    scorer = TaskScorer(task, dataset)
    scorer.add(outputs, rows, indices)      # one eval batch: the output object, its columns
    scorer.result()                          # {"accuracy": 0.93, ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mf_train.metrics import IGNORE_INDEX, bleu, em_f1, entity_f1

MAX_ANSWER_TOKENS = 30  # the longest span searched (Hugging Face's QA postprocessing default)


class TaskScorer:
    def __init__(self, task: Any, references: list[Any], class_names: list[str] | None = None):
        self.task, self.references, self.names = task, references, class_names
        self.correct = self.total = 0
        self.gold: list[Any] = []
        self.guess: list[Any] = []
        self.image_hits = self.text_hits = 0

    def add(self, outputs: Any, rows: dict[str, np.ndarray], indices: np.ndarray) -> None:
        name = self.task.name
        if name in ("text_classification", "image_classification"):
            self._count(np.argmax(_np(outputs.logits), -1), rows["labels"])
        elif name in ("fill_mask", "translation"):
            self._count(np.argmax(_np(outputs.logits), -1), rows["labels"])
        elif name == "token_classification":
            predicted = np.argmax(_np(outputs.logits), -1)
            self._count(predicted, rows["labels"])
            for row, i in zip(predicted, indices, strict=True):
                ref = self.references[i]
                self.gold.append(ref["tags"])
                self.guess.append([self.names[int(row[p])] for p in ref["positions"]])
        elif name == "question_answering":
            for start, end, i in zip(_np(outputs.start_logits), _np(outputs.end_logits), indices,
                                     strict=True):
                ref = self.references[i]
                self.guess.append(best_span_text(start, end, ref))
                self.gold.append(ref["answers"])
        elif name == "contrastive_language_image_pretrain":
            logits = _np(outputs.logits_per_image)  # (I, T): caption i belongs to image i
            n = len(indices)
            self.image_hits += int((np.argmax(logits[:n], 1) == np.arange(n)).sum())
            self.text_hits += int((np.argmax(logits.T[:n], 1) == np.arange(n)).sum())
            self.total += n

    def _count(self, predicted: np.ndarray, labels: np.ndarray) -> None:
        scored = labels != IGNORE_INDEX
        self.correct += int((predicted[scored] == labels[scored]).sum())
        self.total += int(scored.sum())

    def add_generated(self, texts: list[str], indices: np.ndarray) -> None:
        """Translations generated for the examples `indices` (BLEU against their targets)."""
        self.guess += texts
        self.gold += [[self.references[i]] for i in indices]

    def result(self) -> dict[str, float]:
        name = self.task.name
        out: dict[str, float] = {}
        if name == "contrastive_language_image_pretrain":
            return {"image_to_text_accuracy": self.image_hits / max(self.total, 1),
                    "text_to_image_accuracy": self.text_hits / max(self.total, 1)}
        if name == "token_classification":
            out.update(entity_f1(self.gold, self.guess))
        if name == "question_answering":
            return em_f1(self.guess, self.gold)
        if name == "translation" and self.guess:
            out["bleu"] = bleu(self.guess, self.gold)
        if self.total:
            out["accuracy"] = self.correct / self.total
        return out


def best_span_text(start: np.ndarray, end: np.ndarray, ref: dict[str, Any]) -> str:
    """The context words of the highest start + end score over spans inside the context, at
    most MAX_ANSWER_TOKENS long (Hugging Face's postprocessing, one window)."""
    token_word = ref["token_word"]
    context = [t for t, w in enumerate(token_word) if w >= 0]
    if not context:
        return ""
    lo, hi = context[0], context[-1]
    s = start[lo:hi + 1]
    e = end[lo:hi + 1]
    # score[i, j] = s[i] + e[j] for i <= j < i + MAX
    score = s[:, None] + e[None, :]
    n = len(s)
    allowed = np.triu(np.ones((n, n), bool)) & ~np.triu(np.ones((n, n), bool), MAX_ANSWER_TOKENS)
    score = np.where(allowed, score, -np.inf)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    words = ref["words"]
    return " ".join(words[token_word[lo + i]:token_word[lo + j] + 1])


def _np(value: Any) -> np.ndarray:
    return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
