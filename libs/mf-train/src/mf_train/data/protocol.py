"""What mf-train needs of a tokenizer: `encode(str) -> list[int]` and an `eos_token_id`.

mf-tokenize's tokenizers (and Hugging Face's) satisfy it without mf-train importing them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mf_train.errors import TrainConfigError


@runtime_checkable
class TokenizerLike(Protocol):
    eos_token_id: int | None

    def encode(self, text: str) -> list[int]: ...


def check_tokenizer(tokenizer: object) -> int:
    """Return the tokenizer's eos id, or fail in one line saying what is missing."""
    if not callable(getattr(tokenizer, "encode", None)):
        raise TrainConfigError(f"tokenizer {type(tokenizer).__name__} has no encode(text) method; "
                               "mf-train needs encode(str) -> list[int] and eos_token_id")
    eos = getattr(tokenizer, "eos_token_id", None)
    if not isinstance(eos, int) or isinstance(eos, bool) or eos < 0:
        raise TrainConfigError(f"tokenizer {type(tokenizer).__name__} has eos_token_id = {eos!r}; "
                               "packing documents needs a non-negative integer end-of-text id")
    return eos
