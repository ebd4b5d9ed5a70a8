"""Shape buckets: every new input shape under `ms.jit` costs a compile (2-5 s measured here), so
generate() rounds the batch, the prompt and the cache length up to a few sizes.

* batch: 1, 2, 4, 8, then multiples of 8. Extra rows repeat a real row and are dropped; a
  decode step streams every weight once whatever the batch, so they cost little.
* cache length (max_length): prompt + new tokens rounded up to a multiple of 64, capped at
  the model's positions. A step function compiled for a longer cache of the same
  batch is reused when it is at most twice as long (the masked slots cost attention work).
* prompt: left-padded to 16, 32, 64, ... (powers of two from 16) within the room the cache
  leaves; the prefill graph compiles once per prompt bucket.
"""

from __future__ import annotations

BATCH_STEP = 8  # above 8 rows, buckets are multiples of 8
MIN_PROMPT_BUCKET = 16
CACHE_STEP = 64
REUSE_LONGER_CACHE_UP_TO = 2.0


def batch_bucket(batch: int) -> int:
    if batch < 1:
        raise ValueError(f"batch({batch}) must be >= 1")
    if batch <= BATCH_STEP:
        return 1 << (batch - 1).bit_length()
    return -(-batch // BATCH_STEP) * BATCH_STEP


def prompt_bucket(length: int, room: int) -> int:
    """The padded prompt length: the power of two >= length (from 16), but no more than the
    `room` the cache leaves before the new tokens (cache length - new tokens), so padding never
    makes the cache longer. Prefill shapes are thus powers of two or `room`."""
    if length < 1 or length > room:
        raise ValueError(f"prompt({length}) must be in [1, room({room})]")
    return min(max(MIN_PROMPT_BUCKET, 1 << (length - 1).bit_length()), room)


def cache_bucket(needed: int, max_positions: int) -> int:
    """The cache length for `needed` slots: a multiple of 64, at most max_positions."""
    if needed < 1 or needed > max_positions:
        raise ValueError(f"needed({needed}) must be in [1, {max_positions}]")
    return min(-(-needed // CACHE_STEP) * CACHE_STEP, max_positions)


def reusable(cached_length: int, needed: int) -> bool:
    """Whether a cache of `cached_length` slots may serve a request needing `needed`."""
    return needed <= cached_length <= REUSE_LONGER_CACHE_UP_TO * max(needed, CACHE_STEP)
