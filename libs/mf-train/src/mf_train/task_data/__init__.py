"""Data for the trainer tasks other than causal LM: records (JSON lines, CSV, image folders,
Python lists, generated examples) -> the task's columns, tokenized or processed by the model's
tokenizer or image processor -> `ColumnDataset`, read in the same seeded, resumable order as
token data."""

from mf_train.task_data.columns import ColumnDataset, split_batch
from mf_train.task_data.records import Records, read_records

__all__ = ["ColumnDataset", "Records", "read_records", "split_batch"]
