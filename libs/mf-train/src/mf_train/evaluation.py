"""Evaluation of a causal LM on packed token samples: perplexity, next-token accuracy, or the
caller's `compute_metrics`.

Perplexity is exp(sum of token NLL / tokens) over every eval sample (each rank takes a share and
the sums are all-reduced). The run YAML's `metric:` names MindFormers' metric types;
`PerplexityMetric` (the default) and `Accuracy` (next-token accuracy) apply to token data.
EmF1Metric and ADGENMetric score generated answers against references, which packed token data
does not have: they are refused here (use `compute_metrics`, or mf_train.metrics directly).
`compute_metrics(EvalPrediction)` gets the argmax predictions (N, T) and the targets (N, T) of
every sample, as Hugging Face's Trainer passes predictions and label_ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mf_train.data import TokenDataset
from mf_train.errors import MfTrainError, TrainConfigError

TOKEN_METRICS = ("PerplexityMetric", "Accuracy")


@dataclass
class EvalPrediction:
    predictions: np.ndarray  # (N, T) argmax token ids
    label_ids: np.ndarray  # (N, T) the tokens that follow


def metric_types(metric: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    """The metric type names of a run YAML's `metric:` (one mapping or a list), checked."""
    entries = metric if isinstance(metric, list) else [metric]
    names = []
    for entry in entries:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind in ("EmF1Metric", "ADGENMetric"):
            raise TrainConfigError(f"metric.type {kind} scores generated answers against "
                                   "references; packed token data has none. Use "
                                   "PerplexityMetric or Accuracy, or pass compute_metrics")
        if kind not in TOKEN_METRICS:
            raise TrainConfigError(f"metric.type = {kind!r}; allowed for language-model data: "
                                   f"{', '.join(TOKEN_METRICS)}")
        names.append(kind)
    return names


class Evaluator:
    """Evaluates one model on one dataset; compiles once (a fixed batch shape)."""

    def __init__(self, model: Any, dataset: TokenDataset, batch_size: int, *, rank: int = 0,
                 world_size: int = 1, metrics: list[str] | None = None,
                 compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
                 step: Any = None, group: Any = None):
        """`rank` of `world_size` replicas each score a share of the dataset; `step` scores a
        batch (default: EvalStep over the whole model; a split model's ParallelEvalStep) and
        `group` (an mf_parallel Group, default the world) sums the replicas' shares."""
        self.dataset = dataset
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.metrics = metrics or ["PerplexityMetric"]
        self.compute_metrics = compute_metrics
        self.group = group
        if step is None:
            from mf_train.train_step import EvalStep

            step = EvalStep(model)
        elif compute_metrics is not None or "Accuracy" in self.metrics:
            raise TrainConfigError("a model split over ranks is evaluated by perplexity only; "
                                   "metric Accuracy and compute_metrics need a whole model")
        self.step = step
        self.model = model

    def _share(self) -> np.ndarray:
        return np.array_split(np.arange(len(self.dataset)), self.world_size)[self.rank]

    def run(self) -> dict[str, float]:
        want_predictions = self.compute_metrics is not None or "Accuracy" in self.metrics
        nll_sum, tokens, correct = 0.0, 0, 0
        predictions, targets = [], []
        share = self._share()
        for start in range(0, len(share), self.batch_size):
            batch = self.dataset.samples[share[start:start + self.batch_size]]
            nll, count = self.step.run(batch, self.batch_size)
            nll_sum += nll
            tokens += count
            if want_predictions:
                predicted = self.step.predict(batch, self.batch_size)
                correct += int((predicted == batch[:, 1:]).sum())
                predictions.append(predicted)
                targets.append(batch[:, 1:])
        nll_sum, tokens, correct = self._all_ranks(nll_sum, tokens, correct)
        if tokens == 0:
            raise MfTrainError("evaluation saw no tokens; the eval dataset is empty")
        loss = nll_sum / tokens
        out = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        if "Accuracy" in self.metrics:
            out["accuracy"] = correct / tokens
        if self.compute_metrics is not None:
            if self.world_size > 1:
                raise TrainConfigError("compute_metrics runs in a single process; under data "
                                       "parallel use the run YAML's metric: instead")
            preds = np.concatenate(predictions) if predictions else np.zeros((0, 0), np.int32)
            labels = np.concatenate(targets) if targets else np.zeros((0, 0), np.int32)
            extra = self.compute_metrics(EvalPrediction(preds, labels))
            if not isinstance(extra, dict):
                raise MfTrainError(f"compute_metrics returned {type(extra).__name__}; it must "
                                   "return a dict of metric name -> number")
            out.update({str(k): float(v) for k, v in extra.items()})
        return out

    def _all_ranks(self, nll_sum: float, tokens: int, correct: int) -> tuple[float, int, int]:
        if self.world_size == 1:
            return nll_sum, tokens, correct
        import mindspore as ms
        from mindspore import ops

        reduce = ops.AllReduce() if self.group is None else ops.AllReduce(group=self.group.name)
        summed = reduce(ms.Tensor(np.array([nll_sum, tokens, correct], np.float64)
                                  .astype(np.float32))).asnumpy()
        return float(summed[0]), int(round(float(summed[1]))), int(round(float(summed[2])))
