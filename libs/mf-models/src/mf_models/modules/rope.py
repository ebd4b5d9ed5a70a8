"""Rotary position embedding (Su et al. 2021, RoFormer), in the "rotate half" layout of HF
LLaMA: dims [0, D/2) pair with [D/2, D). MindFormers' LLaMA uses the same layout, so HF
weights load by renaming alone."""

from __future__ import annotations

import numpy as np
from mindspore import dtype as mstype
from mindspore import ops


def rope_tables(head_dim: int, max_positions: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables (max_positions, head_dim), float32.

    Computed in float32 as HF does (its inv_freq and angle matmul are float32), so the tables
    match transformers' to the last bit rather than to 1e-7.
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    inv_freq = np.float32(1.0) / (np.float32(theta) ** exponents)  # (D/2,)
    angles = np.outer(np.arange(max_positions, dtype=np.float32), inv_freq)  # (P, D/2)
    angles = np.concatenate([angles, angles], axis=-1)  # (P, D)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def apply_rope(x, cos, sin, fused=None):
    """x: (B, H, T, D); cos, sin: (B, 1, T, D). Returns x rotated by its position.

    `fused`: mf's one-kernel rotation (`fused_ops().rope`), used for float32 x; the built-in
    path below is seven kernels.
    """
    if fused is not None and x.dtype == mstype.float32:
        return fused(x, cos, sin)
    half = x.shape[-1] // 2
    rotated = ops.concat([-x[..., half:], x[..., :half]], -1)  # (B, H, T, D)
    return x * cos + rotated * sin
