"""Read and write Hugging Face ``tokenizer.json`` files holding a byte-level BPE model.

Only the components byte-level BPE tokenizers use are understood (BLOOM, GPT-2, RoBERTa style
files): normalizers NFC/NFD/NFKC/NFKD, Lowercase, Replace, Prepend, Strip, Sequence;
pre-tokenizers ByteLevel, Split, Digits, Sequence; the BPE model; post-processors ByteLevel,
TemplateProcessing, RobertaProcessing, BertProcessing, Sequence; the ByteLevel decoder. Any
other component is refused by name rather than silently ignored.

Regular expressions are written for Oniguruma (the engine of ``tokenizers``); the ``regex``
module's version-1 syntax reads them the same way, nested character classes included.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from mf_tokenize import _files, bpe
from mf_tokenize.base import AddedToken
from mf_tokenize.errors import CorruptVocabError

Normalizer = Callable[[str], str]
PreTokenizer = Callable[[list[str]], list[str]]


@dataclass
class Template:
    """Where special tokens go around one sequence (``single``) or a pair (``pair``)."""

    single: list[tuple[str, int]]  # ("A" | "B" | special token content, type id)
    pair: list[tuple[str, int]]

    def apply(self, ids: list[int], pair_ids: list[int] | None,
              token_id: Callable[[str], int]) -> tuple[list[int], list[int]]:
        out: list[int] = []
        types: list[int] = []
        for item, type_id in self.single if pair_ids is None else self.pair:
            part = ids if item == "A" else pair_ids if item == "B" else [token_id(item)]
            out += part
            types += [type_id] * len(part)
        return out, types


NO_TEMPLATE = Template(single=[("A", 0)], pair=[("A", 0), ("B", 1)])


@dataclass
class TokenizerJson:
    """The parts of a tokenizer.json that encoding and decoding need."""

    raw: dict[str, Any]
    normalize: Normalizer | None
    pre_tokenize: PreTokenizer
    model: bpe.BytePairEncoding
    template: Template
    added_tokens: dict[int, AddedToken]

    def encode_chunk(self, text: str) -> list[int]:
        if self.normalize is not None:
            text = self.normalize(text)
        ids: list[int] = []
        for piece in self.pre_tokenize([text]):
            ids += self.model.word_ids(piece)
        return ids

    def tokenize_chunk(self, text: str) -> list[str]:
        if self.normalize is not None:
            text = self.normalize(text)
        tokens: list[str] = []
        for piece in self.pre_tokenize([text]):
            tokens += self.model.word_tokens(piece)
        return tokens

    def to_json(self, added_tokens: dict[int, AddedToken]) -> str:
        raw = copy.deepcopy(self.raw)
        raw["added_tokens"] = [
            {"id": i, **t.to_json()} for i, t in sorted(added_tokens.items())
        ]
        raw["model"]["vocab"] = dict(sorted(self.model.vocab.items(), key=lambda kv: kv[1]))
        raw["model"]["merges"] = [[a, b] for a, b in self.model.merges]
        return json.dumps(raw, ensure_ascii=False, indent=2) + "\n"


def load(path: Path) -> TokenizerJson:
    raw = _files.read_json(path, "tokenizer.json")
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise CorruptVocabError(f"{path} has no 'model' object; is it a tokenizer.json?")
    where = str(path)
    model = _model(raw["model"], where)
    added = {}
    for entry in raw.get("added_tokens") or []:
        try:
            added[int(entry["id"])] = AddedToken.from_json(entry)
        except (KeyError, TypeError, ValueError):
            raise CorruptVocabError(f"{where}: bad added_tokens entry {entry!r:.80}") from None
    return TokenizerJson(
        raw=raw,
        normalize=_normalizer(raw.get("normalizer"), where),
        pre_tokenize=_pre_tokenizer(raw.get("pre_tokenizer"), where),
        model=model,
        template=_template(raw.get("post_processor"), where),
        added_tokens=added,
    )


def read_bpe_model(path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Just the vocabulary and merges of a tokenizer.json."""
    raw = _files.read_json(path, "tokenizer.json")
    model = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(model, dict):
        raise CorruptVocabError(f"{path} has no 'model' object; is it a tokenizer.json?")
    return _vocab(model, str(path)), bpe.parse_merges(model.get("merges") or [], str(path))


def check_decoder(raw: dict[str, Any], where: str) -> None:
    decoder = raw.get("decoder")
    if decoder is not None and decoder.get("type") != "ByteLevel":
        raise CorruptVocabError(
            f"{where}: decoder {decoder.get('type')!r} is not supported; mf reads byte-level "
            "BPE tokenizer.json files (decoder ByteLevel)"
        )


# ---------------------------------------------------------------------------- model
def _vocab(model: dict[str, Any], where: str) -> dict[str, int]:
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in vocab.items()
    ):
        raise CorruptVocabError(f"{where}: model.vocab must map tokens to int ids")
    return vocab


def _model(model: dict[str, Any], where: str) -> bpe.BytePairEncoding:
    kind = model.get("type", "BPE" if "merges" in model else None)
    if kind != "BPE":
        raise CorruptVocabError(
            f"{where}: model type {kind!r} is not supported here; allowed: 'BPE'"
        )
    for option, allowed in (("dropout", (None, 0, 0.0)), ("byte_fallback", (None, False)),
                            ("continuing_subword_prefix", (None, ""))):
        if model.get(option) not in allowed:
            raise CorruptVocabError(
                f"{where}: BPE option {option}={model.get(option)!r} is not supported"
            )
    return bpe.BytePairEncoding(
        _vocab(model, where),
        bpe.parse_merges(model.get("merges") or [], where),
        unk_token=model.get("unk_token"),
        end_of_word_suffix=model.get("end_of_word_suffix") or "",
        ignore_merges=bool(model.get("ignore_merges", False)),
        source=where,
    )


# ---------------------------------------------------------------------------- normalizers
def _pattern(spec: dict[str, Any], where: str) -> regex.Pattern[str]:
    if "Regex" in spec:
        try:
            return regex.compile("(?V1)" + spec["Regex"])
        except regex.error as exc:
            raise CorruptVocabError(f"{where}: bad regex {spec['Regex']!r}: {exc}") from None
    if "String" in spec:
        return regex.compile(regex.escape(spec["String"]))
    raise CorruptVocabError(f"{where}: a pattern needs 'Regex' or 'String', got {spec!r:.60}")


def _normalizer(spec: dict[str, Any] | None, where: str) -> Normalizer | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda text: unicodedata.normalize(kind, text)
    if kind == "Lowercase":
        return lambda text: "".join(c.lower() for c in text)  # char by char, as Rust does
    if kind == "Replace":
        pattern, content = _pattern(spec["pattern"], where), spec.get("content", "")
        return lambda text: pattern.sub(lambda _: content, text)
    if kind == "Prepend":
        prefix = spec.get("prepend", "")
        return lambda text: prefix + text if text else text
    if kind == "Strip":
        left, right = spec.get("strip_left", True), spec.get("strip_right", True)
        return lambda text: (text.lstrip() if left else text).rstrip() if right else (
            text.lstrip() if left else text)
    if kind == "Sequence":
        steps = [_normalizer(s, where) for s in spec.get("normalizers", [])]

        def run(text: str) -> str:
            for step in steps:
                if step is not None:
                    text = step(text)
            return text
        return run
    raise CorruptVocabError(
        f"{where}: normalizer {kind!r} is not supported; allowed: NFC, NFD, NFKC, NFKD, "
        "Lowercase, Replace, Prepend, Strip, Sequence"
    )


# ---------------------------------------------------------------------------- pre-tokenizers
def _split_spans(pattern: regex.Pattern[str], text: str, invert: bool) -> list[tuple[str, bool]]:
    """The text cut into (piece, is_delimiter) spans around the pattern's matches."""
    spans: list[tuple[str, bool]] = []
    prev = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        if start == end:
            continue
        if start > prev:
            spans.append((text[prev:start], invert))
        spans.append((text[start:end], not invert))
        prev = end
    if prev < len(text):
        spans.append((text[prev:], invert))
    return spans


def _apply_behavior(spans: list[tuple[str, bool]], behavior: str) -> list[str]:
    """What tokenizers' SplitDelimiterBehavior does with the delimiter spans."""
    if behavior == "Isolated":
        return [s for s, _ in spans]
    if behavior == "Removed":
        return [s for s, delimiter in spans if not delimiter]
    out: list[str] = []
    if behavior == "MergedWithPrevious":
        previous_delimiter = False
        for piece, delimiter in spans:
            if delimiter and not previous_delimiter and out:
                out[-1] += piece
            else:
                out.append(piece)
            previous_delimiter = delimiter
        return out
    if behavior == "MergedWithNext":
        previous_delimiter = False
        for piece, delimiter in reversed(spans):
            if delimiter and not previous_delimiter and out:
                out[-1] = piece + out[-1]
            else:
                out.append(piece)
            previous_delimiter = delimiter
        return out[::-1]
    if behavior == "Contiguous":
        previous_delimiter = None
        for piece, delimiter in spans:
            if delimiter == previous_delimiter and out:
                out[-1] += piece
            else:
                out.append(piece)
            previous_delimiter = delimiter
        return out
    raise ValueError(behavior)


_BEHAVIORS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def _pre_tokenizer(spec: dict[str, Any] | None, where: str) -> PreTokenizer:
    if spec is None:
        return lambda pieces: [p for p in pieces if p]
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [_pre_tokenizer(s, where) for s in spec.get("pretokenizers", [])]

        def run(pieces: list[str]) -> list[str]:
            for step in steps:
                pieces = step(pieces)
            return pieces
        return run
    if kind == "ByteLevel":
        prefix = bool(spec.get("add_prefix_space", False))
        gpt2 = regex.compile(bpe.GPT2_PATTERN) if spec.get("use_regex", True) else None

        def byte_level(pieces: list[str]) -> list[str]:
            out = []
            for piece in pieces:
                if prefix and not piece.startswith(" "):
                    piece = " " + piece
                parts = gpt2.findall(piece) if gpt2 is not None else [piece]
                out += [bpe.to_byte_level(p) for p in parts if p]
            return out
        return byte_level
    if kind == "Split":
        pattern = _pattern(spec.get("pattern", {}), where)
        behavior = spec.get("behavior", "Isolated")
        if behavior not in _BEHAVIORS:
            raise CorruptVocabError(
                f"{where}: Split behavior {behavior!r}; allowed: {', '.join(_BEHAVIORS)}"
            )
        invert = bool(spec.get("invert", False))

        def split(pieces: list[str]) -> list[str]:
            out = []
            for piece in pieces:
                out += [p for p in _apply_behavior(_split_spans(pattern, piece, invert),
                                                   behavior) if p]
            return out
        return split
    if kind == "Digits":
        # Rust's char::is_numeric: the Unicode N* categories.
        digits = regex.compile(r"\p{N}" if spec.get("individual_digits") else r"\p{N}+")
        behavior = "Isolated"

        def split_digits(pieces: list[str]) -> list[str]:
            out = []
            for piece in pieces:
                out += [p for p in _apply_behavior(_split_spans(digits, piece, False), behavior)
                        if p]
            return out
        return split_digits
    raise CorruptVocabError(
        f"{where}: pre-tokenizer {kind!r} is not supported; allowed: ByteLevel, Split, "
        "Digits, Sequence"
    )


# ---------------------------------------------------------------------------- post-processors
def _template_items(items: list[dict[str, Any]], where: str) -> list[tuple[str, int]]:
    out = []
    for item in items:
        if "Sequence" in item:
            out.append((item["Sequence"]["id"], int(item["Sequence"].get("type_id", 0))))
        elif "SpecialToken" in item:
            out.append((item["SpecialToken"]["id"], int(item["SpecialToken"].get("type_id", 0))))
        else:
            raise CorruptVocabError(f"{where}: bad template item {item!r:.60}")
    return out


def _template(spec: dict[str, Any] | None, where: str) -> Template:
    if spec is None:
        return NO_TEMPLATE
    kind = spec.get("type")
    if kind == "ByteLevel":
        return NO_TEMPLATE
    if kind == "TemplateProcessing":
        specials = spec.get("special_tokens") or {}
        for name, entry in specials.items():
            if len(entry.get("ids", [])) != 1:
                raise CorruptVocabError(
                    f"{where}: template token {name!r} maps to {len(entry.get('ids', []))} ids; "
                    "only single-id special tokens are supported"
                )
        return Template(_template_items(spec["single"], where),
                        _template_items(spec["pair"], where))
    if kind in ("RobertaProcessing", "BertProcessing"):
        cls, sep = spec["cls"][0], spec["sep"][0]
        pair_gap = [(sep, 0)] if kind == "RobertaProcessing" else []
        second = 0 if kind == "RobertaProcessing" else 1
        return Template(single=[(cls, 0), ("A", 0), (sep, 0)],
                        pair=[(cls, 0), ("A", 0), (sep, 0), *pair_gap, ("B", second),
                              (sep, second)])
    if kind == "Sequence":
        templates = [t for t in (_template(p, where) for p in spec.get("processors", []))
                     if t is not NO_TEMPLATE]
        if len(templates) > 1:
            raise CorruptVocabError(f"{where}: more than one template post-processor")
        return templates[0] if templates else NO_TEMPLATE
    raise CorruptVocabError(
        f"{where}: post-processor {kind!r} is not supported; allowed: ByteLevel, "
        "TemplateProcessing, RobertaProcessing, BertProcessing, Sequence"
    )
