"""Trainer, TrainingArguments, run YAML, datasets, optimizers, LoRA, metrics and checkpoints."""

from importlib.metadata import version as _version

__version__ = _version("mf-train")
