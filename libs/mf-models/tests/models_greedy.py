"""Test-only greedy decoding (sampling and the real loop belong to mf-generate)."""

from __future__ import annotations

import numpy as np
from mindspore import Tensor


def greedy_with_cache(model, prompt_ids, prompt_mask, new_tokens, max_length=None):
    """Prefill the left-padded prompt, then one-token steps over the static cache."""
    prompt_ids = np.asarray(prompt_ids, np.int32)
    batch, length = prompt_ids.shape
    max_length = max_length or length + new_tokens
    cache = model.new_cache(batch, max_length)
    step = model.step_function(cache)
    key_mask = np.zeros((batch, max_length), np.int32)
    key_mask[:, :length] = prompt_mask
    positions = model.prefill_positions(prompt_mask)
    logits = step(prompt_ids, positions, 0, key_mask).asnumpy()
    out = [prompt_ids]
    for i in range(new_tokens):
        token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]  # (B, 1)
        out.append(token)
        if i == new_tokens - 1:
            break
        positions = model.next_positions(positions)
        key_mask[:, length + i] = 1
        logits = step(token, positions, length + i, key_mask).asnumpy()
    return np.concatenate(out, axis=1)


def greedy_recompute(model, prompt_ids, prompt_mask, new_tokens):
    """The same decoding by recomputing the whole sequence each step (no cache)."""
    ids = np.asarray(prompt_ids, np.int32)
    mask = np.asarray(prompt_mask, np.int32)
    for _ in range(new_tokens):
        logits = model(Tensor(ids), None, Tensor(mask)).asnumpy()
        token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]
        ids = np.concatenate([ids, token], axis=1)
        mask = np.concatenate([mask, np.ones_like(token)], axis=1)
    return ids
