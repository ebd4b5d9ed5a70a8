"""The one place the run YAML's `parallel_config:` section becomes mf-parallel's ParallelConfig."""

from __future__ import annotations

from typing import Any

from mf_train.run_yaml.schema import ParallelConfigSection


def parallel_config_kwargs(section: ParallelConfigSection) -> dict[str, Any]:
    """The degrees of `parallel_config:` under mf-parallel's field names (MindFormers' names)."""
    return {
        "data_parallel": section.data_parallel,
        "model_parallel": section.model_parallel,
        "pipeline_stage": section.pipeline_stage,
        "micro_batch_num": section.micro_batch_num,
    }


def to_parallel_config(section: ParallelConfigSection) -> Any:
    """mf_parallel.ParallelConfig for this section (imported lazily: it may pull numpy only)."""
    from mf_parallel import ParallelConfig  # noqa: PLC0415 - keep config loading light

    return ParallelConfig(**parallel_config_kwargs(section))
