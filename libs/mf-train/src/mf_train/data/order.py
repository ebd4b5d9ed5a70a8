"""The order batches are read in: deterministic for a seed, and resumable at any batch.

Epoch e visits the samples in `default_rng([seed, e]).permutation(N)` (or in file order
without shuffle); batch b of that epoch is the slice [b * G, (b + 1) * G) of that order, G the
global batch. A position (epoch, batch) therefore names a batch exactly, and reading from a
saved position yields the same batches an uninterrupted run would have read next. Under data
parallel each rank takes its contiguous share of every global batch, so the ranks together
see what one process with the same global batch sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mf_train.errors import TrainConfigError


@dataclass(frozen=True, order=True)
class DataPosition:
    """The next batch to read: batch `batch` of epoch `epoch`."""

    epoch: int = 0
    batch: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataPosition:
        return cls(epoch=int(data["epoch"]), batch=int(data["batch"]))


START = DataPosition()
"""The first batch of the first epoch."""


@dataclass(frozen=True)
class BatchOrder:
    num_samples: int
    global_batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        if self.global_batch_size < 1:
            raise TrainConfigError(f"global batch size {self.global_batch_size}; it must be >= 1")
        if self.num_samples < 0:
            raise TrainConfigError(f"num_samples {self.num_samples}; it must be >= 0")

    @property
    def batches_per_epoch(self) -> int:
        if self.drop_remainder:
            return self.num_samples // self.global_batch_size
        return -(-self.num_samples // self.global_batch_size)

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def batch_indices(self, position: DataPosition) -> np.ndarray:
        """Sample indices of the global batch at `position`."""
        if not 0 <= position.batch < self.batches_per_epoch:
            raise TrainConfigError(
                f"data position batch {position.batch} is outside an epoch of "
                f"{self.batches_per_epoch} batches")
        start = position.batch * self.global_batch_size
        return self.permutation(position.epoch)[start:start + self.global_batch_size]

    def advance(self, position: DataPosition) -> DataPosition:
        """The position after `position` (the next epoch after an epoch's last batch)."""
        if position.batch + 1 < self.batches_per_epoch:
            return DataPosition(position.epoch, position.batch + 1)
        return DataPosition(position.epoch + 1, 0)

    def positions(self, start: DataPosition = START, num_epochs: int | None = None,
                  ) -> Iterator[DataPosition]:
        """Positions from `start` to the end of epoch num_epochs - 1 (forever if None)."""
        if self.batches_per_epoch == 0:
            return
        position = start
        if position.batch >= self.batches_per_epoch:
            position = DataPosition(position.epoch + 1, 0)
        while num_epochs is None or position.epoch < num_epochs:
            yield position
            position = self.advance(position)


def rank_share(indices: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank `rank`'s contiguous share of one global batch."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise TrainConfigError(f"rank {rank} is outside a world of {world_size}")
    if len(indices) % world_size:
        raise TrainConfigError(
            f"a global batch of {len(indices)} samples does not split over {world_size} ranks")
    per_rank = len(indices) // world_size
    return indices[rank * per_rank:(rank + 1) * per_rank]
