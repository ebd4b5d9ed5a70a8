"""MindSpore runtime settings that pay on CPU, applied to mf's own processes and every rank.

    apply_runtime_defaults()          # before the first graph runs (env, no MindSpore import)
    set_kernel_threads(local_ranks)   # cores / local ranks kernel threads (imports MindSpore)
    runtime_summary()                 # "MS_DEV_HOST_BLOCKING_RUN=1 (mf default), ..." for logs

A setting the user wrote in the environment always wins: defaults only fill what is unset.

Measured on 2 cores (DESIGN.md, issue 15): MS_DEV_HOST_BLOCKING_RUN=1 runs each kernel inline
instead of handing it to a runtime thread: a GPT-2 train step 5.3 -> 3.7 s, the default job
191 -> 127 s with identical losses, small graphs up to 10x; decode unchanged. MindSpore reads
it when graphs run, so setting it after `import mindspore` still takes effect (checked: a
200-op graph 74-80 ms unset, 51-57 ms set before import, 56-62 ms set after).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# MF_BIND_CORES=1: each of several ranks on one machine is pinned to its own share of the
# cores (benchmarks/scaling.py, dp 2 on 2 quiet cores: 1535 -> 1845 tokens/s unbound -> bound;
# two runs of three favoured it, the third ran while other jobs came and went); a single
# process is never pinned.
RUNTIME_DEFAULTS: dict[str, str] = {"MS_DEV_HOST_BLOCKING_RUN": "1", "MF_BIND_CORES": "1"}
LOCAL_RANKS_ENV = "MF_LOCAL_RANKS"  # set by mf's launcher for each rank: ranks on its machine
LOCAL_RANK_ENV = "MF_LOCAL_RANK"  # set by mf's launcher: this rank's index on its machine
BIND_ENV = "MF_BIND_CORES"  # "1" (mf's default): pin each local rank to its share of the cores


_APPLIED: set[str] = set()  # the defaults this process filled in (not the user's own)
_THREADS: list[int] = []  # the kernel threads set_kernel_threads gave MindSpore
_BOUND: list[int] = []  # the cores bind_rank_cores pinned this process to


def apply_runtime_defaults(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Fill mf's runtime defaults into `env` (default: this process's); returns what it set.
    A launcher passes the rank's environment so every rank runs with the same settings."""
    target = os.environ if env is None else env
    applied = {}
    for key, value in RUNTIME_DEFAULTS.items():
        if key not in target:
            target[key] = value
            applied[key] = value
    if env is None:
        _APPLIED.update(applied)
    return applied


def local_ranks(env: MutableMapping[str, str] | None = None) -> int:
    """How many ranks share this machine: mf's launcher says so; msrun alone says the world
    size (one machine); a plain process is one."""
    env = os.environ if env is None else env
    for key in (LOCAL_RANKS_ENV, "MS_WORKER_NUM"):
        text = env.get(key, "")
        if text.isdigit() and int(text) > 0:
            return int(text)
    return 1


def kernel_threads(ranks: int, cores: int | None = None) -> int:
    """Kernel threads per rank: the machine's cores shared out, at least one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, ranks))


def set_kernel_threads(ranks: int | None = None) -> int:
    """Give MindSpore's CPU kernels cores / local ranks threads (unless MF_KERNEL_THREADS says
    otherwise); returns the count. Several ranks each using every core oversubscribe them."""
    from mindspore.device_context.cpu import op_tuning

    written = os.environ.get("MF_KERNEL_THREADS", "")
    threads = int(written) if written.isdigit() and int(written) > 0 else kernel_threads(
        local_ranks() if ranks is None else ranks)
    op_tuning.threads_num(threads)
    _THREADS[:] = [threads]
    return threads


def rank_cores(local_rank: int, ranks: int, cores: list[int]) -> list[int]:
    """Local rank `local_rank`'s contiguous share of `cores` (msrun's --bind_core splits the
    same way); the share is at least one core."""
    share = max(1, len(cores) // max(1, ranks))
    start = (local_rank * share) % len(cores)
    return cores[start:start + share]


def bind_rank_cores(env: MutableMapping[str, str] | None = None) -> list[int]:
    """With MF_BIND_CORES=1 (mf's default; 0 turns it off), pin this rank to its share of the
    cores it may use, as msrun's --bind_core does; returns them (empty when off, alone on the
    machine, or the platform cannot pin)."""
    env = os.environ if env is None else env
    ranks = local_ranks(env)
    local = env.get(LOCAL_RANK_ENV, "")
    if not local and env.get("MS_WORKER_NUM") == str(ranks):  # msrun on one machine
        local = env.get("RANK_ID", "")
    if env.get(BIND_ENV) != "1" or ranks <= 1 or not local.isdigit() or \
            not hasattr(os, "sched_setaffinity"):
        return []
    cores = rank_cores(int(local), ranks, sorted(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, cores)
    _BOUND[:] = cores
    return cores


def runtime_summary() -> str:
    """The runtime settings in force in this process, one line (benchmarks and run summaries
    print it)."""
    parts = []
    for key in RUNTIME_DEFAULTS:
        value = os.environ.get(key)
        if value is None:
            parts.append(f"{key} unset")
        else:
            origin = "mf default" if key in _APPLIED else "from the environment"
            parts.append(f"{key}={value} ({origin})")
    threads = f"{_THREADS[0]} kernel thread(s)" if _THREADS else "MindSpore's kernel threads"
    parts.append(f"{threads} per rank, {local_ranks()} rank(s) on this machine")
    if _BOUND:
        parts.append(f"bound to cores {','.join(map(str, _BOUND))}")
    return "; ".join(parts)
