"""One rank of the msrun test: join the cluster with init_context, all-reduce, report as JSON.

Run by tests/test_msrun.py as `msrun ... msrun_worker.py OUT_DIR`; not a test module itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from mf_parallel import ContextConfig, Mesh, ParallelConfig, ParallelContextConfig, init_context


def main(out_dir: Path) -> None:
    rank, device_num = init_context(
        use_parallel=True,
        context_config=ContextConfig(mode=1, device_target="CPU"),
        parallel_config=ParallelContextConfig(parallel_mode="DATA_PARALLEL",
                                              gradients_mean=True),
    )
    import mindspore as ms
    from mindspore import communication, ops

    # Each rank contributes a value only it knows; the sum proves the data crossed ranks.
    local = ms.Tensor(np.array([rank + 1.0, 10.0 * (rank + 1)], dtype=np.float32))
    world_sum = ops.AllReduce()(local).asnumpy().tolist()

    # The model-parallel group of the mesh as a MindSpore group (CPU: subgroup AllReduce works).
    mesh = Mesh.from_config(ParallelConfig(model_parallel=device_num).resolve(device_num))
    group = mesh.group_of(rank, "mp")
    communication.create_group("mf_mp_0", group)
    group_sum = ops.AllReduce(group="mf_mp_0")(
        ms.Tensor(np.array([2.0**rank], dtype=np.float32))).asnumpy().tolist()

    report = {"rank": rank, "device_num": device_num, "world_sum": world_sum,
              "group": group, "group_sum": group_sum, "rank_id_env": os.environ.get("RANK_ID")}
    tmp = out_dir / f".rank_{rank}.json.tmp"
    tmp.write_text(json.dumps(report))
    tmp.replace(out_dir / f"rank_{rank}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
