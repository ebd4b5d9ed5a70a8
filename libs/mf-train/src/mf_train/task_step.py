"""The compiled train step and the evaluator of a trainer task (tasks.py) other than causal LM.

The step is `TrainStep` (forward, backward, accumulation, AllReduce, clipping, AdamW in one
graph) with another loss: the model's own, from the batch's columns in the model's argument
order (`model(*columns)[0]`, as every mf-models head returns its loss first when given its
labels). The columns go into the graph as one tuple of tensors, so each task compiles once.

The evaluator runs the same forward compiled without gradients over the eval set (the last
batch padded with copies of its last row to keep one shape; the padding is not scored) and
hands the outputs to task_scores.TaskScorer; translation also generates each source's
translation greedily for BLEU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from mf_train.task_data import ColumnDataset
from mf_train.task_data.process import class_names
from mf_train.task_scores import TaskScorer
from mf_train.train_step import StepOutput, TrainStep


def _tensors(columns: dict[str, np.ndarray], names: Sequence[str]) -> Any:
    """The columns as one tuple of tensors, marked mutable: a plain tuple argument is a
    constant to ms.jit, and every new batch would compile the graph again (measured)."""
    out = []
    for name in names:
        values = np.asarray(columns[name])
        out.append(Tensor(values.astype(np.int32 if np.issubdtype(values.dtype, np.integer)
                                        else np.float32)))
    return ms.mutable(tuple(out))


class TaskTrainStep(TrainStep):
    """TrainStep whose loss is the model's: `step([{column: rows}, ...], loss_scale)`."""

    def __init__(self, model: nn.Cell, optimizer: nn.Optimizer, task: Any, **settings: Any):
        self.inputs = task.inputs
        self.constants = task.constants
        super().__init__(model, optimizer, **settings)

    def scaled_loss(self, columns, scale):
        return self.model(*columns, *self.constants)[0] * scale

    def step(self, batches: Sequence[dict[str, np.ndarray]],
             loss_scale: float = 1.0) -> StepOutput:
        if len(batches) != self.micro_batches:
            raise ValueError(f"expected {self.micro_batches} micro batches, got {len(batches)}")
        scale = Tensor(np.float32(loss_scale))
        for columns in batches[:-1]:
            self._accumulate(_tensors(columns, self.inputs), scale)
        loss, norm, finite = self._update(_tensors(batches[-1], self.inputs), scale)
        return StepOutput(loss=float(loss.asnumpy()), grad_norm=float(norm.asnumpy()),
                          finite=bool(finite.asnumpy()))


class TaskForward(nn.Cell):
    """The model's forward with labels (loss first), compiled once for the eval batch shape."""

    def __init__(self, model: nn.Cell, task: Any):
        super().__init__(auto_prefix=False)
        self.model = model
        self.constants = task.constants
        self._run = ms.jit(self.forward_graph)

    def forward_graph(self, columns):
        return self.model(*columns, *self.constants)

    def __call__(self, columns: tuple[Tensor, ...]) -> Any:
        return self._run(columns)


class TaskEvaluator:
    """Loss and the task's metrics of a model on a ColumnDataset; every rank scores all of it
    (eval sets are small; no reduction needed)."""

    def __init__(self, model: Any, task: Any, dataset: ColumnDataset, batch_size: int,
                 tokenizer: Any = None):
        self.model, self.task, self.dataset = model, task, dataset
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        self.forward = TaskForward(model, task)

    def run(self) -> dict[str, float]:
        n = len(self.dataset)
        names = class_names(self.model.config) if hasattr(self.model.config, "num_labels") \
            else None
        scorer = TaskScorer(self.task, self.dataset.references, names)
        loss_sum = 0.0
        for start in range(0, n, self.batch_size):
            indices = np.arange(start, min(start + self.batch_size, n))
            padded = np.concatenate([indices, np.repeat(indices[-1:], self.batch_size
                                                        - len(indices))])
            rows = self.dataset.rows(padded)
            out = self.forward(_tensors(rows, self.task.inputs))
            outputs = self.model.output_class.from_tuple(out, True)
            loss_sum += float(outputs.loss.asnumpy()) * len(indices)
            real = {k: v[:len(indices)] for k, v in rows.items()}
            scorer.add(_Rows(outputs, len(indices)), real, indices)
            if self.task.name == "translation" and self.tokenizer is not None:
                scorer.add_generated(self._translate(real), indices)
        return {"loss": loss_sum / max(n, 1), **scorer.result()}

    def _translate(self, rows: dict[str, np.ndarray]) -> list[str]:
        from mf_generate import generate

        prompts = [ids[mask.astype(bool)].tolist() for ids, mask in
                   zip(rows["input_ids"], rows["attention_mask"], strict=True)]
        new = int(rows["labels"].shape[1]) - 1  # within seq_length with the start token
        ids = generate(self.model, prompts, None, max_new_tokens=new, do_sample=False)
        return [self.tokenizer.decode([int(t) for t in row], skip_special_tokens=True)
                for row in np.asarray(ids)]


class _Rows:
    """An output object's arrays cut to the real rows (the padding copies dropped)."""

    def __init__(self, outputs: Any, rows: int):
        self._outputs, self._rows = outputs, rows

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._outputs, name)
        array = value.asnumpy() if hasattr(value, "asnumpy") else value
        # rows only: CLIP's logits_per_image (I, T) keeps every caption as a candidate
        return array[:self._rows] if isinstance(array, np.ndarray) and array.ndim else array
