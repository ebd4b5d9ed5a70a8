"""The data and optimizer settings shared by the parallel-training test and its msrun worker."""

from __future__ import annotations

import numpy as np

STEPS = 3
ROWS = 4  # global batch: rows per optimizer step, split over dp ranks and micro batches
LENGTH = 16  # tokens per row the model reads (each row holds LENGTH + 1)
LR = 5e-3
# Two prompts of unequal length (left-padded into one batch) and greedy continuations.
PROMPTS = [[5, 17, 300, 42, 9, 811], [77, 3, 500]]
NEW_TOKENS = 12
# gpt2_debug keeps GPT-2's special ids (50256), outside its 1024-token vocabulary: pad with 0.
GENERATE_OPTIONS = {"max_new_tokens": NEW_TOKENS, "eos_token_id": None, "pad_token_id": 0,
                    "do_sample": False}


def adamw() -> dict[str, float]:
    # eps 1e-6, not 1e-8: a gradient element within float32 noise of zero would otherwise take
    # a full +-lr step in either direction in the first AdamW update (m / sqrt(v) = sign(g)).
    return {"beta1": 0.9, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.1}


def global_batches(vocab_size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1234)
    return [rng.integers(0, vocab_size, (ROWS, LENGTH + 1)).astype(np.int32)
            for _ in range(STEPS)]
