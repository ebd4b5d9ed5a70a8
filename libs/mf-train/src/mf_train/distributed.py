"""This process's place in a run: rank and world size, and MindSpore's context for it.

On CPU a run is data parallel only: `msrun` starts `data_parallel` ranks, each joins the cluster
through mf-parallel's `init_context`, and the train step all-reduces gradients on the world
group (the collective the CPU backend offers, DESIGN.md). Model and pipeline parallel training
are not implemented by mf-train, so a config asking for them is refused before anything runs.

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


def check_parallel_config(config: Any) -> None:
    """Refuse what mf-train cannot run: model/pipeline parallel training."""
    pc = config.parallel_config
    if pc.model_parallel != 1 or pc.pipeline_stage != 1:
        raise TrainConfigError(
            f"parallel_config asks for model_parallel({pc.model_parallel}) and "
            f"pipeline_stage({pc.pipeline_stage}); mf-train trains data parallel only, so both "
            "must be 1 (mf-parallel plans the other layouts; `mf parallel check` shows them)")
    config.to_parallel_config()  # mf-parallel's own checks: one line, exit code 2


def setup_context(config: Any) -> World:
    """Set MindSpore up once per process; join the cluster when started by msrun."""
    global _WORLD
    check_parallel_config(config)
    data_parallel = config.parallel_config.data_parallel
    if data_parallel > 1 and not launched_by_msrun():
        raise TrainConfigError(
            f"parallel_config.data_parallel = {data_parallel} needs {data_parallel} "
            "processes: start it with `mf train CONFIG` (which runs msrun) or under msrun")
    if _WORLD is not None:
        if _WORLD.size != data_parallel:
            raise TrainConfigError(
                f"parallel_config.data_parallel = {data_parallel}, but this process is rank "
                f"{_WORLD.rank} of {_WORLD.size}; one process runs one world size")
        return _WORLD
    if not launched_by_msrun():
        import mindspore as ms

        ms.set_context(mode=ms.PYNATIVE_MODE)
        if config.context.device_target != "CPU":
            ms.set_device(config.context.device_target)
        _WORLD = World()
        return _WORLD
    from mf_parallel import ContextConfig, ParallelContextConfig, init_context

    rank, size = init_context(
        use_parallel=True,
        context_config=ContextConfig(mode=1, device_target=config.context.device_target),
        parallel_config=ParallelContextConfig(parallel_mode="DATA_PARALLEL",
                                              gradients_mean=True))
    if size != data_parallel:
        raise TrainConfigError(
            f"data_parallel({data_parallel}) * model_parallel(1) * pipeline_stage(1) = "
            f"{data_parallel}, but msrun started {size} ranks")
    _WORLD = World(rank=rank, size=size)
    return _WORLD


def current_world() -> World:
    return _WORLD or World()
