"""Loss scaling for fp16 compute, kept on the host: the graph gets the scale as a tensor input
and reports whether the gradients were finite; the update rule below is plain Python.

The rule is MindSpore's `DynamicLossScaleUpdateCell` (what MindFormers' run YAMLs name in
`runner_wrapper.scale_sense`): on an overflow the step is skipped and the scale divided by
`scale_factor` (never below 1); after `scale_window` finite steps in a row it is multiplied by
`scale_factor`. `FixedLossScaleUpdateCell` (or a plain number) keeps one scale, and a step with
non-finite gradients is still skipped. Without `scale_sense` there is no scaling and a
non-finite gradient stops the run with an error.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from mf_train.errors import TrainConfigError

RUNNER_WRAPPER_TYPES = ("MFTrainOneStepCell", "TrainOneStepCell", "TrainOneStepWithLossScaleCell",
                        "MFPipelineWithLossScaleCell")
RUNNER_WRAPPER_KEYS = ("type", "scale_sense", "use_clip_grad", "max_grad_norm")
SCALE_TYPES = ("DynamicLossScaleUpdateCell", "FixedLossScaleUpdateCell")
SCALE_KEYS = ("type", "loss_scale_value", "scale_factor", "scale_window")


@dataclass
class LossScale:
    """The current scale and the dynamic rule's counter; saved in every checkpoint."""

    value: float = 1.0
    dynamic: bool = False
    scale_factor: float = 2.0
    scale_window: int = 1000
    good_steps: int = 0  # finite steps since the last change

    def update(self, finite: bool) -> None:
        if not self.dynamic:
            return
        if not finite:
            self.value = max(self.value / self.scale_factor, 1.0)
            self.good_steps = 0
            return
        self.good_steps += 1
        if self.good_steps >= self.scale_window:
            self.value *= self.scale_factor
            self.good_steps = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossScale:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class StepWrapper:
    """`runner_wrapper:` resolved: gradient clipping and the loss scale (None: no scaling)."""

    max_grad_norm: float | None = 1.0
    loss_scale: LossScale | None = None


def _check_keys(section: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = (f"did you mean '{path}.{close[0]}'?" if close
                    else f"allowed: {', '.join(allowed)}")
            raise TrainConfigError(f"unknown key '{path}.{key}'; {hint}")


def step_wrapper_from_config(runner_wrapper: dict[str, Any],
                             default_max_grad_norm: float = 1.0) -> StepWrapper:
    """Read `runner_wrapper:` (MindFormers' TrainOneStepCell settings) strictly."""
    _check_keys(runner_wrapper, RUNNER_WRAPPER_KEYS, "runner_wrapper")
    kind = runner_wrapper.get("type", "MFTrainOneStepCell")
    if kind not in RUNNER_WRAPPER_TYPES:
        raise TrainConfigError(f"runner_wrapper.type = {kind!r}; allowed: "
                               f"{', '.join(RUNNER_WRAPPER_TYPES)}")
    use_clip = runner_wrapper.get("use_clip_grad", True)
    if not isinstance(use_clip, bool):
        raise TrainConfigError(f"runner_wrapper.use_clip_grad = {use_clip!r}; expected true "
                               "or false")
    max_norm = runner_wrapper.get("max_grad_norm", default_max_grad_norm)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or max_norm <= 0:
        raise TrainConfigError(f"runner_wrapper.max_grad_norm = {max_norm!r}; it must be a "
                               "number > 0")
    scale = _loss_scale(runner_wrapper.get("scale_sense"))
    return StepWrapper(max_grad_norm=float(max_norm) if use_clip else None, loss_scale=scale)


def _loss_scale(sense: Any) -> LossScale | None:
    if sense is None:
        return None
    if isinstance(sense, (int, float)) and not isinstance(sense, bool):
        if sense < 1:
            raise TrainConfigError(f"runner_wrapper.scale_sense = {sense}; it must be >= 1")
        return LossScale(value=float(sense))
    if not isinstance(sense, dict):
        raise TrainConfigError(f"runner_wrapper.scale_sense = {sense!r}; expected a number or "
                               f"a mapping with type: {' or '.join(SCALE_TYPES)}")
    _check_keys(sense, SCALE_KEYS, "runner_wrapper.scale_sense")
    kind = sense.get("type", "DynamicLossScaleUpdateCell")
    if kind not in SCALE_TYPES:
        raise TrainConfigError(f"runner_wrapper.scale_sense.type = {kind!r}; allowed: "
                               f"{', '.join(SCALE_TYPES)}")
    value = sense.get("loss_scale_value", 2.0 ** 16)
    factor = sense.get("scale_factor", 2)
    window = sense.get("scale_window", 1000)
    for key, number, low in (("loss_scale_value", value, 1), ("scale_factor", factor, 1)):
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < low:
            raise TrainConfigError(f"runner_wrapper.scale_sense.{key} = {number!r}; it must "
                                   f"be a number >= {low}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise TrainConfigError(f"runner_wrapper.scale_sense.scale_window = {window!r}; it "
                               "must be an integer >= 1")
    return LossScale(value=float(value), dynamic=kind == "DynamicLossScaleUpdateCell",
                     scale_factor=float(factor), scale_window=window)
