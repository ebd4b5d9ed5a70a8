"""Training losses shared by the task heads (LM, classification, CLIP's contrastive loss)."""

from __future__ import annotations

from mindspore import dtype as mstype
from mindspore import ops


def cross_entropy(logits, targets, ignore_index: int = -100):
    """Mean cross-entropy of logits (N, C) against class ids (N,); targets equal to
    `ignore_index` count for nothing (torch's `cross_entropy(..., ignore_index=-100)`)."""
    valid = targets != ignore_index
    safe = ops.where(valid, targets, ops.zeros_like(targets))
    log_probs = ops.log_softmax(ops.cast(logits, mstype.float32), -1)
    picked = ops.gather_elements(log_probs, 1, safe.reshape(-1, 1).astype(mstype.int32))
    weights = ops.cast(valid, mstype.float32)
    return -(picked.reshape(-1) * weights).sum() / ops.maximum(weights.sum(), 1.0)
