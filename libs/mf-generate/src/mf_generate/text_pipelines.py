"""The pipelines of BERT's and T5's tasks, with Hugging Face's output shapes (MindFormers' for
translation), checked against transformers' own pipelines on the same weights:

    fill_mask             "Paris is the [MASK] of France." -> [{score, token, token_str, sequence}]
    text_classification   "text" | {"text", "text_pair"} | (text, text_pair) -> [{label, score}]
    token_classification  "text" -> [{entity_group, score, word, start, end}] (HF "simple")
    question_answering    question=..., context=... -> {score, start, end, answer}
    translation           "translate English to German: ..." -> [{translation_text: [text]}]
    text2text_generation  "summarize: ..." -> [{generated_text: text}]

The encoder tasks run the model's compiled forward (`forward_function`) over right-padded
batches bucketed like generation's prompts (batch 1, 2, 4, 8, ...; length 16, 32, 64, ...), so
a new input length of a known bucket does not compile again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mf_generate import buckets
from mf_generate.config import GenerationConfig
from mf_generate.errors import GenerateConfigError
from mf_generate.pipelines import TaskSettings, TextGenerationPipeline, check_vocabulary


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class EncoderPipeline(TaskSettings):
    """Tokenize, run the model's compiled forward over a padded batch, post-process."""

    auto_class = ""  # the mf_models Auto class that loads this task's model

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key in ("top_k", "max_answer_len", "doc_stride", "max_seq_len") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GenerateConfigError(f"{key}={value!r} must be an integer >= 1")

    @classmethod
    def load_model(cls, source):
        import mf_models

        return getattr(mf_models, cls.auto_class).from_pretrained(source)

    def __init__(self, model, tokenizer, **settings: Any):
        import mf_models

        self.check_settings(settings)
        classes = getattr(mf_models, self.auto_class).classes
        if type(model).__name__ not in classes.values():
            raise GenerateConfigError(
                f"the {self.task} pipeline needs a {' or '.join(classes.values())}, got "
                f"{type(model).__name__}")
        check_vocabulary(tokenizer, model.config.vocab_size)
        self.model, self.tokenizer = model, tokenizer
        self.defaults = {**self.settings, **settings}
        limit = getattr(tokenizer, "model_max_length", None) or model.config.max_positions
        self.max_length = min(model.config.max_positions, limit)

    def encode(self, text: str, pair: str | None = None, truncation: bool = False) -> dict:
        encoded = self.tokenizer(text, pair, truncation="longest_first" if truncation else None,
                                 max_length=self.max_length if truncation else None)
        length = len(encoded["input_ids"])
        if length > self.max_length:
            raise GenerateConfigError(
                f"the input has {length} tokens; the model takes at most {self.max_length} "
                f"(its seq_length / the tokenizer's model_max_length): shorten it or pass "
                "truncation=True")
        return encoded

    def forward(self, rows: list[dict]) -> list[dict[str, np.ndarray]]:
        """The model's outputs (numpy, float32) for each row."""
        lengths = [len(r["input_ids"]) for r in rows]
        width = buckets.prompt_bucket(max(lengths), self.model.config.max_positions)
        count = buckets.batch_bucket(len(rows))
        arrays = {name: np.zeros((count, width), np.int32)
                  for name in ("input_ids", "attention_mask", "token_type_ids")}
        pad = self.tokenizer.pad_token_id or 0
        arrays["input_ids"][:] = pad
        for i in range(count):  # rows beyond the batch repeat the last one
            row = rows[min(i, len(rows) - 1)]
            n = len(row["input_ids"])
            arrays["input_ids"][i, :n] = row["input_ids"]
            arrays["attention_mask"][i, :n] = 1
            arrays["token_type_ids"][i, :n] = row.get("token_type_ids") or [0] * n
        out = self.model.forward_function()(arrays["input_ids"], arrays["attention_mask"],
                                            arrays["token_type_ids"])
        fields = {name: value.asnumpy() for name, value in out.items()}
        # Per-token outputs keep their padded positions; callers index real tokens only.
        return [{name: value[i] for name, value in fields.items()} for i in range(len(rows))]


def _texts(inputs, what: str) -> tuple[list, bool]:
    """(items, batched): one input or a list of them."""
    if isinstance(inputs, list):
        if not inputs:
            raise GenerateConfigError(f"the {what} pipeline got an empty list")
        return inputs, True
    return [inputs], False


def _check_str(text: Any, task: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise GenerateConfigError(f"the {task} pipeline takes text (a non-empty str), got "
                                  f"{type(text).__name__} {str(text)[:40]!r}")
    return text


class FillMaskPipeline(EncoderPipeline):
    """The top_k tokens for each [MASK] (Hugging Face's fill-mask): one mask -> a list of
    candidates, several masks -> a list per mask, a list of texts -> a list of those."""

    task = "fill_mask"
    auto_class = "AutoModelForMaskedLM"
    settings = {"top_k": 5, "truncation": False}

    def __call__(self, inputs: str | list[str], **options: Any):
        opts = self.options(options)
        items, batched = _texts(inputs, self.task)
        mask_id = self.tokenizer.mask_token_id
        rows = []
        for text in items:
            row = self.encode(_check_str(text, self.task), truncation=opts["truncation"])
            if mask_id not in row["input_ids"]:
                raise GenerateConfigError(
                    f"no {self.tokenizer.mask_token} token in {text[:60]!r}: fill_mask "
                    f"predicts the {self.tokenizer.mask_token} positions of its input")
            rows.append(row)
        results = [self._candidates(row, out["logits"], opts["top_k"])
                   for row, out in zip(rows, self.forward(rows), strict=True)]
        return results if batched else results[0]

    def _candidates(self, row: dict, logits: np.ndarray, top_k: int):
        ids = np.asarray(row["input_ids"])
        masked = np.flatnonzero(ids == self.tokenizer.mask_token_id)
        single = len(masked) == 1
        top_k = min(top_k, logits.shape[-1])
        out = []
        for index in masked:
            probs = softmax(logits[index].astype(np.float32))
            best = np.argsort(-probs, kind="stable")[:top_k]
            candidates = []
            for token in best:
                filled = ids.copy()
                filled[index] = token
                filled = filled[filled != self.tokenizer.pad_token_id]
                candidates.append({
                    "score": float(probs[token]), "token": int(token),
                    "token_str": self.tokenizer.decode([int(token)]),
                    "sequence": self.tokenizer.decode(filled, skip_special_tokens=single)})
            out.append(candidates)
        return out[0] if single else out


FUNCTIONS = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}


class TextClassificationPipeline(EncoderPipeline):
    """A label and score per text or text pair (Hugging Face's text-classification).

    Inputs: "text", {"text": a, "text_pair": b} or (a, b), or a list of them. Without top_k
    the best label of each input ({label, score}; a single str gives a one-item list, as
    transformers does); with top_k the top_k labels (None: all), best first.
    """

    task = "text_classification"
    auto_class = "AutoModelForSequenceClassification"
    settings = {"top_k": "", "function_to_apply": None, "truncation": False}

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key == "function_to_apply" and value is not None and value not in FUNCTIONS:
            raise GenerateConfigError(f"function_to_apply={value!r} is not one of "
                                      f"{', '.join(FUNCTIONS)}")
        if key != "top_k" or value != "":
            super().check_value(key, value)

    def __call__(self, inputs, **options: Any):
        opts = self.options(options)
        items, batched = _texts(inputs, self.task)
        if (batched and len(items) == 1 and isinstance(items[0], list)
                and len(items[0]) == 2):  # transformers' legacy [[text, text_pair]]
            items, batched = [tuple(items[0])], False
        pairs = [self._pair(item) for item in items]
        rows = [self.encode(a, b, truncation=opts["truncation"]) for a, b in pairs]
        labels = self.model.config.labels
        function = FUNCTIONS[opts["function_to_apply"] or self._default_function()]
        results = []
        for out in self.forward(rows):
            scores = function(out["logits"].astype(np.float32))
            ranked = [{"label": labels[i], "score": float(scores[i])}
                      for i in np.argsort(-scores, kind="stable")]
            if opts["top_k"] == "":
                results.append(ranked[0])
            else:
                results.append(ranked if opts["top_k"] is None else ranked[:opts["top_k"]])
        if batched:
            return results
        return [results[0]] if opts["top_k"] == "" and isinstance(items[0], str) else results[0]

    def _default_function(self) -> str:
        """transformers' rule: sigmoid for multi-label or a single output, else softmax."""
        config = self.model.config
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        if config.problem_type == "regression":
            return "none"
        return "softmax"

    def _pair(self, item) -> tuple[str, str | None]:
        if isinstance(item, str):
            return _check_str(item, self.task), None
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if unknown:
                raise GenerateConfigError(f"a text pair is {{'text': ..., 'text_pair': ...}}; "
                                          f"got the key {sorted(unknown)[0]!r}")
            text, pair = item.get("text"), item.get("text_pair")
        elif isinstance(item, tuple):
            if len(item) != 2:
                raise GenerateConfigError(f"a text pair is (text, text_pair); got a tuple of "
                                          f"{len(item)}")
            text, pair = item
        else:
            raise GenerateConfigError(f"text_classification takes a str, a (text, text_pair) "
                                      f"tuple or a {{'text', 'text_pair'}} dict, got "
                                      f"{type(item).__name__}")
        _check_str(text, self.task)
        if not isinstance(pair, str) or not pair.strip():
            raise GenerateConfigError(f"the text pair {text[:40]!r} is missing its second part "
                                      "(text_pair): give both texts, or the first alone as a str")
        return text, pair


class TokenClassificationPipeline(EncoderPipeline):
    """Entities of a text (Hugging Face's token-classification). aggregation_strategy
    "simple" (the default here; transformers' default is "none") merges the tokens of one
    entity, B-/I- tags and word pieces alike, into {entity_group, score (mean), word, start,
    end}; "none" gives every token {entity, score, index, word, start, end}. Tokens tagged "O"
    are dropped. start/end index the characters of the text."""

    task = "token_classification"
    auto_class = "AutoModelForTokenClassification"
    settings = {"aggregation_strategy": "simple", "ignore_labels": ("O",)}

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        if key == "aggregation_strategy" and value not in ("simple", "none"):
            raise GenerateConfigError(f"aggregation_strategy={value!r} is not one of simple, "
                                      "none")

    def __call__(self, inputs: str | list[str], **options: Any):
        opts = self.options(options)
        items, batched = _texts(inputs, self.task)
        if not hasattr(self.tokenizer, "tokenize_with_offsets"):
            raise GenerateConfigError(f"token_classification needs the character offsets of "
                                      f"each token, which {type(self.tokenizer).__name__} "
                                      "does not give (BertTokenizer does)")
        tokenized = [self.tokenizer.tokenize_with_offsets(_check_str(t, self.task))
                     for t in items]
        rows = []
        for text, tokens in zip(items, tokenized, strict=True):
            ids = self.tokenizer.convert_tokens_to_ids([t[0] for t in tokens])
            row = {"input_ids": self.tokenizer.build_inputs_with_special_tokens(ids)}
            if len(row["input_ids"]) > self.max_length:
                raise GenerateConfigError(
                    f"the text {text[:30]!r} has {len(row['input_ids'])} tokens; the model "
                    f"takes at most {self.max_length}: split it")
            rows.append(row)
        results = []
        for text, tokens, out in zip(items, tokenized, self.forward(rows), strict=True):
            entities = self._entities(text, tokens, out["logits"][1:len(tokens) + 1])
            if opts["aggregation_strategy"] == "simple":
                entities = self._group(entities)
            key = "entity_group" if opts["aggregation_strategy"] == "simple" else "entity"
            results.append([e for e in entities if e[key] not in opts["ignore_labels"]])
        return results if batched else results[0]

    def _entities(self, text: str, tokens, logits: np.ndarray) -> list[dict]:
        labels = self.model.config.labels
        scores = softmax(logits.astype(np.float32))
        out = []
        for i, ((token, start, end, _), row) in enumerate(zip(tokens, scores, strict=True)):
            best = int(row.argmax())
            word = text[start:end] if token == self.tokenizer.unk_token else token
            out.append({"entity": labels[best], "score": float(row[best]), "index": i + 1,
                        "word": word, "start": start, "end": end})
        return out

    def _group(self, entities: list[dict]) -> list[dict]:
        """transformers' group_entities: a token joins the previous group when it has the same
        type and is not a B- tag; a tag without B-/I- counts as I-."""
        groups: list[list[dict]] = []
        for entity in entities:
            bi, tag = _tag(entity["entity"])
            if groups and tag == _tag(groups[-1][-1]["entity"])[1] and bi != "B":
                groups[-1].append(entity)
            else:
                groups.append([entity])
        return [{"entity_group": group[0]["entity"].split("-", 1)[-1],
                 "score": float(np.nanmean([e["score"] for e in group])),
                 "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in group]),
                 "start": group[0]["start"], "end": group[-1]["end"]} for group in groups]


def _tag(label: str) -> tuple[str, str]:
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


class QuestionAnsweringPipeline(EncoderPipeline):
    """The answer span of a question in a context (Hugging Face's question-answering):
    {score, start, end, answer}, start/end indexing the context's characters (whole words).

    A context longer than the window (max_seq_len tokens with the question) is read in
    windows overlapping by doc_stride tokens, as transformers does; the best span of any
    window wins. top_k > 1 gives a list, best first.
    """

    task = "question_answering"
    auto_class = "AutoModelForQuestionAnswering"
    # transformers' defaults: windows of min(384, model_max_length) tokens, overlapping by
    # min(128, half a window) unless doc_stride is given.
    settings = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": 384}

    def __call__(self, inputs: Any = None, *, question: Any = None, context: Any = None,
                 **options: Any):
        opts = self.options(options)
        if inputs is None:
            items, batched = [{"question": question, "context": context}], False
        else:
            items, batched = _texts(inputs, self.task)
        results = [self._answer(self._example(item), opts) for item in items]
        return results if batched else results[0]

    def _example(self, item) -> tuple[str, str]:
        if not isinstance(item, dict) or set(item) - {"question", "context"}:
            raise GenerateConfigError("question_answering takes question=..., context=... (or "
                                      "a {'question', 'context'} dict, or a list of them)")
        question, context = item.get("question"), item.get("context")
        if not isinstance(question, str) or not question.strip():
            raise GenerateConfigError("question_answering needs a question (a non-empty str)")
        if not isinstance(context, str) or not context.strip():
            raise GenerateConfigError(f"the question {question[:40]!r} has no context to find "
                                      "its answer in: pass context=...")
        return question, context

    def _answer(self, example: tuple[str, str], opts: dict):
        question, context = example
        if not hasattr(self.tokenizer, "tokenize_with_offsets"):
            raise GenerateConfigError(f"question_answering needs the character offsets of "
                                      f"each token, which {type(self.tokenizer).__name__} "
                                      "does not give (BertTokenizer does)")
        max_len = min(opts["max_seq_len"], self.max_length)
        stride = opts["doc_stride"] or min(128, max_len // 2)
        question_ids = self.tokenizer.encode(question, add_special_tokens=False)
        tokens = self.tokenizer.tokenize_with_offsets(context)
        room = max_len - len(question_ids) - self.tokenizer.num_special_tokens_to_add(True)
        if room <= stride:
            raise GenerateConfigError(
                f"the question has {len(question_ids)} tokens: with the context's windows of "
                f"{max_len} tokens (max_seq_len) and doc_stride {stride} it leaves no room for "
                "the context; shorten the question")
        context_ids = self.tokenizer.convert_tokens_to_ids([t[0] for t in tokens])
        windows = _windows(len(context_ids), room, stride)
        rows, offsets = [], []
        for start, stop in windows:
            ids = self.tokenizer.build_inputs_with_special_tokens(question_ids,
                                                                  context_ids[start:stop])
            types = self.tokenizer.create_token_type_ids_from_sequences(
                question_ids, context_ids[start:stop])
            rows.append({"input_ids": ids, "token_type_ids": types})
            first = len(ids) - (stop - start) - 1  # [CLS] question [SEP] | context [SEP]
            offsets.append((first, tokens[start:stop]))
        # transformers' postprocess: each window's best spans (2 top_k + 10 of them, some
        # vanish when aligned to words), one answer per distinct text (case-insensitive)
        # whose score is the sum of its spans', then the top_k.
        answers: dict[str, dict] = {}
        for out, (first, window) in zip(self.forward(rows), offsets, strict=True):
            for span in self._spans(out["start_logits"], out["end_logits"], first, window,
                                    context, opts["max_answer_len"], 2 * opts["top_k"] + 10):
                key = span["answer"].lower()
                if key in answers:
                    answers[key]["score"] += span["score"]
                else:
                    answers[key] = span
        best = sorted(answers.values(), key=lambda a: -a["score"])[:opts["top_k"]]
        return best[0] if len(best) == 1 else best

    def _spans(self, start_logits, end_logits, first: int, window, context: str,
               max_answer_len: int, count: int) -> list[dict]:
        """transformers' select_starts_ends + decode_spans for one window: softmax over the
        context tokens and [CLS] (question and [SEP] masked), [CLS] then zeroed; the `count`
        best start * end with start <= end < start + max_answer_len, as character spans of
        whole words."""
        length = len(start_logits)
        allowed = np.zeros(length, bool)
        allowed[first:first + len(window)] = True
        keep = allowed.copy()
        keep[0] = True  # [CLS] stays in the softmax (the no-answer position)
        start = softmax(np.where(keep, start_logits, -10000.0).astype(np.float32))
        end = softmax(np.where(keep, end_logits, -10000.0).astype(np.float32))
        start[0] = end[0] = 0.0
        outer = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
        flat = outer.ravel()
        best = np.argsort(-flat, kind="stable")[:count]
        spans = []
        for s, e in zip(*np.unravel_index(best, outer.shape), strict=True):
            if not (allowed[s] and allowed[e]):
                continue
            words = [window[i - first][3] for i in (s, e)]
            begin = min(t[1] for t in window if t[3] == words[0])  # aligned to whole words
            stop = max(t[2] for t in window if t[3] == words[1])
            spans.append({"score": float(outer[s, e]), "start": begin, "end": stop,
                          "answer": context[begin:stop]})
        return spans


def _windows(length: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Windows of `size` tokens over `length`, each starting size - stride after the last, the
    last one reaching the end (the tokenizers library's overflow rule)."""
    out = []
    for start in range(0, max(length, 1), size - stride):
        out.append((start, min(start + size, length)))
        if start + size >= length:
            break
    return out


class Seq2SeqPipeline(TextGenerationPipeline):
    """Text in, generated text out with an encoder-decoder (T5)."""

    task = "text2text_generation"
    own_settings: dict[str, Any] = {}
    # MindFormers' T5Config: max_decode_length 128 (transformers' generic default, 20, cuts
    # most translations short).
    default_max_length = 128

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        GenerationConfig().replace(**{k: v for k, v in settings.items()
                                      if k not in cls.own_settings})

    @staticmethod
    def load_model(source):
        from mf_models import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(source)

    def __init__(self, model, tokenizer, **settings: Any):
        if not getattr(model, "is_encoder_decoder", False):
            raise GenerateConfigError(f"the {self.task} pipeline needs an encoder-decoder "
                                      f"(T5ForConditionalGeneration), got {type(model).__name__}")
        own = {k: settings.pop(k) for k in list(settings) if k in self.own_settings}
        self.own = {**self.own_settings, **own}
        if "max_length" not in settings and "max_new_tokens" not in settings:
            settings["max_length"] = self.default_max_length
        super().__init__(model, tokenizer, **settings)

    def _result(self, out, row: int) -> dict[str, Any]:
        return {"generated_text": self.tokenizer.decode(out.new_token_ids(row),
                                                        skip_special_tokens=True)}


class Text2TextGenerationPipeline(Seq2SeqPipeline):
    """Hugging Face's text2text-generation: [{'generated_text': text}] per input."""


LANGUAGES = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}


class TranslationPipeline(Seq2SeqPipeline):
    """MindFormers' translation: [{'translation_text': [text]}] per input. With src_lang and
    tgt_lang (pipeline("translation_en_to_de")) the input gets T5's task prefix
    "translate English to German: "; without them the text carries its own prefix."""

    task = "translation"
    own_settings = {"src_lang": None, "tgt_lang": None}

    def __init__(self, model, tokenizer, **settings: Any):
        super().__init__(model, tokenizer, **settings)
        languages = [self.own[k] for k in ("src_lang", "tgt_lang")]
        if any(languages) and not all(lang in LANGUAGES for lang in languages):
            raise GenerateConfigError(f"src_lang/tgt_lang {languages} must be among T5's "
                                      f"{', '.join(LANGUAGES)} (or omitted, the prefix in the "
                                      "text)")
        self.prefix = (f"translate {LANGUAGES[languages[0]]} to {LANGUAGES[languages[1]]}: "
                       if all(languages) else "")

    def _prepare(self, texts: list[str]) -> list[str]:
        return [self.prefix + text for text in texts]

    def _result(self, out, row: int) -> dict[str, Any]:
        return {"translation_text": [super()._result(out, row)["generated_text"]]}
