"""The device mesh: rank <-> coordinates on named axes, and the process groups of each axis.

A mesh lists its axes slowest first; ranks count through the coordinates row-major, so the last
axis varies fastest. The mesh of a `ParallelConfig` is ``("pp", "dp", "mp")``:

    rank = pp * (dp_size * mp_size) + dp * mp_size + mp

mp varies fastest, as in Megatron-LM and MindSpore: the ranks of one tensor-parallel group are
neighbours (on one node, where the links are fastest), and each pipeline stage is one contiguous
block of ranks, as MindSpore numbers stages (stage = rank // (device_num / pipeline_stages)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mf_parallel.config import MAX_DEVICES, ParallelConfig
from mf_parallel.errors import ParallelConfigError

# The order of the axes in the mesh of a ParallelConfig, slowest first.
PARALLEL_AXES = ("pp", "dp", "mp")


class MeshCoord(NamedTuple):
    """A rank's place in the mesh of a ParallelConfig."""

    dp: int
    pp: int
    mp: int


@dataclass(frozen=True)
class Mesh:
    """Named axes with sizes, slowest first; ranks are numbered row-major over them."""

    axis_names: tuple[str, ...]
    axis_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis_names", tuple(self.axis_names))
        object.__setattr__(self, "axis_sizes", tuple(self.axis_sizes))
        if len(self.axis_names) != len(self.axis_sizes):
            raise ParallelConfigError(
                f"a mesh needs one size per axis, got axes {list(self.axis_names)} "
                f"and sizes {list(self.axis_sizes)}"
            )
        if len(set(self.axis_names)) != len(self.axis_names):
            raise ParallelConfigError(f"mesh axis names repeat: {list(self.axis_names)}")
        for name, size in zip(self.axis_names, self.axis_sizes, strict=True):
            if not isinstance(name, str) or not name:
                raise ParallelConfigError(
                    f"a mesh axis name must be a non-empty string, got {name!r}"
                )
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ParallelConfigError(f"mesh axis {name}({size!r}) must be an integer >= 1")
        if math.prod(self.axis_sizes) > MAX_DEVICES:
            sizes = " * ".join(f"{n}({s})" for n, s in zip(self.axis_names, self.axis_sizes,
                                                          strict=True))
            raise ParallelConfigError(f"a mesh of {sizes} = {math.prod(self.axis_sizes):,} ranks "
                                      f"is more than mf plans for: at most {MAX_DEVICES:,}")

    @classmethod
    def from_config(cls, config: ParallelConfig) -> Mesh:
        """The ("pp", "dp", "mp") mesh of a resolved config."""
        config.require_resolved()
        return cls(PARALLEL_AXES,
                   (config.pipeline_stage, config.data_parallel, config.model_parallel))

    @classmethod
    def of(cls, **sizes: int) -> Mesh:
        """Mesh.of(dp=2, mp=4): axes in keyword order, slowest first."""
        return cls(tuple(sizes), tuple(sizes.values()))

    @property
    def size(self) -> int:
        return math.prod(self.axis_sizes)

    @property
    def shape(self) -> dict[str, int]:
        return dict(zip(self.axis_names, self.axis_sizes, strict=True))

    def axis_size(self, axis: str) -> int:
        self._check_axis(axis)
        return self.shape[axis]

    def _check_axis(self, axis: str) -> None:
        if axis not in self.axis_names:
            raise ParallelConfigError(
                f"mesh axis {axis!r} does not exist; the mesh has axes {list(self.axis_names)}"
            )

    def _check_rank(self, rank: int) -> None:
        if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < self.size:
            raise ParallelConfigError(
                f"rank {rank!r} is outside the mesh: ranks are 0..{self.size - 1} "
                f"({' * '.join(f'{n}({s})' for n, s in self.shape.items())} = {self.size})"
            )

    # -- rank <-> coordinates ---------------------------------------------------------------

    def coords(self, rank: int) -> dict[str, int]:
        """The coordinate of `rank` on every axis."""
        self._check_rank(rank)
        coords: dict[str, int] = {}
        for name, size in zip(reversed(self.axis_names), reversed(self.axis_sizes), strict=True):
            rank, coords[name] = divmod(rank, size)
        return {name: coords[name] for name in self.axis_names}

    def rank(self, coords: Mapping[str, int] | None = None, **by_axis: int) -> int:
        """The rank at the given coordinates (every axis must be given)."""
        coords = {**(coords or {}), **by_axis}
        missing = [name for name in self.axis_names if name not in coords]
        extra = [name for name in coords if name not in self.axis_names]
        if missing or extra:
            raise ParallelConfigError(
                f"coordinates {coords} do not match the mesh axes {list(self.axis_names)}"
            )
        rank = 0
        for name, size in zip(self.axis_names, self.axis_sizes, strict=True):
            value = coords[name]
            if not 0 <= value < size:
                raise ParallelConfigError(f"coordinate {name}={value} is outside 0..{size - 1}")
            rank = rank * size + value
        return rank

    def coord(self, rank: int) -> MeshCoord:
        """(dp, pp, mp) of `rank` in the mesh of a ParallelConfig."""
        if set(self.axis_names) != set(PARALLEL_AXES):
            raise ParallelConfigError(
                f"coord() needs a mesh with axes {list(PARALLEL_AXES)}, "
                f"this one has {list(self.axis_names)}"
            )
        return MeshCoord(**self.coords(rank))

    # -- process groups ---------------------------------------------------------------------

    def groups(self, axes: str | Iterable[str]) -> list[list[int]]:
        """Every process group along `axes`: ranks that differ only in those coordinates.

        Groups are ordered by their lowest rank, and each group's ranks ascend. An axis of
        size 1 gives groups of one rank.
        """
        return self.group_array(axes).tolist()

    def group_array(self, axes: str | Iterable[str]) -> np.ndarray:
        """`groups(axes)` as an int64 array (groups, group size): cheap for a million ranks.

        The rank grid with the fixed axes moved first and the group's axes last, one row per
        group: rows come in row-major order of the fixed coordinates (ascending lowest rank),
        and ranks within a row ascend, as the rank grows with every coordinate.
        """
        axes = (axes,) if isinstance(axes, str) else tuple(axes)
        for axis in axes:
            self._check_axis(axis)
        moving = [i for i, name in enumerate(self.axis_names) if name in axes]
        fixed = [i for i, name in enumerate(self.axis_names) if name not in axes]
        grid = np.arange(self.size, dtype=np.int64).reshape(self.axis_sizes)
        group_size = math.prod(self.axis_sizes[i] for i in moving)
        return grid.transpose(fixed + moving).reshape(-1, group_size)

    def group_of(self, rank: int, axes: str | Iterable[str]) -> list[int]:
        """The group along `axes` that holds `rank`."""
        self._check_rank(rank)
        for group in self.groups(axes):
            if rank in group:
                return group
        raise AssertionError("unreachable: every rank is in one group per axis")

    def submesh(self, **fixed: int) -> tuple[Mesh, list[int]]:
        """The mesh left when some coordinates are fixed, and its ranks in the full mesh.

        `mesh.submesh(pp=1)` is pipeline stage 1 as a (dp, mp) mesh; local rank i of the
        submesh is global rank `ranks[i]`.
        """
        for axis in fixed:
            self._check_axis(axis)
        names = tuple(n for n in self.axis_names if n not in fixed)
        sub = Mesh(names, tuple(self.shape[n] for n in names))
        ranks = [self.rank({**fixed, **sub.coords(local)}) for local in range(sub.size)]
        return sub, ranks
