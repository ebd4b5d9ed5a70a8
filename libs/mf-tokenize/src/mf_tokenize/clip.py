"""CLIP's tokenizer: lower-cased byte-level BPE with end-of-word markers (vocab.json +
merges.txt), framed by ``<|startoftext|>`` and ``<|endoftext|>``.

The pipeline is the one transformers 5 builds for ``CLIPTokenizer``: NFC, whitespace runs to
one space, lower case; CLIP's word pattern (openai/CLIP simple_tokenizer.py) keeps words,
single digits and symbol runs and drops whitespace; then GPT-2's byte-level step and BPE
with ``</w>`` on each word's last symbol.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import regex

from mf_tokenize import bpe
from mf_tokenize.base import AddedToken, PreTrainedTokenizer
from mf_tokenize.bpe import BytePairEncoding

CLIP_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"""
    r"""|[^\s\p{L}\p{N}]+"""
)
END_OF_WORD = "</w>"


class CLIPTokenizer(PreTrainedTokenizer):
    vocab_files = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        *,
        unk_token: str | AddedToken | None = "<|endoftext|>",
        bos_token: str | AddedToken | None = "<|startoftext|>",
        eos_token: str | AddedToken | None = "<|endoftext|>",
        pad_token: str | AddedToken | None = "<|endoftext|>",
        errors: str = "replace",
        **kwargs: Any,
    ):
        unk = unk_token.content if isinstance(unk_token, AddedToken) else unk_token
        self.bpe = BytePairEncoding(vocab, merges, unk_token=unk, end_of_word_suffix=END_OF_WORD,
                                    source="CLIPTokenizer vocabulary")
        self.errors = errors
        self._words = regex.compile(CLIP_PATTERN)
        self._gpt2 = regex.compile(bpe.GPT2_PATTERN)
        self._spaces = regex.compile(r"\s+")
        super().__init__(unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                         pad_token=pad_token, **kwargs)

    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> CLIPTokenizer:
        vocab = bpe.read_vocab_json(directory / cls.vocab_files["vocab_file"])
        merges = bpe.read_merges_file(directory / cls.vocab_files["merges_file"])
        return cls(vocab, merges, **kwargs)

    def _vocabulary_files(self) -> dict[str, bytes]:
        return {
            self.vocab_files["vocab_file"]: bpe.vocab_json_text(self.bpe.vocab).encode(),
            self.vocab_files["merges_file"]: bpe.merges_file_text(self.bpe.merges).encode(),
        }

    def _lookup_tables(self) -> tuple[dict[str, int], dict[int, str]]:
        return self.bpe.vocab, self.bpe.id_to_token

    def _words_of(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", text)
        text = "".join(c.lower() for c in self._spaces.sub(" ", text))
        words = []
        for word in self._words.findall(text):
            words += [bpe.to_byte_level(p) for p in self._gpt2.findall(word)]
        return words

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        ids: list[int] = []
        for word in self._words_of(text):
            ids += self.bpe.word_ids(word)
        return ids

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        tokens: list[str] = []
        for word in self._words_of(text):
            tokens += self.bpe.word_tokens(word)
        return tokens

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        bos, eos = self.bos_token_id, self.eos_token_id
        out = [bos, *ids, eos]
        if pair_ids is not None:
            out += [eos, *pair_ids, eos]
        return out

    def _decode_tokens(self, tokens: list[str]) -> str:
        return bpe.byte_level_decode(tokens, self.errors).replace(END_OF_WORD, " ").strip()
