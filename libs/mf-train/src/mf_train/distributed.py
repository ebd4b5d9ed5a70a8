"""This process's place in a run: rank and world size, and MindSpore's context for it.

`msrun` starts a run's ranks, each joins the cluster through mf-parallel's `init_context`, and
the train step all-reduces gradients on the world group (the collective the CPU backend offers,
DESIGN.md). Which layouts mf-train runs is decided when the run is resolved (resolve.py).

MindSpore runs in PyNative mode with the hot paths (train step, eval step, decode step)
compiled by `ms.jit`, whatever `context.mode` says: GRAPH_MODE would compile every cell call,
including the one-off ones, for no gain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mf_train.errors import TrainConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1


_WORLD: World | None = None


def launched_by_msrun() -> bool:
    return bool(os.environ.get("MS_ROLE")) and bool(os.environ.get("MS_WORKER_NUM"))


def setup_context(run: Any) -> World:
    """Set MindSpore up once per process (a resolved Run); join the cluster under msrun."""
    global _WORLD
    world_size = run.world_size
    if world_size > 1 and not launched_by_msrun():
        raise TrainConfigError(
            f"this run needs {world_size} processes ({run.parallel.data_parallel} data "
            "parallel ranks): start it with `mf train CONFIG` (which runs msrun) or under msrun")
    if _WORLD is not None:
        if _WORLD.size != world_size:
            raise TrainConfigError(
                f"this run needs {world_size} ranks, but this process is rank {_WORLD.rank} of "
                f"{_WORLD.size}; one process runs one world size")
        return _WORLD
    from mf_parallel.runtime import apply_runtime_defaults, bind_rank_cores, set_kernel_threads

    apply_runtime_defaults()
    device = run.config.context.device_target
    if device == "CPU":
        bind_rank_cores()  # several ranks on this machine: each on its own cores
        set_kernel_threads()  # cores / ranks on this machine
    if not launched_by_msrun():
        import mindspore as ms

        ms.set_context(mode=ms.PYNATIVE_MODE)
        if device != "CPU":
            ms.set_device(device)
        _WORLD = World()
        return _WORLD
    from mf_parallel import ContextConfig, ParallelContextConfig, init_context

    rank, size = init_context(
        use_parallel=True,
        context_config=ContextConfig(mode=1, device_target=device),
        parallel_config=ParallelContextConfig(parallel_mode="DATA_PARALLEL",
                                              gradients_mean=True))
    if size != world_size:
        p = run.parallel
        raise TrainConfigError(
            f"data_parallel({p.data_parallel}) * model_parallel({p.model_parallel}) * "
            f"pipeline_stage({p.pipeline_stage}) = {world_size}, but msrun started {size} ranks")
    _WORLD = World(rank=rank, size=size)
    return _WORLD


def current_world() -> World:
    return _WORLD or World()
