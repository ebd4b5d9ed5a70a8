"""MindSpore's dynamic cluster without msrun: the environment of the scheduler and of each rank.

msrun (mindspore/parallel/cluster/process_entity/_api.py) is a thin process manager: it
exports a handful of variables and runs the scheduler and every rank as child processes.
`mindspore.communication.init()` reads only these variables, so anyone who sets them starts
the same cluster (MindSpore documents this as "dynamic cluster" startup):

    MS_ROLE          MS_SCHED for the scheduler, MS_WORKER for a rank
    MS_SCHED_HOST    the scheduler's IP address (msrun's --master_addr, resolved)
    MS_SCHED_PORT    the scheduler's port (--master_port)
    MS_WORKER_NUM    ranks in the whole job (--worker_num)
    MS_NODE_ID       the rank's global id (node_rank * local_worker_num + i)
    MS_TOPO_TIMEOUT  seconds the scheduler and ranks wait for the cluster to form
    RANK_ID, RANK_SIZE, DEVICE_ID   what msrun exports for MindFormers' scripts

The scheduler is a process that calls `init()` in the MS_SCHED role: it serves the cluster's
topology and exits (code 0) once every rank has unregistered (measured: MindSpore 2.10, CPU).
"""

from __future__ import annotations

import errno
import socket

from mf_parallel.errors import ParallelConfigError
from mf_parallel.launcher import LaunchSpec

# `python -c` program of the scheduler: it needs nothing but MindSpore's init.
SCHEDULER_PROGRAM = "from mindspore.communication import init; init()"


def resolve_host(host: str) -> str:
    """An IPv4 address for `host` (MindSpore's scheduler address must be one)."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise ParallelConfigError(
            f"master address {host!r} does not resolve to an IP address on this machine"
        ) from None


def scheduler_env(spec: LaunchSpec) -> dict[str, str]:
    """The variables of the scheduler process (run on the master node only)."""
    return {
        "MS_ROLE": "MS_SCHED",
        "MS_SCHED_HOST": resolve_host(spec.master_addr),
        "MS_SCHED_PORT": str(spec.master_port),
        "MS_WORKER_NUM": str(spec.worker_num),
        "MS_TOPO_TIMEOUT": str(spec.cluster_time_out),
        "RANK_ID": "0",  # msrun's choice for the scheduler
        "RANK_SIZE": str(spec.worker_num),
    }


def rank_env(spec: LaunchSpec, local_rank: int, device_id: int | None = None) -> dict[str, str]:
    """The variables of this node's `local_rank`-th rank; `device_id` defaults to it."""
    if not 0 <= local_rank < spec.local_worker_num:
        raise ParallelConfigError(
            f"local rank {local_rank} is outside 0..{spec.local_worker_num - 1}"
        )
    rank = spec.ranks[local_rank]
    return {
        "MS_ROLE": "MS_WORKER",
        "MS_SCHED_HOST": resolve_host(spec.master_addr),
        "MS_SCHED_PORT": str(spec.master_port),
        "MS_WORKER_NUM": str(spec.worker_num),
        "MS_NODE_ID": str(rank),
        "MS_TOPO_TIMEOUT": str(spec.cluster_time_out),
        "RANK_ID": str(rank),
        "RANK_SIZE": str(spec.worker_num),
        "DEVICE_ID": str(local_rank if device_id is None else device_id),
    }


def is_local_address(host: str) -> bool:
    """Whether `host` is an address of this machine (binding to it succeeds)."""
    address = resolve_host(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise one line if `port` cannot be listened on at `host` (another job holds it)."""
    address = resolve_host(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ParallelConfigError(
                    f"{what} {port} on {host} is in use (another job or program listens "
                    f"there); choose another port"
                ) from None
            raise ParallelConfigError(
                f"cannot listen on {host}:{port} for the {what}: {exc.strerror}"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((resolve_host(host), 0))
        return sock.getsockname()[1]
