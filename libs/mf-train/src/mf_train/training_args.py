"""`TrainingArguments`: the Python-side run settings, with MindFormers' field names and defaults.

Field names and defaults follow MindFormers' `mindformers/trainer/training_args.py` (itself
derived from Hugging Face's), except `device_target`, which defaults to "CPU" here because that
is the backend every machine has. Only the fields this implementation acts on are present; a
MindFormers field that would do nothing here is left out rather than silently ignored.

The mapping to run-YAML keys lives in `RUN_YAML_KEYS` (one place), so a Trainer built from
`TrainingArguments` and one built from a run YAML see the same config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from mf_train.errors import TrainConfigError
from mf_train.lr_schedule import SCHEDULE_ALIASES

OPTIMIZERS = ("adamw", "fp32_adamw")
"""MindFormers' `OptimizerType` values that map to MindSpore's AdamW here."""

INTERVAL_STRATEGIES = ("no", "steps", "epoch")
SAVE_STRATEGIES = ("no", "steps", "epoch")
DEVICE_TARGETS = ("CPU", "GPU", "Ascend")


@dataclass
class TrainingArguments:
    """Settings of one training run; every check fails with a one-line `TrainConfigError`."""

    # common
    output_dir: str = "./output"
    overwrite_output_dir: bool = False
    seed: int = 42
    data_seed: int | None = None
    resume_from_checkpoint: str | None = None
    resume_training: bool = False
    ignore_data_skip: bool = False
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False

    # runner
    batch_size: int | None = None  # if set, overrides per_device_train_batch_size (MindFormers)
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    num_train_epochs: float = 3.0
    max_steps: int = -1  # Hugging Face's name: > 0 stops after this many optimizer steps
    sink_mode: bool = True
    sink_size: int = 2
    gradient_accumulation_steps: int = 1

    # context
    mode: int = 0  # 0 = GRAPH_MODE, 1 = PYNATIVE_MODE
    device_target: str = "CPU"
    device_id: int = 0

    # parallel
    use_parallel: bool = False
    data_parallel: int = 1
    model_parallel: int = 1
    pipeline_stage: int = 1
    micro_batch_num: int = 1

    # recompute
    recompute: bool = False

    # optimizer
    optim: str = "fp32_adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0

    # learning-rate schedule
    lr_scheduler_type: str = "cosine"
    learning_rate: float = 5e-5
    lr_end: float = 1e-6
    warmup_lr_init: float = 0.0
    warmup_ratio: float | None = None
    warmup_steps: int = 0

    # gradient clipping
    use_clip_grad: bool = True
    max_grad_norm: float = 1.0

    # dataset
    train_dataset: str | None = None
    eval_dataset: str | None = None
    shuffle: bool = True
    dataloader_drop_last: bool = True

    # logging, checkpoints, evaluation
    logging_steps: int = 1
    save_prefix: str = "CKP"
    save_strategy: str = "steps"
    save_steps: int = 500
    save_total_limit: int | None = 5
    evaluation_strategy: str = "no"
    eval_steps: int | None = None
    eval_epochs: int | None = None
    eval_step_interval: int = -1  # run-YAML name: -1 = no evaluation at step ends
    eval_epoch_interval: int = 50  # run-YAML name: evaluate every N epochs
    metric_type: str | list[str] | None = None

    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Not a MindFormers field: room for part B's settings that have no MindFormers name."""

    def __post_init__(self) -> None:
        _check_types(self)
        _check_values(self)

    @property
    def train_batch_size(self) -> int:
        """The per-device micro batch: `batch_size` when set, else per_device_train_batch_size."""
        return self.batch_size if self.batch_size is not None else self.per_device_train_batch_size

    @property
    def global_batch_size(self) -> int:
        """Samples per optimizer step over all devices (derived, never set)."""
        return (self.train_batch_size * self.data_parallel * self.micro_batch_num
                * self.gradient_accumulation_steps)

    def to_run_yaml_overrides(self) -> dict[str, Any]:
        """The run-YAML keys these arguments set, as dotted paths (see `RUN_YAML_KEYS`)."""
        out: dict[str, Any] = {}
        for name, path in RUN_YAML_KEYS.items():
            value = getattr(self, name)
            if value is not None:
                out[path] = value
        out["runner_config.batch_size"] = self.train_batch_size
        return out

    def replace(self, **changes: Any) -> TrainingArguments:
        return dataclasses.replace(self, **changes)


RUN_YAML_KEYS: dict[str, str] = {
    "output_dir": "output_dir",
    "seed": "seed",
    "resume_training": "resume_training",
    "do_eval": "do_eval",
    "eval_step_interval": "eval_step_interval",
    "eval_epoch_interval": "eval_epoch_interval",
    "sink_mode": "runner_config.sink_mode",
    "sink_size": "runner_config.sink_size",
    "gradient_accumulation_steps": "runner_config.gradient_accumulation_steps",
    "mode": "context.mode",
    "device_target": "context.device_target",
    "device_id": "context.device_id",
    "use_parallel": "use_parallel",
    "data_parallel": "parallel_config.data_parallel",
    "model_parallel": "parallel_config.model_parallel",
    "pipeline_stage": "parallel_config.pipeline_stage",
    "micro_batch_num": "parallel_config.micro_batch_num",
    "recompute": "recompute_config.recompute",
    "adam_beta1": "optimizer.beta1",
    "adam_beta2": "optimizer.beta2",
    "adam_epsilon": "optimizer.eps",
    "weight_decay": "optimizer.weight_decay",
    "lr_scheduler_type": "lr_schedule.type",
    "learning_rate": "lr_schedule.learning_rate",
    "lr_end": "lr_schedule.lr_end",
    "warmup_lr_init": "lr_schedule.warmup_lr_init",
    "warmup_ratio": "lr_schedule.warmup_ratio",
    "warmup_steps": "lr_schedule.warmup_steps",
    "max_grad_norm": "runner_wrapper.max_grad_norm",
    "use_clip_grad": "runner_wrapper.use_clip_grad",
    "train_dataset": "train_dataset.data_loader.dataset_dir",
    "eval_dataset": "eval_dataset.data_loader.dataset_dir",
    "shuffle": "train_dataset.data_loader.shuffle",
    "dataloader_drop_last": "train_dataset.drop_remainder",
}
"""TrainingArguments field -> run-YAML key path: the one place the two are tied together.

`num_train_epochs` is absent on purpose: the run YAML's `runner_config.epochs` is an int and
a fractional epoch count has no run-YAML spelling; part B's Trainer reads it directly.
"""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_types(args: TrainingArguments) -> None:
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        kind = f.type if isinstance(f.type, str) else str(f.type)
        optional = "None" in kind
        if value is None:
            if not optional:
                raise TrainConfigError(f"TrainingArguments.{f.name} must not be None")
            continue
        if kind.startswith("bool"):
            ok = isinstance(value, bool)
            want = "true or false"
        elif kind.startswith("int"):
            ok = _is_int(value)
            want = "an integer"
        elif kind.startswith("float"):
            ok = _is_number(value) and math.isfinite(value)
            want = "a finite number"
        elif kind.startswith("str |"):
            ok = isinstance(value, (str, list))
            want = "a string or list of strings"
        elif kind.startswith("str"):
            ok = isinstance(value, str)
            want = "a string"
        else:
            continue
        if not ok:
            raise TrainConfigError(
                f"TrainingArguments.{f.name} = {value!r} ({type(value).__name__}); "
                f"it must be {want}"
            )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TrainConfigError(message)


def _check_values(a: TrainingArguments) -> None:
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "sink_size",
                 "gradient_accumulation_steps", "data_parallel", "model_parallel",
                 "pipeline_stage", "micro_batch_num", "logging_steps"):
        value = getattr(a, name)
        _require(value >= 1, f"TrainingArguments.{name} = {value}; it must be >= 1")
    _require(a.batch_size is None or a.batch_size >= 1,
             f"TrainingArguments.batch_size = {a.batch_size}; it must be >= 1 (or None)")
    _require(a.num_train_epochs > 0,
             f"TrainingArguments.num_train_epochs = {a.num_train_epochs}; it must be > 0")
    _require(a.max_steps == -1 or a.max_steps >= 1,
             f"TrainingArguments.max_steps = {a.max_steps}; it must be -1 (use epochs) or >= 1")
    _require(a.mode in (0, 1),
             f"TrainingArguments.mode = {a.mode}; allowed: 0 (GRAPH_MODE), 1 (PYNATIVE_MODE)")
    _require(a.device_target in DEVICE_TARGETS,
             f"TrainingArguments.device_target = {a.device_target!r}; "
             f"allowed: {', '.join(DEVICE_TARGETS)}")
    _require(a.optim.lower() in OPTIMIZERS,
             f"TrainingArguments.optim = {a.optim!r}; allowed: {', '.join(OPTIMIZERS)}")
    _require(0.0 <= a.adam_beta1 < 1.0,
             f"TrainingArguments.adam_beta1 = {a.adam_beta1}; it must be in [0, 1)")
    _require(0.0 <= a.adam_beta2 < 1.0,
             f"TrainingArguments.adam_beta2 = {a.adam_beta2}; it must be in [0, 1)")
    _require(a.adam_epsilon > 0,
             f"TrainingArguments.adam_epsilon = {a.adam_epsilon}; it must be > 0")
    _require(a.weight_decay >= 0,
             f"TrainingArguments.weight_decay = {a.weight_decay}; it must be >= 0")
    _require(a.lr_scheduler_type in SCHEDULE_ALIASES,
             f"TrainingArguments.lr_scheduler_type = {a.lr_scheduler_type!r}; "
             f"allowed: {', '.join(sorted(SCHEDULE_ALIASES))}")
    _require(a.learning_rate > 0,
             f"TrainingArguments.learning_rate = {a.learning_rate}; it must be > 0")
    _require(a.lr_end >= 0, f"TrainingArguments.lr_end = {a.lr_end}; it must be >= 0")
    _require(a.warmup_lr_init >= 0,
             f"TrainingArguments.warmup_lr_init = {a.warmup_lr_init}; it must be >= 0")
    _require(a.warmup_steps >= 0,
             f"TrainingArguments.warmup_steps = {a.warmup_steps}; it must be >= 0")
    _require(a.warmup_ratio is None or 0.0 <= a.warmup_ratio <= 1.0,
             f"TrainingArguments.warmup_ratio = {a.warmup_ratio}; it must be in [0, 1]")
    _require(not (a.warmup_ratio and a.warmup_steps),
             f"TrainingArguments sets both warmup_steps({a.warmup_steps}) and "
             f"warmup_ratio({a.warmup_ratio}); set one")
    _require(a.max_grad_norm > 0,
             f"TrainingArguments.max_grad_norm = {a.max_grad_norm}; it must be > 0")
    _require(a.save_strategy in SAVE_STRATEGIES,
             f"TrainingArguments.save_strategy = {a.save_strategy!r}; "
             f"allowed: {', '.join(SAVE_STRATEGIES)}")
    _require(a.save_steps >= 1, f"TrainingArguments.save_steps = {a.save_steps}; it must be >= 1")
    _require(a.save_total_limit is None or a.save_total_limit >= 1,
             f"TrainingArguments.save_total_limit = {a.save_total_limit}; "
             "it must be >= 1, or None to keep every checkpoint")
    _require(a.evaluation_strategy in INTERVAL_STRATEGIES,
             f"TrainingArguments.evaluation_strategy = {a.evaluation_strategy!r}; "
             f"allowed: {', '.join(INTERVAL_STRATEGIES)}")
    _require(a.eval_step_interval == -1 or a.eval_step_interval >= 1,
             f"TrainingArguments.eval_step_interval = {a.eval_step_interval}; "
             "it must be -1 (off) or >= 1")
    _require(a.eval_epoch_interval == -1 or a.eval_epoch_interval >= 1,
             f"TrainingArguments.eval_epoch_interval = {a.eval_epoch_interval}; "
             "it must be -1 (off) or >= 1")
