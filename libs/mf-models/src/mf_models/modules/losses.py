"""Training losses shared by the task heads, jit- and grad-friendly (no host-side checks)."""

from __future__ import annotations

from mindspore import dtype as mstype
from mindspore import ops


def cross_entropy(logits, labels, ignore_index: int = -100):
    """Mean cross-entropy of logits (N, C) against integer labels (N,), ignoring
    `ignore_index` (PyTorch's CrossEntropyLoss with its default mean over the kept rows)."""
    valid = labels != ignore_index
    safe = ops.where(valid, labels, ops.zeros_like(labels)).astype(mstype.int32)
    log_probs = ops.log_softmax(ops.cast(logits, mstype.float32), -1)
    picked = ops.gather_elements(log_probs, 1, safe.reshape(-1, 1))  # (N, 1)
    weights = ops.cast(valid, mstype.float32)
    return -(picked.reshape(-1) * weights).sum() / ops.maximum(weights.sum(), 1.0)
