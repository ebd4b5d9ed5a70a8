"""`model_dims`: the sizes mf-parallel needs (layouts, memory estimate), without MindSpore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError

if TYPE_CHECKING:
    from mf_parallel import ModelDims


def model_dims(name_or_config: str | ModelConfig) -> ModelDims:
    """`model_dims("llama_7b")` -> `mf_parallel.ModelDims(num_layers=32, hidden_size=4096, ...)`."""
    from mf_parallel import ModelDims

    from mf_models.registry import load_config

    config = name_or_config if isinstance(name_or_config, ModelConfig) else load_config(
        name_or_config)
    if not isinstance(config.num_heads, int):
        raise ModelConfigError(
            f"{config.family} changes width and heads from stage to stage (num_heads "
            f"{list(config.num_heads)}); mf-parallel's dims describe a uniform stack of layers")
    return ModelDims(
        num_layers=config.num_layers,
        hidden_size=config.hidden_size,
        num_heads=config.num_heads,
        n_kv_heads=config.kv_heads,
        ffn_hidden_size=config.ffn_hidden_size,
        vocab_size=config.vocab_size,
        seq_length=config.seq_length,
    )


def memory_inputs(config: ModelConfig, params: list[tuple[str, tuple[int, ...], bool]] | None = None
                  ) -> dict[str, Any]:
    """What `mf_parallel.estimate_memory` needs of a family beyond its dims: the parameter list
    (the config's `parameter_shapes()`, or `params` as (name, shape, trainable), e.g. with
    LoRA's weights), the family's sharding plan, its kind and MLP. A family that does not list
    its shapes is counted as one replicated block of `parameter_count` weights.

        estimate_memory(model_dims(config), parallel, batch_size=4, **memory_inputs(config))
    """
    from mf_parallel.memory import ParamSpec

    plan = dict(config.sharding_plan)
    if params is None:
        shapes = config.parameter_shapes()
        if shapes is None:
            shapes, plan = [("weights", (config.parameter_count,))], {"weights": (None,)}
        params = [(name, shape, True) for name, shape in shapes]
    outputs = getattr(config, "num_labels", None) if config.memory_kind == "vision" else None
    return {"params": [ParamSpec(name, tuple(shape), trainable)
                       for name, shape, trainable in params],
            "plan": plan, "kind": config.memory_kind, "gated_mlp": config.gated_mlp,
            "outputs": outputs}
