"""Packing token streams into fixed-length training samples.

Documents are joined with the end-of-text id after each, then cut into non-overlapping
samples of seq_length + 1 tokens: the model reads tokens [0, seq_length) and predicts
[1, seq_length] (the shift by one). The tail shorter than a sample is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from mf_train.data.protocol import check_tokenizer
from mf_train.errors import TrainConfigError


def tokenize_documents(documents: Iterable[str], tokenizer: object) -> Iterator[list[int]]:
    """Each document's token ids, followed by the tokenizer's eos id."""
    eos = check_tokenizer(tokenizer)
    for text in documents:
        ids = list(tokenizer.encode(text))  # type: ignore[attr-defined]
        ids.append(eos)
        yield ids


def pack_sequences(token_lists: Iterable[list[int]], seq_length: int) -> np.ndarray:
    """(N, seq_length + 1) int32 samples cut from the concatenated token lists."""
    if not isinstance(seq_length, int) or isinstance(seq_length, bool) or seq_length < 1:
        raise TrainConfigError(f"seq_length = {seq_length!r}; it must be an integer >= 1")
    width = seq_length + 1
    chunks: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.int64)
    for ids in token_lists:
        if not ids:
            continue
        carry = np.concatenate([carry, np.asarray(ids, dtype=np.int64)])
        usable = (carry.size // width) * width
        if usable:
            chunks.append(carry[:usable].reshape(-1, width))  # (n, seq_length + 1)
            carry = carry[usable:]
    if not chunks:
        return np.zeros((0, width), dtype=np.int32)
    samples = np.concatenate(chunks)
    if samples.min() < 0 or samples.max() > np.iinfo(np.int32).max:
        raise TrainConfigError("token ids must lie in [0, 2**31); the tokenizer returned "
                               f"{samples.min()}..{samples.max()}")
    return samples.astype(np.int32)
