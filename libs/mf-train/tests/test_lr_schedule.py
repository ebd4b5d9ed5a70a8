"""LR schedules: against MindSpore's own per-step schedule functions, and by property."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_train.errors import TrainConfigError
from mf_train.lr_schedule import learning_rate_at, learning_rates, make_schedule


@pytest.fixture(scope="module")
def ms_nn():
    nn = pytest.importorskip("mindspore.nn")
    return nn


def test_cosine_matches_mindspore_cosine_decay_lr(ms_nn):
    total = 37
    reference = ms_nn.cosine_decay_lr(1e-5, 3e-4, total, 1, total)
    schedule = make_schedule("cosine", 3e-4, total_steps=total, lr_end=1e-5)
    np.testing.assert_allclose(learning_rates(schedule, total), reference, rtol=1e-6)


def test_polynomial_matches_mindspore_polynomial_decay_lr(ms_nn):
    total = 25
    reference = ms_nn.polynomial_decay_lr(1e-3, 1e-5, total, 1, total, 2.0)
    schedule = make_schedule("PolynomialWithWarmUpLR", 1e-3, total_steps=total, lr_end=1e-5,
                             power=2.0)
    np.testing.assert_allclose(learning_rates(schedule, total), reference, rtol=1e-6)


def test_constant_with_warmup_matches_mindspore_warmup_lr(ms_nn):
    reference = ms_nn.warmup_lr(2e-4, 20, 1, 8)
    schedule = make_schedule("constant", 2e-4, warmup_steps=8)
    np.testing.assert_allclose(learning_rates(schedule, 20), reference, rtol=1e-6)


def test_linear_by_hand():
    # warmup 0 -> 1e-3 over 4 steps, then 1e-3 * (10 - step) / 6
    s = make_schedule("linear", 1e-3, warmup_steps=4, total_steps=10)
    expected = [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3 * 6 / 6, 1e-3 * 5 / 6, 1e-3 * 4 / 6,
                1e-3 * 3 / 6, 1e-3 * 2 / 6, 1e-3 / 6, 0.0, 0.0]
    np.testing.assert_allclose(learning_rates(s, 12), expected, rtol=1e-6, atol=1e-12)


def test_warmup_ratio_rounds_down_like_mindformers():
    s = make_schedule("cosine", 1e-3, warmup_ratio=0.03, total_steps=250)
    assert s.warmup_steps == 7  # int(250 * 0.03) = int(7.5)


def test_warmup_starts_at_warmup_lr_init():
    s = make_schedule("cosine", 1e-3, warmup_steps=10, warmup_lr_init=1e-4, total_steps=100)
    assert learning_rate_at(s, 0) == pytest.approx(1e-4)
    assert learning_rate_at(s, 5) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert learning_rate_at(s, 10) == pytest.approx(1e-3)


def test_cosine_with_restarts_restarts():
    s = make_schedule("cosine_with_restarts", 1.0, total_steps=100, num_cycles=2.0)
    assert learning_rate_at(s, 0) == pytest.approx(1.0)
    assert learning_rate_at(s, 25) == pytest.approx(0.5)
    assert learning_rate_at(s, 50) == pytest.approx(1.0)  # the restart


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(type="cosin", learning_rate=1e-3, total_steps=10), "allowed:"),
    (dict(type="cosine", learning_rate=0.0, total_steps=10), "learning_rate = 0.0"),
    (dict(type="cosine", learning_rate=1e-3), "needs total_steps"),
    (dict(type="cosine", learning_rate=1e-3, total_steps=10, warmup_ratio=1.5), "[0, 1]"),
    (dict(type="cosine", learning_rate=1e-3, total_steps=10, warmup_ratio=0.1,
          warmup_steps=3), "set one"),
    (dict(type="polynomial", learning_rate=1e-3, total_steps=10, lr_end=1e-2), "smaller"),
    (dict(type="constant", learning_rate=1e-3, warmup_steps=-1), "warmup_steps = -1"),
])
def test_bad_parameters_are_one_line_errors(kwargs, fragment):
    with pytest.raises(TrainConfigError) as info:
        make_schedule(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


schedules = st.sampled_from(["constant", "linear", "cosine", "polynomial",
                             "cosine_with_restarts"])


@settings(max_examples=150, deadline=None)
@given(kind=schedules, lr=st.floats(1e-6, 1.0), total=st.integers(1, 400),
       warmup_frac=st.floats(0.0, 1.0), end_frac=st.floats(0.0, 0.9))
def test_properties(kind, lr, total, warmup_frac, end_frac):
    warmup = int(total * warmup_frac)
    lr_end = lr * end_frac
    s = make_schedule(kind, lr, warmup_steps=warmup, total_steps=total, lr_end=lr_end)
    values = learning_rates(s, total + 5).astype(np.float64)
    assert np.all(np.isfinite(values))
    assert np.all(values >= -1e-12)
    assert np.all(values <= lr * (1 + 1e-6))
    # warmup rises linearly from warmup_lr_init (0) to the peak
    if warmup > 1:
        assert np.all(np.diff(values[:warmup]) > 0)
        assert values[0] == 0.0
    if kind in ("linear", "cosine", "polynomial") and warmup < total:
        after = values[warmup:total]
        assert np.all(np.diff(after) <= lr * 1e-6)  # never rises after warmup
        assert values[warmup] == pytest.approx(lr, rel=1e-5)
    if kind in ("cosine", "polynomial") and warmup < total:
        assert values[total] == pytest.approx(lr_end, rel=1e-5, abs=1e-12)  # ends at lr_end
    if kind == "constant":
        assert np.allclose(values[warmup:], lr, rtol=1e-6)


@given(step=st.integers(0, 1000))
def test_scalar_and_array_agree(step):
    s = make_schedule("cosine", 3e-4, warmup_steps=50, total_steps=800, lr_end=3e-5)
    assert math.isclose(learning_rate_at(s, step), float(learning_rates(s, 1, start=step)[0]),
                        rel_tol=1e-6)


def test_the_array_drives_mindspore_adamw_step_by_step(ms_nn):
    import mindspore as ms

    schedule = make_schedule("cosine", 1e-2, warmup_steps=2, total_steps=6)
    lrs = learning_rates(schedule, 6)
    weight = ms.Parameter(ms.Tensor(np.zeros(3, np.float32)), name="w")
    optimizer = ms_nn.AdamWeightDecay([weight], learning_rate=ms.Tensor(lrs))
    seen = []
    for _ in range(6):
        seen.append(float(optimizer.get_lr().asnumpy()))  # the rate of the coming update
        optimizer((ms.Tensor(np.ones(3, np.float32)),))
    np.testing.assert_allclose(seen, lrs, rtol=1e-6)
