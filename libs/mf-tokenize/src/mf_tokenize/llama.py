"""LLaMA's tokenizer: SentencePiece BPE with byte fallback (``tokenizer.model``).

BOS is added in front of every sequence and EOS is not, unless ``add_bos_token`` /
``add_eos_token`` say otherwise (the LLaMA tokenizer_config.json defaults). Ids are
SentencePiece's own. Decoding follows the decoder Hugging Face builds for LLaMA: "▁" to space,
byte pieces fused to UTF-8, one leading space removed.
"""

from __future__ import annotations

from typing import Any

from mf_tokenize.base import AddedToken
from mf_tokenize.sentencepiece_base import (
    SPIECE_UNDERLINE,
    SentencePieceTokenizer,
    fuse_byte_pieces,
)


class LlamaTokenizer(SentencePieceTokenizer):
    vocab_files = {"vocab_file": "tokenizer.model"}
    padding_side = "left"  # Hugging Face's LlamaTokenizer class default

    def __init__(
        self,
        model: bytes,
        *,
        unk_token: str | AddedToken | None = "<unk>",
        bos_token: str | AddedToken | None = "<s>",
        eos_token: str | AddedToken | None = "</s>",
        pad_token: str | AddedToken | None = None,
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        add_prefix_space: bool | None = None,
        **kwargs: Any,
    ):
        self.add_bos_token = bool(add_bos_token)
        self.add_eos_token = bool(add_eos_token)
        self.add_prefix_space = True if add_prefix_space is None else bool(add_prefix_space)
        super().__init__(model, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                         pad_token=pad_token, **kwargs)

    def _config_extras(self) -> dict[str, Any]:
        return {**super()._config_extras(), "add_bos_token": self.add_bos_token,
                "add_eos_token": self.add_eos_token, "add_prefix_space": self.add_prefix_space}

    def _wants_dummy_prefix(self, at_start: bool) -> bool:
        return self.add_prefix_space and super()._wants_dummy_prefix(at_start)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        out = bos + ids + eos
        if pair_ids is not None:
            out += bos + pair_ids + eos
        return out

    def create_token_type_ids_from_sequences(self, ids, pair_ids=None):
        n_special = int(self.add_bos_token) + int(self.add_eos_token)
        types = [0] * (len(ids) + n_special)
        if pair_ids is not None:
            types += [1] * (len(pair_ids) + n_special)
        return types

    def _decode_tokens(self, tokens: list[str]) -> str:
        text = "".join(fuse_byte_pieces([t.replace(SPIECE_UNDERLINE, " ") for t in tokens]))
        if self.add_prefix_space and text.startswith(" "):
            text = text[1:]
        return text
