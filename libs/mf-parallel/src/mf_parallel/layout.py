"""Tensor layouts over a mesh: each rank's slice, split, merge, reshard and optimizer sharding.

A layout is a tensor's global shape plus, for every dim, the mesh axes that dim is split over:

    Layout((4096, 11008), ("mp", None), mesh)        # rows split over mp, columns whole
    Layout((4096, 11008), (("mp", "dp"), None), mesh)  # rows split over mp, then each part over dp

A dim split over several axes is cut into prod(sizes) equal parts, numbered row-major over those
axes in the order given (the first axis is the coarsest cut). Ranks that agree on every axis a
layout uses hold the same shard (replicas). Pure numpy; every function is deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mf_parallel.errors import LayoutError
from mf_parallel.mesh import Mesh

# How one dim is written in a plan: None (whole), an axis name, or axis names coarsest first.
DimSpec = None | str | Sequence[str]


def normalize_dim_spec(dim_spec: DimSpec) -> tuple[str, ...]:
    """None -> (), "mp" -> ("mp",), ["mp", "dp"] -> ("mp", "dp")."""
    if dim_spec is None:
        return ()
    if isinstance(dim_spec, str):
        return (dim_spec,)
    if isinstance(dim_spec, Sequence) and all(isinstance(axis, str) for axis in dim_spec):
        return tuple(dim_spec)
    raise LayoutError(
        f"a dim spec must be None, a mesh axis name or a list of axis names, got {dim_spec!r}"
    )


def dim_spec_to_json(axes: tuple[str, ...]) -> None | str | list[str]:
    """The inverse of normalize_dim_spec, in the shortest form (for plans and strategy files)."""
    if not axes:
        return None
    if len(axes) == 1:
        return axes[0]
    return list(axes)


def _format_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class Layout:
    """A tensor of global `shape` laid out over `mesh` by `spec` (one entry per dim)."""

    shape: tuple[int, ...]
    spec: tuple[tuple[str, ...], ...]
    mesh: Mesh
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        label = f"{self.name}: " if self.name else ""
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            raise LayoutError(f"{label}shape {self.shape!r} is not a tuple of integers") from None
        if any(d < 0 for d in shape):
            raise LayoutError(f"{label}shape {_format_shape(shape)} has a negative dim")
        try:
            spec = tuple(normalize_dim_spec(s) for s in self.spec)
        except LayoutError as exc:
            raise LayoutError(f"{label}{exc}") from None
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spec", spec)
        if len(spec) != len(shape):
            raise LayoutError(
                f"{label}shape {_format_shape(shape)} has {len(shape)} dim(s), but the spec "
                f"{self.spec_json()} gives {len(spec)}"
            )
        used = [axis for axes in spec for axis in axes]
        for axis in used:
            if axis not in self.mesh.axis_names:
                raise LayoutError(
                    f"{label}spec {self.spec_json()} names mesh axis {axis!r}, but the mesh has "
                    f"axes {list(self.mesh.axis_names)}"
                )
        repeated = sorted({axis for axis in used if used.count(axis) > 1})
        if repeated:
            raise LayoutError(
                f"{label}spec {self.spec_json()} splits over axis {repeated[0]!r} twice; "
                f"each mesh axis may split at most one dim once"
            )
        for dim, (size, axes) in enumerate(zip(shape, spec, strict=True)):
            parts = self.parts(dim)
            if size % parts:
                split = " * ".join(f"{a}({self.mesh.shape[a]})" for a in axes)
                if len(axes) > 1:
                    split += f" = {parts}"
                raise LayoutError(
                    f"{label}dim {dim} of size {size} (shape {_format_shape(shape)}) is split "
                    f"over {split}: {size} % {parts} = {size % parts}"
                )

    @classmethod
    def replicated(cls, shape: Sequence[int], mesh: Mesh, name: str = "") -> Layout:
        return cls(tuple(shape), tuple(() for _ in shape), mesh, name)

    def spec_json(self) -> list:
        """The spec in plan/strategy-file form: [None, "mp", ["mp", "dp"], ...]."""
        return [dim_spec_to_json(axes) for axes in self.spec]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def parts(self, dim: int) -> int:
        """Into how many equal parts `dim` is cut."""
        return math.prod(self.mesh.shape[axis] for axis in self.spec[dim])

    @property
    def shard_shape(self) -> tuple[int, ...]:
        return tuple(size // self.parts(dim) for dim, size in enumerate(self.shape))

    @property
    def shard_numel(self) -> int:
        return math.prod(self.shard_shape)

    @property
    def num_shards(self) -> int:
        """Distinct shards (each held by one or more ranks)."""
        return math.prod(self.parts(dim) for dim in range(self.ndim))

    # -- where each rank's shard sits -------------------------------------------------------

    def shard_index(self, rank: int) -> tuple[int, ...]:
        """Which part of every dim `rank` holds."""
        coords = self.mesh.coords(rank)
        index = []
        for axes in self.spec:
            part = 0
            for axis in axes:
                part = part * self.mesh.shape[axis] + coords[axis]
            index.append(part)
        return tuple(index)

    def offsets(self, rank: int) -> tuple[int, ...]:
        """Global index of the first element of `rank`'s shard, per dim."""
        return tuple(i * s for i, s in zip(self.shard_index(rank), self.shard_shape, strict=True))

    def slices(self, rank: int) -> tuple[slice, ...]:
        """`global_array[layout.slices(rank)]` is `rank`'s shard."""
        return tuple(
            slice(o, o + s) for o, s in zip(self.offsets(rank), self.shard_shape, strict=True)
        )

    def holders(self) -> dict[tuple[int, ...], list[int]]:
        """Every shard index -> the ranks holding a copy of it (ascending)."""
        holders: dict[tuple[int, ...], list[int]] = {}
        for rank in range(self.mesh.size):
            holders.setdefault(self.shard_index(rank), []).append(rank)
        return holders


def split(array: np.ndarray, layout: Layout) -> list[np.ndarray]:
    """Every rank's shard of `array` (a copy each), indexed by rank."""
    array = np.asarray(array)
    if array.shape != layout.shape:
        raise LayoutError(
            f"{layout.name + ': ' if layout.name else ''}array of shape "
            f"{_format_shape(array.shape)} does not match the layout's shape "
            f"{_format_shape(layout.shape)}"
        )
    return [array[layout.slices(rank)].copy() for rank in range(layout.mesh.size)]


def _check_shards(shards: Sequence[np.ndarray], layout: Layout) -> None:
    label = f"{layout.name}: " if layout.name else ""
    if len(shards) != layout.mesh.size:
        raise LayoutError(
            f"{label}got {len(shards)} shards, but the mesh "
            f"{layout.mesh.shape} has {layout.mesh.size} ranks"
        )
    for rank, shard in enumerate(shards):
        if tuple(np.shape(shard)) != layout.shard_shape:
            raise LayoutError(
                f"{label}the shard of rank {rank} has shape {_format_shape(np.shape(shard))}, "
                f"but the layout gives every rank {_format_shape(layout.shard_shape)}"
            )


def merge(shards: Sequence[np.ndarray], layout: Layout) -> np.ndarray:
    """The global tensor from every rank's shard (replicas are read from their lowest rank)."""
    _check_shards(shards, layout)
    dtype = np.result_type(*[np.asarray(s).dtype for s in shards]) if shards else np.float32
    out = np.empty(layout.shape, dtype=dtype)
    for ranks in layout.holders().values():
        out[layout.slices(ranks[0])] = shards[ranks[0]]
    return out


class Transfer(NamedTuple):
    """Copy `region` (global indices) of the tensor from `src_rank`'s shard to `dst_rank`'s."""

    src_rank: int
    dst_rank: int
    region: tuple[slice, ...]


def reshard_plan(src: Layout, dst: Layout) -> list[Transfer]:
    """The copies that turn `src` shards into `dst` shards, without building the whole tensor.

    Ranks are global device numbers in both layouts (the meshes may differ in shape and size).
    A rank that already holds a piece copies it locally; otherwise the piece comes from the
    replica holder picked round-robin by destination rank, to spread the sends.
    """
    if src.shape != dst.shape:
        raise LayoutError(
            f"cannot reshard {src.name or 'a tensor'}: source shape {_format_shape(src.shape)} "
            f"!= destination shape {_format_shape(dst.shape)}"
        )
    src_holders = src.holders()
    src_sizes = src.shard_shape
    transfers = []
    for dst_rank in range(dst.mesh.size):
        box = dst.slices(dst_rank)
        # Source parts that overlap the destination box, per dim.
        ranges = [
            range(b.start // s, -(-b.stop // s)) if s else range(1)
            for b, s in zip(box, src_sizes, strict=True)
        ]
        for index in itertools.product(*ranges):
            region = tuple(
                slice(max(b.start, i * s), min(b.stop, (i + 1) * s))
                for b, i, s in zip(box, index, src_sizes, strict=True)
            )
            if any(r.stop <= r.start for r in region):
                continue  # only with a zero-size dim: nothing to copy
            holders = src_holders[tuple(index)]
            src_rank = dst_rank if dst_rank in holders else holders[dst_rank % len(holders)]
            transfers.append(Transfer(src_rank, dst_rank, region))
    return transfers


def _relative(region: tuple[slice, ...], offsets: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(r.start - o, r.stop - o) for r, o in zip(region, offsets, strict=True))


def reshard(shards: Sequence[np.ndarray], src: Layout, dst: Layout) -> list[np.ndarray]:
    """`dst` shards from `src` shards; equal to split(merge(shards, src), dst)."""
    _check_shards(shards, src)
    dtype = np.result_type(*[np.asarray(s).dtype for s in shards]) if shards else np.float32
    out = [np.empty(dst.shard_shape, dtype=dtype) for _ in range(dst.mesh.size)]
    for transfer in reshard_plan(src, dst):
        piece = np.asarray(shards[transfer.src_rank])[
            _relative(transfer.region, src.offsets(transfer.src_rank))
        ]
        out[transfer.dst_rank][_relative(transfer.region, dst.offsets(transfer.dst_rank))] = piece
    return out


def optimizer_layout(layout: Layout, axis: str = "dp") -> Layout:
    """The layout of a parameter's optimizer state (and master weight) under optimizer sharding.

    Dim 0 is further split over `axis` (the data-parallel axis), as MindSpore's parallel
    optimizer does. Like MindSpore, a parameter whose dim 0 does not divide (or that is a
    scalar, or already split over `axis`) is left as it is: its state stays replicated.
    """
    if axis not in layout.mesh.axis_names:
        raise LayoutError(
            f"optimizer sharding axis {axis!r} is not a mesh axis; the mesh has "
            f"{list(layout.mesh.axis_names)}"
        )
    size = layout.mesh.shape[axis]
    used = {a for axes in layout.spec for a in axes}
    if layout.ndim == 0 or size == 1 or axis in used:
        return layout
    if layout.shape[0] % (layout.parts(0) * size):
        return layout
    spec = (layout.spec[0] + (axis,),) + layout.spec[1:]
    return Layout(layout.shape, spec, layout.mesh, layout.name)
