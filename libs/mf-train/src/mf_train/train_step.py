"""The compiled train step: forward, backward, gradient averaging, clipping and AdamW in one graph.

MindSpore's CPU kernels run 2x faster under `ms.jit` than op by op, and PyNative pays ~40 us
per op (DESIGN.md), so everything between two batches is one compiled graph:

    update(tokens, scale):  loss, grads = value_and_grad(loss)       # the last micro batch
                            grads += accumulated grads                # gradient accumulation
                            grads = AllReduce(grads)                  # data parallel (sum)
                            inv = 1 / (scale * micro_batches * ranks) # mean, unscaled
                            norm = ||grads|| * inv
                            grads *= inv * min(1, max_norm / (norm + 1e-6))   # one pass
                            AdamW(grads)  (skipped if norm is not finite under loss scaling)

With gradient accumulation, every micro batch but the last runs a second graph that only adds
its gradients into buffers, so activations of one micro batch are alive at a time. A sample is
seq_length + 1 tokens: the model reads the first seq_length and predicts the last seq_length.
Each graph compiles once: shapes are fixed by the batch size, and the loss scale is a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mindspore as ms
import numpy as np
from mf_models.models.base import token_nll  # the one loss, shared with CausalLM.loss
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore import dtype as mstype

__all__ = ["CLIP_EPS", "EvalStep", "StepOutput", "TrainStep", "global_norm", "token_nll"]

CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s epsilon, so clipping matches the reference


def global_norm(grads):
    """sqrt of the sum of every gradient's squares."""
    return ops.sqrt(ops.addn([_sum_of_squares(g) for g in grads]))


def _sum_of_squares(g):
    # Rows first: MindSpore's CPU ReduceSum over all 16M numbers of the (32000, 512) embedding
    # gradient takes 40 ms, over its last axis 7 ms (under ms.jit). And (g * g), not
    # ops.square(g): 3 ms against 111 ms for all 41M gradients.
    return (g * g).sum(-1).sum()


@dataclass(frozen=True)
class StepOutput:
    loss: float  # mean token loss of the global batch (all micro batches, all ranks)
    grad_norm: float  # before clipping, as Hugging Face and torchtitan log it
    finite: bool  # False: the update was skipped (loss scaling) or the run must stop


class TrainStep(nn.Cell):
    """One optimizer step over `micro_batches` micro batches: `step(batches, loss_scale)`."""

    def __init__(self, model: nn.Cell, optimizer: nn.Optimizer, *, micro_batches: int = 1,
                 world_size: int = 1, max_grad_norm: float | None = 1.0,
                 skip_nonfinite: bool = False):
        # auto_prefix=False: holding the model must not rename its parameters.
        super().__init__(auto_prefix=False)
        self.model = model
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.micro_batches = micro_batches
        self.world_size = world_size
        self.max_grad_norm = max_grad_norm
        self.skip_nonfinite = skip_nonfinite
        self.grad_fn = ms.value_and_grad(self.scaled_loss, None, self.weights)
        self.allreduce = ops.AllReduce() if world_size > 1 else None
        if micro_batches > 1:
            self.accumulated = ParameterTuple(
                Parameter(Tensor(np.zeros(w.shape, np.float32)), name=f"accumulated.{w.name}",
                          requires_grad=False) for w in self.weights)
            self.accumulated_loss = Parameter(Tensor(0.0, mstype.float32),
                                              name="accumulated.loss", requires_grad=False)
        self._update = ms.jit(self.update_graph)
        self._accumulate = ms.jit(self.accumulate_graph)

    # ---- graphs ------------------------------------------------------------------------------
    def scaled_loss(self, tokens, scale):
        logits = self.model(tokens[:, :-1])  # (B, T, V)
        return token_nll(logits, tokens[:, 1:]).mean() * scale

    def accumulate_graph(self, tokens, scale):
        loss, grads = self.grad_fn(tokens, scale)
        for buffer, grad in zip(self.accumulated, grads):  # noqa: B905 - graph mode has no strict
            ops.assign_add(buffer, ops.cast(grad, mstype.float32))
        ops.assign_add(self.accumulated_loss, loss)
        return loss

    def update_graph(self, tokens, scale):
        loss, grads = self.gradients_graph(tokens, scale)
        return self.apply_gradients(grads, loss, scale)

    def gradients_graph(self, tokens, scale):
        """(loss, gradients) of the last micro batch plus what the earlier ones accumulated."""
        loss, grads = self.grad_fn(tokens, scale)
        if self.micro_batches > 1:
            grads = tuple(buffer + grad
                          for buffer, grad in zip(self.accumulated, grads))  # noqa: B905
            loss = loss + self.accumulated_loss
            for buffer in self.accumulated:
                ops.assign(buffer, ops.zeros_like(buffer))
            ops.assign(self.accumulated_loss, ops.zeros_like(self.accumulated_loss))
        return loss, grads

    # The two places a model-parallel step differs (mf_train.parallel_step overrides them).
    def reduce_gradients(self, grads, loss):
        """Sum the gradients and the loss over the data-parallel ranks."""
        if self.allreduce is None:
            return grads, loss
        return tuple(self.allreduce(grad) for grad in grads), self.allreduce(loss)

    def gradient_norm(self, grads):
        """The norm of the whole model's gradient (this process holds all of it)."""
        return global_norm(grads)

    def apply_gradients(self, grads, loss, scale):
        """Gradients summed over micro batches -> averaged, clipped, AdamW; (loss, norm, finite)."""
        grads, loss = self.reduce_gradients(grads, loss)
        # Averaging and clipping are one multiply per gradient, not a divide and a multiply:
        # a pass over 41M gradients costs ~30 ms on this CPU, and Div twice what Mul does.
        inverse = 1.0 / (scale * (self.micro_batches * self.world_size))
        loss = loss * inverse
        norm = self.gradient_norm(grads) * inverse
        finite = ops.isfinite(norm)
        factor = inverse
        if self.max_grad_norm is not None:
            factor = factor * ops.minimum(self.max_grad_norm / (norm + CLIP_EPS), 1.0)
        grads = tuple(grad * factor for grad in grads)
        if self.skip_nonfinite:
            if finite:
                loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, self.optimizer(grads))
        return loss, norm, finite

    # ---- host side ---------------------------------------------------------------------------
    def step(self, batches: Sequence[np.ndarray], loss_scale: float = 1.0) -> StepOutput:
        """Run the micro batches of one optimizer step (each (B, seq_length + 1) int32)."""
        if len(batches) != self.micro_batches:
            raise ValueError(f"expected {self.micro_batches} micro batches, got {len(batches)}")
        scale = Tensor(np.float32(loss_scale))
        for tokens in batches[:-1]:
            self._accumulate(Tensor(np.asarray(tokens, np.int32)), scale)
        loss, norm, finite = self._update(Tensor(np.asarray(batches[-1], np.int32)), scale)
        return StepOutput(loss=float(loss.asnumpy()), grad_norm=float(norm.asnumpy()),
                          finite=bool(finite.asnumpy()))


class EvalStep(nn.Cell):
    """Compiled evaluation: (sum of token NLL, token count) of a batch, padded rows masked."""

    def __init__(self, model: nn.Cell):
        super().__init__(auto_prefix=False)
        self.model = model
        self._run = ms.jit(self.eval_graph)
        self._predict = ms.jit(self.predict_graph)

    def eval_graph(self, tokens, row_weights):
        nll = token_nll(self.model(tokens[:, :-1]), tokens[:, 1:])  # (B, T)
        per_row = nll.sum(-1) * row_weights
        return per_row.sum(), row_weights.sum() * nll.shape[1]

    def predict_graph(self, tokens):
        return ops.argmax(self.model(tokens[:, :-1]), -1).astype(mstype.int32)  # (B, T)

    def run(self, tokens: np.ndarray, batch_size: int) -> tuple[float, int]:
        """NLL sum and token count of `tokens` (n <= batch_size rows), padded to batch_size."""
        rows = len(tokens)
        weights = np.zeros(batch_size, np.float32)
        weights[:rows] = 1.0
        nll, count = self._run(Tensor(_pad_rows(tokens, batch_size)), Tensor(weights))
        return float(nll.asnumpy()), int(round(float(count.asnumpy())))

    def predict(self, tokens: np.ndarray, batch_size: int) -> np.ndarray:
        """Argmax next tokens (n, T) of `tokens` (n <= batch_size rows)."""
        return self._predict(Tensor(_pad_rows(tokens, batch_size))).asnumpy()[:len(tokens)]


def _pad_rows(tokens: np.ndarray, batch_size: int) -> np.ndarray:
    """One shape for every batch (one compile): pad a short batch with copies of its last row."""
    tokens = np.asarray(tokens, np.int32)
    if len(tokens) < batch_size:
        tokens = np.concatenate([tokens, np.repeat(tokens[-1:], batch_size - len(tokens), 0)])
    return tokens
