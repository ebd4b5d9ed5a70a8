"""The one place the run YAML's `parallel_config:` section becomes mf-parallel's ParallelConfig."""

from __future__ import annotations

from typing import Any

from mf_train.errors import TrainConfigError
from mf_train.run_yaml.schema import ParallelConfigSection


def parallel_config_kwargs(section: ParallelConfigSection,
                           micro_batch_interleave_num: int = 1) -> dict[str, Any]:
    """`parallel_config:` (+ the top-level micro_batch_interleave_num) as ParallelConfig fields.

    Both use MindFormers' names, so this is a copy; newer MindFormers' context_parallel has no
    counterpart in mf-parallel and must stay 1.
    """
    if section.context_parallel != 1:
        raise TrainConfigError(
            f"parallel_config.context_parallel = {section.context_parallel}; mf supports data, "
            "model and pipeline parallel only, so it must be 1")
    return {
        "data_parallel": section.data_parallel,
        "model_parallel": section.model_parallel,
        "pipeline_stage": section.pipeline_stage,
        "micro_batch_num": section.micro_batch_num,
        "micro_batch_interleave_num": micro_batch_interleave_num,
        "optimizer_shard": section.optimizer_shard,
        "vocab_emb_dp": section.vocab_emb_dp,
        "gradient_aggregation_group": section.gradient_aggregation_group,
        "use_seq_parallel": section.use_seq_parallel,
        "expert_parallel": section.expert_parallel,
    }


def to_parallel_config(section: ParallelConfigSection, micro_batch_interleave_num: int = 1,
                       ) -> Any:
    """mf_parallel.ParallelConfig for this section; its errors are already one-line, exit 2."""
    from mf_parallel import ParallelConfig

    return ParallelConfig(**parallel_config_kwargs(section, micro_batch_interleave_num))
