"""The ChatGLM tokenizers, after the published THUDM code (no transformers class exists).

ChatGLMTokenizer (GLM-6B, THUDM/chatglm-6b ``tokenization_chatglm.py``, ``ice_text.model``):
newlines are written ``<n>``, tabs ``<|tab|>`` and runs of 2..80 spaces ``<|blank_N|>``
before SentencePiece sees the text; ids are SentencePiece ids shifted by ``num_image_tokens``
(20000 in the first release, 0 in the final tokenizer_config.json); a sequence ends with
``[gMASK] <sop>``; decoding undoes the whitespace tokens. Text goes to SentencePiece whole, as
in the published ``SPTokenizer.encode`` (the command tokens are pieces of its model).

ChatGLM2Tokenizer (THUDM/chatglm2-6b, ``tokenizer.model``): plain SentencePiece; five tokens
``[MASK] [gMASK] [sMASK] sop eop`` get the ids just above the SentencePiece vocabulary; a
sequence starts with ``[gMASK] sop``; the pad token is ``<unk>``. As in the published
``SPTokenizer.encode``, special tokens written in the text are not matched.
"""

from __future__ import annotations

import re
from typing import Any

from mf_tokenize.base import AddedToken
from mf_tokenize.errors import CorruptVocabError
from mf_tokenize.sentencepiece_base import SentencePieceTokenizer

MAX_BLANK_LENGTH = 80  # THUDM/chatglm-6b: SPTokenizer(max_blank_length=80)
_BLANK_RUN = re.compile(f" {{2,{MAX_BLANK_LENGTH}}}")
_BLANK_TOKEN = re.compile(r"<\|blank_(\d+)\|>")
GLM_SPECIAL_TOKENS = ("[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>",
                      "<dBLOCK>")


def encode_whitespace(text: str) -> str:
    """GLM-6B's text preprocessing: \\n -> <n>, \\t -> <|tab|>, N spaces -> <|blank_N|>."""
    text = text.replace("\n", "<n>").replace("\t", "<|tab|>")
    # Longest runs first, 80 at a time, as the published loop from 80 down to 2 does.
    return _BLANK_RUN.sub(lambda m: f"<|blank_{len(m.group())}|>", text)


def decode_whitespace(text: str) -> str:
    text = text.replace("<n>", "\n").replace("<|tab|>", "\t")
    return _BLANK_TOKEN.sub(
        lambda m: " " * int(m.group(1)) if 2 <= int(m.group(1)) <= MAX_BLANK_LENGTH
        else m.group(), text)


class ChatGLMTokenizer(SentencePieceTokenizer):
    vocab_files = {"vocab_file": "ice_text.model"}
    padding_side = "left"
    # The command tokens are user-defined pieces of ice_text.model: SentencePiece itself
    # finds them in the text, exactly as the published SPTokenizer.encode does.
    match_added_tokens_in_text = False

    def __init__(
        self,
        model: bytes,
        *,
        bos_token: str | AddedToken | None = "<sop>",
        eos_token: str | AddedToken | None = "<eop>",
        end_token: str = "</s>",
        mask_token: str | AddedToken | None = "[MASK]",
        gmask_token: str = "[gMASK]",
        unk_token: str | AddedToken | None = "<unk>",
        pad_token: str | AddedToken | None = "<pad>",
        num_image_tokens: int = 0,
        remove_space: bool = False,
        do_lower_case: bool = False,
        **kwargs: Any,
    ):
        self.num_image_tokens = int(num_image_tokens)
        self.remove_space = bool(remove_space)
        self.do_lower_case = bool(do_lower_case)
        self.end_token = end_token
        self.gmask_token = gmask_token
        super().__init__(model, bos_token=bos_token, eos_token=eos_token, mask_token=mask_token,
                         unk_token=unk_token, pad_token=pad_token, **kwargs)
        for token in GLM_SPECIAL_TOKENS:
            if self._model_token_to_id(token) is not None:
                self._register(token, special=True)
        for token in (gmask_token, self.bos_token, self.eos_token):
            if token is None or self._model_token_to_id(token) is None:
                raise CorruptVocabError(
                    f"{self.source} has no {token!r} piece, which every ChatGLM-6B "
                    "sequence needs; is it ChatGLM-6B's ice_text.model?"
                )

    def _config_extras(self) -> dict[str, Any]:
        return {**super()._config_extras(), "num_image_tokens": self.num_image_tokens,
                "end_token": self.end_token, "gmask_token": self.gmask_token,
                "remove_space": self.remove_space, "do_lower_case": self.do_lower_case}

    @property
    def vocab_size(self) -> int:
        return self.num_image_tokens + self.sp_size

    @property
    def gmask_token_id(self) -> int:
        return self._token_to_id(self.gmask_token)

    def _model_vocab(self) -> dict[str, int]:
        vocab = {f"<image_{i}>": i for i in range(self.num_image_tokens)}
        for i in range(self.sp_size):
            vocab[self.sp.id_to_piece(i)] = i + self.num_image_tokens
        return vocab

    def _model_token_to_id(self, token: str) -> int | None:
        if token.startswith("<image_") and token.endswith(">") and token[7:-1].isdigit():
            index = int(token[7:-1])
            return index if index < self.num_image_tokens else None
        index = self._sp_piece_id(token)
        return None if index is None else index + self.num_image_tokens

    def _model_id_to_token(self, index: int) -> str | None:
        if 0 <= index < self.num_image_tokens:
            return f"<image_{index}>"
        return super()._model_id_to_token(index - self.num_image_tokens)

    def _preprocess(self, text: str) -> str:
        """Published ChatGLMTokenizer.preprocess_text, then the whitespace tokens."""
        if self.remove_space:
            text = " ".join(text.strip().split())
        if self.do_lower_case:
            text = text.lower()
        return encode_whitespace(text)

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        offset = self.num_image_tokens
        ids = self.sp.encode(self._preprocess(text))
        return [i + offset for i in ids] if offset else ids

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        return self.sp.encode(self._preprocess(text), out_type=str)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        out = ids + [self.gmask_token_id, self.bos_token_id]
        if pair_ids is not None:
            out += pair_ids + [self.eos_token_id]
        return out

    def _decode_ids(self, ids: list[int]) -> str:
        # Published: drop pad ids and image ids, SentencePiece-decode, undo the whitespace.
        offset = self.num_image_tokens
        pad = self.pad_token_id
        text_ids = [i - offset for i in ids if i != pad and i >= offset]
        for i in text_ids:
            if i >= self.sp_size:
                self._id_to_token_strict(i + offset)  # one-line error for an unknown id
        return decode_whitespace(self.sp.decode(text_ids))

    def _decode_tokens(self, tokens: list[str]) -> str:
        return decode_whitespace(self.sp.decode_pieces(tokens))


class ChatGLM2Tokenizer(SentencePieceTokenizer):
    vocab_files = {"vocab_file": "tokenizer.model"}
    padding_side = "left"
    match_added_tokens_in_text = False
    #: THUDM/chatglm2-6b SPTokenizer: these take the ids after the SentencePiece vocabulary.
    COMMAND_TOKENS = ("[MASK]", "[gMASK]", "[sMASK]", "sop", "eop")

    def __init__(
        self,
        model: bytes,
        *,
        unk_token: str | AddedToken | None = "<unk>",
        eos_token: str | AddedToken | None = "</s>",
        bos_token: str | AddedToken | None = "<s>",
        pad_token: str | AddedToken | None = "<unk>",
        added_tokens: dict[int, AddedToken] | None = None,
        **kwargs: Any,
    ):
        super().__init__(model, unk_token=unk_token, eos_token=eos_token, bos_token=bos_token,
                         pad_token=pad_token, **kwargs)
        for offset, token in enumerate(self.COMMAND_TOKENS):
            self._set_added(self.sp_size + offset, AddedToken(token))
        for token_id, token in (added_tokens or {}).items():
            self._set_added(int(token_id), AddedToken.from_json(token))

    @property
    def vocab_size(self) -> int:
        return self.sp_size + len(self.COMMAND_TOKENS)

    def get_command(self, token: str) -> int:
        """Id of a command token (``[gMASK]``, ``sop`` ...), as the published code names it."""
        return self._added_ids[token]

    def get_prefix_tokens(self) -> list[int]:
        return [self.get_command("[gMASK]"), self.get_command("sop")]

    def _encode_chunk(self, text: str, at_start: bool) -> list[int]:
        return self.sp.encode(text)

    def _tokenize_chunk(self, text: str, at_start: bool) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def build_inputs_with_special_tokens(self, ids, pair_ids=None):
        out = self.get_prefix_tokens() + ids
        if pair_ids is not None:
            out += pair_ids + [self.eos_token_id]
        return out

    def _decode_ids(self, ids: list[int]) -> str:
        # Published: command tokens, BOS, EOS and pad (= unk) turn into "" when decoding.
        hidden = {self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id()}
        kept = []
        for i in ids:
            if i >= self.sp_size or i < 0:
                self._id_to_token_strict(i)  # one-line error for an unknown id
            elif i not in hidden:
                kept.append(i)
        return self.sp.decode(kept)

    def _decode_tokens(self, tokens: list[str]) -> str:
        return self._decode_ids([self._token_to_id(t) for t in tokens
                                 if self._token_to_id(t) is not None])
