"""A model's named tensors across the ranks of a layout: split, merge and reshard them all.

`layout.split/merge/reshard` move one tensor between the ranks of one pipeline stage's
(dp, mp) mesh. A checkpoint is many tensors over the whole ("pp", "dp", "mp") mesh: each
tensor lives on the ranks of its stage (or on every rank, for a step counter) and is laid out
over that stage's mesh. A `Placement` says which; the functions here work on one dict of
tensors per global rank, the content of a sharded checkpoint's `rank_<i>/` folders.
Pure numpy: a reshard between any two layouts is exact (bit-identical copies of the values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mf_parallel.config import ParallelConfig
from mf_parallel.errors import LayoutError
from mf_parallel.layout import Layout, merge, reshard, split
from mf_parallel.mesh import Mesh
from mf_parallel.plan import stage_mesh

Tensors = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Placement:
    """Where a tensor lives: its layout over a stage's (dp, mp) mesh, and that stage."""

    layout: Layout
    stage: int | None  # None: every stage holds it whole (e.g. an optimizer's step counter)


def stage_ranks(config: ParallelConfig, stage: int | None) -> list[list[int]]:
    """The global ranks of each stage a placement covers, each in its stage mesh's order."""
    mesh = Mesh.from_config(config)
    stages = range(config.pipeline_stage) if stage is None else [stage]
    return [mesh.submesh(pp=s)[1] for s in stages]


def _check_stage(name: str, placement: Placement, config: ParallelConfig) -> None:
    if placement.stage is not None and not 0 <= placement.stage < config.pipeline_stage:
        raise LayoutError(f"{name}: stage {placement.stage} is outside 0.."
                          f"{config.pipeline_stage - 1} (pipeline_stage {config.pipeline_stage})")
    if placement.layout.mesh != stage_mesh(config):
        raise LayoutError(f"{name}: its layout's mesh {placement.layout.mesh.shape} is not the "
                          f"stage mesh of the config {stage_mesh(config).shape}")


def split_tensors(tensors: Tensors, placements: Mapping[str, Placement],
                  config: ParallelConfig) -> list[dict[str, np.ndarray]]:
    """Each global rank's shards of whole `tensors` (every name needs a placement)."""
    config.require_resolved()
    out: list[dict[str, np.ndarray]] = [{} for _ in range(config.device_num)]
    for name, array in tensors.items():
        placement = _placement(placements, name)
        _check_stage(name, placement, config)
        shards = split(np.asarray(array), placement.layout)
        for ranks in stage_ranks(config, placement.stage):
            for local, rank in enumerate(ranks):
                out[rank][name] = shards[local]
    return out


def merge_tensors(rank_tensors: Sequence[Tensors], placements: Mapping[str, Placement],
                  config: ParallelConfig) -> dict[str, np.ndarray]:
    """The whole tensors from every rank's shards (each read from its first stage's ranks)."""
    config.require_resolved()
    _check_rank_count(rank_tensors, config)
    out = {}
    for name, placement in placements.items():
        _check_stage(name, placement, config)
        ranks = stage_ranks(config, placement.stage)[0]
        out[name] = merge(_gather(rank_tensors, name, ranks), placement.layout)
    return out


def reshard_tensors(rank_tensors: Sequence[Tensors], src: Mapping[str, Placement],
                    src_config: ParallelConfig, dst: Mapping[str, Placement],
                    dst_config: ParallelConfig) -> list[dict[str, np.ndarray]]:
    """Every rank's shards under `dst` from the shards under `src`, tensor by tensor, never
    holding more than one tensor's pieces (equal to split(merge(...)) bit for bit)."""
    src_config.require_resolved()
    dst_config.require_resolved()
    _check_rank_count(rank_tensors, src_config)
    if set(src) != set(dst):
        only = sorted(set(src) ^ set(dst))
        side = "source" if only[0] in src else "destination"
        raise LayoutError(f"tensor {only[0]!r} is placed only by the {side} layout")
    out: list[dict[str, np.ndarray]] = [{} for _ in range(dst_config.device_num)]
    for name, placement in src.items():
        target = dst[name]
        _check_stage(name, placement, src_config)
        _check_stage(name, target, dst_config)
        shards = _gather(rank_tensors, name, stage_ranks(src_config, placement.stage)[0])
        moved = reshard(shards, placement.layout, target.layout)
        for ranks in stage_ranks(dst_config, target.stage):
            for local, rank in enumerate(ranks):
                out[rank][name] = moved[local]
    return out


def _placement(placements: Mapping[str, Placement], name: str) -> Placement:
    try:
        return placements[name]
    except KeyError:
        raise LayoutError(f"tensor {name!r} has no placement in the layout") from None


def _check_rank_count(rank_tensors: Sequence[Tensors], config: ParallelConfig) -> None:
    if len(rank_tensors) != config.device_num:
        raise LayoutError(
            f"got the tensors of {len(rank_tensors)} ranks, but data_parallel"
            f"({config.data_parallel}) * model_parallel({config.model_parallel}) * "
            f"pipeline_stage({config.pipeline_stage}) = {config.device_num}")


def _gather(rank_tensors: Sequence[Tensors], name: str, ranks: Sequence[int]) -> list[np.ndarray]:
    shards = []
    for rank in ranks:
        if name not in rank_tensors[rank]:
            raise LayoutError(f"rank {rank} lacks {name!r}, which the layout places there")
        shards.append(np.asarray(rank_tensors[rank][name]))
    return shards
