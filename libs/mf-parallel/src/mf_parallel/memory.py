"""Per-device memory of training a LLaMA-style decoder under a ParallelConfig.

The model counted: token embedding (vocab, hidden); per layer RMSNorm, Q/K/V/O projections
(K and V of width n_kv_heads * head_dim), RMSNorm, a gated MLP (w1, w3: hidden -> ffn; w2:
ffn -> hidden); final RMSNorm; an untied LM head (vocab, hidden). The tensor-parallel split is
Megatron's, as MindFormers' LLaMA shards it: Q/K/V/w1/w3 split their output dim over mp, O/w2
their input dim; the embedding and LM head are replicated when `vocab_emb_dp` (or when the
vocabulary does not divide), else split over mp by vocabulary row.

Per device, for every pipeline stage:

- parameters, gradients: each tensor's shard on one rank (under `optimizer_shard`, dim 0 further
  split over dp, as MindSpore's parallel optimizer stores weights and reduces gradients);
- optimizer states: AdamW's two moments per parameter element, in fp32;
- activations: what backward needs, per layer and micro-batch (counted below), times the
  micro-batches a stage holds at its peak (1F1B: min(stages - stage, micro_batch_num); without
  a pipeline, micro-batches are accumulated one at a time). With recompute only each layer's
  input is kept, plus one layer's full activations while it is recomputed.

Not counted: the framework's workspace, communication buffers, fused-kernel temporaries and
memory-pool fragmentation; `benchmarks/memory_estimate.py` measures how far that leaves us.
"""

from __future__ import annotations

from dataclasses import dataclass

from mf_parallel.config import ModelDims, ParallelConfig, check_limit
from mf_parallel.errors import ParallelConfigError
from mf_parallel.layout import Layout, optimizer_layout
from mf_parallel.pipeline import (
    ScheduleKind,
    assign_stages,
    in_flight_micro_batches,
    stage_layer_counts,
)
from mf_parallel.plan import stage_mesh

GIB = 1024**3

# AdamW keeps two moments (m, v) per parameter element (Loshchilov & Hutter 2019).
ADAMW_STATES = 2


@dataclass(frozen=True)
class StageMemory:
    """Bytes on one device of pipeline stage `stage`."""

    stage: int
    layers: int
    parameters: int
    gradients: int
    optimizer_states: int
    activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_states + self.activations


@dataclass(frozen=True)
class MemoryEstimate:
    stages: tuple[StageMemory, ...]

    @property
    def peak(self) -> StageMemory:
        """The stage whose devices need the most memory (the one that must fit)."""
        return max(self.stages, key=lambda s: (s.total, -s.stage))

    @property
    def per_device(self) -> int:
        """Bytes the busiest device needs."""
        return self.peak.total


def _layer_layouts(dims: ModelDims, config: ParallelConfig) -> list[Layout]:
    mesh = stage_mesh(config)
    h, kv, f = dims.hidden_size, dims.kv_size, dims.ffn_hidden_size
    column, row = ("mp", None), (None, "mp")  # Dense weights are (out, in)
    return [
        Layout((h,), (None,), mesh, "attention_norm"),
        Layout((h, h), column, mesh, "wq"),
        Layout((kv, h), column, mesh, "wk"),
        Layout((kv, h), column, mesh, "wv"),
        Layout((h, h), row, mesh, "wo"),
        Layout((h,), (None,), mesh, "ffn_norm"),
        Layout((f, h), column, mesh, "w1"),
        Layout((f, h), column, mesh, "w3"),
        Layout((h, f), row, mesh, "w2"),
    ]


def _vocab_split(dims: ModelDims, config: ParallelConfig) -> bool:
    return not config.vocab_emb_dp and dims.vocab_size % config.model_parallel == 0


def _vocab_layout(dims: ModelDims, config: ParallelConfig, name: str) -> Layout:
    spec = ("mp", None) if _vocab_split(dims, config) else (None, None)
    return Layout((dims.vocab_size, dims.hidden_size), spec, stage_mesh(config), name)


def layer_activation_elements(dims: ModelDims, config: ParallelConfig, batch_size: int,
                              seq_length: int) -> int:
    """Elements one layer keeps for backward, per micro-batch, on one device (no recompute).

    Counted for a pre-norm LLaMA block: both norms' inputs and outputs (4 * s*b*h, split over
    mp only with sequence parallelism); Q, K, V and the attention context (s*b*(2h + 2kv)/mp);
    the softmax probabilities (heads * s^2 * b / mp); the MLP's w1 and w3 outputs, the SiLU
    output and the gated product (4 * s*b*ffn / mp).
    """
    t = config.model_parallel
    tokens = batch_size * seq_length
    h, kv, f = dims.hidden_size, dims.kv_size, dims.ffn_hidden_size
    norms = 4 * tokens * h // (t if config.use_seq_parallel else 1)
    attention = tokens * (2 * h + 2 * kv) // t + dims.num_heads * seq_length * tokens // t
    mlp = 4 * tokens * f // t
    return norms + attention + mlp


def _head_activation_elements(dims: ModelDims, config: ParallelConfig, batch_size: int,
                              seq_length: int) -> int:
    # Final norm input and output, then the logits and the softmax the loss keeps.
    tokens = batch_size * seq_length
    vocab = dims.vocab_size // (config.model_parallel if _vocab_split(dims, config) else 1)
    return 2 * tokens * dims.hidden_size + 2 * tokens * vocab


def estimate_memory(
    dims: ModelDims,
    config: ParallelConfig,
    batch_size: int = 1,
    seq_length: int | None = None,
    recompute: bool = False,
    *,
    offset: int | list[int] = 0,
    schedule: ScheduleKind = "1f1b",
    param_bytes: int = 4,
    grad_bytes: int = 4,
    optimizer_state_bytes: int = 4,
    activation_bytes: int = 4,
) -> MemoryEstimate:
    """Bytes per device of every pipeline stage when training `dims` under `config`.

    `config` must be resolved (no -1). `batch_size` is MindFormers' per-device micro-batch
    size; `seq_length` defaults to the model's. Byte sizes default to fp32 throughout (what
    runs on CPU); for fp16/bf16 compute with fp32 weights pass activation_bytes=2.
    """
    config.check_model(dims)
    seq_length = dims.seq_length if seq_length is None else seq_length
    for name, value in (("batch_size", batch_size), ("seq_length", seq_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParallelConfigError(f"{name}({value!r}) must be an integer >= 1")
        check_limit(name, value)
    if config.use_seq_parallel and seq_length % config.model_parallel:
        raise ParallelConfigError(
            f"seq_length({seq_length}) is not divisible by model_parallel"
            f"({config.model_parallel}): {seq_length} % {config.model_parallel} = "
            f"{seq_length % config.model_parallel} (use_seq_parallel splits the sequence)"
        )
    pp = config.pipeline_stage
    counts = stage_layer_counts(assign_stages(dims.num_layers, pp, offset), pp)

    def stored(layouts: list[Layout]) -> int:
        """Elements per device of these weights (and of each of their optimizer states)."""
        return sum(
            (optimizer_layout(layout, "dp") if config.optimizer_shard else layout).shard_numel
            for layout in layouts
        )

    layer_weights = stored(_layer_layouts(dims, config))
    embedding = stored([_vocab_layout(dims, config, "embedding")])
    head = stored([Layout((dims.hidden_size,), (None,), stage_mesh(config), "norm"),
                   _vocab_layout(dims, config, "lm_head")])
    per_layer = layer_activation_elements(dims, config, batch_size, seq_length)
    layer_input = batch_size * seq_length * dims.hidden_size
    if config.use_seq_parallel:
        layer_input //= config.model_parallel
    head_activations = _head_activation_elements(dims, config, batch_size, seq_length)

    stages = []
    for stage, layers in enumerate(counts):
        weights = layers * layer_weights
        if stage == 0:
            weights += embedding
        if stage == pp - 1:
            weights += head
        in_flight = (in_flight_micro_batches(schedule, stage, pp, config.micro_batch_num)
                     if pp > 1 else 1)
        if recompute:
            activations = in_flight * layers * layer_input + per_layer
        else:
            activations = in_flight * layers * per_layer
        if stage == pp - 1:
            activations += head_activations  # the loss runs one micro-batch at a time
        stages.append(StageMemory(
            stage=stage,
            layers=layers,
            parameters=weights * param_bytes,
            gradients=weights * grad_bytes,
            optimizer_states=ADAMW_STATES * weights * optimizer_state_bytes,
            activations=activations * activation_bytes,
        ))
    return MemoryEstimate(tuple(stages))
