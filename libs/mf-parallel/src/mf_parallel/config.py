"""`ParallelConfig` (MindFormers' field names) and `ModelDims`, validated with the arithmetic shown.

A config is checked in three steps, each one separately callable:

1. at construction: every degree is a positive integer (or -1 for one of data_parallel,
   model_parallel and pipeline_stage, to be inferred from the world size);
2. ``resolve(world_size)``: infers the -1 and checks that the degrees multiply to the world size;
3. ``check_model(dims)``: checks that the model's heads, hidden size, FFN, vocabulary, layers and
   sequence split evenly over the degrees.

Every count has an upper bound (`LIMITS`), checked before anything is computed from it, so a
slip of the keyboard (`--world-size 1000000000000`) is one line in microseconds, not minutes
of allocation.

Nothing here imports MindSpore.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mf_parallel.errors import ParallelConfigError

# The three degrees that form the device mesh, in MindFormers' names, with the short axis names
# used by meshes, layouts and sharding plans.
DEGREE_AXES = {"data_parallel": "dp", "model_parallel": "mp", "pipeline_stage": "pp"}


# Upper bounds on every count: each far above anything trained to date, so only a mistake
# meets one, and every figure derived from them (groups, bytes) stays cheap to compute.
MAX_DEVICES = 1 << 20  # 1,048,576: ~10x the largest reported training clusters (~100k chips)
LIMITS = {
    "world_size": MAX_DEVICES,
    "data_parallel": MAX_DEVICES,
    "model_parallel": MAX_DEVICES,
    "pipeline_stage": MAX_DEVICES,
    "expert_parallel": MAX_DEVICES,
    "micro_batch_num": 1 << 20,
    "micro_batch_interleave_num": 1 << 10,
    "gradient_aggregation_group": 1 << 20,
    "batch_size": 1 << 20,
    "num_layers": 1 << 14,  # 16,384: today's deepest LLMs have ~100-200 layers
    "num_heads": 1 << 16,  # 65,536: the widest have ~128 heads
    "n_kv_heads": 1 << 16,
    "hidden_size": 1 << 20,  # 1,048,576: the widest have ~20,000-50,000
    "ffn_hidden_size": 1 << 22,
    "vocab_size": 1 << 24,  # 16.8M: the largest vocabularies have ~250,000 entries
    # 1.07G tokens: the longest contexts are ~10M; higher than the rest, so that a long but
    # plausible request (seq_length 1e8) meets the memory estimate's refusal, with its numbers
    "seq_length": 1 << 30,
}


def _is_int(value: Any) -> bool:
    # bool is an int subclass; `data_parallel=True` is a typo, not a degree of 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _require_positive_int(name: str, value: Any, hint: str = "") -> None:
    if not _is_int(value):
        raise ParallelConfigError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise ParallelConfigError(f"{name}({value}) must be >= 1{hint}")
    check_limit(name, value)


def check_limit(name: str, value: int) -> None:
    """Refuse a count above `LIMITS[name]` (names without a limit pass)."""
    limit = LIMITS.get(name)
    if limit is not None and value > limit:
        raise ParallelConfigError(f"{name}({value}) is more than mf plans for: at most "
                                  f"{limit:,} (a typo?)")


def _require_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ParallelConfigError(
            f"{name} must be true or false, got {value!r} ({type(value).__name__})"
        )


@dataclass(frozen=True)
class ModelDims:
    """The dimensions of a decoder-only transformer that parallel layouts depend on.

    mf-models hands one out per preset (`mf_models.model_dims(name)`); anyone can build one.
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    n_kv_heads: int
    ffn_hidden_size: int
    vocab_size: int
    seq_length: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _require_positive_int(field.name, getattr(self, field.name))
        if self.hidden_size % self.num_heads:
            raise ParallelConfigError(
                f"hidden_size({self.hidden_size}) is not divisible by num_heads({self.num_heads}): "
                f"{self.hidden_size} % {self.num_heads} = {self.hidden_size % self.num_heads}"
            )
        if self.num_heads % self.n_kv_heads:
            raise ParallelConfigError(
                f"num_heads({self.num_heads}) is not divisible by n_kv_heads({self.n_kv_heads}): "
                f"{self.num_heads} % {self.n_kv_heads} = {self.num_heads % self.n_kv_heads}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_size(self) -> int:
        """Width of the K (and of the V) projection: n_kv_heads * head_dim."""
        return self.n_kv_heads * self.head_dim


@dataclass(frozen=True)
class ParallelConfig:
    """How a training job is spread over devices, with MindFormers' names and defaults.

    The defaults are those of MindFormers' `TransformerOpParallelConfig` (one device, no
    pipeline, a replicated embedding, gradient fusion groups of 4).
    """

    data_parallel: int = 1
    model_parallel: int = 1
    pipeline_stage: int = 1
    micro_batch_num: int = 1
    micro_batch_interleave_num: int = 1
    optimizer_shard: bool = False
    vocab_emb_dp: bool = True
    gradient_aggregation_group: int = 4
    use_seq_parallel: bool = False
    expert_parallel: int = 1

    def __post_init__(self) -> None:
        inferred = [name for name in DEGREE_AXES if getattr(self, name) == -1]
        if len(inferred) > 1:
            raise ParallelConfigError(
                f"only one degree may be -1 (inferred from the world size), "
                f"but {' and '.join(f'{name}(-1)' for name in inferred)} are"
            )
        for name in DEGREE_AXES:
            value = getattr(self, name)
            if value != -1 or not _is_int(value):
                _require_positive_int(name, value, " (or -1 to infer it from the world size)")
        for name in ("micro_batch_num", "micro_batch_interleave_num",
                     "gradient_aggregation_group", "expert_parallel"):
            _require_positive_int(name, getattr(self, name))
        for name in ("optimizer_shard", "vocab_emb_dp", "use_seq_parallel"):
            _require_bool(name, getattr(self, name))
        if not inferred:
            self._check_degrees_together()

    def _check_degrees_together(self) -> None:
        """The checks that need every degree known (so they run after -1 is inferred)."""
        devices = self.data_parallel * self.model_parallel * self.pipeline_stage
        if devices > MAX_DEVICES:
            raise ParallelConfigError(f"{self._product_text()} = {devices:,} devices is more "
                                      f"than mf plans for: at most {MAX_DEVICES:,} (a typo?)")
        # MindSpore's pipeline needs every stage busy with its own micro-batch once the pipe
        # is full ("micro_batch_num must be >= pipeline_stage", TransformerOpParallelConfig).
        if self.pipeline_stage > 1 and self.micro_batch_num < self.pipeline_stage:
            raise ParallelConfigError(
                f"micro_batch_num({self.micro_batch_num}) < pipeline_stage({self.pipeline_stage}): "
                f"a pipeline of {self.pipeline_stage} stages needs at least "
                f"{self.pipeline_stage} micro-batches"
            )
        # Experts are spread over the data-parallel ranks (MindFormers' MoE parallel config).
        if self.data_parallel % self.expert_parallel:
            raise ParallelConfigError(
                f"data_parallel({self.data_parallel}) is not divisible by "
                f"expert_parallel({self.expert_parallel}): "
                f"{self.data_parallel} % {self.expert_parallel} = "
                f"{self.data_parallel % self.expert_parallel}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ParallelConfig:
        """Build from a run YAML's `parallel_config:` mapping; unknown keys are errors."""
        known = [field.name for field in dataclasses.fields(cls)]
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {known}"
                raise ParallelConfigError(f"unknown parallel_config key {key!r}{hint}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- the world size ---------------------------------------------------------------------

    @property
    def is_resolved(self) -> bool:
        return all(getattr(self, name) != -1 for name in DEGREE_AXES)

    def require_resolved(self) -> ParallelConfig:
        """Self, or an error if a degree is still -1."""
        if not self.is_resolved:
            raise ParallelConfigError(
                f"{self._product_text()} has an unknown degree (-1): resolve it against a "
                f"world size first"
            )
        return self

    @property
    def device_num(self) -> int:
        """data_parallel * model_parallel * pipeline_stage (the config must be resolved)."""
        self.require_resolved()
        return self.data_parallel * self.model_parallel * self.pipeline_stage

    def _product_text(self) -> str:
        return " * ".join(f"{name}({getattr(self, name)})" for name in DEGREE_AXES)

    def resolve(self, world_size: int) -> ParallelConfig:
        """A copy with -1 inferred, checked to use exactly `world_size` devices."""
        _require_positive_int("world_size", world_size)
        inferred = [name for name in DEGREE_AXES if getattr(self, name) == -1]
        if not inferred:
            product = self.device_num
            if product != world_size:
                unit = "device is" if world_size == 1 else "devices are"
                raise ParallelConfigError(
                    f"{self._product_text()} = {product}, but {world_size} {unit} available"
                )
            return self
        name = inferred[0]
        others = [other for other in DEGREE_AXES if other != name]
        known = getattr(self, others[0]) * getattr(self, others[1])
        others_text = " * ".join(f"{other}({getattr(self, other)})" for other in others)
        if world_size % known:
            raise ParallelConfigError(
                f"{name}(-1) cannot be inferred: world_size({world_size}) / ({others_text}) = "
                f"{world_size} / {known} is not a whole number"
            )
        resolved = dataclasses.replace(self, **{name: world_size // known})
        return resolved

    # -- the model --------------------------------------------------------------------------

    def check_model(self, dims: ModelDims) -> None:
        """Raise if the model's dimensions do not split evenly over this config's degrees."""
        mp = self.model_parallel
        pp = self.pipeline_stage
        if mp != -1:
            splits = [
                ("num_heads", dims.num_heads),
                ("n_kv_heads", dims.n_kv_heads),
                ("ffn_hidden_size", dims.ffn_hidden_size),
            ]
            # A replicated embedding (vocab_emb_dp) leaves the vocabulary whole, as MindFormers
            # also keeps the LM head whole when the vocabulary does not divide.
            if not self.vocab_emb_dp:
                splits.append(("vocab_size", dims.vocab_size))
            if self.use_seq_parallel:
                splits.append(("seq_length", dims.seq_length))
            hints = {
                "vocab_size": "; set vocab_emb_dp to keep the vocabulary whole",
                # Each rank must hold whole key/value heads with the query heads that read
                # them; Megatron-LM requires the same (num_query_groups % tensor parallel).
                "n_kv_heads": "; each model-parallel rank needs whole key/value heads, so "
                              "model_parallel must divide n_kv_heads",
            }
            for name, size in splits:
                if size % mp:
                    raise ParallelConfigError(
                        f"{name}({size}) is not divisible by model_parallel({mp}): "
                        f"{size} % {mp} = {size % mp}" + hints.get(name, "")
                    )
        if pp != -1 and dims.num_layers < pp:
            raise ParallelConfigError(
                f"num_layers({dims.num_layers}) < pipeline_stage({pp}): "
                f"every pipeline stage needs at least one layer"
            )

    def validate(self, world_size: int, dims: ModelDims | None = None) -> ParallelConfig:
        """resolve(world_size), then check_model(dims) if given; returns the resolved config."""
        resolved = self.resolve(world_size)
        if dims is not None:
            resolved.check_model(dims)
        return resolved

    # -- the batch --------------------------------------------------------------------------

    def global_batch_size(self, batch_size: int) -> int:
        """Samples per optimizer step over the whole job, as MindFormers computes it.

        batch_size * data_parallel * micro_batch_num * micro_batch_interleave_num (MindFormers'
        base trainer, full-batch mode). Reported, never written back over a user's value.
        """
        _require_positive_int("batch_size", batch_size)
        if self.data_parallel == -1:
            raise ParallelConfigError(
                "data_parallel(-1) is unknown: resolve it against a world size first"
            )
        return (batch_size * self.data_parallel * self.micro_batch_num
                * self.micro_batch_interleave_num)

    def global_batch_text(self, batch_size: int) -> str:
        """The global batch with its arithmetic, for people to read."""
        total = self.global_batch_size(batch_size)
        return (
            f"batch_size({batch_size}) * data_parallel({self.data_parallel}) * "
            f"micro_batch_num({self.micro_batch_num}) * "
            f"micro_batch_interleave_num({self.micro_batch_interleave_num}) = {total}"
        )

    def describe(self) -> str:
        """e.g. 'dp 2 x mp 2 x pp 2 = 8 devices'."""
        degrees = " x ".join(f"{axis} {getattr(self, name)}" for name, axis in DEGREE_AXES.items())
        if not self.is_resolved:
            return degrees
        return f"{degrees} = {self.device_num} device{'s' if self.device_num > 1 else ''}"
