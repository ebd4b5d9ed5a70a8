"""The train step of one rank of a data x model x pipeline parallel job (real ranks, msrun).

For the build step: every rank builds the whole model from the same config and seed, then

    step = build_parallel_step(model, parallel_config, rank, learning_rates=lrs,
                               adamw=dict(beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1),
                               micro_batches=parallel_config.micro_batch_num,
                               interleave=micro_batch_interleave_num,
                               schedule=schedule_kind(parallel.pipeline_config), offset=offset)
    out = step.step(batches)        # this rank's micro batches, each (B, seq_length + 1) int32
    out.loss                        # the global batch's mean token loss, the same on every rank

`batches` are the rows of data-parallel rank `step.data_rank` of `step.data_ranks` (every
model-parallel and pipeline rank of one replica reads the same rows); `B` must divide by
`interleave`. `step.part` is the model part (mf_models.parallel.ModelPart): its `strategy` is the
job's strategy file and `local_state()` this rank's slices of the weights.

What runs where:
- model parallel: the model is sharded by its family's plan (mf_models.parallel.shard_model);
  logits stay split by vocabulary and the loss is mf_parallel's VocabParallelNLL.
- data parallel: gradients and loss are summed over the dp group; with `optimizer_shard` each
  dp rank keeps and updates a slice of the AdamW state (mf_train.sharded_adamw).
- the gradient norm for clipping is summed over every part of one replica (mp x pp ranks),
  counting a parameter several ranks hold the same once.
- micro_batch_interleave_num: each micro batch is cut into that many row blocks, run one after
  the other inside one compiled graph (MindSpore's MicroBatchInterleaved: one block's
  collectives can overlap the next block's compute where the backend runs them
  asynchronously; CPU collectives block, so here it changes nothing but the graph's shape).
- pipeline stages (pipeline_stage > 1): each rank runs its stage's layers (mf_parallel's
  assign_stages with MindFormers' offset) over the micro batches in the order
  `mf_parallel.pipeline.stage_events` gives (GPipe or 1F1B), handing activations forward and
  gradients back with `HandOver`. MindSpore cannot keep a compiled graph's autodiff tape
  between calls, so a stage's backward recomputes its forward from the saved stage input
  (activation recomputation at stage granularity, as Megatron-LM's full recompute; one extra
  forward per micro batch and stage) and the last stage runs forward and backward as one graph.
  A tied embedding (GPT-2) lives on the first and the last stage; their gradients are summed.
Everything between two hand-overs is one compiled graph; each graph compiles once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import mindspore as ms
import numpy as np
from mf_models.parallel import ModelPart, shard_model
from mf_parallel import ParallelConfig
from mf_parallel.collectives import AllReduce, HandOver, process_groups
from mf_parallel.pipeline import ScheduleKind, stage_events
from mf_parallel.tensor_parallel import VocabParallelNLL
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

from mf_train.optim import build_adamw
from mf_train.sharded_adamw import ShardedAdamW
from mf_train.train_step import StepOutput, TrainStep, token_nll


def build_parallel_step(model: Any, parallel_config: ParallelConfig, rank: int, *,
                        learning_rates: np.ndarray, adamw: dict[str, float],
                        micro_batches: int = 1, interleave: int = 1,
                        max_grad_norm: float | None = 1.0, skip_nonfinite: bool = False,
                        schedule: ScheduleKind = "1f1b", offset: Any = 0) -> ParallelTrainStep:
    """Shard `model` (built whole, identically on every rank) for `rank` and build its step.

    `parallel_config` must be resolved against the world size; `adamw` holds beta1, beta2,
    eps and weight_decay; `micro_batches` is micro_batch_num under a pipeline, else the
    gradient accumulation steps.
    """
    groups = process_groups(parallel_config, rank)
    part = shard_model(model, groups, offset=offset)
    if parallel_config.optimizer_shard and groups.dp.size > 1:
        optimizer = ShardedAdamW(part.params, learning_rates, group=groups.dp, **adamw)
    else:
        optimizer = build_adamw(part.params, learning_rates, **adamw)
    return ParallelTrainStep(part, optimizer, micro_batches=micro_batches, interleave=interleave,
                             max_grad_norm=max_grad_norm, skip_nonfinite=skip_nonfinite,
                             schedule=schedule)


class StageLoss(nn.Cell):
    """One pipeline stage's forward on a micro batch: the hidden states it hands on, or on the
    last stage the mean token loss. Without a pipeline it is the whole model's loss."""

    def __init__(self, part: ModelPart, interleave: int, per_row: bool = False):
        super().__init__(auto_prefix=False)
        self.per_row = per_row  # the last stage returns each row's NLL sum (evaluation)
        self.model = part.model
        self.first, self.last = part.is_first_stage, part.is_last_stage
        self.whole = self.first and self.last
        self.layers = tuple(part.layers)
        self.interleave = interleave
        group = part.groups.mp
        self.vocab_nll = (VocabParallelNLL(group, part.vocab_start)
                          if part.vocab_start is not None else None)

    def nll(self, logits, targets):
        if self.vocab_nll is None:
            return token_nll(logits, targets)
        return self.vocab_nll(logits, targets)

    def block(self, hidden, tokens):
        ids = tokens[:, :-1]
        if self.whole:  # the model's own training forward
            return self.reduce(self.nll(self.model(ids), tokens[:, 1:]))
        positions = ops.relu(ops.cumsum(ops.ones_like(ids), -1) - 1)  # (B, T): 0, 1, ...
        x = self.model.embed(ids, positions) if self.first else hidden
        inputs = self.model.layer_inputs(positions, ops.ones_like(ids))
        for i in self.layers:
            x = self.model.run_layer(i, x, inputs)
        if self.last:
            return self.reduce(self.nll(self.model.head(x), tokens[:, 1:]))
        return x  # (B, T, C)

    def reduce(self, nll):
        """(B, T) token NLL -> the mean (training), or each row's sum (B,) (evaluation)."""
        return nll.sum(-1) if self.per_row else nll.mean()

    def construct(self, hidden, tokens):
        if self.interleave == 1:
            return self.block(hidden, tokens)
        rows = tokens.shape[0] // self.interleave
        outs = []
        for k in range(self.interleave):  # row blocks, as MindSpore's MicroBatchInterleaved
            block_hidden = hidden if self.first else hidden[k * rows:(k + 1) * rows]
            outs.append(self.block(block_hidden, tokens[k * rows:(k + 1) * rows]))
        if self.last:
            return ops.addn(outs) / self.interleave
        return ops.concat(outs, 0)


class ParallelTrainStep(TrainStep):
    """`TrainStep` for one rank of a parallel job; `step(batches)` as TrainStep's."""

    def __init__(self, part: ModelPart, optimizer: nn.Cell, *, micro_batches: int = 1,
                 interleave: int = 1, max_grad_norm: float | None = 1.0,
                 skip_nonfinite: bool = False, schedule: ScheduleKind = "1f1b"):
        groups = part.groups
        pipelined = groups.num_stages > 1
        if pipelined and micro_batches < groups.num_stages:
            raise ValueError(f"micro_batches({micro_batches}) < pipeline_stage"
                             f"({groups.num_stages})")
        super().__init__(part.model, optimizer, micro_batches=micro_batches,
                         world_size=groups.dp.size, max_grad_norm=max_grad_norm,
                         skip_nonfinite=skip_nonfinite)
        self.part = part
        self.stage_loss = StageLoss(part, interleave)
        self.interleave = interleave
        self.dp_sum = AllReduce(groups.dp)
        self.model_sum = AllReduce(groups.model)
        self.pipeline_sum = AllReduce(groups.pipeline)
        self.embedding_sum = AllReduce(groups.embedding) if groups.embedding else None
        self.tied_index = next((k for k, p in enumerate(self.weights)
                                if p is part.tied_table), -1) if pipelined else -1
        self.norm_weights = tuple(1.0 / part.replicas(p) for p in self.weights)
        self.pipelined = pipelined
        if pipelined:
            self._build_pipeline(schedule)
        elif isinstance(optimizer, ShardedAdamW):
            # Two graphs: MindSpore's CPU autodiff keeps a graph's intermediate tensors until
            # it ends, so the update's temporaries would add to the backward's peak and eat
            # what sharding the state saves. Between the graphs only the gradients live.
            self._gradients = ms.jit(self.gradients_graph)
            self._apply_given = ms.jit(self.apply_gradients)
            self._update = self._update_in_two_graphs

    # ---- data ----------------------------------------------------------------------------
    @property
    def data_rank(self) -> int:
        return self.part.groups.dp.index

    @property
    def data_ranks(self) -> int:
        return self.part.groups.dp.size

    # ---- what TrainStep's graphs call --------------------------------------------------------
    def scaled_loss(self, tokens, scale):
        return self.stage_loss(tokens, tokens) * scale  # no pipeline: `hidden` is unused

    def reduce_gradients(self, grads, loss):
        grads = tuple(self.dp_sum(g) for g in grads)
        if self.tied_index >= 0:  # one table, two stages: each saw half of its uses
            grads = tuple(self.embedding_sum(g) if k == self.tied_index else g
                          for k, g in enumerate(grads))
        loss = self.dp_sum(loss)
        if self.pipelined:  # only the last stage has a loss; the others contribute 0
            loss = self.pipeline_sum(loss)
        return grads, loss

    def gradient_norm(self, grads):
        squares = [(g * g).sum(-1).sum() * w
                   for g, w in zip(grads, self.norm_weights)]  # noqa: B905 - graph mode
        return ops.sqrt(self.model_sum(ops.addn(squares)))

    def _update_in_two_graphs(self, tokens, scale):
        loss, grads = self._gradients(tokens, scale)
        return self._apply_given(ms.mutable(grads), loss, scale)

    # ---- the pipeline --------------------------------------------------------------------
    def _build_pipeline(self, schedule: ScheduleKind) -> None:
        part = self.part
        self.events = stage_events(schedule, part.groups.num_stages,
                                   self.micro_batches)[part.stage]
        grad_input = None if part.is_first_stage else 0  # the first stage has no input grad
        self._stage_grad = ms.value_and_grad(self._stage_vjp, grad_input, self.weights)
        self._last_grad = ms.value_and_grad(self._last_loss, grad_input, self.weights)
        self._forward = ms.jit(self.stage_loss)
        self._backward = ms.jit(self.backward_graph)
        self._last = ms.jit(self.last_graph)
        self._apply = ms.jit(self.apply_graph)
        self._handovers: dict[str, HandOver] = {}
        self._no_hidden = Tensor(np.zeros((1,), np.float32))  # the first stage's `hidden`

    def _stage_vjp(self, hidden, tokens, dy):
        # d/dθ sum(stage(hidden) * dy) is the vector-Jacobian product the next stage asks for
        return (self.stage_loss(hidden, tokens) * dy).sum()

    def _last_loss(self, hidden, tokens, scale):
        return self.stage_loss(hidden, tokens) * scale

    def _accumulate_into_buffers(self, grads):
        for buffer, grad in zip(self.accumulated, grads):  # noqa: B905 - graph mode
            ops.assign_add(buffer, ops.cast(grad, mstype.float32))

    def backward_graph(self, hidden, tokens, dy):
        if self.part.is_first_stage:
            _, grads = self._stage_grad(hidden, tokens, dy)
            self._accumulate_into_buffers(grads)
            return ops.zeros((1,), mstype.float32)
        _, (dx, grads) = self._stage_grad(hidden, tokens, dy)
        self._accumulate_into_buffers(grads)
        return dx

    def last_graph(self, hidden, tokens, scale):
        loss, (dx, grads) = self._last_grad(hidden, tokens, scale)
        self._accumulate_into_buffers(grads)
        ops.assign_add(self.accumulated_loss, loss)
        return dx

    def apply_graph(self, scale):
        grads = tuple(buffer * 1.0 for buffer in self.accumulated)
        loss = self.accumulated_loss * 1.0
        for buffer in self.accumulated:
            ops.assign(buffer, ops.zeros_like(buffer))
        ops.assign(self.accumulated_loss, ops.zeros_like(self.accumulated_loss))
        return self.apply_gradients(grads, loss, scale)

    def _handover(self, kind: str, shape: tuple[int, ...]) -> HandOver:
        """The hand-over cell of one direction on one neighbour's channel, made once."""
        if kind not in self._handovers:
            groups, rank = self.part.groups, self.part.groups.rank
            channel = groups.next_stage if kind in ("send_activation", "recv_gradient") \
                else groups.prev_stage
            sending = kind.startswith("send")
            peer = next(r for r in channel.ranks if r != rank)
            self._handovers[kind] = HandOver(channel, rank if sending else peer, shape)
        return self._handovers[kind]

    def step(self, batches: Sequence[np.ndarray], loss_scale: float = 1.0) -> StepOutput:
        if not self.pipelined:
            return super().step(batches, loss_scale)
        if len(batches) != self.micro_batches:
            raise ValueError(f"expected {self.micro_batches} micro batches, got {len(batches)}")
        scale = Tensor(np.float32(loss_scale))
        tokens = [Tensor(np.asarray(b, np.int32)) for b in batches]
        rows, length = tokens[0].shape[0], tokens[0].shape[1] - 1
        shape = (rows, length, self.part.model.config.hidden_size)
        zeros = Tensor(np.zeros(shape, np.float32))
        received, produced, grads_in, grads_out = {}, {}, {}, {}
        seconds = {"compute": 0.0, "hand_over": 0.0}
        for event in self.events:
            m, kind = event.micro_batch, event.kind
            start = time.perf_counter()
            if kind == "forward" and self.part.is_last_stage:
                grads_out[m] = self._last(received.pop(m, self._no_hidden), tokens[m], scale)
            elif kind == "forward":
                produced[m] = self._forward(received.get(m, self._no_hidden), tokens[m])
            elif kind == "backward" and not self.part.is_last_stage:
                grads_out[m] = self._backward(received.pop(m, self._no_hidden), tokens[m],
                                              grads_in.pop(m))
            elif kind == "send_activation":
                self._handover(kind, shape)(produced.pop(m))
            elif kind == "recv_activation":
                received[m] = self._handover(kind, shape)(zeros)
            elif kind == "send_gradient":
                self._handover(kind, shape)(grads_out.pop(m))
            elif kind == "recv_gradient":
                grads_in[m] = self._handover(kind, shape)(zeros)
            phase = "compute" if kind in ("forward", "backward") else "hand_over"
            seconds[phase] += time.perf_counter() - start
        start = time.perf_counter()
        loss, norm, finite = self._apply(scale)
        seconds["compute"] += time.perf_counter() - start
        # Where this step's time went on this rank (a hand-over includes waiting for the
        # partner: the pipeline bubble). Host clocks: exact with MS_DEV_HOST_BLOCKING_RUN=1.
        self.last_seconds = seconds
        return StepOutput(loss=float(loss.asnumpy()), grad_norm=float(norm.asnumpy()),
                          finite=bool(finite.asnumpy()))
