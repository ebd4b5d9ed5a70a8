"""Padding, truncation and tensor conversion: pure functions over lists of token ids.

The rules are those of Hugging Face tokenizers (checked against it in the tests): truncation
keeps the special tokens and cuts the text, longest sequence first for pairs; padding fills
with the pad id on the tokenizer's padding side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mf_tokenize.errors import TokenizerConfigError
from mf_tokenize.tokens import BatchEncoding

_PADDING_CHOICES = "False, True, 'longest', 'max_length' or 'do_not_pad'"
_TRUNCATION_CHOICES = (
    "None, False, True, 'longest_first', 'only_first', 'only_second' or 'do_not_truncate'"
)
_TENSOR_CHOICES = "None, 'np' or 'ms'"


def pad(values: list[int], target: int, fill: int | None, side: str) -> list[int]:
    """``values`` filled with ``fill`` up to ``target`` on ``side`` ("left" or "right")."""
    missing = target - len(values)
    if missing <= 0:
        return values
    return values + [fill] * missing if side == "right" else [fill] * missing + values


def padding_strategy(padding: bool | str) -> str:
    if padding is False or padding is None or padding == "do_not_pad":
        return "do_not_pad"
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise TokenizerConfigError(f"padding={padding!r}; allowed: {_PADDING_CHOICES}")


def truncation_strategy(truncation: bool | str | None, max_length: int | None) -> str:
    if truncation is None:
        # Hugging Face: a max_length alone truncates, longest first.
        return "do_not_truncate" if max_length is None else "longest_first"
    if truncation is False or truncation == "do_not_truncate":
        return "do_not_truncate"
    if truncation is True:
        return "longest_first"
    if truncation in ("longest_first", "only_first", "only_second"):
        return truncation
    raise TokenizerConfigError(f"truncation={truncation!r}; allowed: {_TRUNCATION_CHOICES}")


def truncate(ids: list[int], pair_ids: list[int] | None, budget: int, strategy: str,
             side: str = "right") -> tuple[list[int], list[int] | None]:
    """Cut one sequence (or a pair) to ``budget`` tokens as tokenizers' truncation does.

    ``strategy`` is "longest_first", "only_first" or "only_second"; ``side`` is where the
    tokens go from ("right" keeps the beginning).
    """
    n1, n2 = len(ids), len(pair_ids or [])
    excess = n1 + n2 - budget
    if excess <= 0:
        return ids, pair_ids
    if budget == 0:  # tokenizers empties both sequences, whatever the strategy
        return [], (None if pair_ids is None else [])
    if pair_ids is None:
        if strategy == "only_second":
            raise TokenizerConfigError(
                f"truncation='only_second' needs a text_pair, and this sequence of {n1} "
                f"tokens must lose {excess}; use truncation=True for a single text"
            )
        keep1, keep2 = budget, 0
    elif strategy == "only_first":
        if excess >= n1:  # tokenizers refuses to empty a sequence
            raise TokenizerConfigError(
                f"truncation='only_first' cannot fit the pair: the first sequence has "
                f"{n1} tokens but {excess} must go; use truncation='longest_first'"
            )
        keep1, keep2 = n1 - excess, n2
    elif strategy == "only_second":
        if excess >= n2:  # tokenizers refuses to empty a sequence
            raise TokenizerConfigError(
                f"truncation='only_second' cannot fit the pair: the second sequence has "
                f"{n2} tokens but {excess} must go; use truncation='longest_first'"
            )
        keep1, keep2 = n1, n2 - excess
    else:
        # Longest first, as tokenizers does it: the longer sequence gives up tokens
        # until both are as long, then both shrink to half the budget each.
        keep1, keep2 = n1, n2
        half = budget // 2
        if n1 > half and n2 > half:
            keep1, keep2 = (budget - half, half) if n1 > n2 else (half, budget - half)
        elif n1 > n2:
            keep1 = budget - n2
        else:
            keep2 = budget - n1
    return _cut(ids, keep1, side), (None if pair_ids is None else _cut(pair_ids, keep2, side))


def _cut(ids: list[int], keep: int, side: str) -> list[int]:
    if keep >= len(ids):
        return ids
    return ids[:keep] if side == "right" else ids[len(ids) - keep:]


def to_tensors(out: BatchEncoding, kind: str, batched: bool) -> BatchEncoding:
    """Lists of ids to (batch, seq) int64 arrays: numpy for "np", MindSpore for "ms"."""
    if kind not in ("np", "ms"):
        raise TokenizerConfigError(f"return_tensors={kind!r}; allowed: {_TENSOR_CHOICES}")
    for key, value in list(out.items()):
        rows = value if batched else [value]
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise TokenizerConfigError(
                f"return_tensors={kind!r} needs sequences of one length, got lengths "
                f"{sorted(lengths)}; pass padding=True or padding='max_length'"
            )
        width = len(rows[0]) if rows else 0
        array = np.array(rows, dtype=np.int64).reshape(len(rows), width)  # (batch, seq)
        if kind == "ms":
            out[key] = _mindspore().Tensor(array)
        else:
            out[key] = array
    return out


def _mindspore() -> Any:
    """MindSpore, imported only when ``return_tensors="ms"`` asks for it.

    mf_tokenize does not depend on MindSpore: this lazy import is the one exception the layer
    contract allows (see `ignore_imports` in the root pyproject.toml), and a missing install
    is a one-line error.
    """
    try:
        import mindspore
    except ImportError:
        raise TokenizerConfigError(
            "return_tensors='ms' needs MindSpore, which is not installed; use "
            "return_tensors='np' or install mindspore"
        ) from None
    return mindspore
