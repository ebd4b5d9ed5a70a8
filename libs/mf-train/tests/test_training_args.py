"""TrainingArguments: MindFormers' names and defaults, one-line validation, run-YAML mapping."""

from __future__ import annotations

import pytest

from mf_train.errors import TrainConfigError
from mf_train.run_yaml import apply_overrides, run_config_from_mapping
from mf_train.training_args import RUN_YAML_KEYS, TrainingArguments


def test_mindformers_defaults():
    args = TrainingArguments()
    assert (args.output_dir, args.seed, args.per_device_train_batch_size) == ("./output", 42, 8)
    assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (5e-5, "cosine", 0)
    assert (args.adam_beta1, args.adam_beta2, args.adam_epsilon) == (0.9, 0.999, 1e-8)
    assert (args.save_steps, args.save_total_limit, args.max_grad_norm) == (500, 5, 1.0)
    assert (args.sink_mode, args.sink_size, args.num_train_epochs) == (True, 2, 3.0)


def test_batch_size_overrides_per_device_and_global_batch_is_derived():
    args = TrainingArguments(batch_size=2, per_device_train_batch_size=8, data_parallel=2,
                             gradient_accumulation_steps=3)
    assert args.train_batch_size == 2
    assert args.global_batch_size == 2 * 2 * 3


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(learning_rate=0.0), "learning_rate = 0.0; it must be > 0"),
    (dict(per_device_train_batch_size=0), "per_device_train_batch_size = 0; it must be >= 1"),
    (dict(per_device_train_batch_size=True), "per_device_train_batch_size = True (bool)"),
    (dict(learning_rate="fast"), "learning_rate = 'fast' (str); it must be a finite number"),
    (dict(lr_scheduler_type="cosin"), "lr_scheduler_type = 'cosin'; allowed: "),
    (dict(warmup_ratio=0.1, warmup_steps=10), "set one"),
    (dict(warmup_ratio=2.0), "warmup_ratio = 2.0; it must be in [0, 1]"),
    (dict(save_total_limit=0), "save_total_limit = 0"),
    (dict(optim="sgd"), "optim = 'sgd'; allowed: adamw, fp32_adamw"),
    (dict(device_target="TPU"), "device_target = 'TPU'; allowed: CPU, GPU, Ascend"),
    (dict(eval_step_interval=0), "eval_step_interval = 0; it must be -1 (off) or >= 1"),
    (dict(adam_beta2=1.0), "adam_beta2 = 1.0; it must be in [0, 1)"),
    (dict(seed=None), "seed must not be None"),
])
def test_invalid_values_are_one_line_config_errors(kwargs, fragment):
    with pytest.raises(TrainConfigError) as info:
        TrainingArguments(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    assert isinstance(info.value, ValueError)


def test_run_yaml_mapping_builds_an_equivalent_run_config():
    args = TrainingArguments(per_device_train_batch_size=4, learning_rate=1e-3, warmup_steps=10,
                             lr_scheduler_type="linear", data_parallel=2, seed=7,
                             weight_decay=0.1, train_dataset="/data/train.mindrecord")
    origins: dict[str, str] = {}
    data = apply_overrides({}, origins, args.to_run_yaml_overrides(), "TrainingArguments")
    cfg = run_config_from_mapping(data, origins=origins)
    assert cfg.runner_config.batch_size == 4
    assert cfg.lr_schedule.learning_rate == 1e-3 and cfg.lr_schedule.type == "linear"
    assert cfg.lr_schedule.warmup_steps == 10
    assert cfg.parallel_config.data_parallel == 2 and cfg.seed == 7
    assert cfg.optimizer.weight_decay == 0.1
    assert cfg.train_dataset.data_loader.dataset_dir == "/data/train.mindrecord"
    assert cfg.global_batch_size == args.global_batch_size


def test_every_mapped_field_exists():
    names = set(TrainingArguments.__dataclass_fields__)
    assert set(RUN_YAML_KEYS) <= names


def test_an_invalid_mapped_value_names_where_it_came_from():
    origins: dict[str, str] = {}
    data = apply_overrides({"runner_config": {"batch_size": 8}}, origins,
                           {"train_dataset.batch_size": 4}, "TrainingArguments")
    with pytest.raises(TrainConfigError, match=r"^TrainingArguments train_dataset.batch_size: "):
        run_config_from_mapping(data, origins=origins)
