"""The shared part of the SentencePiece families (LLaMA, T5, ChatGLM, ChatGLM2, PanGu-Alpha).

Encoding is SentencePiece's own C++ (one call per chunk of text, no Python loop per piece);
what differs between families is the text preprocessing, the id layout, the special tokens
around a sequence and the decoding rules, which the subclasses give.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sentencepiece as spm

from mf_tokenize import _files, _sp_proto
from mf_tokenize.base import PreTrainedTokenizer
from mf_tokenize.errors import CorruptVocabError

SPIECE_UNDERLINE = "▁"
BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def load_processor(model: bytes, source: str) -> spm.SentencePieceProcessor:
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model)
    except (RuntimeError, OSError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptVocabError(
            f"{source} is not a SentencePiece model ({first_line})"
        ) from None
    return processor


def fuse_byte_pieces(tokens: list[str]) -> list[str]:
    """Byte-fallback pieces (``<0xE4>``) to text, as tokenizers' ByteFallback decoder does:
    a run of them that is not valid UTF-8 gives one U+FFFD per byte."""
    out: list[str] = []
    pending = bytearray()

    def flush() -> None:
        if pending:
            try:
                out.append(pending.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("\ufffd" * len(pending))
            pending.clear()

    for token in tokens:
        match = BYTE_PIECE.fullmatch(token)
        if match:
            pending.append(int(match.group(1), 16))
        else:
            flush()
            out.append(token)
    flush()
    return out


class SentencePieceTokenizer(PreTrainedTokenizer):
    """Base for tokenizers whose model is a SentencePiece ``.model`` file."""

    vocab_files = {"vocab_file": "tokenizer.model"}

    def __init__(self, model: bytes, *, legacy: bool = True, source: str = "SentencePiece model",
                 **kwargs: Any):
        self.model_bytes = bytes(model)
        self.source = source
        self.sp = load_processor(self.model_bytes, source)
        self.settings = _sp_proto.read_settings(self.model_bytes)
        self.legacy = bool(legacy)
        self._sp_without_prefix: spm.SentencePieceProcessor | None = None
        super().__init__(**kwargs)

    @classmethod
    def _model_path(cls, directory: Path) -> Path:
        return directory / cls.vocab_files["vocab_file"]

    @classmethod
    def _load(cls, directory: Path, **kwargs: Any) -> SentencePieceTokenizer:
        path = cls._model_path(directory)
        return cls(_files.read_bytes(path, "SentencePiece model"), source=str(path), **kwargs)

    def _vocabulary_files(self) -> dict[str, bytes]:
        return {self.vocab_files["vocab_file"]: self.model_bytes}

    def _config_extras(self) -> dict[str, Any]:
        return {"legacy": self.legacy}

    # ---------------------------------------------------------------- vocabulary
    @property
    def sp_size(self) -> int:
        return self.sp.get_piece_size()

    @property
    def vocab_size(self) -> int:
        return self.sp_size

    def _model_vocab(self) -> dict[str, int]:
        return {self.sp.id_to_piece(i): i for i in range(self.sp_size)}

    def _sp_piece_id(self, token: str) -> int | None:
        index = self.sp.piece_to_id(token)
        return index if self.sp.id_to_piece(index) == token else None

    def _model_token_to_id(self, token: str) -> int | None:
        return self._sp_piece_id(token)

    def _model_id_to_token(self, index: int) -> str | None:
        return self.sp.id_to_piece(index) if 0 <= index < self.sp_size else None

    # ---------------------------------------------------------------- encoding
    def _wants_dummy_prefix(self, at_start: bool) -> bool:
        """SentencePiece adds its dummy prefix to every chunk in legacy mode; otherwise only
        to the chunk that starts the text (Hugging Face's ``legacy=False``)."""
        return at_start or self.legacy

    def _processor(self, at_start: bool) -> spm.SentencePieceProcessor:
        if self._wants_dummy_prefix(at_start) or not self.settings.add_dummy_prefix:
            return self.sp
        if self._sp_without_prefix is None:
            self._sp_without_prefix = load_processor(
                _sp_proto.with_add_dummy_prefix(self.model_bytes, False), "SentencePiece model")
        return self._sp_without_prefix

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        return self._processor(at_start).encode(text)

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        return self._processor(at_start).encode(text, out_type=str)
