"""Evaluation of a model split over ranks (model or pipeline parallel): what `EvalStep` is for a
whole model, on one rank of a parallel job.

    step = ParallelEvalStep(train_step)          # the run's ParallelTrainStep
    nll_sum, tokens = step.run(batch, batch_size)

Every rank of one model replica (its mp x pp ranks) runs the same eval rows; the first stage
embeds them, each stage hands its hidden states on (forward only, one compiled graph per
stage), and the last stage's row sums of token NLL (vocabulary-parallel under mp, so every mp
rank has the whole NLL) come back to every rank of the pipeline. Data-parallel replicas score
their shares of the eval set; `Evaluator` sums those over the dp group.
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import numpy as np
from mf_parallel.collectives import AllReduce, HandOver
from mindspore import Tensor

from mf_train.parallel_step import ParallelTrainStep, StageLoss
from mf_train.train_step import _pad_rows


class ParallelEvalStep:
    """(sum of token NLL, token count) of a batch on one rank of a split model."""

    def __init__(self, train_step: ParallelTrainStep):
        part = train_step.part
        self.part = part
        self.stage = StageLoss(part, interleave=1, per_row=True)
        self._forward = ms.jit(self.stage)
        self.pipeline_sum = AllReduce(part.groups.pipeline) if train_step.pipelined else None
        self._handovers: dict[tuple[str, tuple[int, ...]], HandOver] = {}
        self._no_hidden = Tensor(np.zeros((1,), np.float32))

    def run(self, tokens: np.ndarray, batch_size: int) -> tuple[float, int]:
        rows = len(tokens)
        batch = Tensor(_pad_rows(tokens, batch_size))
        length = batch.shape[1] - 1
        shape = (batch_size, length, self.part.model.config.hidden_size)
        hidden = self._no_hidden
        if not self.part.is_first_stage:
            hidden = self._handover("receive", shape)(Tensor(np.zeros(shape, np.float32)))
        out = self._forward(hidden, batch)
        if not self.part.is_last_stage:
            self._handover("send", shape)(out)
            row_nll = Tensor(np.zeros((batch_size,), np.float32))  # the last stage's, below
        else:
            row_nll = out
        weights = np.zeros(batch_size, np.float32)
        weights[:rows] = 1.0
        total = (row_nll * Tensor(weights)).sum()
        if self.pipeline_sum is not None:  # only the last stage scored the rows
            total = self.pipeline_sum(total)
        return float(total.asnumpy()), rows * length

    def _handover(self, direction: str, shape: tuple[int, ...]) -> Any:
        key = (direction, shape)
        if key not in self._handovers:
            groups, rank = self.part.groups, self.part.groups.rank
            channel = groups.next_stage if direction == "send" else groups.prev_stage
            peer = next(r for r in channel.ranks if r != rank)
            self._handovers[key] = HandOver(channel, rank if direction == "send" else peer,
                                            shape)
        return self._handovers[key]
