"""mf-parallel: parallel config and mesh, sharding layouts, pipelines, memory estimate, msrun,
MindSpore's cluster without msrun, and sharded tensors across whole layouts.

Everything here is plain Python and numpy; MindSpore is imported only inside `init_context`
(and by the scheduler process that `cluster` describes).
"""

from importlib.metadata import version as _version

from mf_parallel.config import ModelDims, ParallelConfig
from mf_parallel.context import ContextConfig, ParallelContextConfig, init_context
from mf_parallel.errors import (
    LayoutError,
    ParallelConfigError,
    ParallelError,
    ParallelFileNotFoundError,
    RankTableError,
    StrategyFileError,
)
from mf_parallel.launcher import (
    LaunchSpec,
    RankTable,
    ScriptLaunch,
    parse_device_range,
    parse_rank_table,
    read_rank_table,
    script_launch,
)
from mf_parallel.layout import (
    Layout,
    Transfer,
    merge,
    optimizer_layout,
    reshard,
    reshard_plan,
    split,
)
from mf_parallel.memory import MemoryEstimate, ParamSpec, StageMemory, estimate_memory
from mf_parallel.mesh import Mesh, MeshCoord
from mf_parallel.ms_strategy import MsLayout, read_mindspore_strategy
from mf_parallel.pipeline import (
    Step,
    assign_stages,
    bubble_fraction,
    parameter_stages,
    schedule,
    simulate,
    stage_programs,
)
from mf_parallel.plan import ShardingPlan, resolve_plan, stage_mesh
from mf_parallel.shards import Placement, merge_tensors, reshard_tensors, split_tensors
from mf_parallel.strategy import Strategy, read_strategy, write_strategy

__version__ = _version("mf-parallel")

__all__ = [
    "ContextConfig",
    "LaunchSpec",
    "Layout",
    "LayoutError",
    "MemoryEstimate",
    "Mesh",
    "MeshCoord",
    "MsLayout",
    "ModelDims",
    "ParallelConfig",
    "ParallelConfigError",
    "ParallelContextConfig",
    "ParallelError",
    "ParallelFileNotFoundError",
    "Placement",
    "RankTable",
    "RankTableError",
    "ScriptLaunch",
    "ShardingPlan",
    "StageMemory",
    "Step",
    "Strategy",
    "StrategyFileError",
    "Transfer",
    "__version__",
    "assign_stages",
    "bubble_fraction",
    "estimate_memory",
    "ParamSpec",
    "init_context",
    "merge",
    "merge_tensors",
    "optimizer_layout",
    "parameter_stages",
    "parse_device_range",
    "parse_rank_table",
    "read_mindspore_strategy",
    "read_rank_table",
    "read_strategy",
    "reshard",
    "reshard_plan",
    "reshard_tensors",
    "resolve_plan",
    "schedule",
    "script_launch",
    "simulate",
    "split",
    "split_tensors",
    "stage_mesh",
    "stage_programs",
    "write_strategy",
]
