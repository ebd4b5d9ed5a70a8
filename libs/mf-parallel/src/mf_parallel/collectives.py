"""Collectives over the mesh's process groups, as MindSpore cells that compile inside `ms.jit`.

    groups = process_groups(config, rank)        # once per process; creates MindSpore's groups
    ReduceFromGroup(groups.mp)(partial_sums)     # Megatron's g: all-reduce forward
    CopyToGroup(groups.mp)(x)                    # Megatron's f: all-reduce backward
    GatherFromGroup(groups.mp, axis=-1)(shard)   # every member's shard, concatenated
    HandOver(groups.next_stage, src=rank)(x)     # a pipeline stage's output to the next stage

What MindSpore's CPU backend offers (DESIGN.md, measured with 2 and 4 ranks): AllReduce on any
group, also inside `ms.jit` with `value_and_grad`; AllGather and Broadcast on the world group
only; no ReduceScatter, AlltoAll or Send/Receive. So on CPU every other collective is an
AllReduce over a zero-filled buffer:

- gather: each member writes its shard at its own offset of a zero buffer; the sum is the
  concatenation;
- broadcast: the root contributes its tensor, the others zeros;
- hand-over between two ranks: an AllReduce inside their two-rank group, the receiver
  contributing zeros.

That moves G times the bytes a native gather would (and sums zeros), which is the price of
running on CPU at all. Where the backend has the op (Ascend and GPU always; AllGather and
Broadcast on CPU's world group) the native op serves instead, so the same cells run natively on
accelerators. The Ascend/GPU branches are written to MindSpore's documented signatures but have
not run here (this machine has neither).

The f / g / gather cells carry their own `bprop`, so their gradients are Megatron's whatever
MindSpore's autodiff would do with the raw op (Shoeybi et al. 2019, section 3).
MindSpore is imported lazily: importing this module costs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mf_parallel.config import ParallelConfig
from mf_parallel.errors import ParallelError
from mf_parallel.mesh import Mesh


@dataclass(frozen=True)
class Group:
    """A process group this rank belongs to: its MindSpore name and its global ranks."""

    name: str
    ranks: tuple[int, ...]
    rank: int  # this process's global rank

    @property
    def size(self) -> int:
        return len(self.ranks)

    @property
    def index(self) -> int:
        """This rank's place in the group (0 .. size - 1)."""
        return self.ranks.index(self.rank)

    @property
    def is_world(self) -> bool:
        return self.name == _world_group_name()


def _world_group_name() -> str:
    from mindspore.communication import GlobalComm

    return GlobalComm.WORLD_COMM_GROUP


def device_target() -> str:
    import mindspore as ms

    return ms.get_context("device_target")


# MindSpore's groups live as long as the process, and creating one twice fails: one per rank set.
_CREATED: dict[tuple[int, ...], str] = {}


def group(ranks: tuple[int, ...] | list[int], rank: int) -> Group:
    """The MindSpore group over `ranks` (global, ascending), created on first use.

    Every member must ask for it (MindSpore's `create_group` is collective over its members);
    ranks outside it never call. The whole world is MindSpore's world group, and a group of
    one rank needs no MindSpore group at all (its collectives are the identity).
    """
    ranks = tuple(sorted(int(r) for r in ranks))
    if rank not in ranks:
        raise ParallelError(f"rank {rank} asked for group {list(ranks)}, which it is not in")
    if len(ranks) == 1:
        return Group(f"mf_self_{rank}", ranks, rank)
    from mindspore import communication

    if len(ranks) == communication.get_group_size():
        return Group(_world_group_name(), ranks, rank)
    if ranks not in _CREATED:
        name = "mf_" + "_".join(map(str, ranks))
        try:
            communication.create_group(name, list(ranks))
        except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError from C++
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ParallelError(f"could not create process group {list(ranks)}: {first}") from exc
        _CREATED[ranks] = name
    return Group(_CREATED[ranks], ranks, rank)


@dataclass(frozen=True)
class ProcessGroups:
    """The groups one rank of a (pp, dp, mp) mesh talks in.

    dp: same stage and mp index (gradients are averaged here); mp: one stage's tensor-parallel
    group; pipeline: this rank's pipeline (same dp and mp, every stage); prev_stage / next_stage:
    the two-rank hand-over groups with the neighbouring stages (None at the ends); embedding:
    the first and last stage of this pipeline, which both hold a tied embedding table (None
    without pipelining); model: every rank holding a different part of one model replica
    (mp x pp), over which a gradient norm is summed.
    """

    config: ParallelConfig
    rank: int
    dp: Group
    mp: Group
    pipeline: Group
    model: Group
    prev_stage: Group | None
    next_stage: Group | None
    embedding: Group | None

    @property
    def mesh(self) -> Mesh:
        return Mesh.from_config(self.config)

    @property
    def stage(self) -> int:
        return self.mesh.coord(self.rank).pp

    @property
    def num_stages(self) -> int:
        return self.config.pipeline_stage


def process_groups(config: ParallelConfig, rank: int) -> ProcessGroups:
    """Create (once per process) and return the groups `rank` needs under `config`.

    Every rank of the job must call this with the same config, in the same order relative to
    its other collectives.
    """
    config.require_resolved()
    mesh = Mesh.from_config(config)
    coord = mesh.coord(rank)
    pipeline = mesh.group_of(rank, "pp")
    last = config.pipeline_stage - 1
    prev_stage = next_stage = embedding = None
    # Pairs are made in stage order so both members of a pair create it at the same point.
    for stage in range(last):
        pair = [pipeline[stage], pipeline[stage + 1]]
        if rank in pair:
            made = group(pair, rank)
            if coord.pp == stage:
                next_stage = made
            else:
                prev_stage = made
    if last > 0 and coord.pp in (0, last):
        embedding = group([pipeline[0], pipeline[last]], rank)
    return ProcessGroups(
        config=config,
        rank=rank,
        dp=group(mesh.group_of(rank, "dp"), rank),
        mp=group(mesh.group_of(rank, "mp"), rank),
        pipeline=group(pipeline, rank),
        model=group(mesh.group_of(rank, ("pp", "mp")), rank),
        prev_stage=prev_stage,
        next_stage=next_stage,
        embedding=embedding,
    )


# -- the cells ------------------------------------------------------------------------------
# Defined on first use so that importing this module needs no MindSpore.


@functools.cache
def _cells() -> dict[str, type]:
    from mindspore import nn, ops

    def all_reduce_op(group: Group) -> Any:
        return ops.AllReduce(group=group.name) if group.size > 1 else None

    class AllReduce(nn.Cell):
        """Sum over the group (every backend has it on any group)."""

        def __init__(self, group: Group):
            super().__init__()
            self.op = all_reduce_op(group)

        def construct(self, x):
            if self.op is None:
                return x
            return self.op(x)

    class AllGather(nn.Cell):
        """Every member's x concatenated along `axis`, in group order."""

        def __init__(self, group: Group, axis: int = 0):
            super().__init__()
            self.size, self.index, self.axis = group.size, group.index, axis
            self.native = group.size > 1 and (device_target() != "CPU" or group.is_world)
            self.gather = ops.AllGather(group=group.name) if self.native else None
            self.reduce = all_reduce_op(group) if not self.native else None

        def construct(self, x):
            if self.size == 1:
                return x
            axis = self.axis % x.ndim
            if self.native:  # AllGather concatenates along dim 0: move `axis` there and back
                perm = (axis,) + tuple(d for d in range(x.ndim) if d != axis)
                back = tuple(perm.index(d) for d in range(x.ndim))
                return ops.transpose(self.gather(ops.transpose(x, perm)), back)
            n = x.shape[axis]
            parts = []
            if self.index > 0:
                shape = x.shape[:axis] + (self.index * n,) + x.shape[axis + 1:]
                parts.append(ops.zeros(shape, x.dtype))
            parts.append(x)
            if self.index < self.size - 1:
                shape = x.shape[:axis] + ((self.size - 1 - self.index) * n,) + x.shape[axis + 1:]
                parts.append(ops.zeros(shape, x.dtype))
            return self.reduce(ops.concat(parts, axis))  # the zeros sum to every member's shard

    class Broadcast(nn.Cell):
        """`root`'s x (a global rank) on every member of the group."""

        def __init__(self, group: Group, root: int):
            super().__init__()
            if root not in group.ranks:
                raise ParallelError(f"broadcast root {root} is not in group {list(group.ranks)}")
            self.size = group.size
            self.is_root = group.rank == root
            self.native = group.size > 1 and (device_target() != "CPU" or group.is_world)
            self.broadcast = ops.Broadcast(root, group=group.name) if self.native else None
            self.reduce = all_reduce_op(group) if not self.native else None

        def construct(self, x):
            if self.size == 1:
                return x
            if self.native:
                return self.broadcast((x,))[0]
            return self.reduce(x if self.is_root else ops.zeros_like(x))

    class HandOver(nn.Cell):
        """A tensor of `shape` from `src` to the other rank of a two-rank group (a pipeline
        stage's output to the next stage, or a gradient back).

        Both ranks call it at the same point of their programs with a tensor of `shape`; the
        receiver's values are ignored and it gets the sender's; the sender gets its own back.
        """

        def __init__(self, group: Group, src: int, shape: tuple[int, ...], dtype: Any = None):
            super().__init__()
            if group.size != 2 or src not in group.ranks:
                raise ParallelError(
                    f"a hand-over needs a two-rank group holding its source; got "
                    f"{list(group.ranks)} with source {src}")
            from mindspore import dtype as mstype

            self.sending = group.rank == src
            self.native = device_target() != "CPU"
            peer = 1 - group.index  # Send/Receive name the peer by its rank within the group
            if not self.native:
                self.reduce = ops.AllReduce(group=group.name)
            elif self.sending:
                self.send = ops.Send(0, peer, group=group.name)
            else:
                self.receive = ops.Receive(0, peer, tuple(shape), dtype or mstype.float32,
                                           group=group.name)

        def construct(self, x):
            if not self.native:
                return self.reduce(x if self.sending else ops.zeros_like(x))
            if self.sending:
                return ops.depend(x, self.send(x))
            return self.receive()

    class CopyToGroup(nn.Cell):
        """Megatron's f: identity forward; backward sums the gradient over the group.

        Put where a replicated tensor enters a computation split over the group (the input of
        a column-parallel layer): each member's gradient is a partial sum.
        """

        def __init__(self, group: Group):
            super().__init__()
            self.op = all_reduce_op(group)

        def construct(self, x):
            return x

        def bprop(self, x, out, dout):
            if self.op is None:
                return (dout,)
            return (self.op(dout),)

    class ReduceFromGroup(AllReduce):
        """Megatron's g: sums partial results over the group forward; identity backward.

        Put where a split computation becomes replicated again (the output of a row-parallel
        layer): every member then computes the same function of the sum, so its gradient is
        already the whole one.
        """

        def bprop(self, x, out, dout):
            return (dout,)

    class GatherFromGroup(nn.Cell):
        """Every member's shard concatenated along `axis`; backward keeps this member's slice.

        Megatron's gather: what follows is replicated, so the gradient every member receives is
        the whole one and each takes the part of its own shard (no sum).
        """

        def __init__(self, group: Group, axis: int = -1):
            super().__init__()
            self.gather = AllGather(group, axis)
            self.size, self.index, self.axis = group.size, group.index, axis

        def construct(self, x):
            return self.gather(x)

        def bprop(self, x, out, dout):
            if self.size == 1:
                return (dout,)
            axis = self.axis % dout.ndim
            n = dout.shape[axis] // self.size
            return (ops.narrow(dout, axis, self.index * n, n),)

    return {cls.__name__: cls for cls in (AllReduce, AllGather, Broadcast, HandOver,
                                          CopyToGroup, ReduceFromGroup, GatherFromGroup)}


def __getattr__(name: str) -> type:
    # `from mf_parallel.collectives import CopyToGroup` builds the MindSpore classes on demand.
    cells = ("AllReduce", "AllGather", "Broadcast", "HandOver", "CopyToGroup", "ReduceFromGroup",
             "GatherFromGroup")
    if name in cells:
        return _cells()[name]
    raise AttributeError(f"module 'mf_parallel.collectives' has no attribute {name!r}")
