"""Learning-rate schedules as pure functions of the step: warmup + constant/linear/cosine/poly.

Names and parameters are MindFormers' (`mindformers/core/lr/lr_schedule.py`): the run YAML's
`lr_schedule.type` may be the class name (`CosineWithWarmUpLR`) or the short name MindFormers'
`lr_scheduler_type` uses (`cosine`). `step` is MindSpore's `global_step`: 0 for the first update.
The result feeds MindSpore's AdamW as a per-step learning-rate array (`learning_rates`), which
keeps the schedule out of the compiled graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mf_train.errors import TrainConfigError

SCHEDULE_ALIASES: dict[str, str] = {
    "constant": "ConstantWarmUpLR",
    "constant_with_warmup": "ConstantWarmUpLR",
    "linear": "LinearWithWarmUpLR",
    "cosine": "CosineWithWarmUpLR",
    "cosine_with_restarts": "CosineWithRestartsAndWarmUpLR",
    "polynomial": "PolynomialWithWarmUpLR",
    "ConstantWarmUpLR": "ConstantWarmUpLR",
    "LinearWithWarmUpLR": "LinearWithWarmUpLR",
    "CosineWithWarmUpLR": "CosineWithWarmUpLR",
    "CosineWithRestartsAndWarmUpLR": "CosineWithRestartsAndWarmUpLR",
    "PolynomialWithWarmUpLR": "PolynomialWithWarmUpLR",
}
"""Every accepted `type` -> MindFormers' class name."""

# MindFormers' defaults per class: lr_end is 1e-7 for the polynomial schedule and 0 elsewhere;
# num_cycles is 0.5 (a half cosine, max -> lr_end) for cosine and 1 for cosine with restarts.
_DEFAULT_LR_END = {"PolynomialWithWarmUpLR": 1e-7}
_DEFAULT_NUM_CYCLES = {"CosineWithWarmUpLR": 0.5, "CosineWithRestartsAndWarmUpLR": 1.0}
_NEEDS_TOTAL = {"LinearWithWarmUpLR", "CosineWithWarmUpLR", "CosineWithRestartsAndWarmUpLR",
                "PolynomialWithWarmUpLR"}


@dataclass(frozen=True)
class LrSchedule:
    """One schedule, fully resolved: `warmup_steps` and `total_steps` are plain step counts."""

    type: str
    learning_rate: float
    warmup_steps: int = 0
    warmup_lr_init: float = 0.0
    total_steps: int | None = None
    lr_end: float = 0.0
    num_cycles: float = 0.5
    power: float = 1.0
    decay_steps: int | None = None

    @property
    def kind(self) -> str:
        return SCHEDULE_ALIASES[self.type]


def check_schedule_settings(
    type: str,  # noqa: A002 - MindFormers' key name
    learning_rate: float,
    *,
    warmup_steps: int | None = None,
    warmup_ratio: float | None = None,
    warmup_lr_init: float = 0.0,
    lr_end: float | None = None,
    num_cycles: float | None = None,
    power: float = 1.0,
    decay_steps: int | None = None,
) -> tuple[float, float]:
    """Check what a schedule's parameters say on their own, before its length is known;
    returns lr_end and num_cycles with MindFormers' per-class defaults filled in."""
    if type not in SCHEDULE_ALIASES:
        raise TrainConfigError(
            f"lr_schedule.type = {type!r}; allowed: {', '.join(SCHEDULE_ALIASES)}")
    kind = SCHEDULE_ALIASES[type]
    if not learning_rate > 0:
        raise TrainConfigError(f"lr_schedule.learning_rate = {learning_rate}; it must be > 0")
    if warmup_ratio is not None and warmup_steps:
        raise TrainConfigError(
            f"lr_schedule sets both warmup_steps({warmup_steps}) and "
            f"warmup_ratio({warmup_ratio}); set one")
    if warmup_ratio is not None and not 0.0 <= warmup_ratio <= 1.0:
        raise TrainConfigError(f"lr_schedule.warmup_ratio = {warmup_ratio}; it must be in [0, 1]")
    if warmup_steps is not None and warmup_steps < 0:
        raise TrainConfigError(f"lr_schedule.warmup_steps = {warmup_steps}; it must be >= 0")
    if warmup_lr_init < 0:
        raise TrainConfigError(f"lr_schedule.warmup_lr_init = {warmup_lr_init}; it must be >= 0")
    if decay_steps is not None and decay_steps < 1:
        raise TrainConfigError(f"lr_schedule.decay_steps = {decay_steps}; it must be >= 1")
    lr_end = _DEFAULT_LR_END.get(kind, 0.0) if lr_end is None else lr_end
    if lr_end < 0:
        raise TrainConfigError(f"lr_schedule.lr_end = {lr_end}; it must be >= 0")
    if kind == "PolynomialWithWarmUpLR" and not learning_rate > lr_end:
        raise TrainConfigError(
            f"lr_schedule.lr_end({lr_end}) must be smaller than learning_rate({learning_rate}) "
            "for a polynomial schedule")
    num_cycles = _DEFAULT_NUM_CYCLES.get(kind, 0.5) if num_cycles is None else num_cycles
    if num_cycles <= 0:
        raise TrainConfigError(f"lr_schedule.num_cycles = {num_cycles}; it must be > 0")
    if power <= 0:
        raise TrainConfigError(f"lr_schedule.power = {power}; it must be > 0")
    return float(lr_end), float(num_cycles)


def make_schedule(
    type: str,  # noqa: A002 - MindFormers' key name
    learning_rate: float,
    *,
    warmup_steps: int | None = None,
    warmup_ratio: float | None = None,
    warmup_lr_init: float = 0.0,
    total_steps: int | None = None,
    lr_end: float | None = None,
    num_cycles: float | None = None,
    power: float = 1.0,
    decay_steps: int | None = None,
) -> LrSchedule:
    """The resolved schedule: `check_schedule_settings`, then warmup_ratio into warmup_steps.

    `total_steps` of -1 or None means "not known yet" (MindFormers: derive it from the dataset);
    the caller passes the derived value once the dataset size is known.
    """
    lr_end, num_cycles = check_schedule_settings(
        type, learning_rate, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio,
        warmup_lr_init=warmup_lr_init, lr_end=lr_end, num_cycles=num_cycles, power=power,
        decay_steps=decay_steps)
    if total_steps is not None and total_steps < 0:
        total_steps = None
    if total_steps is not None and total_steps == 0:
        raise TrainConfigError("lr_schedule.total_steps = 0; it must be >= 1 or -1 (derived)")
    if warmup_ratio is not None:
        if total_steps is None:
            raise TrainConfigError(
                "lr_schedule.warmup_ratio needs total_steps, which is not known yet "
                "(total_steps: -1 is derived from the dataset)")
        # MindFormers: int(total_steps * warmup_ratio), i.e. rounded down
        warmup_steps = int(total_steps * warmup_ratio)
    if SCHEDULE_ALIASES[type] in _NEEDS_TOTAL and total_steps is None and decay_steps is None:
        raise TrainConfigError(
            f"lr_schedule.type {type!r} needs total_steps (or decay_steps); it is not known yet "
            "(total_steps: -1 is derived from the dataset)")
    return LrSchedule(type=type, learning_rate=float(learning_rate),
                      warmup_steps=warmup_steps or 0, warmup_lr_init=float(warmup_lr_init),
                      total_steps=total_steps, lr_end=lr_end, num_cycles=num_cycles,
                      power=float(power), decay_steps=decay_steps)


def learning_rates(schedule: LrSchedule, num_steps: int, start: int = 0) -> np.ndarray:
    """The learning rate of steps start .. start+num_steps-1, as float32 (AdamW's lr array)."""
    steps = np.arange(start, start + num_steps, dtype=np.float64)
    return _evaluate(schedule, steps).astype(np.float32)


def learning_rate_at(schedule: LrSchedule, step: int) -> float:
    """The learning rate of one step, in float64."""
    return float(_evaluate(schedule, np.array([float(step)]))[0])


def _evaluate(s: LrSchedule, step: np.ndarray) -> np.ndarray:
    kind = s.kind
    lr, w = s.learning_rate, s.warmup_steps
    if kind == "ConstantWarmUpLR":
        after = np.full_like(step, lr)
    elif kind == "LinearWithWarmUpLR":
        linear_steps = max(1, s.total_steps - w)
        after = lr * np.maximum(0.0, (s.total_steps - step) / linear_steps)
    elif kind == "CosineWithWarmUpLR":
        after = _cosine(s, step, restarts=False)
    elif kind == "CosineWithRestartsAndWarmUpLR":
        after = _cosine(s, step, restarts=True)
    else:
        after = _polynomial(s, step)
    if w == 0:
        return after
    warm = s.warmup_lr_init + (lr - s.warmup_lr_init) * step / w
    return np.where(step < w, warm, after)


def _cosine(s: LrSchedule, step: np.ndarray, restarts: bool) -> np.ndarray:
    total = s.total_steps if s.total_steps is not None else s.decay_steps
    cosine_steps = max(1, total - s.warmup_steps)
    decay_steps = max(1, s.decay_steps if s.decay_steps is not None else total)
    progress = (step - s.warmup_steps) / cosine_steps
    if restarts:
        phase = np.mod(s.num_cycles * progress, 1.0)
        value = s.lr_end + (s.learning_rate - s.lr_end) * np.maximum(
            0.0, 0.5 * (1.0 + np.cos(math.pi * phase)))
        # MindFormers: past the last cycle the restarting schedule returns 0, not lr_end
        value = np.where(progress < 1.0, value, 0.0)
    else:
        value = s.lr_end + (s.learning_rate - s.lr_end) * np.maximum(
            0.0, 0.5 * (1.0 + np.cos(math.pi * s.num_cycles * 2.0 * progress)))
    return np.where(step >= decay_steps, s.lr_end, value)


def _polynomial(s: LrSchedule, step: np.ndarray) -> np.ndarray:
    # decay_steps counts from the end of warmup (MindFormers' default: total - warmup). Unlike
    # MindFormers' graph code, which compares the global step with decay_steps alone and so
    # reaches lr_end `warmup_steps` early, lr_end is reached at warmup_steps + decay_steps, as
    # in Hugging Face's get_polynomial_decay_schedule_with_warmup.
    if s.decay_steps is not None:
        decay_steps = max(1, s.decay_steps)
    else:
        decay_steps = max(1, s.total_steps - s.warmup_steps)
    remaining = np.clip(1.0 - (step - s.warmup_steps) / decay_steps, 0.0, 1.0)
    value = (s.learning_rate - s.lr_end) * remaining ** s.power + s.lr_end
    return np.where(step >= s.warmup_steps + decay_steps, s.lr_end, value)
