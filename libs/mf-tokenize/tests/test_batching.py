"""Truncation and padding as pure functions, against the Rust tokenizers' own truncation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_tokenize import TokenizerConfigError, batching


@pytest.fixture(scope="module")
def rust():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, **{str(i): i for i in range(1, 100)}},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


@settings(max_examples=150, deadline=None)
@given(n1=st.integers(1, 40), n2=st.integers(0, 40), budget=st.integers(0, 60),
       strategy=st.sampled_from(["longest_first", "only_first", "only_second"]),
       side=st.sampled_from(["right", "left"]))
def test_truncation_matches_tokenizers(rust, n1, n2, budget, strategy, side):
    ids = list(range(1, n1 + 1))
    pair = list(range(50, 50 + n2)) if n2 else None
    rust.enable_truncation(budget, strategy=strategy, direction=side)
    try:
        want = rust.encode(" ".join(map(str, ids)), " ".join(map(str, pair)) if pair else None)
    except Exception:  # noqa: BLE001 - the reference refuses: we must refuse too
        with pytest.raises(TokenizerConfigError, match=f"truncation='{strategy}' (cannot|needs)"):
            batching.truncate(ids, pair, budget, strategy, side)
        return
    got_ids, got_pair = batching.truncate(ids, pair, budget, strategy, side)
    assert got_ids + (got_pair or []) == want.ids


@given(st.lists(st.integers(0, 9), max_size=10), st.integers(0, 15),
       st.sampled_from(["left", "right"]))
def test_padding_keeps_the_values_on_their_side(values, target, side):
    padded = batching.pad(values, target, -1, side)
    assert len(padded) == max(target, len(values))
    body = padded[len(padded) - len(values):] if side == "left" else padded[:len(values)]
    assert body == values and padded.count(-1) == len(padded) - len(values)
