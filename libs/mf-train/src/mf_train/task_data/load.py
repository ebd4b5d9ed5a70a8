"""A task run's datasets: the run YAML's train_dataset/eval_dataset sections, or records given
from Python (`Trainer(train_dataset=[{"text": ..., "label": ...}, ...])`), processed for the
model (process.py)."""

from __future__ import annotations

from typing import Any

from mf_train.errors import TrainConfigError
from mf_train.task_data.columns import ColumnDataset
from mf_train.task_data.process import process_records
from mf_train.task_data.records import FILE_LOADERS, Records, read_records
from mf_train.task_data.synthetic import synthetic_records

TASK_LOADERS = (*FILE_LOADERS, "SyntheticTaskDataset")


def task_dataset(run: Any, section: Any, given: Any, tokenizer: Any, seq_length: int,
                 name: str) -> ColumnDataset | None:
    """One dataset of a task run (None when neither the section nor Python gives one)."""
    if isinstance(given, ColumnDataset):
        return given
    task = run.task
    if given is not None:
        records = given if isinstance(given, Records) else Records.from_python(given, name)
    else:
        loader = section.data_loader
        if loader.type == "SyntheticTaskDataset":
            records = synthetic_records(task.name, run.model_config, loader.num_samples,
                                        loader.split, run.config.seed)
        elif not loader.dataset_dir:
            return None
        elif loader.type in FILE_LOADERS:
            records = read_records(loader.type, loader.dataset_dir)
        else:
            raise TrainConfigError(
                f"{name}.data_loader.type = {loader.type!r}; task {task.name} reads "
                f"{', '.join(TASK_LOADERS)} (columns: {task.columns})")
        limit = loader.num_samples
        if limit is not None and loader.type != "SyntheticTaskDataset":
            records.rows = records.rows[:limit]
    seed = run.config.seed + (0 if name == "train_dataset" else 1)
    return process_records(task, records, tokenizer, run.model_config, seq_length, seed)
