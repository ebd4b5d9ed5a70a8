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
    mine = {"MS_DEV_HOST_BLOCKING_RUN": "0"}
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
