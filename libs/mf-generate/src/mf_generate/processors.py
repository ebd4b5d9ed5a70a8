"""Choosing the next token from the last logits, in numpy on the host.

The order and the arithmetic are Hugging Face's (`generation/logits_process.py`):
repetition penalty, then, when sampling, temperature -> top-k -> top-p, then softmax and a
draw. Removed tokens get -inf. The logits are (B, V) float32, one row per sequence.
"""

from __future__ import annotations

import numpy as np

from mf_generate.config import GenerationConfig


def apply_repetition_penalty(scores: np.ndarray, seen: np.ndarray, penalty: float) -> np.ndarray:
    """Penalise every token already in the row (seen: bool (B, V)): divide a positive logit
    by `penalty`, multiply a negative one (CTRL, Keskar et al. 2019; HF's formula)."""
    if penalty == 1.0:
        return scores
    penalised = np.where(scores < 0, scores * np.float32(penalty), scores / np.float32(penalty))
    return np.where(seen, penalised, scores).astype(np.float32)


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return scores
    return (scores / np.float32(temperature)).astype(np.float32)


def apply_top_k(scores: np.ndarray, top_k: int) -> np.ndarray:
    """Keep the logits >= the k-th largest of each row (ties at the k-th value stay, as HF)."""
    vocab = scores.shape[-1]
    if top_k <= 0 or top_k >= vocab:
        return scores
    kth = np.partition(scores, vocab - top_k, axis=-1)[:, vocab - top_k, None]  # (B, 1)
    return np.where(scores < kth, np.float32(-np.inf), scores)


def apply_top_p(scores: np.ndarray, top_p: float) -> np.ndarray:
    """Nucleus filtering (Holtzman et al. 2019) as HF does it: sort ascending, drop the tokens
    whose cumulative probability is <= 1 - top_p, always keep the most likely one."""
    if top_p >= 1.0:
        return scores
    out = scores.copy()
    for row in range(scores.shape[0]):
        # Only finite logits can survive; sorting just them (after top-k usually a few dozen)
        # instead of the whole vocabulary gives the same cumulative sums (exp(-inf) is 0).
        alive = np.flatnonzero(np.isfinite(scores[row]))
        order = alive[np.argsort(scores[row, alive], kind="stable")]  # ascending
        probs = _softmax(scores[row, order])
        remove = np.cumsum(probs, dtype=np.float32) <= np.float32(1 - top_p)
        remove[-1] = False
        out[row, order[remove]] = -np.inf
    return out


def process(scores: np.ndarray, seen: np.ndarray | None, config: GenerationConfig) -> np.ndarray:
    """The logits the next token is chosen from, after every processor the config asks for."""
    scores = np.asarray(scores, dtype=np.float32)
    if seen is not None:
        scores = apply_repetition_penalty(scores, seen, config.repetition_penalty)
    if config.do_sample:
        scores = apply_temperature(scores, config.temperature)
        scores = apply_top_k(scores, config.top_k)
        scores = apply_top_p(scores, config.top_p)
    return scores


def choose(scores: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> np.ndarray:
    """The next token of each row (B,) int32: argmax, or a draw from softmax(scores)."""
    if not config.do_sample:
        return scores.argmax(-1).astype(np.int32)
    probs = _softmax(scores.astype(np.float64))  # (B, V)
    cumulative = np.cumsum(probs, axis=-1)
    draws = rng.random(scores.shape[0]) * cumulative[:, -1]
    tokens = np.array([np.searchsorted(c, u, side="right") for c, u in zip(cumulative, draws,
                                                                           strict=True)])
    # A draw can only land on a token of non-zero probability; clip guards the float edge.
    return np.minimum(tokens, scores.shape[-1] - 1).astype(np.int32)


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
