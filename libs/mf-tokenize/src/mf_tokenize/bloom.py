"""BLOOM's tokenizer: byte-level BPE read from ``tokenizer.json``.

BLOOM (bigscience/bloom) ships only a tokenizer.json: a Split pre-tokenizer with its own
pattern, then ByteLevel without GPT-2's pattern. Everything comes from that file, so any
byte-level BPE tokenizer.json of the same shape loads here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mf_tokenize import bpe, tokenizer_json
from mf_tokenize.base import AddedToken, PreTrainedTokenizer
from mf_tokenize.errors import CorruptVocabError

# bigscience/bloom's special tokens, used when the tokenizer.json holds them.
_BLOOM_DEFAULT: Any = object()


class BloomTokenizer(PreTrainedTokenizer):
    vocab_files = {"tokenizer_file": "tokenizer.json"}
    padding_side = "left"  # bigscience/bloom tokenizer_config.json

    def __init__(
        self,
        tokenizer: tokenizer_json.TokenizerJson,
        *,
        unk_token: str | AddedToken | None = _BLOOM_DEFAULT,
        bos_token: str | AddedToken | None = _BLOOM_DEFAULT,
        eos_token: str | AddedToken | None = _BLOOM_DEFAULT,
        pad_token: str | AddedToken | None = _BLOOM_DEFAULT,
        added_tokens: dict[int, AddedToken] | None = None,
        errors: str = "replace",
        **kwargs: Any,
    ):
        self.tokenizer = tokenizer
        self.errors = errors
        merged = {**tokenizer.added_tokens, **(added_tokens or {})}
        known = set(tokenizer.model.vocab) | {t.content for t in merged.values()}
        roles = {}
        for role, token, default in (("unk_token", unk_token, "<unk>"),
                                     ("bos_token", bos_token, "<s>"),
                                     ("eos_token", eos_token, "</s>"),
                                     ("pad_token", pad_token, "<pad>")):
            # BLOOM's names are only defaults: a tokenizer.json without them gets none.
            roles[role] = None if token is _BLOOM_DEFAULT and default not in known else (
                default if token is _BLOOM_DEFAULT else token)
        super().__init__(added_tokens=merged, **roles, **kwargs)

    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> BloomTokenizer:
        path = directory / cls.vocab_files["tokenizer_file"]
        parsed = tokenizer_json.load(path)
        tokenizer_json.check_decoder(parsed.raw, str(path))
        return cls(parsed, **kwargs)

    def _vocabulary_files(self) -> dict[str, bytes]:
        return {self.vocab_files["tokenizer_file"]:
                self.tokenizer.to_json(self._added).encode("utf-8")}

    def _lookup_tables(self) -> tuple[dict[str, int], dict[int, str]]:
        return self.tokenizer.model.vocab, self.tokenizer.model.id_to_token

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        return self.tokenizer.encode_chunk(text)

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        return self.tokenizer.tokenize_chunk(text)

    def _special_id(self, token: str) -> int:
        token_id = self._token_to_id(token)
        if token_id is None:
            raise CorruptVocabError(
                f"tokenizer.json template uses {token!r}, which is not in the vocabulary"
            )
        return token_id

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        return self.tokenizer.template.apply(ids, pair_ids, self._special_id)[0]

    def create_token_type_ids_from_sequences(self, ids, pair_ids=None):
        return self.tokenizer.template.apply(ids, pair_ids, self._special_id)[1]

    def _decode_tokens(self, tokens: list[str]) -> str:
        return bpe.byte_level_decode(tokens, self.errors)
