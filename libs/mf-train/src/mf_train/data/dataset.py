"""`TokenDataset`: packed token samples in memory, read in a seeded, resumable batch order.

Built from plain text, JSON lines (both tokenized and packed here), a packed MindRecord file,
a `mindspore.dataset` object or a Python generator; handed to MindSpore as a
`mindspore.dataset.GeneratorDataset` of ready batches in the order of `order.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.data.order import START, BatchOrder, DataPosition, rank_share
from mf_train.data.packing import pack_sequences, tokenize_documents
from mf_train.data.readers import (
    MINDRECORD_COLUMN,
    JsonLines,
    TextFiles,
    read_mindrecord,
    write_mindrecord,
)
from mf_train.data.stdlib import PythonStdlib
from mf_train.errors import DatasetTooShortError, TrainConfigError, one_line


@dataclass
class TokenDataset:
    """Samples of equal length (N, L) int32; L = seq_length + 1 for causal LM training."""

    samples: np.ndarray
    source: str = "<memory>"
    notes: list[str] = field(default_factory=list)  # e.g. files skipped as non-UTF-8

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples)
        if self.samples.ndim != 2:
            raise TrainConfigError(f"dataset {self.source}: samples must be (N, L), "
                                   f"got shape {self.samples.shape}")
        if not np.issubdtype(self.samples.dtype, np.integer):
            raise TrainConfigError(f"dataset {self.source}: samples must be token ids "
                                   f"(integers), got {self.samples.dtype}")
        self.samples = self.samples.astype(np.int32, copy=False)

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    @property
    def sample_length(self) -> int:
        return int(self.samples.shape[1])

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_documents(cls, documents: Iterable[str], tokenizer: object, seq_length: int,
                       source: str = "<documents>") -> TokenDataset:
        samples = pack_sequences(tokenize_documents(documents, tokenizer), seq_length)
        return cls(samples, source=source)

    @classmethod
    def from_text(cls, path: str | Path, tokenizer: object, seq_length: int,
                  suffixes: Iterable[str] = (".txt",)) -> TokenDataset:
        files = TextFiles(Path(path), tuple(suffixes))
        dataset = cls.from_documents(files, tokenizer, seq_length, source=str(path))
        if files.skipped and not files.read:
            raise DatasetTooShortError(f"dataset {path} has no text left to read: "
                                       f"{files.skipped_text()}")
        if files.skipped:
            dataset.notes.append(files.skipped_text())
        return dataset

    @classmethod
    def from_jsonl(cls, path: str | Path, tokenizer: object, seq_length: int,
                   text_key: str = "text") -> TokenDataset:
        return cls.from_documents(JsonLines(Path(path), text_key), tokenizer, seq_length,
                                  source=str(path))

    @classmethod
    def from_mindrecord(cls, path: str | Path, column: str = MINDRECORD_COLUMN,
                        seq_length: int | None = None) -> TokenDataset:
        samples = read_mindrecord(path, column)
        dataset = cls(samples, source=str(path))
        if seq_length is not None and len(dataset) and dataset.sample_length != seq_length + 1:
            raise TrainConfigError(
                f"MindRecord {path} holds samples of {dataset.sample_length} tokens, but "
                f"seq_length({seq_length}) + 1 = {seq_length + 1} are needed; prepare it again "
                "with this seq_length")
        return dataset

    @classmethod
    def from_mindspore(cls, dataset: Any, column: str = MINDRECORD_COLUMN,
                       source: str = "<mindspore.dataset>") -> TokenDataset:
        """Read every row of a (not yet batched) mindspore.dataset object's `column`."""
        try:
            rows = [np.asarray(row[column])
                    for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True)]
            if rows and rows[0].ndim == 2:  # a batched dataset (`dataset.batch(n)`): its rows
                rows = [sample for batch in rows for sample in batch]
        except KeyError:
            raise TrainConfigError(f"{source} has no column {column!r}") from None
        except Exception as exc:  # MindSpore's pipeline errors: one line
            raise TrainConfigError(f"cannot read {source}: {one_line(exc)[:300]}") from None
        return cls(_stack_rows(rows, source), source=source)

    @classmethod
    def from_generator(cls, generator: Callable[[], Iterable[Any]] | Iterable[Any],
                       source: str = "<generator>") -> TokenDataset:
        """Rows from a generator (or a function returning one): arrays, or dicts with input_ids."""
        rows = generator() if callable(generator) else generator
        arrays = [np.asarray(r[MINDRECORD_COLUMN] if isinstance(r, dict) else r) for r in rows]
        if arrays and arrays[0].ndim == 2:  # a generator of batches: their rows
            arrays = [sample for batch in arrays for sample in batch]
        return cls(_stack_rows(arrays, source), source=source)

    def save_mindrecord(self, path: str | Path) -> Path:
        return write_mindrecord(path, self.samples)

    # --- reading ----------------------------------------------------------------------------

    def check_fills_a_batch(self, global_batch_size: int, batch_formula: str | None = None,
                            ) -> None:
        """DatasetTooShortError unless at least one global batch can be read."""
        if len(self) >= global_batch_size:
            return
        formula = f" = {batch_formula}" if batch_formula else ""
        length = f" of {self.sample_length} tokens" if len(self) else ""
        raise DatasetTooShortError(
            f"dataset {self.source} holds {len(self)} sample(s){length}, fewer than one global "
            f"batch of {global_batch_size}{formula}; add data or lower the batch size or "
            "seq_length")

    def order(self, global_batch_size: int, seed: int, shuffle: bool = True,
              drop_remainder: bool = True) -> BatchOrder:
        return BatchOrder(len(self), global_batch_size, seed, shuffle, drop_remainder)

    def batches(self, order: BatchOrder, start: DataPosition = START,
                num_epochs: int | None = None, rank: int = 0, world_size: int = 1,
                ) -> Iterator[tuple[DataPosition, np.ndarray]]:
        """(position, this rank's share of the global batch) from `start` on."""
        if order.num_samples != len(self):
            raise TrainConfigError(f"batch order is for {order.num_samples} samples, the "
                                   f"dataset holds {len(self)}")
        for position in order.positions(start, num_epochs):
            indices = rank_share(order.batch_indices(position), rank, world_size)
            yield position, self.samples[indices]

    def to_mindspore(self, order: BatchOrder, start: DataPosition = START,
                     num_epochs: int | None = None, rank: int = 0, world_size: int = 1,
                     column: str = MINDRECORD_COLUMN) -> Any:
        """A mindspore.dataset.GeneratorDataset of ready batches (B, L), in this order."""
        import mindspore.dataset as ds

        def generate() -> Iterator[tuple[np.ndarray]]:
            for _, batch in self.batches(order, start, num_epochs, rank, world_size):
                yield (batch,)

        return ds.GeneratorDataset(generate, column_names=[column], shuffle=False)


def _stack_rows(rows: list[np.ndarray], source: str) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.int32)
    lengths = {r.shape for r in rows}
    if len(lengths) != 1 or rows[0].ndim != 1:
        raise TrainConfigError(f"{source}: rows must be 1-D token arrays of one length, got "
                               f"shapes {sorted(lengths)[:3]}")
    return np.stack(rows)


def load_dataset_from_config(dataset_config: Any, tokenizer: object | None,
                             seq_length: int) -> TokenDataset:
    """A run YAML's train_dataset/eval_dataset section -> TokenDataset.

    `dataset_config` is `RunConfig.train_dataset` (schema.DatasetConfig).
    """
    loader = dataset_config.data_loader
    dataset = _load(loader, dataset_config, tokenizer, seq_length)
    limit = getattr(loader, "num_samples", None)
    if limit is not None and limit < len(dataset):
        dataset.notes.append(f"{dataset.source}: reading the first {limit} of "
                             f"{len(dataset)} samples (data_loader.num_samples)")
        dataset.samples = dataset.samples[:limit]
    return dataset


def _load(loader: Any, dataset_config: Any, tokenizer: object | None,
          seq_length: int) -> TokenDataset:
    if loader.type == "MindDataset":
        column = (dataset_config.input_columns or [MINDRECORD_COLUMN])[0]
        return TokenDataset.from_mindrecord(loader.dataset_dir, column, seq_length)
    if tokenizer is None:
        raise TrainConfigError(f"data_loader.type {loader.type} reads raw text, which needs a "
                               "tokenizer (processor.tokenizer in the run YAML)")
    if loader.type == "TextFileDataset":
        return TokenDataset.from_text(loader.dataset_dir, tokenizer, seq_length,
                                      loader.file_suffixes)
    if loader.type == "JsonLinesDataset":
        return TokenDataset.from_jsonl(loader.dataset_dir, tokenizer, seq_length,
                                       loader.text_key)
    if loader.type == "PythonStdlibDataset":
        sources = PythonStdlib(loader.split)
        dataset = TokenDataset.from_documents(sources, tokenizer, seq_length,
                                              source=sources.describe())
        if sources.skipped:
            dataset.notes.append(f"skipped {len(sources.skipped)} standard-library file(s) "
                                 f"that are not UTF-8, e.g. {sources.skipped[0]}")
        return dataset
    raise TrainConfigError(f"data_loader.type = {loader.type!r}; allowed: MindDataset, "
                           "TextFileDataset, JsonLinesDataset, PythonStdlibDataset")


def documents_from_config(dataset_config: Any) -> Iterable[str]:
    """The raw documents of a text dataset section (what a tokenizer is trained on)."""
    loader = dataset_config.data_loader
    if loader.type == "TextFileDataset":
        return TextFiles(Path(loader.dataset_dir), tuple(loader.file_suffixes))
    if loader.type == "JsonLinesDataset":
        return JsonLines(Path(loader.dataset_dir), loader.text_key)
    if loader.type == "PythonStdlibDataset":
        return PythonStdlib(loader.split)
    raise TrainConfigError(f"data_loader.type {loader.type} holds token ids, not text; "
                           "a tokenizer can only be trained on TextFileDataset, "
                           "JsonLinesDataset or PythonStdlibDataset")


def prepare_mindrecord(source: str | Path, output: str | Path, tokenizer: object,
                       seq_length: int, kind: str = "text", text_key: str = "text",
                       suffixes: Iterable[str] = (".txt",)) -> TokenDataset:
    """`mf data prepare`: tokenize text or JSON lines, pack, and write a MindRecord file."""
    if kind == "text":
        dataset = TokenDataset.from_text(source, tokenizer, seq_length, suffixes)
    elif kind == "jsonl":
        dataset = TokenDataset.from_jsonl(source, tokenizer, seq_length, text_key)
    else:
        raise TrainConfigError(f"input kind {kind!r}; allowed: text, jsonl")
    if len(dataset) == 0:
        skipped = "".join(f" ({note})" for note in dataset.notes)
        raise DatasetTooShortError(
            f"dataset {source} yields no sample of seq_length({seq_length}) + 1 = "
            f"{seq_length + 1} tokens{skipped}; add text or lower seq_length")
    dataset.save_mindrecord(output)
    return dataset
