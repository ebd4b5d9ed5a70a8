"""BERT's tokenizer: a basic tokenizer (clean-up, CJK split, lower-casing, accent stripping,
punctuation split) followed by WordPiece over ``vocab.txt``.

The rules follow Hugging Face ``tokenizers``' BertNormalizer, BertPreTokenizer and WordPiece,
which transformers 5 runs for ``BertTokenizer``. Character classes come from Python's
``unicodedata``; the reference uses older Unicode tables, so the two can disagree only on
characters assigned in recent Unicode versions.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from mf_tokenize import _files
from mf_tokenize.base import AddedToken, PreTrainedTokenizer
from mf_tokenize.errors import CorruptVocabError
from mf_tokenize.tokens import check_text

# The Unicode White_Space property; \t \n \r count as whitespace although they are controls.
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# CJK ideograph blocks padded with spaces, as tokenizers' BertNormalizer has them (its second
# Extension-B..D range starts at 0x2B920, not 0x2B820 as in the original BERT code).
_CJK_RANGES = (
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0x2F800, 0x2FA1F),
)


def is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs")


def is_punctuation(char: str) -> bool:
    cp = ord(char)
    # ASCII symbols such as $ + < = > ^ ` | ~ are punctuation for BERT too.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


class BasicTokenizer:
    """Normalization and pre-tokenization of BERT: text -> words before WordPiece."""

    def __init__(self, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, clean_text: bool = True):
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text

    def normalize(self, text: str) -> str:
        if self.clean_text:
            text = "".join(
                " " if c in WHITESPACE else c
                for c in text
                if c not in "\x00\ufffd" and not is_control(c)
            )
        if self.tokenize_chinese_chars:
            text = "".join(f" {c} " if is_cjk(c) else c for c in text)
        if self.strip_accents:
            text = "".join(
                c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
            )
        if self.do_lower_case:
            text = "".join(c.lower() for c in text)  # char by char: no final-sigma rule
        return text

    @staticmethod
    def split(text: str) -> list[str]:
        """Split on whitespace (dropped) and punctuation (kept, one character per word)."""
        words: list[str] = []
        current: list[str] = []
        for char in text:
            if char in WHITESPACE:
                if current:
                    words.append("".join(current))
                    current = []
            elif is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
        return words

    def __call__(self, text: str) -> list[str]:
        return self.split(self.normalize(text))


def read_vocab_txt(path: Path) -> dict[str, int]:
    """One token per line; the line number is its id."""
    vocab: dict[str, int] = {}
    for index, line in enumerate(_files.read_text(path, "vocabulary file").splitlines()):
        token = line.rstrip("\n")
        if token in vocab:
            raise CorruptVocabError(
                f"vocabulary file {path}: token {token!r} appears on lines "
                f"{vocab[token] + 1} and {index + 1}"
            )
        vocab[token] = index
    if not vocab:
        raise CorruptVocabError(f"vocabulary file {path} is empty")
    return vocab


class BertTokenizer(PreTrainedTokenizer):
    vocab_files = {"vocab_file": "vocab.txt"}
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(
        self,
        vocab: dict[str, int],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str | AddedToken | None = "[UNK]",
        sep_token: str | AddedToken | None = "[SEP]",
        pad_token: str | AddedToken | None = "[PAD]",
        cls_token: str | AddedToken | None = "[CLS]",
        mask_token: str | AddedToken | None = "[MASK]",
        wordpiece_prefix: str = "##",
        max_input_chars_per_word: int = 100,
        **kwargs: Any,
    ):
        self.vocab = vocab
        self.id_to_token = {i: t for t, i in vocab.items()}
        if len(self.id_to_token) != len(vocab):
            raise CorruptVocabError("BertTokenizer vocabulary: two tokens share one id")
        self.basic = BasicTokenizer(do_lower_case, strip_accents, tokenize_chinese_chars)
        self.wordpiece_prefix = wordpiece_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self._cache: dict[str, list[str]] = {}
        super().__init__(unk_token=unk_token, sep_token=sep_token, pad_token=pad_token,
                         cls_token=cls_token, mask_token=mask_token, **kwargs)
        if self.unk_token is None or self.unk_token not in vocab:
            raise CorruptVocabError(
                f"BertTokenizer needs its unk_token {self.unk_token!r} in the vocabulary"
            )

    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> BertTokenizer:
        return cls(read_vocab_txt(directory / cls.vocab_files["vocab_file"]), **kwargs)

    def _vocabulary_files(self) -> dict[str, bytes]:
        lines = [self.id_to_token[i] for i in sorted(self.id_to_token)]
        if sorted(self.id_to_token) != list(range(len(lines))):
            raise CorruptVocabError("cannot write vocab.txt: the ids are not 0..n-1")
        return {self.vocab_files["vocab_file"]: ("\n".join(lines) + "\n").encode("utf-8")}

    def _config_extras(self) -> dict[str, Any]:
        return {"do_lower_case": self.basic.do_lower_case,
                "strip_accents": self.basic.strip_accents,
                "tokenize_chinese_chars": self.basic.tokenize_chinese_chars}

    def _lookup_tables(self) -> tuple[dict[str, int], dict[int, str]]:
        return self.vocab, self.id_to_token

    def _wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one word; the whole word is unknown if any
        part of it has no match."""
        pieces = self._cache.get(word)
        if pieces is not None:
            return pieces
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            match = None
            while start < end:
                candidate = word[start:end]
                if start > 0:
                    candidate = self.wordpiece_prefix + candidate
                if candidate in self.vocab:
                    match = candidate
                    break
                end -= 1
            if match is None:
                pieces = [self.unk_token]
                break
            pieces.append(match)
            start = end
        self._cache[word] = pieces
        return pieces

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        tokens: list[str] = []
        for word in self.basic(text):
            tokens += self._wordpiece(word)
        return tokens

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int, int]]:
        """(token, start, end, word) for every token of `text`: the characters of the original
        text it covers (end exclusive) and the index of its word (the basic tokenizer's split),
        as a Hugging Face fast tokenizer's offset mapping and word ids give them.

        Normalisation (clean-up, accents, case) works character by character, so each
        normalised character knows the original one it came from.
        """
        check_text(text, "text")
        out: list[tuple[str, int, int, int]] = []
        for chunk, chunk_start, token_id in self._split_on_added_tokens(text):
            first_word = out[-1][3] + 1 if out else 0
            if token_id is not None:  # an added token is a word of its own
                out.append((chunk, chunk_start, chunk_start + len(chunk), first_word))
                continue
            for n, (word, owners) in enumerate(self._words_with_owners(chunk)):
                pieces = self._wordpiece(word)
                if pieces == [self.unk_token]:
                    spans = [(0, len(word))]
                else:
                    spans, pos = [], 0
                    for piece in pieces:
                        size = len(piece) - (len(self.wordpiece_prefix) if pos else 0)
                        spans.append((pos, pos + size))
                        pos += size
                for piece, (a, b) in zip(pieces, spans, strict=True):
                    out.append((piece, chunk_start + owners[a], chunk_start + owners[b - 1] + 1,
                                first_word + n))
        return out

    def _words_with_owners(self, text: str) -> list[tuple[str, list[int]]]:
        """The basic tokenizer's words of `text`, each with the index in `text` of the
        character every one of its (normalised) characters came from."""
        chars: list[tuple[str, int]] = []
        for i, char in enumerate(text):
            chars += [(c, i) for c in self.basic.normalize(char)]
        words: list[tuple[str, list[int]]] = []
        current: list[tuple[str, int]] = []

        def flush() -> None:
            if current:
                words.append(("".join(c for c, _ in current), [i for _, i in current]))
                current.clear()

        for char, owner in chars:
            if char in WHITESPACE:
                flush()
            elif is_punctuation(char):
                flush()
                words.append((char, [owner]))
            else:
                current.append((char, owner))
        flush()
        return words

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        vocab = self.vocab
        return [vocab[t] for t in self._tokenize_chunk(text, at_start)]

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        out = [cls_id, *ids, sep_id]
        if pair_ids is not None:
            out += [*pair_ids, sep_id]
        return out

    def create_token_type_ids_from_sequences(self, ids, pair_ids=None):
        types = [0] * (len(ids) + 2)
        if pair_ids is not None:
            types += [1] * (len(pair_ids) + 1)
        return types

    def _decode_tokens(self, tokens: list[str]) -> str:
        """Join pieces (``##`` glues to the previous one) and tidy spaces before punctuation,
        as tokenizers' WordPiece decoder with cleanup does, one token at a time."""
        out = []
        prefix = self.wordpiece_prefix
        for i, token in enumerate(tokens):
            if i:
                token = token[len(prefix):] if token.startswith(prefix) else " " + token
            out.append(_cleanup(token))
        return "".join(out)


def _cleanup(text: str) -> str:
    # tokenizers' wordpiece cleanup; " do not" -> " don't" is in the reference as well.
    for dirty, clean in (
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ):
        text = text.replace(dirty, clean)
    return text
