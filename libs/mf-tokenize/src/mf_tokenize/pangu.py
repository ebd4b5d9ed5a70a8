"""PanGu-Alpha's tokenizer: jieba word segmentation, then SentencePiece (``vocab.model``).

After the published PanGu-Alpha / MindFormers ``PanguAlphaTokenizer``: jieba cuts the text
into words (precise mode), spaces and newlines inside words are written U+2582 and U+2583, the
words are joined with spaces and SentencePiece encodes the result; decoding removes the
joining spaces and maps U+2582 / U+2583 back.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from mf_tokenize.base import AddedToken
from mf_tokenize.sentencepiece_base import SentencePieceTokenizer

_TRANSLATE = str.maketrans(" \n", "\u2582\u2583")


def _jieba_cut(text: str) -> list[str]:
    with warnings.catch_warnings():  # jieba 0.42 has invalid escapes in its regexes
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        import jieba  # noqa: PLC0415 - loads its dictionary (~0.5 s) on first use only

    jieba.setLogLevel(logging.WARNING)
    return list(jieba.cut(text, cut_all=False))


class PanguAlphaTokenizer(SentencePieceTokenizer):
    vocab_files = {"vocab_file": "vocab.model"}

    def __init__(
        self,
        model: bytes,
        *,
        eos_token: str | AddedToken | None = "<eod>",
        bos_token: str | AddedToken | None = None,
        unk_token: str | AddedToken | None = "<unk>",
        pad_token: str | AddedToken | None = "<pad>",
        add_bos_token: bool = False,
        add_eos_token: bool = False,
        **kwargs: Any,
    ):
        self.add_bos_token = bool(add_bos_token)
        self.add_eos_token = bool(add_eos_token)
        super().__init__(model, eos_token=eos_token, bos_token=bos_token, unk_token=unk_token,
                         pad_token=pad_token, **kwargs)

    @classmethod
    def _model_path(cls, directory: Path) -> Path:
        path = directory / cls.vocab_files["vocab_file"]
        if not path.is_file() and (directory / "tokenizer.model").is_file():
            return directory / "tokenizer.model"
        return path

    def _config_extras(self) -> dict[str, Any]:
        return {**super()._config_extras(), "add_bos_token": self.add_bos_token,
                "add_eos_token": self.add_eos_token}

    @staticmethod
    def segment(text: str) -> str:
        """The text SentencePiece sees: jieba words, spaces/newlines escaped, space-joined."""
        return " ".join(word.translate(_TRANSLATE) for word in _jieba_cut(text))

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        return self.sp.encode(self.segment(text))

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        return self.sp.encode(self.segment(text), out_type=str)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        bos = [self.bos_token_id] if self.add_bos_token and self.bos_token_id is not None else []
        eos = [self.eos_token_id] if self.add_eos_token and self.eos_token_id is not None else []
        out = bos + ids + eos
        if pair_ids is not None:
            out += bos + pair_ids + eos
        return out

    @staticmethod
    def _undo_segmentation(text: str) -> str:
        return text.replace(" ", "").replace("\u2582", " ").replace("\u2583", "\n")

    def _decode_ids(self, ids: list[int]) -> str:
        for i in ids:
            if not 0 <= i < self.sp_size:
                self._id_to_token_strict(i)  # one-line error for an unknown id
        return self._undo_segmentation(self.sp.decode(ids))

    def _decode_tokens(self, tokens: list[str]) -> str:
        return self._undo_segmentation(self.sp.decode_pieces(tokens))
