"""Shape buckets: few shapes (few compiles), always enough room, never needless length."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mf_generate import buckets


@given(st.integers(1, 1000))
def test_batch_bucket_fits_and_wastes_less_than_half(batch):
    rows = buckets.batch_bucket(batch)
    assert batch <= rows < 2 * batch or rows == 1
    assert rows in (1, 2, 4, 8) or rows % 8 == 0


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_cache_bucket_is_a_multiple_of_64_or_the_model_limit(needed, extra):
    max_positions = needed + extra - 1
    length = buckets.cache_bucket(needed, max_positions)
    assert needed <= length <= max_positions
    assert length % 64 == 0 or length == max_positions
    assert length - needed < 64


@given(st.integers(1, 4096), st.integers(0, 4096))
def test_prompt_bucket_fits_in_the_room_and_is_a_power_of_two_or_the_room(length, spare):
    room = length + spare
    padded = buckets.prompt_bucket(length, room)
    assert length <= padded <= room
    assert padded == room or (padded >= 16 and padded & (padded - 1) == 0)


@given(st.integers(1, 2000), st.integers(1, 2000))
def test_prompt_lengths_of_one_bucket_share_one_prefill_shape(a, b):
    room = 4096
    same_power = max(16, 1 << (a - 1).bit_length()) == max(16, 1 << (b - 1).bit_length())
    if same_power:
        assert buckets.prompt_bucket(a, room) == buckets.prompt_bucket(b, room)


@given(st.integers(1, 2048), st.integers(1, 2048))
def test_a_longer_cache_is_reused_only_within_twice_the_need(cached, needed):
    if buckets.reusable(cached, needed):
        assert needed <= cached <= 2 * max(needed, 64)
