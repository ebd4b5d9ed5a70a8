"""The next-token choice: HF parity of every processor on fixtures made by transformers itself
(fixtures/make_processor_fixtures.py), and properties of sampling (no MindSpore)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.numpy import load_file

from mf_generate import GenerationConfig
from mf_generate.processors import apply_top_k, apply_top_p, choose, process

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = load_file(str(FIXTURES / "processors.safetensors"))
CASES = json.loads((FIXTURES / "processors.json").read_text())


def _seen(history: np.ndarray, vocab: int) -> np.ndarray:
    seen = np.zeros((history.shape[0], vocab), bool)
    np.put_along_axis(seen, history.astype(np.int64), True, axis=1)
    return seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_scores_match_transformers(case):
    logits, history = EXPECTED["logits"], EXPECTED["history"]
    config = GenerationConfig(**CASES[case])
    ours = process(logits, _seen(history, logits.shape[1]), config)
    theirs = EXPECTED[case]
    # Row 1 is full of ties: torch's sort order decides which tied token top-p drops, so
    # compare the kept values there; every other row must match position by position.
    np.testing.assert_allclose(np.sort(ours[1]), np.sort(theirs[1]), rtol=1e-6, atol=1e-6)
    rows = [0, 2, 3]
    np.testing.assert_array_equal(np.isneginf(ours[rows]), np.isneginf(theirs[rows]))
    finite = np.isfinite(theirs[rows])
    np.testing.assert_allclose(ours[rows][finite], theirs[rows][finite], rtol=1e-6, atol=1e-6)


def test_greedy_ignores_the_sampling_settings():
    logits = EXPECTED["logits"]
    config = GenerationConfig(do_sample=False, temperature=0.1, top_k=1, top_p=0.1)
    np.testing.assert_array_equal(process(logits, None, config), logits)


logit_rows = arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(2, 40)),
                    elements=st.floats(-20, 20, width=32))


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.integers(1, 50))
def test_top_k_keeps_at_least_k_and_only_the_largest(scores, k):
    kept = np.isfinite(apply_top_k(scores, k))
    for row, keep in zip(scores, kept, strict=True):
        assert keep.sum() >= min(k, row.size)
        if keep.any() and (~keep).any():
            assert row[keep].min() > row[~keep].max()  # ties at the k-th value all stay


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_prefix_reaching_p(scores, top_p):
    kept = np.isfinite(apply_top_p(scores, top_p))
    for row, keep in zip(scores, kept, strict=True):
        assert keep[row == row.max()].any()  # a most likely token always stays
        probs = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        # What is removed has total probability below 1 - top_p (up to float32 sums).
        assert probs[~keep].sum() <= 1 - top_p + 1e-5
        if keep.any() and (~keep).any():
            assert row[keep].min() >= row[~keep].max()


@settings(max_examples=30, deadline=None)
@given(logit_rows, st.integers(0, 2**32 - 1))
def test_a_seed_gives_the_same_draw_and_only_allowed_tokens(scores, seed):
    config = GenerationConfig(do_sample=True, top_k=3)
    filtered = process(scores, None, config)
    first = choose(filtered, config, np.random.default_rng(seed))
    again = choose(filtered, config, np.random.default_rng(seed))
    np.testing.assert_array_equal(first, again)
    assert np.isfinite(filtered[np.arange(len(first)), first]).all()


def test_draws_follow_the_softmax():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
    config = GenerationConfig(do_sample=True, top_k=0)
    rng = np.random.default_rng(0)
    draws = np.array([choose(logits, config, rng)[0] for _ in range(20000)])
    freq = np.bincount(draws, minlength=4) / draws.size
    # Binomial standard error at n=20000 is <= 0.0036; 4 sigma.
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.015)
