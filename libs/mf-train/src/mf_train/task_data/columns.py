"""`ColumnDataset`: a task's examples as named arrays of one row per example, read in
`BatchOrder` (the seeded, resumable order TokenDataset uses), a batch being a dict of rows.

The loop, the plan and checkpoints see the same interface as TokenDataset: `len`,
`sample_length`, `check_fills_a_batch`, `batches`. `references` keeps what the metrics score
against and the arrays cannot hold (a QA example's answer texts, a translation's target, the
word tags of a tagged sentence).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mf_train.data.order import START, BatchOrder, DataPosition, rank_share
from mf_train.errors import DatasetTooShortError, TrainConfigError


@dataclass
class ColumnDataset:
    columns: dict[str, np.ndarray]  # name -> (N, ...) in the model's argument order
    source: str = "<columns>"
    # what a sample costs, for the tokens/s figure: tokens (text) or patches (images)
    tokens_per_sample: int = 1
    references: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        sizes = {name: len(values) for name, values in self.columns.items()}
        if len(set(sizes.values())) > 1:
            raise TrainConfigError(f"dataset {self.source}: columns of different lengths {sizes}")

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    @property
    def sample_length(self) -> int:
        # TokenDataset's samples are seq_length + 1 tokens; the loop reads length - 1
        return self.tokens_per_sample + 1

    def check_fills_a_batch(self, global_batch_size: int, batch_formula: str | None = None,
                            ) -> None:
        if len(self) >= global_batch_size:
            return
        formula = f" = {batch_formula}" if batch_formula else ""
        raise DatasetTooShortError(
            f"dataset {self.source} holds {len(self)} example(s), fewer than one global batch "
            f"of {global_batch_size}{formula}; add data or lower the batch size")

    def order(self, global_batch_size: int, seed: int, shuffle: bool = True,
              drop_remainder: bool = True) -> BatchOrder:
        return BatchOrder(len(self), global_batch_size, seed, shuffle, drop_remainder)

    def rows(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[indices] for name, values in self.columns.items()}

    def batches(self, order: BatchOrder, start: DataPosition = START,
                num_epochs: int | None = None, rank: int = 0, world_size: int = 1,
                ) -> Iterator[tuple[DataPosition, dict[str, np.ndarray]]]:
        """(position, this rank's share of the global batch) from `start` on."""
        if order.num_samples != len(self):
            raise TrainConfigError(f"batch order is for {order.num_samples} samples, the "
                                   f"dataset holds {len(self)}")
        for position in order.positions(start, num_epochs):
            yield position, self.rows(rank_share(order.batch_indices(position), rank,
                                                 world_size))


def split_batch(batch: np.ndarray | dict[str, np.ndarray], parts: int) -> list[Any]:
    """A batch (token rows, or a dict of columns) as `parts` micro batches of equal rows."""
    if not isinstance(batch, dict):
        return np.split(batch, parts)
    pieces = {name: np.split(values, parts) for name, values in batch.items()}
    return [{name: pieces[name][i] for name in batch} for i in range(parts)]
