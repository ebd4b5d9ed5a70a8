"""T5's tokenizer: a SentencePiece unigram model (``spiece.model``) plus ``extra_ids``
sentinel tokens ``<extra_id_0>`` ... at the top of the vocabulary, EOS after each sequence.

Sentinel ``<extra_id_i>`` has id ``sp_size + extra_ids - 1 - i`` (google-research/
text-to-text-transfer-transformer). Decoding follows Hugging Face's Metaspace decoder: "▁" is
a space, except in the first token, where it is dropped.
"""

from __future__ import annotations

from typing import Any

from mf_tokenize.base import AddedToken
from mf_tokenize.errors import TokenizerConfigError
from mf_tokenize.sentencepiece_base import SPIECE_UNDERLINE, SentencePieceTokenizer


class T5Tokenizer(SentencePieceTokenizer):
    vocab_files = {"vocab_file": "spiece.model"}

    def __init__(
        self,
        model: bytes,
        *,
        eos_token: str | AddedToken | None = "</s>",
        unk_token: str | AddedToken | None = "<unk>",
        pad_token: str | AddedToken | None = "<pad>",
        extra_ids: int = 100,
        added_tokens: dict[int, AddedToken] | None = None,
        additional_special_tokens: list[str | AddedToken] | None = None,
        **kwargs: Any,
    ):
        if not isinstance(extra_ids, int) or extra_ids < 0:
            raise TokenizerConfigError(f"extra_ids={extra_ids!r}; allowed: an int >= 0")
        self.extra_ids = extra_ids
        added = dict(added_tokens or {})
        sentinels = [f"<extra_id_{i}>" for i in range(extra_ids)]
        known = {t.content for t in added.values()}
        super().__init__(model, eos_token=eos_token, unk_token=unk_token, pad_token=pad_token,
                         added_tokens=added, **kwargs)
        # The sentinels sit above the SentencePiece vocabulary, the last one first.
        for i, sentinel in enumerate(sentinels):
            if sentinel not in known:
                self._set_added(self.sp_size + extra_ids - 1 - i, AddedToken(sentinel))
        for sentinel in sentinels:
            if sentinel not in self._additional_special:
                self._additional_special.append(sentinel)
        for token in additional_special_tokens or ():
            self._add_additional_special(token)

    def _config_extras(self) -> dict[str, Any]:
        return {**super()._config_extras(), "extra_ids": self.extra_ids}

    @property
    def vocab_size(self) -> int:
        return self.sp_size + self.extra_ids

    def _model_id_to_token(self, index: int) -> str | None:
        return self.sp.id_to_piece(index) if 0 <= index < self.sp_size else None

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        eos = [self.eos_token_id]
        out = ids + eos
        if pair_ids is not None:
            out += pair_ids + eos
        return out

    def _decode_tokens(self, tokens: list[str]) -> str:
        return "".join(
            t.replace(SPIECE_UNDERLINE, "") if i == 0 else t.replace(SPIECE_UNDERLINE, " ")
            for i, t in enumerate(tokens)
        )
