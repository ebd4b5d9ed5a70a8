"""Loss scaling: the host-side rule against MindSpore's own DynamicLossScaleUpdateCell, and the
strict reading of `runner_wrapper:`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_train.errors import TrainConfigError
from mf_train.loss_scale import LossScale, step_wrapper_from_config

ms = pytest.importorskip("mindspore")


@settings(max_examples=25, deadline=None)
@given(overflows=st.lists(st.booleans(), min_size=1, max_size=24),
       start=st.sampled_from([1.0, 8.0, 2.0 ** 16]), factor=st.sampled_from([2, 4]),
       window=st.integers(1, 5))
def test_dynamic_scale_follows_mindspore(overflows, start, factor, window):
    from mindspore import nn

    cell = nn.DynamicLossScaleUpdateCell(loss_scale_value=start, scale_factor=factor,
                                         scale_window=window)
    reference = ms.Parameter(ms.Tensor(start, ms.float32), name="scale")
    ours = LossScale(value=start, dynamic=True, scale_factor=factor, scale_window=window)
    for overflow in overflows:
        cell(reference, ms.Tensor(overflow))
        ours.update(finite=not overflow)
        assert ours.value == float(reference.asnumpy())


def test_fixed_scale_never_changes_and_state_round_trips():
    scale = LossScale(value=1024.0)
    for finite in (False, True, False):
        scale.update(finite)
    assert scale.value == 1024.0
    dynamic = LossScale(value=64.0, dynamic=True, scale_window=2)
    dynamic.update(True)
    assert LossScale.from_dict(dynamic.to_dict()) == dynamic


def test_runner_wrapper_of_mindformers_configs():
    wrapper = step_wrapper_from_config({
        "type": "MFTrainOneStepCell", "use_clip_grad": True, "max_grad_norm": 0.5,
        "scale_sense": {"type": "DynamicLossScaleUpdateCell", "loss_scale_value": 65536,
                        "scale_factor": 2, "scale_window": 1000}})
    assert wrapper.max_grad_norm == 0.5
    assert wrapper.loss_scale == LossScale(65536.0, True, 2.0, 1000)
    assert step_wrapper_from_config({}).loss_scale is None
    assert step_wrapper_from_config({"use_clip_grad": False}).max_grad_norm is None
    fixed = step_wrapper_from_config({"scale_sense": 1024}).loss_scale
    assert fixed == LossScale(1024.0)


@pytest.mark.parametrize(("section", "message"), [
    ({"max_grad_nrom": 1.0}, r"unknown key 'runner_wrapper.max_grad_nrom'; did you mean "
                             r"'runner_wrapper.max_grad_norm'\?"),
    ({"type": "TrainOneStep"}, r"runner_wrapper.type = 'TrainOneStep'; allowed: "),
    ({"max_grad_norm": 0}, r"max_grad_norm = 0; it must be a number > 0"),
    ({"scale_sense": {"type": "Dynamic"}}, r"scale_sense.type = 'Dynamic'; allowed: "),
    ({"scale_sense": {"scale_window": 0}}, r"scale_window = 0; it must be an integer >= 1"),
    ({"scale_sense": {"loss_scale": 2}}, r"unknown key 'runner_wrapper.scale_sense.loss_scale'"
                                         r"; did you mean .*loss_scale_value"),
    ({"scale_sense": 0.5}, r"scale_sense = 0.5; it must be >= 1"),
])
def test_bad_runner_wrapper_is_one_line(section, message):
    with pytest.raises(TrainConfigError, match=message) as info:
        step_wrapper_from_config(section)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)
