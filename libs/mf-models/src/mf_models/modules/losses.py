"""Training losses shared by the models and mf-train, jit- and grad-friendly (no host-side
checks): `token_nll` is the one loss; the heads' cross-entropy reduces it."""

from __future__ import annotations

from mindspore import dtype as mstype
from mindspore import ops


def token_nll(logits, targets):
    """Per-token negative log-likelihood (B, T) of int32 targets (B, T) under logits (B, T, V).

    The one training loss of mf: `CausalLM.loss`, the task heads' `cross_entropy` and
    mf-train's compiled train and eval steps all reduce it.
    """
    b, t, v = logits.shape
    log_probs = ops.log_softmax(ops.cast(logits, mstype.float32).reshape(b * t, v), -1)
    picked = ops.gather_elements(log_probs, 1, targets.reshape(b * t, 1))  # (B*T, 1)
    return -picked.reshape(b, t)


def cross_entropy(logits, labels, ignore_index: int = -100):
    """Mean cross-entropy of logits (N, C) against integer labels (N,), ignoring
    `ignore_index` (PyTorch's CrossEntropyLoss with its default mean over the kept rows)."""
    n, c = logits.shape
    valid = labels != ignore_index
    safe = ops.where(valid, labels, ops.zeros_like(labels)).astype(mstype.int32)
    weights = ops.cast(valid, mstype.float32)
    nll = token_nll(logits.reshape(1, n, c), safe.reshape(1, n)).reshape(-1)  # (N,)
    return (nll * weights).sum() / ops.maximum(weights.sum(), 1.0)
