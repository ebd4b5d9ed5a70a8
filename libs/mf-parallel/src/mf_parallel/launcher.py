"""Launching ranks with msrun: a launch spec -> msrun's argument list, and HCCL rank tables.

msrun starts `local_worker_num` ranks on this machine out of `worker_num` in the job; node k of
a multi-node job runs its own msrun with `--node_rank=k` and the same `--master_addr`, and its
ranks are numbered k * local_worker_num + i. MindFormers' older launch scripts describe the
cluster with an HCCL rank table (`hccl_8p_01234567_<ip>.json`); `read_rank_table` turns one into
the spec for any of its servers. The argument list is meant for `subprocess.run(argv)`, never a
shell string.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_parallel.errors import ParallelConfigError, ParallelFileNotFoundError, RankTableError

# msrun's own defaults (mindspore/parallel/cluster/run.py), so an omitted field means the same.
DEFAULT_MASTER_ADDR = "127.0.0.1"
DEFAULT_MASTER_PORT = 8118
DEFAULT_CLUSTER_TIME_OUT = 600
# msrun's own default is no log dir at all; MindFormers' launch scripts use this one.
DEFAULT_LOG_DIR = "output/msrun_log"


def _require_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParallelConfigError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in {low}..{high}"
        raise ParallelConfigError(f"{name}({value}) must be {allowed}")


@dataclass(frozen=True)
class LaunchSpec:
    """The msrun options of one node of a job."""

    worker_num: int
    local_worker_num: int
    master_addr: str = DEFAULT_MASTER_ADDR
    master_port: int = DEFAULT_MASTER_PORT
    node_rank: int = 0
    log_dir: str = DEFAULT_LOG_DIR
    join: bool = True
    cluster_time_out: int = DEFAULT_CLUSTER_TIME_OUT

    def __post_init__(self) -> None:
        _require_int("worker_num", self.worker_num, 1)
        _require_int("local_worker_num", self.local_worker_num, 1)
        if self.local_worker_num > self.worker_num:
            raise ParallelConfigError(
                f"local_worker_num({self.local_worker_num}) > worker_num({self.worker_num}): "
                f"a node cannot start more ranks than the whole job has"
            )
        if self.worker_num % self.local_worker_num:
            raise ParallelConfigError(
                f"worker_num({self.worker_num}) is not divisible by local_worker_num"
                f"({self.local_worker_num}): {self.worker_num} % {self.local_worker_num} = "
                f"{self.worker_num % self.local_worker_num}; every node runs the same number "
                f"of ranks"
            )
        _require_int("master_port", self.master_port, 1024, 65535)
        nodes = self.num_nodes
        _require_int("node_rank", self.node_rank, 0)
        if self.node_rank >= nodes:
            raise ParallelConfigError(
                f"node_rank({self.node_rank}) is outside 0..{nodes - 1}: worker_num"
                f"({self.worker_num}) / local_worker_num({self.local_worker_num}) = {nodes} "
                f"node{'s' if nodes > 1 else ''}"
            )
        if not isinstance(self.master_addr, str) or not self.master_addr.strip() or any(
            c.isspace() for c in self.master_addr
        ):
            raise ParallelConfigError(
                f"master_addr {self.master_addr!r} must be an IP address or host name"
            )
        if not isinstance(self.log_dir, str) or not self.log_dir:
            raise ParallelConfigError(f"log_dir {self.log_dir!r} must be a non-empty path")
        if not isinstance(self.join, bool):
            raise ParallelConfigError(f"join must be true or false, got {self.join!r}")
        if not isinstance(self.cluster_time_out, int) or isinstance(self.cluster_time_out, bool):
            raise ParallelConfigError(
                f"cluster_time_out must be an integer (seconds; negative waits forever), "
                f"got {self.cluster_time_out!r}"
            )

    @classmethod
    def single_node(cls, num_workers: int, **options: Any) -> LaunchSpec:
        """All `num_workers` ranks on this machine."""
        return cls(worker_num=num_workers, local_worker_num=num_workers, **options)

    @classmethod
    def multi_node(cls, num_nodes: int, workers_per_node: int, node_rank: int,
                   master_addr: str, **options: Any) -> LaunchSpec:
        """Node `node_rank` of `num_nodes` machines with `workers_per_node` ranks each."""
        _require_int("num_nodes", num_nodes, 1)
        _require_int("workers_per_node", workers_per_node, 1)
        return cls(worker_num=num_nodes * workers_per_node, local_worker_num=workers_per_node,
                   node_rank=node_rank, master_addr=master_addr, **options)

    @property
    def num_nodes(self) -> int:
        return self.worker_num // self.local_worker_num

    @property
    def ranks(self) -> list[int]:
        """The global ranks this node's msrun starts."""
        first = self.node_rank * self.local_worker_num
        return list(range(first, first + self.local_worker_num))

    def argv(self, script: str | os.PathLike, script_args: Sequence[str] = (),
             msrun: str = "msrun") -> list[str]:
        """msrun's argument list for this node, ready for `subprocess.run`."""
        return [
            str(msrun),
            f"--worker_num={self.worker_num}",
            f"--local_worker_num={self.local_worker_num}",
            f"--master_addr={self.master_addr}",
            f"--master_port={self.master_port}",
            f"--node_rank={self.node_rank}",
            f"--log_dir={self.log_dir}",
            f"--join={self.join}",
            f"--cluster_time_out={self.cluster_time_out}",
            str(script),
            *[str(arg) for arg in script_args],
        ]


# -- HCCL rank tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class RankTableDevice:
    device_id: int
    device_ip: str
    rank_id: int


@dataclass(frozen=True)
class RankTableServer:
    server_id: str
    devices: tuple[RankTableDevice, ...]


@dataclass(frozen=True)
class RankTable:
    """An HCCL rank table (version 1.0: `server_list` of servers with their devices)."""

    servers: tuple[RankTableServer, ...]

    @property
    def worker_num(self) -> int:
        return sum(len(s.devices) for s in self.servers)

    def node_rank_of(self, server_id: str) -> int:
        for index, server in enumerate(self.servers):
            if server.server_id == server_id:
                return index
        raise RankTableError(
            f"server {server_id!r} is not in the rank table; its servers are "
            f"{[s.server_id for s in self.servers]}"
        )

    def launch_spec(self, node: int | str = 0, **options: Any) -> LaunchSpec:
        """The msrun spec of one server, given by its index (node rank) or server_id.

        The first server is the master, as in MindFormers' multi-node scripts.
        """
        node_rank = self.node_rank_of(node) if isinstance(node, str) else node
        _require_int("node_rank", node_rank, 0, len(self.servers) - 1)
        options.setdefault("master_addr", self.servers[0].server_id)
        return LaunchSpec(
            worker_num=self.worker_num,
            local_worker_num=len(self.servers[node_rank].devices),
            node_rank=node_rank,
            **options,
        )


def _int_field(value: Any, where: str, fail) -> int:
    # HCCL writes every number as a string ("0"); accept real integers too.
    if isinstance(value, bool):
        raise fail(f"{where} is {value!r}, expected an integer or an integer string")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise fail(f"{where} is {value!r}, expected an integer or an integer string")


def parse_rank_table(data: Any, source: str = "rank table") -> RankTable:
    """Validate the JSON form of an HCCL rank table; every problem is one RankTableError line."""

    def fail(message: str) -> RankTableError:
        return RankTableError(f"{source}: {message}")

    if not isinstance(data, dict):
        raise fail(f"the top level must be a JSON object, got {type(data).__name__}")
    status = data.get("status", "completed")
    if status != "completed":
        raise fail(f"status is {status!r}, expected 'completed' (the table is still being built)")
    servers_raw = data.get("server_list")
    if not isinstance(servers_raw, list) or not servers_raw:
        raise fail("'server_list' must be a non-empty list of servers "
                   f"(got {servers_raw!r:.60})")
    if "server_count" in data:
        count = _int_field(data["server_count"], "server_count", fail)
        if count != len(servers_raw):
            raise fail(f"server_count is {count}, but server_list has {len(servers_raw)} servers")
    servers = []
    seen_ranks: dict[int, str] = {}
    for s_index, server in enumerate(servers_raw):
        where = f"server_list[{s_index}]"
        if not isinstance(server, dict):
            raise fail(f"{where} must be an object")
        server_id = server.get("server_id")
        if not isinstance(server_id, str) or not server_id:
            raise fail(f"{where}.server_id is {server_id!r}, expected the server's IP address")
        devices_raw = server.get("device")
        if not isinstance(devices_raw, list) or not devices_raw:
            raise fail(f"{where}.device must be a non-empty list of devices")
        devices = []
        for d_index, device in enumerate(devices_raw):
            d_where = f"{where}.device[{d_index}]"
            if not isinstance(device, dict):
                raise fail(f"{d_where} must be an object")
            for key in ("device_id", "rank_id"):
                if key not in device:
                    raise fail(f"{d_where} is missing {key!r}")
            device_id = _int_field(device["device_id"], f"{d_where}.device_id", fail)
            rank_id = _int_field(device["rank_id"], f"{d_where}.rank_id", fail)
            device_ip = device.get("device_ip", "")
            if device_ip:
                try:
                    ipaddress.ip_address(device_ip)
                except ValueError:
                    raise fail(f"{d_where}.device_ip is {device_ip!r}, not an IP address") from None
            if rank_id in seen_ranks:
                raise fail(f"rank_id {rank_id} appears twice ({seen_ranks[rank_id]} and {d_where})")
            seen_ranks[rank_id] = d_where
            devices.append(RankTableDevice(device_id, device_ip, rank_id))
        servers.append(RankTableServer(server_id, tuple(devices)))
    total = len(seen_ranks)
    if sorted(seen_ranks) != list(range(total)):
        missing = sorted(set(range(total)) - set(seen_ranks))
        raise fail(f"rank_ids must be 0..{total - 1} for {total} devices; missing {missing}")
    # msrun numbers ranks node by node (node_rank * local_worker_num + i), so the table must too.
    first = 0
    for s_index, server in enumerate(servers):
        ranks = [d.rank_id for d in server.devices]
        expected = list(range(first, first + len(ranks)))
        if ranks != expected:
            raise fail(
                f"server_list[{s_index}] ({server.server_id}) holds rank_ids {ranks}, but msrun "
                f"numbers this node's ranks {expected[0]}..{expected[-1]} in order"
            )
        if len(ranks) != len(servers[0].devices):
            raise fail(
                f"server_list[{s_index}] ({server.server_id}) has {len(ranks)} devices, but "
                f"server_list[0] has {len(servers[0].devices)}; msrun needs the same number "
                f"on every node"
            )
        first += len(ranks)
    return RankTable(tuple(servers))


def read_rank_table(path: str | os.PathLike) -> RankTable:
    """Read an HCCL rank table file (`hccl_*.json`)."""
    path = Path(path)
    if not path.is_file():
        raise ParallelFileNotFoundError(f"rank table {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RankTableError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RankTableError(
            f"{path}: not valid JSON (truncated or corrupt?): {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    return parse_rank_table(data, str(path))


# -- MindFormers' launch scripts: `run_distribute_{single,multi}_node.sh CMD TABLE [S,E] N` ------

_DEVICE_RANGE = re.compile(r"^\[\s*(\d+)\s*,\s*(\d+)\s*\]$")


def parse_device_range(text: str) -> tuple[int, int]:
    """`[0,8]` -> (0, 8): the half-open range MindFormers' launch scripts loop over."""
    match = _DEVICE_RANGE.match(str(text).strip())
    if not match:
        raise ParallelConfigError(
            f"device range {text!r} must look like [START,END] with integers, e.g. [0,8]")
    start, end = int(match.group(1)), int(match.group(2))
    if end <= start:
        raise ParallelConfigError(
            f"device range {text!r}: END({end}) must be greater than START({start})")
    return start, end


@dataclass(frozen=True)
class ScriptLaunch:
    """What one run of a MindFormers launch script starts on this machine."""

    spec: LaunchSpec
    device_ids: tuple[int, ...]  # DEVICE_ID of each local rank; on CPU, informational

    @property
    def ranks(self) -> list[int]:
        return self.spec.ranks


def script_launch(table: RankTable, device_range: tuple[int, int], rank_size: int,
                  multi_node: bool, **options: Any) -> ScriptLaunch:
    """The ranks MindFormers' scripts would start, as a LaunchSpec of this node.

    single node (run_distribute_single_node.sh): device i in [START, END) runs RANK_ID
    i - START, and the job is those END - START ranks. multi node
    (run_distribute_multi_node.sh): RANK_ID is i itself and DEVICE_ID is i - START; the server
    of the rank table that holds rank ids START..END-1 is this node, and the first server is
    the master, as msrun and MindFormers have it. On CPU a device is simply a local rank.
    """
    _require_int("RANK_SIZE", rank_size, 1)
    start, end = device_range
    local = end - start
    if rank_size != table.worker_num:
        raise RankTableError(
            f"RANK_SIZE is {rank_size}, but the rank table lists {table.worker_num} devices")
    if not multi_node:
        if local != rank_size:
            raise ParallelConfigError(
                f"device range [{start},{end}] starts {local} ranks, but RANK_SIZE is "
                f"{rank_size}; a single-node job runs all of its ranks here (use "
                f"run_distribute_multi_node.sh to spread a job over machines)")
        options.setdefault("master_addr", DEFAULT_MASTER_ADDR)
        return ScriptLaunch(LaunchSpec.single_node(local, **options),
                            tuple(range(start, end)))
    for node, server in enumerate(table.servers):
        ranks = [d.rank_id for d in server.devices]
        if ranks == list(range(start, end)):
            return ScriptLaunch(table.launch_spec(node, **options), tuple(range(local)))
    held = ", ".join(f"{s.server_id}: [{s.devices[0].rank_id},{s.devices[-1].rank_id + 1}]"
                     for s in table.servers)
    raise RankTableError(
        f"device range [{start},{end}] is not the rank ids of one server in the rank table "
        f"({held}); give this server's range")
