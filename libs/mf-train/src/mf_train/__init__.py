"""Trainer, TrainingArguments, run YAML, datasets, optimizers, LoRA, metrics and checkpoints.

Importing mf_train (and everything below that does not train) never imports MindSpore: the
CLI's config checks and `mf --help` stay fast. MindSpore is imported where data meets it.
"""

from importlib.metadata import version as _version

from mf_train.errors import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    ConfigFileNotFoundError,
    DatasetNotFoundError,
    DatasetTooShortError,
    MfTrainError,
    TrainConfigError,
    UnknownKeyError,
    YamlSyntaxError,
)
from mf_train.run_yaml import RunConfig, load_run_config
from mf_train.training_args import TrainingArguments

__version__ = _version("mf-train")


def __getattr__(name: str):
    # `from mf_train import Trainer`, as MindFormers' README writes it, without importing the
    # session and data modules for every `import mf_train` (the CLI's config checks).
    if name == "Trainer":
        from mf_train.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'mf_train' has no attribute {name!r}")


__all__ = [
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "ConfigFileNotFoundError",
    "DatasetNotFoundError",
    "DatasetTooShortError",
    "MfTrainError",
    "RunConfig",
    "TrainConfigError",
    "Trainer",
    "TrainingArguments",
    "UnknownKeyError",
    "YamlSyntaxError",
    "__version__",
    "load_run_config",
]
