"""Value types shared by the tokenizers: added tokens, the call result, checked inputs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mf_tokenize.errors import TokenizerConfigError, TokenizerInputError

# A lone UTF-16 surrogate is not a character: it is how Python carries undecodable bytes
# (surrogateescape, e.g. in sys.argv), and sentencepiece fails on it with a C++ cast error.
_SURROGATE = re.compile("[\ud800-\udfff]")

SPECIAL_TOKEN_ROLES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)


@dataclass(frozen=True)
class AddedToken:
    """A token matched in raw text before the model sees it (HF's AddedToken fields).

    ``lstrip`` / ``rstrip`` swallow the whitespace on that side of the match.
    """

    content: str
    special: bool = True
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False
    single_word: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content, "lstrip": self.lstrip, "normalized": self.normalized,
            "rstrip": self.rstrip, "single_word": self.single_word, "special": self.special,
        }

    @classmethod
    def from_json(cls, value: Any, special: bool = True) -> AddedToken:
        if isinstance(value, AddedToken):
            return value
        if isinstance(value, str):
            return cls(value, special=special)
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return cls(
                value["content"], special=bool(value.get("special", special)),
                lstrip=bool(value.get("lstrip", False)), rstrip=bool(value.get("rstrip", False)),
                normalized=bool(value.get("normalized", False)),
                single_word=bool(value.get("single_word", False)),
            )
        raise TokenizerConfigError(f"a token must be a string or {{'content': ...}}, got {value!r}")


class BatchEncoding(dict):
    """The result of calling a tokenizer: a dict, whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise TokenizerInputError(
            f"{where} must be a str, got {type(value).__name__} {shown}"
        )
    if not value.isascii():
        bad = _SURROGATE.search(value)
        if bad is not None:
            raise TokenizerInputError(
                f"{where} holds a lone surrogate {bad.group()!r} at character {bad.start()}, "
                "not text (undecodable bytes?); decode the input as UTF-8 first"
            )
    return value


def as_id_list(ids: Any) -> list[int]:
    """Token ids from a list, a numpy array, a MindSpore tensor or a single int."""
    if hasattr(ids, "asnumpy"):  # mindspore.Tensor, without importing MindSpore
        ids = ids.asnumpy()
    if isinstance(ids, np.ndarray):
        if ids.ndim > 1:
            raise TokenizerInputError(
                f"decode takes one sequence of ids, got an array of shape {ids.shape}; "
                "use batch_decode for a batch"
            )
        return [int(i) for i in ids.tolist()]
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        return [int(ids)]
    if isinstance(ids, Iterable) and not isinstance(ids, (str, bytes)):
        out = []
        for i in ids:
            if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
                out.append(int(i))
            else:
                raise TokenizerInputError(f"token ids must be ints, got {type(i).__name__} {i!r}")
        return out
    raise TokenizerInputError(f"token ids must be a list of ints, got {type(ids).__name__}")


def clean_up_tokenization(text: str) -> str:
    """Hugging Face's optional decode clean-up: no space before punctuation and contractions."""
    for dirty, clean in (
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ):
        text = text.replace(dirty, clean)
    return text
