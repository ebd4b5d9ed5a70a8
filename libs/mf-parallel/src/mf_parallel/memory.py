"""Per-device memory of a training (or inference) job under a ParallelConfig, before anything
is built: pure arithmetic, no MindSpore.

**Weights** come from the family's own parameter list, `(name, shape, trainable)` as the model
lists them (mf-models' `config.parameter_shapes()`, LoRA's A and B added by mf-train), walked
with the family's sharding plan: `Strategy.from_plan` decides each tensor's pipeline stage and
its tensor-parallel shard, exactly as `mf_models.parallel.shard_model` cuts the real model.
Without a list, a LLaMA-shaped decoder of `dims` under a Megatron plan stands in. Per device,
for every pipeline stage:

- parameters: each tensor's shard on one rank, fp32;
- gradients and optimizer states: for trainable tensors only (a frozen LoRA base has none);
  AdamW's two moments in fp32, split over dp by `optimizer_shard` (dim 0, as mf's ShardedAdamW
  and MindSpore's parallel optimizer keep them; weights and gradients stay whole per rank);
- activations: what backward needs per layer and micro-batch (Korthikanti et al. 2022's count,
  by kind: decoder, encoder, encoder-decoder, vision), times the micro-batches a stage holds at
  its peak (GPipe: all of them; 1F1B: min(stages - stage, micro_batch_num); without a
  pipeline one at a time). With recompute, each layer's input plus one layer's activations;
- data: the batches prefetched ahead of the step (token ids and labels, int32);
- caches (inference): the static key/value cache of every layer on the stage.

**Backends.** `backend="accelerator"` is that count alone: what Ascend/GPU keep when the
framework frees what backward no longer needs (not checked against a device here).
`backend="cpu"` (the default: what mf runs here) adds what MindSpore 2.10's CPU backend was
measured to keep on top (`benchmarks/memory_estimate.py`, peak RSS of real `mf train` runs):

- the process itself: Python, MindSpore and mf loaded, before the model (CPU_PROCESS_BASE);
- the optimizer graph's temporaries, CPU_STEP_TEMPORARIES x the trainable weights (the new
  moments and updated weights live until the graph ends);
- activations: MindSpore's CPU autodiff keeps every forward op's output until the step ends,
  not just what backward needs: CPU_KEPT_PER_TOKEN x the token-wide tensors and
  CPU_KEPT_SCORES x the attention scores of the count above. Recompute was measured to raise
  the peak on CPU, not lower it (the recomputed layer's outputs come on top of all the kept
  ones): it is counted so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mf_parallel.config import ModelDims, ParallelConfig, check_limit
from mf_parallel.errors import ParallelConfigError
from mf_parallel.layout import optimizer_layout
from mf_parallel.pipeline import (
    ScheduleKind,
    assign_stages,
    in_flight_micro_batches,
    layer_of,
    stage_layer_counts,
)
from mf_parallel.plan import match
from mf_parallel.strategy import Strategy

GIB = 1024**3
Backend = Literal["cpu", "accelerator"]
Kind = Literal["decoder", "encoder", "encoder_decoder", "vision"]
KINDS = ("decoder", "encoder", "encoder_decoder", "vision")

# AdamW keeps two moments (m, v) per parameter element (Loshchilov & Hutter 2019).
ADAMW_STATES = 2
# Batches the data loader holds ahead of the step (mf_train's loader: the next one).
PREFETCH_BATCHES = 2

# Measured on MindSpore 2.10, CPU (benchmarks/memory_estimate.py; libs/mf-parallel/README.md):
# resident size of an `mf train` process with its imports done and a model of a few weights.
CPU_PROCESS_BASE = int(0.69 * GIB)
# The optimizer step's temporaries, per trainable weight element.
CPU_STEP_TEMPORARIES = 1.7
# What the CPU autodiff keeps, per element backward needs: token-wide tensors, scores.
CPU_KEPT_PER_TOKEN = 4.7
CPU_KEPT_SCORES = 6.0


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as the model lists it: global shape, and whether it trains."""

    name: str
    shape: tuple[int, ...]
    trainable: bool = True


@dataclass(frozen=True)
class StageMemory:
    """Bytes on one device of pipeline stage `stage`."""

    stage: int
    layers: int
    parameters: int
    gradients: int
    optimizer_states: int
    activations: int
    data: int = 0
    caches: int = 0
    framework: int = 0  # what the backend keeps on top (process, temporaries); 0 on accelerators

    @property
    def total(self) -> int:
        return (self.parameters + self.gradients + self.optimizer_states + self.activations
                + self.data + self.caches + self.framework)

    def parts(self) -> dict[str, int]:
        """The non-zero parts by name (for tables and plan.json)."""
        named = {"parameters": self.parameters, "gradients": self.gradients,
                 "optimizer_states": self.optimizer_states, "activations": self.activations,
                 "data": self.data, "caches": self.caches, "framework": self.framework}
        return {name: amount for name, amount in named.items() if amount}


@dataclass(frozen=True)
class MemoryEstimate:
    stages: tuple[StageMemory, ...]
    backend: str = "cpu"

    @property
    def peak(self) -> StageMemory:
        """The stage whose devices need the most memory (the one that must fit)."""
        return max(self.stages, key=lambda s: (s.total, -s.stage))

    @property
    def per_device(self) -> int:
        """Bytes the busiest device needs."""
        return self.peak.total


# A LLaMA-shaped decoder's parameters and Megatron plan: what `dims` alone stands for.
_DECODER_PLAN: dict[str, tuple[str | None, ...]] = {
    "embedding": ("mp", None),
    "layers.*.wq": ("mp", None), "layers.*.wk": ("mp", None), "layers.*.wv": ("mp", None),
    "layers.*.wo": (None, "mp"),
    "layers.*.w1": ("mp", None), "layers.*.w3": ("mp", None), "layers.*.w2": (None, "mp"),
    "layers.*.*_norm": (None,), "norm": (None,), "lm_head": ("mp", None),
}


def decoder_params(dims: ModelDims) -> list[ParamSpec]:
    """The parameters of a LLaMA-style decoder of `dims` (untied head), in model order."""
    h, kv, f, v = dims.hidden_size, dims.kv_size, dims.ffn_hidden_size, dims.vocab_size
    params = [ParamSpec("embedding", (v, h))]
    for i in range(dims.num_layers):
        for name, shape in (("attention_norm", (h,)), ("wq", (h, h)), ("wk", (kv, h)),
                            ("wv", (kv, h)), ("wo", (h, h)), ("ffn_norm", (h,)),
                            ("w1", (f, h)), ("w3", (f, h)), ("w2", (h, f))):
            params.append(ParamSpec(f"layers.{i}.{name}", shape))
    return params + [ParamSpec("norm", (h,)), ParamSpec("lm_head", (v, h))]


def layer_activation_elements(dims: ModelDims, config: ParallelConfig, batch_size: int,
                              seq_length: int, *, gated_mlp: bool = True,
                              cross_attention: int = 0) -> tuple[int, int]:
    """(token-wide, score) elements one layer keeps for backward, per micro-batch, on one
    device (no recompute).

    Counted for a pre-norm block: both norms' inputs and outputs (4 * s*b*h, split over mp
    only with sequence parallelism); Q, K, V and the attention context (s*b*(2h + 2kv)/mp);
    the softmax probabilities (heads * s^2 * b / mp); the MLP's ffn-wide tensors (gated,
    LLaMA's SwiGLU: w1 and w3 outputs, SiLU output, product, 4 * s*b*ffn / mp; GELU: the
    mapping output and the activation, 2 * s*b*ffn / mp). `cross_attention` > 0 adds a
    decoder's cross-attention over that many encoder positions (norm, Q/K/V/context, scores).
    """
    t = config.model_parallel
    tokens = batch_size * seq_length
    h, kv, f = dims.hidden_size, dims.kv_size, dims.ffn_hidden_size
    norms = 4 * tokens * h // (t if config.use_seq_parallel else 1)
    wide = norms + tokens * (2 * h + 2 * kv) // t + (4 if gated_mlp else 2) * tokens * f // t
    scores = dims.num_heads * seq_length * tokens // t
    if cross_attention:
        wide += 2 * tokens * h + tokens * 2 * h // t + batch_size * cross_attention * 2 * h // t
        scores += dims.num_heads * cross_attention * tokens // t
    return wide, scores


def _head_activation_elements(dims: ModelDims, config: ParallelConfig, batch_size: int,
                              seq_length: int, outputs: int, vocab_split: bool) -> int:
    # Final norm input and output, then the outputs (logits) and the softmax the loss keeps.
    tokens = batch_size * seq_length
    return 2 * tokens * dims.hidden_size + \
        2 * tokens * outputs // (config.model_parallel if vocab_split else 1)


def _stage_weights(params: Sequence[ParamSpec], plan: Mapping[str, Sequence[str | None]],
                   config: ParallelConfig, num_layers: int, offset: int | list[int]
                   ) -> list[tuple[int, int, int]]:
    """Per stage: (weight elements, trainable weight elements, optimizer-state elements) on
    one device, walking the plan over the parameter list."""
    if config.vocab_emb_dp:
        # Strategy keeps the tensors outside the layers whole under vocab_emb_dp; saying so
        # up front spares an odd vocabulary (GPT-2's 50257) a split it would never get.
        whole = {}
        for param in params:
            hit = match(plan, param.name)
            if layer_of(param.name) is None and hit is not None:
                whole[param.name] = tuple(None if axes == "mp" else axes for axes in hit[1])
        plan = {**whole, **{k: v for k, v in plan.items() if k not in whole}}
    strategy = Strategy.from_plan(plan, [(p.name, p.shape) for p in params], config,
                                  num_layers, offset)
    totals = [[0, 0, 0] for _ in range(config.pipeline_stage)]
    for param in params:
        layout = strategy.layout(param.name)
        stage = totals[strategy.params[param.name].stage]
        stage[0] += layout.shard_numel
        if param.trainable:
            stage[1] += layout.shard_numel
            stage[2] += (optimizer_layout(layout, "dp") if config.optimizer_shard
                         else layout).shard_numel
    return [tuple(stage) for stage in totals]


def _vocab_split(plan: Mapping[str, Sequence[str | None]], config: ParallelConfig,
                 dims: ModelDims) -> bool:
    # The head's logits are a vocabulary shard when the plan splits the vocabulary and
    # vocab_emb_dp (MindFormers' default) does not keep the embedding and head whole.
    splits = any(spec and spec[0] == "mp" for spec in plan.values())
    return splits and not config.vocab_emb_dp and dims.vocab_size % config.model_parallel == 0


def estimate_memory(
    dims: ModelDims,
    config: ParallelConfig,
    batch_size: int = 1,
    seq_length: int | None = None,
    recompute: bool = False,
    *,
    params: Sequence[ParamSpec] | None = None,
    plan: Mapping[str, Sequence[str | None]] | None = None,
    kind: Kind = "decoder",
    gated_mlp: bool = True,
    outputs: int | None = None,
    train: bool = True,
    backend: Backend = "cpu",
    offset: int | list[int] = 0,
    schedule: ScheduleKind = "1f1b",
    activation_bytes: int = 4,
) -> MemoryEstimate:
    """Bytes per device of every pipeline stage when training (or, `train=False`, running
    inference with a key/value cache) `dims` under `config`.

    `config` must be resolved (no -1). `batch_size` is MindFormers' per-device micro-batch
    size; `seq_length` defaults to the model's. `params` and `plan` are the family's parameter
    list and sharding plan (default: a LLaMA-shaped decoder of `dims`). `kind` picks the
    activation count; `outputs` is the width of the head's logits (default: the vocabulary;
    a classifier's labels). Weights and states are fp32; for fp16/bf16 compute pass
    activation_bytes=2.
    """
    config.check_model(dims)
    seq_length = dims.seq_length if seq_length is None else seq_length
    for name, value in (("batch_size", batch_size), ("seq_length", seq_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParallelConfigError(f"{name}({value!r}) must be an integer >= 1")
        check_limit(name, value)
    if kind not in KINDS:
        raise ParallelConfigError(f"kind({kind!r}) must be one of {', '.join(KINDS)}")
    if backend not in ("cpu", "accelerator"):
        raise ParallelConfigError(f"backend({backend!r}) must be 'cpu' or 'accelerator'")
    if config.use_seq_parallel and seq_length % config.model_parallel:
        raise ParallelConfigError(
            f"seq_length({seq_length}) is not divisible by model_parallel"
            f"({config.model_parallel}): {seq_length} % {config.model_parallel} = "
            f"{seq_length % config.model_parallel} (use_seq_parallel splits the sequence)"
        )
    if params is None:
        params, plan = decoder_params(dims), _DECODER_PLAN
    elif plan is None:  # no plan: every tensor whole on every rank
        plan = {p.name: (None,) * len(p.shape) for p in params}
    pp = config.pipeline_stage
    counts = stage_layer_counts(assign_stages(dims.num_layers, pp, offset), pp)
    weights = _stage_weights(params, plan, config, dims.num_layers, offset)
    cpu = backend == "cpu"

    # Activations of one layer, one micro-batch; an encoder-decoder's decoder layers (as many
    # as its encoder's, counted in num_layers) attend over the encoder's positions too.
    wide, scores = layer_activation_elements(dims, config, batch_size, seq_length,
                                             gated_mlp=gated_mlp)
    if kind == "encoder_decoder":
        dec_wide, dec_scores = layer_activation_elements(
            dims, config, batch_size, seq_length, gated_mlp=gated_mlp,
            cross_attention=seq_length)
        wide, scores = (wide + dec_wide) // 2, (scores + dec_scores) // 2
    layer_input = batch_size * seq_length * dims.hidden_size
    if config.use_seq_parallel:
        layer_input //= config.model_parallel
    head = _head_activation_elements(
        dims, config, batch_size, seq_length,
        dims.vocab_size if outputs is None else outputs,
        outputs is None and _vocab_split(plan, config, dims))
    if cpu:  # the CPU autodiff keeps every forward output (module docstring)
        per_layer = round(CPU_KEPT_PER_TOKEN * wide + CPU_KEPT_SCORES * scores)
        head = round(CPU_KEPT_PER_TOKEN * head)
    else:
        per_layer = wide + scores

    stages = []
    for stage, layers in enumerate(counts):
        held, trainable, states = weights[stage]
        in_flight = (in_flight_micro_batches(schedule, stage, pp, config.micro_batch_num)
                     if pp > 1 else 1)
        caches = 0
        if not train:  # inference: one batch's activations at a time, a key/value cache
            activations = per_layer + (head if stage == pp - 1 else 0)
            caches = 2 * layers * batch_size * seq_length * dims.kv_size // \
                config.model_parallel * activation_bytes
            trainable = states = 0
        elif recompute and not cpu:
            activations = in_flight * layers * layer_input + per_layer
        elif recompute:  # CPU: everything kept, and the recomputed layer's outputs on top
            activations = (in_flight * layers + 1) * per_layer
        else:
            activations = in_flight * layers * per_layer
        if train and stage == pp - 1:
            activations += head  # the loss runs one micro-batch at a time
        framework = 0
        if cpu:
            framework = CPU_PROCESS_BASE + round(CPU_STEP_TEMPORARIES * trainable * 4)
        stages.append(StageMemory(
            stage=stage,
            layers=layers,
            parameters=held * 4,
            gradients=trainable * 4,
            optimizer_states=ADAMW_STATES * states * 4,
            activations=activations * activation_bytes,
            data=(PREFETCH_BATCHES * 2 * batch_size * seq_length * 4 if stage == 0 else 0),
            caches=caches,
            framework=framework,
        ))
    return MemoryEstimate(tuple(stages), backend)
