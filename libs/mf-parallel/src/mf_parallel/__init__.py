"""mf-parallel: parallel config and mesh, sharding layouts, pipelines, memory estimate, msrun.

Everything here is plain Python and numpy; MindSpore is imported only inside `init_context`.
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
from mf_parallel.launcher import LaunchSpec, RankTable, parse_rank_table, read_rank_table
from mf_parallel.layout import (
    Layout,
    Transfer,
    merge,
    optimizer_layout,
    reshard,
    reshard_plan,
    split,
)
from mf_parallel.memory import MemoryEstimate, StageMemory, estimate_memory
from mf_parallel.mesh import Mesh, MeshCoord
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
    "ModelDims",
    "ParallelConfig",
    "ParallelConfigError",
    "ParallelContextConfig",
    "ParallelError",
    "ParallelFileNotFoundError",
    "RankTable",
    "RankTableError",
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
    "init_context",
    "merge",
    "optimizer_layout",
    "parameter_stages",
    "parse_rank_table",
    "read_rank_table",
    "read_strategy",
    "reshard",
    "reshard_plan",
    "resolve_plan",
    "schedule",
    "simulate",
    "split",
    "stage_mesh",
    "stage_programs",
    "write_strategy",
]
