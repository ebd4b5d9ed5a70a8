"""One rank of tests/test_collectives.py: every collective of mf_parallel.collectives, on the
groups of a dp 2 x mp 2 mesh and of a pp 2 x dp 2 mesh, inside `ms.jit` where it matters.

Run as `msrun --worker_num=4 ... msrun_collectives_worker.py OUT_DIR`; not a test module itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mf_parallel import ContextConfig, ParallelConfig, ParallelContextConfig, init_context
from mf_parallel.collectives import (
    AllGather,
    AllReduce,
    Broadcast,
    CopyToGroup,
    GatherFromGroup,
    HandOver,
    ReduceFromGroup,
    process_groups,
)


def main(out_dir: Path) -> None:
    rank, world = init_context(
        use_parallel=True, context_config=ContextConfig(mode=1, device_target="CPU"),
        parallel_config=ParallelContextConfig(parallel_mode="DATA_PARALLEL"))
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn, ops

    report: dict = {"rank": rank}
    groups = process_groups(ParallelConfig(data_parallel=2, model_parallel=2).resolve(world), rank)
    report["mp"], report["dp"] = list(groups.mp.ranks), list(groups.dp.ranks)
    mine = Tensor(np.array([[rank, 10 * rank]], np.float32))  # (1, 2), known only here

    report["mp_sum"] = AllReduce(groups.mp)(mine).asnumpy().tolist()
    # mp groups are sub-groups: gathered through a zero-filled AllReduce on CPU
    report["mp_gather_rows"] = AllGather(groups.mp, 0)(mine).asnumpy().tolist()
    report["mp_gather_cols"] = ms.jit(AllGather(groups.mp, -1))(mine).asnumpy().tolist()
    report["mp_broadcast"] = Broadcast(groups.mp, root=groups.mp.ranks[1])(mine).asnumpy().tolist()
    # the world group: CPU's native AllGather and Broadcast
    world_group = process_groups(ParallelConfig(data_parallel=world).resolve(world), rank).dp
    report["world_native"] = world_group.is_world
    report["world_gather_cols"] = AllGather(world_group, 1)(mine).asnumpy().tolist()
    report["world_broadcast"] = Broadcast(world_group, root=3)(mine).asnumpy().tolist()

    # A pipeline of 2 stages: stage 0's rank hands a tensor to its stage-1 peer and back.
    pipe = process_groups(
        ParallelConfig(data_parallel=2, pipeline_stage=2, micro_batch_num=2).resolve(world), rank)
    report["stage"] = pipe.stage
    report["embedding"] = list(pipe.embedding.ranks)
    pair = pipe.next_stage or pipe.prev_stage
    first, second = pair.ranks
    forward = HandOver(pair, src=first, shape=(1, 2))
    backward = HandOver(pair, src=second, shape=(1, 2))
    got = forward(mine if rank == first else ops.zeros((1, 2), ms.float32))
    report["handed_forward"] = got.asnumpy().tolist()
    report["handed_back"] = ms.jit(backward)(got * 2).asnumpy().tolist()

    # Megatron's f and g around a split matmul, inside ms.jit + value_and_grad: the tensor-
    # parallel y = x @ W with W's columns split over mp for the first product (f before it) and
    # rows split for the second (g after it), as a column-then-row-parallel MLP.
    mp_index = groups.mp.index
    full_a = np.arange(12, dtype=np.float32).reshape(3, 4) / 10  # (in 3, hidden 4)
    full_b = np.arange(8, dtype=np.float32).reshape(4, 2) / 10  # (hidden 4, out 2)

    class SplitMLP(nn.Cell):
        def __init__(self):
            super().__init__()
            self.a = Parameter(Tensor(full_a[:, 2 * mp_index:2 * mp_index + 2]), name="a")
            self.b = Parameter(Tensor(full_b[2 * mp_index:2 * mp_index + 2]), name="b")
            self.f = CopyToGroup(groups.mp)
            self.g = ReduceFromGroup(groups.mp)
            self.gather = GatherFromGroup(groups.mp, axis=-1)

        def construct(self, x):
            hidden = ops.tanh(ops.matmul(self.f(x), self.a))  # (2, 2): this rank's columns
            y = self.g(ops.matmul(hidden, self.b))  # (2, 2): the whole product
            whole_hidden = self.gather(hidden)  # (2, 4): every rank's columns
            return (y * y).sum() + whole_hidden.sum() * 0.5

    net = SplitMLP()
    x = Tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], np.float32))
    grad = ms.jit(ms.value_and_grad(net, 0, net.trainable_params()))
    loss, (dx, (da, db)) = grad(x)
    report["tp_loss"] = float(loss.asnumpy())
    report["tp_dx"] = dx.asnumpy().tolist()
    report["tp_da"] = da.asnumpy().tolist()
    report["tp_db"] = db.asnumpy().tolist()
    report["mp_index"] = mp_index

    tmp = out_dir / f".rank_{rank}.json.tmp"
    tmp.write_text(json.dumps(report))
    tmp.replace(out_dir / f"rank_{rank}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
