"""A run's data: its tokenizer and its train/eval token datasets, checked against the model.

    tokenizer, notes = run_tokenizer(run)        # processor.tokenizer (trained once if asked)
    data = load_run_data(run, tokenizer)         # RunData(train, eval, notes)

The datasets come from the run YAML's train_dataset/eval_dataset sections, or already built
(a Python caller's arrays, generators or mindspore.dataset objects, as `Trainer` takes them).
Every sample must fit the model (2 .. seq_length + 1 tokens, ids inside the vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mf_train.data import TokenDataset, load_dataset_from_config
from mf_train.errors import TrainConfigError
from mf_train.resolve import Run


@dataclass
class RunData:
    train: TokenDataset
    eval: TokenDataset | None
    notes: list[str] = field(default_factory=list)


def run_tokenizer(run: Run) -> tuple[Any | None, list[str]]:
    """The tokenizer of `processor.tokenizer` (or `train_dataset.tokenizer`), and notes.

    `train_vocab_size` trains a SentencePiece model on the train split's text the first time
    (written into a new folder of mf's: outputs.py), and later runs reuse it.
    """
    from mf_train.data.dataset import documents_from_config
    from mf_train.model_setup import build_tokenizer, tokenizer_section

    section = tokenizer_section(run.config)
    documents = None
    if section.get("train_vocab_size") and \
            run.config.train_dataset.data_loader.type != "MindDataset":
        documents = documents_from_config(run.config.train_dataset)
    return build_tokenizer(section, documents)


def seq_length_of(run: Run) -> int:
    value = getattr(run.model_config, "seq_length", None)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        where = run.config.origins.get("model.model_config.seq_length", "")
        prefix = f"{where}: " if where else ""
        raise TrainConfigError(f"{prefix}model.model_config.seq_length = {value!r}; a training "
                               "run needs an integer >= 1")
    return value


def load_run_data(run: Run, tokenizer: Any | None, *, train: TokenDataset | None = None,
                  eval: TokenDataset | None = None, need_train: bool = True) -> RunData:
    """The run's datasets (given ones win over the YAML's sections), checked against the model.

    An evaluation alone passes `need_train=False` and reads only the eval dataset.
    """
    config = run.config
    seq_length = seq_length_of(run)
    if not run.task.causal:
        return _task_data(run, tokenizer, train, eval, need_train, seq_length)
    if train is None and need_train:
        train = load_dataset_from_config(config.train_dataset, tokenizer, seq_length)
    if eval is None and (config.do_eval or not need_train) and _has_source(config.eval_dataset):
        eval = load_dataset_from_config(config.eval_dataset, tokenizer, seq_length)
    if train is None:
        train = TokenDataset(np.zeros((0, seq_length + 1), np.int32), source="<none>")
    vocab = getattr(run.model_config, "vocab_size", None)
    for name, dataset in (("train", train), ("eval", eval)):
        if dataset is not None and len(dataset):
            _check_samples(name, dataset, seq_length, vocab)
    if eval is not None and len(eval) == 0:
        raise TrainConfigError(f"eval dataset {eval.source} holds no sample of "
                               f"seq_length({seq_length}) + 1 tokens")
    notes = list(train.notes) + (list(eval.notes) if eval is not None else [])
    return RunData(train=train, eval=eval, notes=notes)


def _task_data(run: Run, tokenizer: Any | None, train: Any, eval: Any, need_train: bool,
               seq_length: int) -> RunData:
    """A trainer task's datasets (task_data): columns of examples, not token rows."""
    from mf_train.task_data.load import task_dataset

    config = run.config
    train_set = task_dataset(run, config.train_dataset, train, tokenizer, seq_length,
                             "train_dataset") if need_train else None
    eval_set = None
    if config.do_eval or not need_train or eval is not None:
        eval_set = task_dataset(run, config.eval_dataset, eval, tokenizer, seq_length,
                                "eval_dataset")
    if train_set is None:
        if need_train:
            raise TrainConfigError(f"task {run.task.name} needs a train dataset: "
                                   "train_dataset.data_loader (type and dataset_dir), or "
                                   "Trainer(train_dataset=...)")
        from mf_train.task_data import ColumnDataset

        train_set = ColumnDataset({}, source="<none>")
    return RunData(train=train_set, eval=eval_set)


def _has_source(dataset_config: Any) -> bool:
    loader = dataset_config.data_loader
    return bool(loader.dataset_dir) or loader.type == "PythonStdlibDataset"


def _check_samples(name: str, dataset: TokenDataset, seq_length: int,
                   vocab_size: int | None) -> None:
    """Samples that fit the model: not longer than seq_length + 1, ids inside the vocabulary."""
    if dataset.sample_length > seq_length + 1 or dataset.sample_length < 2:
        raise TrainConfigError(
            f"{name} dataset {dataset.source} holds samples of {dataset.sample_length} tokens; "
            f"the model reads 2 .. seq_length({seq_length}) + 1 = {seq_length + 1}")
    if vocab_size is not None:
        low, high = int(dataset.samples.min()), int(dataset.samples.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise TrainConfigError(
                f"{name} dataset {dataset.source} holds token id {bad}, outside the model's "
                f"vocabulary [0, {vocab_size}); use the tokenizer the model was made for, or "
                "set model.model_config.vocab_size")
