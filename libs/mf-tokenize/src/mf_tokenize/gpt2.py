"""GPT-2's byte-level BPE tokenizer (vocab.json + merges.txt).

Text is cut by GPT-2's pre-tokenization pattern, each piece is written in the byte-level
alphabet and merged by BPE. The hot path keeps a cache from raw piece to ids, so a piece seen
before costs one dict lookup: that, one compiled pattern and ``str.translate`` for the byte
mapping are what make it faster than the reference Python implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import regex

from mf_tokenize import bpe
from mf_tokenize.base import AddedToken, PreTrainedTokenizer
from mf_tokenize.bpe import BytePairEncoding

_CACHE_LIMIT = 500_000


class GPT2Tokenizer(PreTrainedTokenizer):
    """GPT-2 byte-level BPE; ``add_prefix_space`` treats the first word like any other."""

    vocab_files = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        *,
        unk_token: str | AddedToken | None = "<|endoftext|>",
        bos_token: str | AddedToken | None = "<|endoftext|>",
        eos_token: str | AddedToken | None = "<|endoftext|>",
        pad_token: str | AddedToken | None = None,
        add_prefix_space: bool = False,
        add_bos_token: bool = False,
        errors: str = "replace",
        **kwargs: Any,
    ):
        self.bpe = BytePairEncoding(vocab, merges, source=f"{type(self).__name__} vocabulary")
        self.add_prefix_space = bool(add_prefix_space)
        self.add_bos_token = bool(add_bos_token)
        self.errors = errors
        self._pattern = regex.compile(bpe.GPT2_PATTERN)
        self._raw_cache: dict[str, list[int]] = {}
        super().__init__(unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                         pad_token=pad_token, **kwargs)

    # ---------------------------------------------------------------- files
    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> GPT2Tokenizer:
        vocab_path = directory / cls.vocab_files["vocab_file"]
        merges_path = directory / cls.vocab_files["merges_file"]
        if not vocab_path.is_file() and (directory / "tokenizer.json").is_file():
            from mf_tokenize.tokenizer_json import read_bpe_model  # noqa: PLC0415

            vocab, merges = read_bpe_model(directory / "tokenizer.json")
        else:
            vocab = bpe.read_vocab_json(vocab_path)
            merges = bpe.read_merges_file(merges_path)
        return cls(vocab, merges, **kwargs)

    def _vocabulary_files(self) -> dict[str, bytes]:
        return {
            self.vocab_files["vocab_file"]: bpe.vocab_json_text(self.bpe.vocab).encode(),
            self.vocab_files["merges_file"]: bpe.merges_file_text(self.bpe.merges).encode(),
        }

    def _config_extras(self) -> dict[str, Any]:
        return {"add_prefix_space": self.add_prefix_space, "add_bos_token": self.add_bos_token,
                "errors": self.errors}

    # ---------------------------------------------------------------- vocabulary
    def _lookup_tables(self) -> tuple[dict[str, int], dict[int, str]]:
        return self.bpe.vocab, self.bpe.id_to_token

    # ---------------------------------------------------------------- encoding
    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        cache = self._raw_cache
        ids: list[int] = []
        for piece in self._pattern.findall(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = self.bpe.word_ids(bpe.to_byte_level(piece))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[piece] = piece_ids
            ids += piece_ids
        return ids

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        tokens: list[str] = []
        for piece in self._pattern.findall(text):
            tokens += self.bpe.word_tokens(bpe.to_byte_level(piece))
        return tokens

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        bos = [self.bos_token_id] if self.add_bos_token and self.bos_token_id is not None else []
        out = bos + ids
        if pair_ids is not None:
            out += bos + pair_ids
        return out

    # ---------------------------------------------------------------- decoding
    def _decode_tokens(self, tokens: list[str]) -> str:
        return bpe.byte_level_decode(tokens, self.errors)
