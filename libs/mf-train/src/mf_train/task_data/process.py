"""Records -> a task's columns, with the model's tokenizer or image processor.

    dataset = process_records(task, records, tokenizer, model_config, seq_length, seed)

Every text task frames its sequences with the tokenizer's own special tokens
(`build_inputs_with_special_tokens`: [CLS] a [SEP] b [SEP] for BERT) and pads to seq_length, so
each batch has one shape (one compile). Labels follow Hugging Face's conventions: -100 where
nothing is scored (padding, the later pieces of a word, unmasked tokens). Bad input is a
one-line error naming the example (`file:line` or `train_dataset[3]`) and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mf_train.errors import TrainConfigError
from mf_train.task_data.columns import ColumnDataset
from mf_train.task_data.records import Records
from mf_train.tasks import Task

IGNORE = -100  # Hugging Face's ignore_index: a position the loss skips
MLM_PROBABILITY = 0.15  # BERT's (Devlin et al. 2019, section 3.1): 80% [MASK], 10% random, 10% kept


def process_records(task: Task, records: Records, tokenizer: Any, model_config: Any,
                    seq_length: int, seed: int = 0) -> ColumnDataset:
    """The task's columns of every record (see tasks.py for the columns each task reads)."""
    if not records.rows:
        raise TrainConfigError(f"dataset {records.source} holds no examples")
    builder = _BUILDERS[task.name]
    context = _Context(task, records, tokenizer, model_config, seq_length, seed)
    return builder(context)


class _Context:
    """What a builder needs, and the one-line errors it raises."""

    def __init__(self, task: Task, records: Records, tokenizer: Any, model_config: Any,
                 seq_length: int, seed: int):
        self.task, self.records, self.tokenizer = task, records, tokenizer
        self.config, self.seq_length = model_config, seq_length
        self.rng = np.random.default_rng(seed)
        if tokenizer is None and task.name not in ("image_classification",
                                                    "masked_image_modeling"):
            raise TrainConfigError(f"task {task.name} needs a tokenizer: processor.tokenizer in "
                                   "the run YAML, or Trainer(tokenizer=...)")

    def where(self, number: int) -> str:
        return self.records.rows[number].get("_where") or f"{self.records.source}[{number}]"

    def field(self, number: int, name: str, kinds: type | tuple[type, ...] = str) -> Any:
        row = self.records.rows[number]
        if name not in row or row[name] is None:
            given = ", ".join(k for k in row if k != "_where") or "none"
            raise TrainConfigError(f"{self.where(number)}: no '{name}' column (task "
                                   f"{self.task.name} reads {self.task.columns}; this example "
                                   f"has {given})")
        value = row[name]
        if not isinstance(value, kinds):
            raise TrainConfigError(f"{self.where(number)}: '{name}' is "
                                   f"{type(value).__name__}, expected {_kind_names(kinds)}")
        return value

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def frame(self, ids: list[int], pair: list[int] | None = None,
              ) -> tuple[list[int], list[int], int, int]:
        """(input_ids, token_type_ids, offset of ids, offset of pair) of a framed sequence,
        truncated longest-first to seq_length."""
        room = self.seq_length - self.tokenizer.num_special_tokens_to_add(pair is not None)
        ids, pair = list(ids), None if pair is None else list(pair)
        while len(ids) + len(pair or []) > max(room, 0):
            if pair and len(pair) >= len(ids):
                pair.pop()
            elif ids:
                ids.pop()
            else:
                break
        framed = self.tokenizer.build_inputs_with_special_tokens(ids, pair)
        types = self.tokenizer.create_token_type_ids_from_sequences(ids, pair)
        probe = self.tokenizer.build_inputs_with_special_tokens([-7], None if pair is None
                                                                else [-8])
        # the probe's one-token first sequence stands for len(ids) tokens
        pair_at = probe.index(-8) - 1 + len(ids) if pair is not None else -1
        return framed, types, probe.index(-7), pair_at

    def pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return int(pad) if pad is not None else int(getattr(self.config, "pad_token_id", 0) or 0)

    def label_id(self, number: int, value: Any, names: list[str], what: str = "label") -> int:
        """A class id from an int or a class name; outside the head's classes is an error."""
        if isinstance(value, str) and value in names:
            return names.index(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
                and 0 <= value < len(names):
            return int(value)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise TrainConfigError(f"{self.where(number)}: {what} {value!r} is outside the model's "
                               f"{len(names)} classes [0, {len(names)}) ({shown}); set "
                               "model.model_config.num_labels / id2label to the data's classes")

    def text_columns(self, rows: list[tuple[list[int], list[int]]], length: int | None = None,
                     ) -> dict[str, np.ndarray]:
        """input_ids, attention_mask, token_type_ids (N, length or seq_length), padded."""
        n, length = len(rows), length or self.seq_length
        ids = np.full((n, length), self.pad_id(), np.int32)
        mask = np.zeros((n, length), np.int32)
        types = np.zeros((n, length), np.int32)
        for i, (framed, segment) in enumerate(rows):
            ids[i, :len(framed)] = framed
            mask[i, :len(framed)] = 1
            types[i, :len(segment)] = segment
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join({"str": "text", "list": "a list"}.get(k.__name__, k.__name__)
                       for k in kinds)


def class_names(config: Any) -> list[str]:
    labels = getattr(config, "labels", None)
    return list(labels) if labels else [f"LABEL_{i}" for i in range(config.num_labels)]


# ---- text --------------------------------------------------------------------------------------
def _text_classification(c: _Context) -> ColumnDataset:
    rows, labels = [], []
    names = class_names(c.config)
    paired = any("text_pair" in r for r in c.records.rows)
    for i in range(len(c.records.rows)):
        text = c.field(i, "text")
        pair = c.encode(c.field(i, "text_pair")) if paired else None
        framed, types, _, _ = c.frame(c.encode(text), pair)
        rows.append((framed, types))
        labels.append(c.label_id(i, c.field(i, "label", (int, str, np.integer)), names))
    columns = c.text_columns(rows)
    columns["labels"] = np.asarray(labels, np.int32)
    return ColumnDataset(columns, c.records.source, c.seq_length)


def _token_classification(c: _Context) -> ColumnDataset:
    """Each word's tag on its first piece, -100 on the rest (Hugging Face's token
    classification recipe); the word tags are kept for entity-level F1."""
    names = class_names(c.config)
    rows, labels, references = [], [], []
    for i in range(len(c.records.rows)):
        words, tags = c.field(i, "tokens", list), c.field(i, "tags", list)
        if len(words) != len(tags):
            raise TrainConfigError(f"{c.where(i)}: {len(words)} tokens but {len(tags)} tags; "
                                   "give one tag per token")
        tag_ids = [c.label_id(i, t, names, "tag") for t in tags]
        pieces, firsts = [], []
        for word in words:
            firsts.append(len(pieces))
            pieces += c.encode(str(word)) or [c.tokenizer.unk_token_id]
        framed, types, offset, _ = c.frame(pieces)
        kept = _body(framed, c)  # the pieces seq_length left
        row = np.full(c.seq_length, IGNORE, np.int32)
        positions = []
        for first, tag in zip(firsts, tag_ids, strict=True):
            if first < kept:
                row[offset + first] = tag
                positions.append(offset + first)
        rows.append((framed, types))
        labels.append(row)
        # the tags of the words that fit, scored at their first piece
        references.append({"tags": [names[t] for t in tag_ids[:len(positions)]],
                           "positions": positions})
    columns = c.text_columns(rows)
    columns["labels"] = np.stack(labels)
    return ColumnDataset(columns, c.records.source, c.seq_length, references)


def _answers(c: _Context, i: int, context: str) -> list[tuple[str, int]]:
    """(text, character start) of each answer: SQuAD's {"text": [...], "answer_start": [...]},
    a list of {"text", "answer_start"}, or one "answer" string found in the context."""
    row = c.records.rows[i]
    if "answers" in row:
        value = row["answers"]
        if isinstance(value, dict):
            pairs = list(zip(value.get("text", []), value.get("answer_start", []), strict=False))
        elif isinstance(value, list):
            pairs = [(a.get("text"), a.get("answer_start")) for a in value if isinstance(a, dict)]
        else:
            pairs = []
    elif "answer" in row:
        text = str(row["answer"])
        pairs = [(text, context.find(text))]
    else:
        pairs = []
    if not pairs:
        raise TrainConfigError(f"{c.where(i)}: no answer (task question_answering reads "
                               "answers: {\"text\": [...], \"answer_start\": [...]} or answer)")
    for text, start in pairs:
        if not isinstance(text, str) or not isinstance(start, int) or start < 0 or \
                context[start:start + len(text)] != text:
            raise TrainConfigError(f"{c.where(i)}: answer {text!r} at {start!r} is not in the "
                                   "context at that character")
    return pairs


def _question_answering(c: _Context) -> ColumnDataset:
    """[CLS] question [SEP] context [SEP]; the answer's first and last context tokens are the
    targets. The context is split on whitespace and each word tokenized, so a predicted span
    maps back to context words (references) for SQuAD's EM and F1."""
    rows, starts, ends, references = [], [], [], []
    room = c.seq_length - c.tokenizer.num_special_tokens_to_add(True)
    for i in range(len(c.records.rows)):
        question, context = c.field(i, "question"), c.field(i, "context")
        answers = _answers(c, i, context)
        q_ids = c.encode(question)
        if len(q_ids) >= room:
            raise TrainConfigError(
                f"{c.where(i)}: the question is {len(q_ids)} tokens, which leaves no room for "
                f"the context in seq_length({c.seq_length}); shorten it or raise seq_length")
        words, word_starts, pieces, token_word = [], [], [], []
        at = 0
        for word in context.split():
            at = context.index(word, at)
            word_starts.append(at)
            words.append(word)
            at += len(word)
        for w, word in enumerate(words):
            piece = c.encode(word) or [c.tokenizer.unk_token_id]
            pieces += piece
            token_word += [w] * len(piece)
        kept = room - len(q_ids)
        framed, types, _, offset = c.frame(q_ids, pieces[:kept])
        text, char = answers[0]
        first = max(w for w, s in enumerate(word_starts) if s <= char)
        last = max(w for w, s in enumerate(word_starts) if s < char + len(text))
        in_window = [t for t, w in enumerate(token_word[:kept]) if first <= w <= last]
        # an answer cut off by seq_length points at [CLS] (position 0), as Hugging Face does
        starts.append(offset + in_window[0] if in_window else 0)
        ends.append(offset + in_window[-1] if in_window else 0)
        rows.append((framed, types))
        references.append({"answers": [a for a, _ in answers], "words": words,
                           "token_word": [-1] * offset + token_word[:kept], "offset": offset})
    columns = c.text_columns(rows)
    columns["start_positions"] = np.asarray(starts, np.int32)
    columns["end_positions"] = np.asarray(ends, np.int32)
    return ColumnDataset(columns, c.records.source, c.seq_length, references)


def _fill_mask(c: _Context) -> ColumnDataset:
    """BERT's masking, drawn once per example from the run's seed (static masking, as BERT's
    create_pretraining_data.py writes it): 15% of the tokens that are not special, of which
    80% become [MASK], 10% a random token, 10% stay; labels hold the originals there."""
    mask_id = getattr(c.tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise TrainConfigError("task fill_mask needs a tokenizer with a mask token ([MASK])")
    rows, labels = [], []
    vocab = int(c.config.vocab_size)
    for i in range(len(c.records.rows)):
        framed, types, offset, _ = c.frame(c.encode(c.field(i, "text")))
        ids = np.asarray(framed, np.int32)
        row = np.full(c.seq_length, IGNORE, np.int32)
        candidates = np.arange(offset, offset + _body(framed, c))
        if len(candidates):
            count = max(1, int(round(len(candidates) * MLM_PROBABILITY)))
            chosen = c.rng.choice(candidates, size=min(count, len(candidates)), replace=False)
            row[chosen] = ids[chosen]
            roll = c.rng.random(len(chosen))
            ids[chosen[roll < 0.8]] = mask_id
            random_ones = chosen[(roll >= 0.8) & (roll < 0.9)]
            ids[random_ones] = c.rng.integers(0, vocab, len(random_ones))
        rows.append((ids.tolist(), types))
        labels.append(row)
    columns = c.text_columns(rows)
    columns["labels"] = np.stack(labels)
    return ColumnDataset(columns, c.records.source, c.seq_length)


def _body(framed: list[int], c: _Context) -> int:
    """How many tokens of a framed single sequence are the text (not special tokens)."""
    return len(framed) - c.tokenizer.num_special_tokens_to_add(False)


def _translation(c: _Context) -> ColumnDataset:
    """source -> input_ids; target -> labels (-100 on padding), and the decoder reads the
    labels shifted right behind decoder_start_token_id (T5's rule, done here once)."""
    rows, labels, references = [], [], []
    start = int(getattr(c.config, "decoder_start_token_id", 0))
    for i in range(len(c.records.rows)):
        framed, types, _, _ = c.frame(c.encode(c.field(i, "source")))
        target_text = c.field(i, "target")
        target, _, _, _ = c.frame(c.encode(target_text))
        row = np.full(c.seq_length, IGNORE, np.int32)
        row[:len(target)] = target
        rows.append((framed, types))
        labels.append(row)
        references.append(target_text)
    columns = c.text_columns(rows)
    labels_array = np.stack(labels)
    decoder = np.concatenate([np.full((len(labels), 1), start, np.int32), labels_array[:, :-1]],
                             1)
    decoder_mask = (decoder != IGNORE).astype(np.int32)
    decoder[decoder == IGNORE] = c.pad_id()
    out = {"input_ids": columns["input_ids"], "attention_mask": columns["attention_mask"],
           "decoder_input_ids": decoder, "decoder_attention_mask": decoder_mask,
           "labels": labels_array}
    return ColumnDataset(out, c.records.source, c.seq_length, references)


# ---- images ------------------------------------------------------------------------------------
def image_settings(config: Any) -> tuple[str, int, int]:
    """(processor model type, image size, channels) of an image model's config."""
    vision = getattr(config, "vision_config", config)
    kind = {"mae": "vit_mae"}.get(config.family, config.family)
    return kind, int(vision.image_size), int(vision.num_channels)


def pixel_values(c: _Context) -> np.ndarray:
    """Every record's image (a path, relative to the data file, or an (H, W, C) array or
    nested list) through the family's image processor: (N, C, size, size) float32."""
    from mf_tokenize.errors import TokenizerConfigError
    from mf_tokenize.image_processing import image_processor_for

    kind, size, channels = image_settings(c.config)
    processor = image_processor_for(kind, size)
    out = []
    for i in range(len(c.records.rows)):
        image = c.field(i, "image", (str, list, np.ndarray))
        if isinstance(image, str) and c.records.folder is not None:
            path = c.records.folder / image
            image = str(path if path.exists() else image)
        if isinstance(image, list):
            image = np.asarray(image)
        if isinstance(image, np.ndarray):
            _check_array(c, i, image, channels)
        try:
            pixels = processor(image)["pixel_values"][0]
        except TokenizerConfigError as exc:
            raise TrainConfigError(f"{c.where(i)}: {exc}") from None
        if pixels.shape != (channels, size, size):
            raise TrainConfigError(f"{c.where(i)}: the image came out {pixels.shape}; the model "
                                   f"reads ({channels}, {size}, {size})")
        out.append(pixels)
    return np.stack(out).astype(np.float32)


def _check_array(c: _Context, i: int, image: np.ndarray, channels: int) -> None:
    """An image array is (H, W, C) or (C, H, W) with the model's channels."""
    if not np.issubdtype(image.dtype, np.number):
        raise TrainConfigError(f"{c.where(i)}: image array of dtype {image.dtype}; expected "
                               "numbers (uint8 0..255 or float 0..1)")
    if image.ndim != 3 or channels not in (image.shape[-1], image.shape[0]):
        raise TrainConfigError(f"{c.where(i)}: image array of shape {image.shape}; the model "
                               f"reads images of {channels} channels, (H, W, {channels}) or "
                               f"({channels}, H, W)")


def _image_classification(c: _Context) -> ColumnDataset:
    names = class_names(c.config)
    labels = [c.label_id(i, c.field(i, "label", (int, str, np.integer)), names)
              for i in range(len(c.records.rows))]
    pixels = pixel_values(c)
    return ColumnDataset({"pixel_values": pixels, "labels": np.asarray(labels, np.int32)},
                         c.records.source, _patches(c.config))


def _masked_image_modeling(c: _Context) -> ColumnDataset:
    """pixel_values, and the noise that picks each image's masked patches (the lowest
    (1 - mask_ratio) kept, MAE's random_masking), drawn once per image from the seed."""
    pixels = pixel_values(c)
    noise = c.rng.random((len(pixels), c.config.num_patches), dtype=np.float32)
    return ColumnDataset({"pixel_values": pixels, "noise": noise}, c.records.source,
                         _patches(c.config))


def _contrastive(c: _Context) -> ColumnDataset:
    """Caption i describes image i; the text is padded to the text tower's positions."""
    length = int(c.config.text_config.max_position_embeddings)
    rows = []
    for i in range(len(c.records.rows)):
        ids = c.tokenizer.build_inputs_with_special_tokens(c.encode(c.field(i, "caption")))
        rows.append((ids[:length - 1] + ids[-1:] if len(ids) > length else ids, []))
    text = c.text_columns(rows, length)
    return ColumnDataset({"input_ids": text["input_ids"], "pixel_values": pixel_values(c),
                          "attention_mask": text["attention_mask"]}, c.records.source,
                         length + _patches(c.config))


def _patches(config: Any) -> int:
    vision = getattr(config, "vision_config", config)
    return (int(vision.image_size) // int(vision.patch_size)) ** 2


_BUILDERS: dict[str, Callable[[_Context], ColumnDataset]] = {
    "text_classification": _text_classification,
    "token_classification": _token_classification,
    "question_answering": _question_answering,
    "fill_mask": _fill_mask,
    "translation": _translation,
    "image_classification": _image_classification,
    "masked_image_modeling": _masked_image_modeling,
    "contrastive_language_image_pretrain": _contrastive,
}
