"""A family's sharding plan applied to a built model: one rank's part of a parallel job.

    groups = process_groups(parallel_config, rank)          # mf_parallel.collectives
    model = AutoModelForCausalLM.from_config(config)         # the whole model, same seed everywhere
    part = shard_model(model, groups)                        # in place; names unchanged
    part.params                                              # what this rank trains
    part.strategy                                            # every parameter's layout and stage

The model file stays single-device math; this module is where ranks meet it. On CPU
(MindSpore's SEMI_AUTO_PARALLEL refuses the CPU backend) tensor parallelism is explicit,
Megatron-LM's (Shoeybi et al. 2019), driven only by the plan resolved into an mf_parallel
`Strategy` (the object a job writes as its strategy file):

1. Every parameter is cut to this rank's slice (`strategy.rank_slices`). Parameters of other
   pipeline stages shrink to one element: this rank never runs them (a tied table stays on the
   last stage, whose head reads it).
2. A `Linear` whose weight is split over mp on its output dim becomes column-parallel (f, the
   identity whose backward sums over mp, before it; its bias is split the same way); split on
   its input dim, row-parallel (g, the sum over mp, after it; the whole bias added once after
   the sum).
3. An `Embedding` split by vocabulary row looks up the ids it owns and sums over mp.
4. The head (an untied `lm_head` Linear or a `TiedLMHead` over a split table) is
   column-parallel: logits come out as this rank's vocabulary shard, for mf_parallel's
   `VocabParallelNLL`; with `gather_logits` (generation) they are gathered whole.
5. A cell with a `num_heads` attribute (and `kv_heads`) whose projections became column-parallel
   holds num_heads / mp heads (and kv_heads / mp): the family's reshapes then work per rank.
   `ParallelConfig.check_model` has already required mp to divide both.

Anything else a plan splits (a parameter of a cell none of the above covers) is refused with
one line naming it. On Ascend/GPU the same Strategy could instead become MindSpore `.shard()`
strategies; mf does not do that yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from mf_parallel import LayoutError, ParallelConfig, Strategy
from mf_parallel.collectives import (
    CopyToGroup,
    GatherFromGroup,
    ProcessGroups,
    ReduceFromGroup,
)
from mf_parallel.pipeline import layer_of
from mf_parallel.tensor_parallel import VocabParallelLookup
from mindspore import Parameter, Tensor, nn, ops

from mf_models.dims import model_dims
from mf_models.errors import ModelConfigError
from mf_models.models.base import CausalLM
from mf_models.modules.layers import Embedding, Linear, TiedLMHead


@dataclass
class ModelPart:
    """One rank's part of a sharded model, and what a train step needs to know about it."""

    model: CausalLM
    strategy: Strategy
    groups: ProcessGroups
    params: list[Parameter]  # this rank trains these (its stage's, sliced), in model order
    layers: range  # the decoder layers on this rank's stage
    tied_table: Parameter | None  # a table the first and last stage both hold (tied head)
    vocab_start: int | None  # first vocabulary row of this rank's logits, None if whole

    @property
    def stage(self) -> int:
        return self.groups.stage

    @property
    def is_first_stage(self) -> bool:
        return self.stage == 0

    @property
    def is_last_stage(self) -> bool:
        return self.stage == self.groups.num_stages - 1

    def replicas(self, param: Parameter) -> int:
        """How many ranks of this rank's model group (mp x pp) hold the same values: a
        gradient norm summed over that group counts each such parameter once."""
        copies = 1 if "mp" in str(self.strategy.params[param.name].spec) else \
            self.groups.mp.size
        if param is self.tied_table and self.groups.num_stages > 1:
            copies *= 2  # on the first and on the last stage
        return copies

    def local_state(self) -> dict[str, np.ndarray]:
        """This rank's slices of its parameters, by full-model name (copies)."""
        return {p.name: p.asnumpy().copy() for p in self.params}


def check_parallel_support(model_class: type[CausalLM], config: ParallelConfig) -> None:
    """One line if this family cannot run `config` (before any rank starts)."""
    if (config.model_parallel > 1 or config.pipeline_stage > 1) and \
            not model_class.splits_into_pieces():
        family = model_class.config_class.family
        raise ModelConfigError(
            f"model_parallel({config.model_parallel}) and pipeline_stage"
            f"({config.pipeline_stage}) > 1 need a family that splits into pipeline pieces "
            f"(llama, gpt2); {family} runs data parallel only")


def model_strategy(model: CausalLM, config: ParallelConfig, offset: Any = 0) -> Strategy:
    """The family's plan over this model's parameters under `config`."""
    params = [(p.name, tuple(p.shape)) for p in model.get_parameters()]
    return Strategy.from_plan(model.config.sharding_plan, params, config,
                              model.config.num_layers, offset)


def shard_model(model: CausalLM, groups: ProcessGroups, *, offset: Any = 0,
                gather_logits: bool = False) -> ModelPart:
    """Make `model` (built whole, the same on every rank) this rank's part, in place."""
    config = groups.config
    check_parallel_support(type(model), config)
    config.check_model(model_dims(model.config))
    strategy = model_strategy(model, config, offset)
    names = {id(p): p.name for p in model.get_parameters()}
    stage = groups.stage
    token_table = _token_table(model)
    tied = any(isinstance(cell, TiedLMHead) for _, cell in model.cells_and_names())
    last_stage = config.pipeline_stage - 1

    # 1. slices; other stages' parameters shrink to one element
    slices = strategy.rank_slices(groups.rank)
    params, tied_table = [], None
    for param in model.get_parameters():
        keep = param.name in slices
        if tied and param.name == token_table and stage == last_stage and not keep:
            keep, tied_table = True, param  # the last stage's copy of the first stage's table
            region = strategy.layout(param.name).slices(_stage_local_rank(strategy, groups))
        elif keep:
            region = slices[param.name]
            if tied and param.name == token_table and last_stage > 0:
                tied_table = param
        if not keep:
            param.set_data(Tensor(np.zeros((1,) * len(param.shape), np.float32),
                                  param.dtype), slice_shape=True)
            continue
        if any(s != slice(0, n) for s, n in zip(region, param.shape, strict=True)):
            param.set_data(Tensor(param.asnumpy()[region].copy()), slice_shape=True)
        params.append(param)

    # 2-5. the cells around the split parameters
    mp = groups.mp
    vocab_start = None
    wrapped: set[str] = set()
    for _, cell in list(model.cells_and_names()):
        for attr, child in list(cell.name_cells().items()):
            replacement = None
            if isinstance(child, Linear):
                replacement = _parallel_linear(child, strategy, mp, gather_logits)
            elif isinstance(child, Embedding):
                spec = strategy.params[child.table.name].spec
                if "mp" in spec[0]:
                    start = strategy.layout(child.table.name).offsets(
                        _stage_local_rank(strategy, groups))[0]
                    replacement = VocabParallelEmbedding(child, mp, start)
            elif isinstance(child, TiedLMHead) and token_table is not None:
                spec = strategy.params[token_table].spec
                if "mp" in spec[0]:
                    replacement = ParallelTiedHead(child, mp, gather_logits)
            if replacement is not None:
                setattr(cell, attr, replacement)
                for param in replacement.get_parameters():  # MindSpore prefixed them on setattr
                    param.name = names[id(param)]
                    wrapped.add(param.name)
    heads_split = False
    for path, cell in model.cells_and_names():
        column = [c for c in cell.name_cells().values() if isinstance(c, ColumnParallel)]
        if hasattr(cell, "num_heads") and column and layer_of(path + ".") is not None:
            cell.num_heads //= mp.size
            if hasattr(cell, "kv_heads"):
                cell.kv_heads //= mp.size
            heads_split = True
    if heads_split:  # the KV cache holds this rank's heads only
        model.cache_heads //= mp.size

    split_unhandled = [p.name for p in params if "mp" in str(strategy.params[p.name].spec)
                       and p.name not in wrapped]
    if split_unhandled:
        raise LayoutError(
            f"the sharding plan splits {split_unhandled[0]!r} over mp, but it belongs to a "
            f"cell mf cannot split (only Linear, Embedding and the LM head)")
    if token_table is not None and "mp" in strategy.params[token_table].spec[0]:
        vocab_start = strategy.layout(token_table).offsets(_stage_local_rank(strategy, groups))[0]
    elif isinstance(getattr(model, "lm_head", None), ColumnParallel) and not gather_logits:
        head = model.lm_head.inner.weight.name
        vocab_start = strategy.layout(head).offsets(_stage_local_rank(strategy, groups))[0]
    if gather_logits:
        vocab_start = None
    stage_layers = [i for i in range(model.config.num_layers)
                    if strategy.params[_first_param_of_layer(strategy, i)].stage == stage]
    return ModelPart(model=model, strategy=strategy, groups=groups, params=params,
                     layers=range(stage_layers[0], stage_layers[-1] + 1),
                     tied_table=tied_table, vocab_start=vocab_start)


def _stage_local_rank(strategy: Strategy, groups: ProcessGroups) -> int:
    coords = strategy.mesh.coords(groups.rank)
    return strategy.stage_mesh.rank(dp=coords["dp"], mp=coords["mp"])


def _first_param_of_layer(strategy: Strategy, layer: int) -> str:
    return next(name for name in strategy.params if layer_of(name) == layer)


def _token_table(model: CausalLM) -> str | None:
    """The token embedding: the parameter before the first layer that the family's plan splits
    by vocabulary row (a position table is never split so)."""
    from mf_parallel.plan import match

    for param in model.get_parameters():
        if layer_of(param.name) is not None:
            return None
        hit = match(model.config.sharding_plan, param.name)
        if hit is not None and len(hit[1]) == 2 and hit[1][0] == "mp":
            return param.name
    return None


def _parallel_linear(linear: Linear, strategy: Strategy, mp, gather_logits: bool):
    spec = strategy.params[linear.weight.name].spec
    out_dim = 0 if linear.transpose_b else 1
    if "mp" in spec[out_dim]:
        linear.out_features //= mp.size
        head = layer_of(linear.weight.name) is None
        return ColumnParallel(linear, mp, gather=gather_logits and head)
    if "mp" in spec[1 - out_dim]:
        return RowParallel(linear, mp)
    return None


class ColumnParallel(nn.Cell):
    """A Linear holding this rank's output features: f before it (Megatron's column-parallel
    layer); `gather` concatenates every rank's features after it (a head for generation)."""

    def __init__(self, inner: Linear, group, gather: bool = False):
        super().__init__(auto_prefix=False)
        self.inner = inner
        self.copy = CopyToGroup(group)
        self.gather = GatherFromGroup(group, -1) if gather else None

    def construct(self, x):
        y = self.inner(self.copy(x))
        if self.gather is not None:
            y = self.gather(y)
        return y


class RowParallel(nn.Cell):
    """A Linear holding this rank's input features: its partial products are summed over the
    group (g), then the whole bias is added once."""

    def __init__(self, inner: Linear, group):
        super().__init__(auto_prefix=False)
        self.bias = inner.bias
        inner.bias = None  # added after the sum, not once per rank
        self.inner = inner
        self.reduce = ReduceFromGroup(group)
        self.compute_dtype = inner.compute_dtype

    def construct(self, x):
        y = self.reduce(self.inner(x))
        if self.bias is not None:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return y


class VocabParallelEmbedding(nn.Cell):
    """An Embedding holding vocabulary rows [start, start + n): a lookup summed over the group.
    Takes the same (ids, table=None) as Embedding, so a tied model's forward is unchanged."""

    def __init__(self, inner: Embedding, group, start: int):
        super().__init__(auto_prefix=False)
        self.inner = inner
        self.lookup = VocabParallelLookup(group, start)

    @property
    def table(self) -> Parameter:
        """This rank's rows, where a tied model's forward reads `embedding.table`."""
        return self.inner.table

    def construct(self, ids, table=None):
        return self.lookup(self.inner.table if table is None else table, ids)


class ParallelTiedHead(nn.Cell):
    """A TiedLMHead over this rank's vocabulary rows: f before it, logits of those rows (or,
    with `gather`, of every row)."""

    def __init__(self, inner: TiedLMHead, group, gather: bool = False):
        super().__init__(auto_prefix=False)
        self.inner = inner
        self.copy = CopyToGroup(group)
        self.gather = GatherFromGroup(group, -1) if gather else None

    def construct(self, h, table):
        logits = self.inner(self.copy(h), table)
        if self.gather is not None:
            logits = self.gather(logits)
        return logits


__all__ = ["ColumnParallel", "ModelPart", "ParallelTiedHead", "RowParallel",
           "VocabParallelEmbedding", "check_parallel_support", "model_strategy", "shard_model"]
