"""Runtime defaults: filled in where unset, never over a user's own value; threads per rank."""

from __future__ import annotations

from mf_parallel.runtime import (
    RUNTIME_DEFAULTS,
    apply_runtime_defaults,
    kernel_threads,
    local_ranks,
)


def test_defaults_fill_only_what_is_unset():
    env = {"PATH": "/bin"}
    assert apply_runtime_defaults(env) == RUNTIME_DEFAULTS
    assert env["MS_DEV_HOST_BLOCKING_RUN"] == "1"
    mine = {"MS_DEV_HOST_BLOCKING_RUN": "0", "MF_BIND_CORES": "0"}
    assert apply_runtime_defaults(mine) == {}
    assert mine["MS_DEV_HOST_BLOCKING_RUN"] == "0"  # the user's setting wins


def test_kernel_threads_share_the_cores_between_local_ranks():
    assert kernel_threads(1, cores=2) == 2
    assert kernel_threads(2, cores=2) == 1
    assert kernel_threads(4, cores=2) == 1  # never zero
    assert kernel_threads(3, cores=8) == 2


def test_local_ranks_from_mf_launcher_then_msrun_then_one():
    assert local_ranks({"MF_LOCAL_RANKS": "2", "MS_WORKER_NUM": "8"}) == 2
    assert local_ranks({"MS_WORKER_NUM": "4"}) == 4
    assert local_ranks({}) == 1
    assert local_ranks({"MF_LOCAL_RANKS": "x"}) == 1


def test_rank_cores_split_the_machine_contiguously():
    from mf_parallel.runtime import rank_cores

    assert rank_cores(0, 2, [0, 1]) == [0] and rank_cores(1, 2, [0, 1]) == [1]
    assert rank_cores(1, 2, [0, 1, 2, 3]) == [2, 3]
    assert rank_cores(2, 4, [0, 1]) == [0]  # more ranks than cores: at least one each


def test_binding_is_opt_in_and_pins_a_child_process_to_its_share():
    import os
    import subprocess
    import sys

    from mf_parallel.runtime import bind_rank_cores

    env = {"MF_LOCAL_RANKS": "2", "MF_LOCAL_RANK": "1"}
    assert bind_rank_cores({**env, "MF_BIND_CORES": "0"}) == []  # turned off: nothing pinned
    assert bind_rank_cores({"MF_BIND_CORES": "1"}) == []  # alone on the machine: never pinned
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return
    code = ("import os; from mf_parallel.runtime import bind_rank_cores; "
            "print(bind_rank_cores(), sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env, "MF_BIND_CORES": "1"}, check=True).stdout
    share = cores[len(cores) // 2:len(cores) // 2 * 2]
    assert out.split("] [")[0] + "]" == str(share) and out.strip().endswith(str(share))
