"""What one node of a job starts, and the command line of every other node.

`mf launch CONFIG --workers N [--nodes M --node-rank K --master-addr A --master-port P]`
resolves here into a `NodeLaunch`: the cluster (world size, this node's ranks, the scheduler's
address and port, the launchers' control port), the run (config, --options, mode) or, for
MindFormers' launch scripts, a plain command, and the failure policy (join timeout, restarts).
Node 0 checks the run and creates the job directory before anything starts, records the
launch in launch.json (with every node's command) and hands it to `supervisor.Supervisor`,
in this process or, with `detach`, in a process of its own session that outlives the
terminal.

The functions under "mf-train's run" are the only places that know how a run is checked, how a
rank starts and how a restart resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_train.atomic import atomic_write_json
from mf_train.errors import MfTrainError, TrainConfigError
from mf_train.jobdir import LAUNCH_ENV_PREFIXES, JobDir

# The scheduler and ranks wait this long for the cluster to form (MS_TOPO_TIMEOUT), and node 0
# waits this long for every other node's launcher: a node that never comes is named then.
DEFAULT_JOIN_TIMEOUT = 120
# msrun's default scheduler port (mindspore/parallel/cluster/run.py); a multi-node job needs
# a port every node knows in advance, a single-node job takes any free one.
DEFAULT_MASTER_PORT = 8118


class LaunchError(MfTrainError):
    """A job whose ranks failed, a node that never joined, a lost node (exit code 1)."""


@dataclass
class RunRef:
    """An mf run: the run YAML, its --options and the run mode."""

    config: str
    options: list[str] = field(default_factory=list)
    mode: str = "train"


@dataclass
class NodeLaunch:
    """Everything a node's launcher needs to (re)start its processes; JSON in launch.json."""

    job_id: str
    worker_num: int
    local_worker_num: int
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT
    control_port: int = DEFAULT_MASTER_PORT + 1
    join_timeout: int = DEFAULT_JOIN_TIMEOUT
    max_restarts: int = 0
    run: RunRef | None = None  # an mf run ...
    command: list[str] | None = None  # ... or a plain command per rank (launch scripts)
    device_ids: list[int] | None = None  # DEVICE_ID per local rank (default: the local rank)
    env: dict[str, str] = field(default_factory=dict)  # more variables for every rank
    # False for commands that never call mindspore.communication.init() (nothing to schedule)
    start_scheduler: bool = True
    job_root: str | None = None  # the job directory of an mf run
    log_dir: str | None = None  # a plain command's logs: <log_dir>/rank_<r>/mindformer.log
    fingerprint: str = ""  # of the run: every node must run the same one
    total_steps: int | None = None

    @property
    def num_nodes(self) -> int:
        return self.worker_num // self.local_worker_num

    @property
    def spec(self) -> Any:
        from mf_parallel import LaunchSpec

        # MindSpore waits a little longer than node 0 does for the other nodes, so a node that
        # never comes is named by the launcher rather than reported as a rank's init failure.
        return LaunchSpec(worker_num=self.worker_num, local_worker_num=self.local_worker_num,
                          master_addr=self.master_addr, master_port=self.master_port,
                          node_rank=self.node_rank, cluster_time_out=self.join_timeout + 30)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeLaunch:
        data = dict(data)
        if data.get("run") is not None:
            data["run"] = RunRef(**data["run"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# ---- mf-train's run: how it is checked and how a rank starts ---------------------------------

WORKER = Path(__file__).with_name("worker.py")


def rank_argv(launch: NodeLaunch) -> list[str]:
    """The command of one rank of an mf run, the same for every rank (the cluster's variables
    tell it which it is): it resolves the run from the job directory's job.yaml."""
    assert launch.job_root is not None
    return [sys.executable, str(WORKER), "--job", launch.job_root]


def load_run(run: RunRef) -> Any:
    """The run resolved once (resolve.Run): config, model config, validated parallel layout."""
    from mf_train.resolve import resolve_run

    return resolve_run(run.config, run.options, mode=run.mode)


def check_world(run: Any, world_size: int) -> None:
    """The layout must use exactly the ranks launched: one line with the product if not."""
    try:
        run.parallel.resolve(world_size)
    except ValueError as exc:
        raise TrainConfigError(f"--workers {world_size}: {exc}") from None


@dataclass
class PreparedJob:
    job: JobDir
    total_steps: int
    summary_lines: list[str]


def prepare_job(run: Any, argv: Sequence[str]) -> PreparedJob:
    """Plan the run end to end (data, memory, output rule, resume) and create its job
    directory, building nothing: every bad input is one line with exit code 2, before any
    rank starts."""
    from mf_train.session import RunSession

    session = RunSession(run, echo=False)
    session.start_weights(None, session.random_init)  # finetune: weights named, or said not
    plan, _, job = session.prepare(argv=list(argv))
    return PreparedJob(job, plan.train_steps, plan.summary_lines())


def prepare_resume(job_root: str | Path) -> None:
    """Before a restart: the job's run with resume_training, planned again, so job.yaml and
    plan.json (which the ranks resolve) resume from the newest checkpoint."""
    from mf_train.resolve import resolve_job
    from mf_train.session import RunSession

    run = resolve_job(job_root).with_overrides({"resume_training": True},
                                               "the launcher's restart")
    RunSession(run, echo=False).prepare()


# ---- node commands and launch.json -----------------------------------------------------------

def node_command(launch: NodeLaunch, node_rank: int, config_arg: str,
                 options: Sequence[str]) -> list[str]:
    """The `mf launch` argument list that runs node `node_rank` of this job."""
    run = launch.run
    assert run is not None
    argv = ["mf", "launch", config_arg, "--workers", str(launch.worker_num),
            "--nodes", str(launch.num_nodes), "--node-rank", str(node_rank),
            "--master-addr", launch.master_addr, "--master-port", str(launch.master_port),
            "--control-port", str(launch.control_port), "--job-id", launch.job_id,
            "--join-timeout", str(launch.join_timeout)]
    if run.mode != "train":
        argv += ["--mode", run.mode]
    if launch.max_restarts:
        argv += ["--max-restarts", str(launch.max_restarts)]
    if options:
        argv += ["--options", *options]
    return argv


def record_launch(job: JobDir, launch: NodeLaunch,
                  commands: dict[int, list[str]] | None = None) -> None:
    """Add the launch (and, for several nodes, every node's command) to launch.json; the
    launcher's pid is this process's."""
    try:
        record = json.loads(job.launch_json.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        record = {}
    record.update({
        "job_id": launch.job_id,
        "launch": launch.to_dict(),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(LAUNCH_ENV_PREFIXES)},
        "host": platform.node(),
        "pid": os.getpid(),
    })
    record.setdefault("start_time", time.time())
    if launch.num_nodes > 1 and commands is not None:
        record["nodes"] = launch.num_nodes
        record["commands"] = {str(k): shlex.join(v) for k, v in sorted(commands.items())}
    atomic_write_json(job.launch_json, record)


def read_launch(job: JobDir) -> NodeLaunch:
    try:
        record = json.loads(job.launch_json.read_text(encoding="utf-8"))
        return NodeLaunch.from_dict(record["launch"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrainConfigError(f"{job.launch_json} holds no mf launch ({exc})") from None


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def command_job_id(command: Sequence[str], table_text: str) -> str:
    """Nodes started by MindFormers' scripts agree on an id without being told one."""
    digest = hashlib.sha256(json.dumps([list(command), table_text]).encode())
    return digest.hexdigest()[:12]


# ---- starting a node -------------------------------------------------------------------------

def supervise(launch: NodeLaunch, *, echo: bool = True, listeners: Sequence[Any] = ()) -> Any:
    """Run this node's processes to the end in this process; returns the Outcome."""
    from mf_train.supervisor import Supervisor

    job = JobDir(launch.job_root) if launch.job_root else None
    return Supervisor(launch, job, echo=echo, listeners=listeners).run()


def detach(job: JobDir) -> int:
    """Start this node's launcher in its own session (it outlives the terminal); its output
    goes to logs/launcher.log. Returns its pid."""
    job.logs.mkdir(parents=True, exist_ok=True)
    with open(job.logs / "launcher.log", "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - an argument list
            [sys.executable, "-m", "mf_train.supervisor", str(job.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process.pid


@dataclass
class LaunchResult:
    launch: NodeLaunch
    job: JobDir | None
    outcome: Any = None  # supervisor.Outcome; None when detached
    launcher_pid: int | None = None  # the detached launcher
    commands: dict[int, list[str]] = field(default_factory=dict)  # every node's `mf launch`
    summary_lines: list[str] = field(default_factory=list)


def _cluster_options(world: int, nodes: int, node_rank: int, master_addr: str | None,
                     master_port: int | None, control_port: int | None,
                     join_timeout: int) -> dict[str, Any]:
    """Check the cluster options before anything runs; one line each, exit code 2."""
    from mf_parallel import LaunchSpec
    from mf_parallel.cluster import check_port_free, free_port, is_local_address

    for name, value, low in (("--nodes", nodes, 1), ("--node-rank", node_rank, 0),
                             ("--join-timeout", join_timeout, 1)):
        if value < low:
            raise TrainConfigError(f"{name} {value}; it must be >= {low}")
    if world % nodes:
        raise TrainConfigError(
            f"--workers {world} cannot be spread over --nodes {nodes}: {world} % {nodes} = "
            f"{world % nodes}; every node runs the same number of ranks")
    if node_rank >= nodes:
        raise TrainConfigError(f"--node-rank {node_rank} is outside 0..{nodes - 1} "
                               f"(--nodes {nodes})")
    if nodes > 1 and not master_addr:
        raise TrainConfigError("--master-addr is needed with --nodes > 1: node 0's IP address, "
                               "which every node can reach")
    master_addr = master_addr or "127.0.0.1"
    if master_port is None:
        master_port = DEFAULT_MASTER_PORT if nodes > 1 else free_port(master_addr)
    control_port = control_port or master_port + 1
    try:
        LaunchSpec(worker_num=world, local_worker_num=world // nodes, node_rank=node_rank,
                   master_addr=master_addr, master_port=master_port)
        LaunchSpec(worker_num=world, local_worker_num=world // nodes, master_port=control_port)
        if control_port == master_port:
            raise TrainConfigError(f"--control-port {control_port} is the scheduler's port; "
                                   "give another")
        if node_rank == 0:
            if not is_local_address(master_addr):
                raise TrainConfigError(
                    f"--master-addr {master_addr} is not an address of this machine; node 0 "
                    "runs the scheduler there (run node 0 on that machine)")
            check_port_free(master_addr, master_port, "--master-port")
            if nodes > 1:
                check_port_free("0.0.0.0", control_port, "--control-port")
    except ValueError as exc:  # mf-parallel's config errors
        raise TrainConfigError(str(exc)) from None
    return {"master_addr": master_addr, "master_port": master_port,
            "control_port": control_port}


def launch_run(config: str | Path, options: Sequence[str] = (), mode: str = "train", *,
               workers: int | None = None, nodes: int = 1, node_rank: int | None = None,
               master_addr: str | None = None, master_port: int | None = None,
               control_port: int | None = None, job_id: str | None = None,
               join_timeout: int = DEFAULT_JOIN_TIMEOUT, max_restarts: int = 0,
               detach_launcher: bool = False, echo: bool = True,
               listeners: Sequence[Any] = (), argv: Sequence[str] | None = None,
               rank_table: str | Path | None = None, resolved: Any = None) -> LaunchResult:
    """`mf launch`: check everything, then run (or detach) node `node_rank` of the job.

    With `rank_table` (MindFormers' hccl_*.json) the ranks, nodes and master address come
    from the table, and this node is the server whose address is this machine's. `resolved`:
    the run already resolved from `config` and `options` (`mf train` has it), not read again.
    """
    if rank_table is not None:
        workers, nodes, node_rank, master_addr = _from_rank_table(rank_table, workers,
                                                                  node_rank)
    node_rank = node_rank or 0
    if mode not in ("train", "finetune"):
        raise TrainConfigError(f"--mode {mode!r}; mf launch runs train or finetune")
    if max_restarts < 0:
        raise TrainConfigError(f"--max-restarts {max_restarts}; it must be >= 0")
    run = RunRef(str(Path(config).expanduser().absolute()), list(options), mode)
    resolved = resolved if resolved is not None else load_run(run)
    world = workers if workers is not None else resolved.world_size
    if world < 1:
        raise TrainConfigError(f"--workers {world}; it must be >= 1")
    check_world(resolved, world)
    cluster = _cluster_options(world, nodes, node_rank, master_addr, master_port,
                               control_port, join_timeout)
    if detach_launcher and node_rank > 0:
        raise TrainConfigError("--detach runs node 0's launcher in the background; on node "
                               f"{node_rank} run mf launch under nohup or a terminal "
                               "multiplexer")
    launch = NodeLaunch(job_id=job_id or new_job_id(), worker_num=world,
                        local_worker_num=world // nodes, node_rank=node_rank,
                        join_timeout=join_timeout, max_restarts=max_restarts, run=run,
                        fingerprint=resolved.fingerprint(), **cluster)
    argv = list(sys.argv if argv is None else argv)
    if node_rank > 0:
        return _join_as_node(launch, resolved, argv, echo, listeners)
    prepared = prepare_job(resolved, argv)
    launch.job_root, launch.total_steps = str(prepared.job.root), prepared.total_steps
    commands = {k: node_command(launch, k, str(config), options) for k in range(nodes)}
    record_launch(prepared.job, launch, commands)
    result = LaunchResult(launch, prepared.job, commands=commands,
                          summary_lines=prepared.summary_lines)
    if echo:
        for line in prepared.summary_lines:
            print(line, file=sys.stderr, flush=True)
        for node, command in list(commands.items())[1:]:
            print(f"node {node}: {shlex.join(command)}", file=sys.stderr, flush=True)
    if detach_launcher:
        result.launcher_pid = detach(prepared.job)
        return result
    result.outcome = supervise(launch, echo=echo, listeners=listeners)
    return result


def _from_rank_table(path: str | Path, workers: int | None, node_rank: int | None,
                     ) -> tuple[int, int, int, str]:
    from mf_parallel import read_rank_table
    from mf_parallel.cluster import is_local_address

    table = read_rank_table(path)
    if workers is not None and workers != table.worker_num:
        raise TrainConfigError(f"--workers {workers}, but the rank table {path} lists "
                               f"{table.worker_num} devices")
    servers = [server.server_id for server in table.servers]
    if len(servers) == 1:
        return table.worker_num, 1, 0, "127.0.0.1"
    if node_rank is None:
        local = [index for index, server in enumerate(servers) if _is_local(server,
                                                                             is_local_address)]
        if len(local) != 1:
            raise TrainConfigError(
                f"cannot tell which server of the rank table {path} this machine is "
                f"({'none' if not local else len(local)} of {servers} are its addresses); "
                "give --node-rank")
        node_rank = local[0]
    return table.worker_num, len(servers), node_rank, servers[0]


def _is_local(address: str, is_local_address: Any) -> bool:
    try:
        return is_local_address(address)
    except ValueError:  # does not resolve here
        return False


def _join_as_node(launch: NodeLaunch, run: Any, argv: Sequence[str], echo: bool,
                  listeners: Sequence[Any]) -> LaunchResult:
    """Node k: join node 0, then use its job directory (shared file system) or make one."""
    from mf_train.supervisor import Supervisor

    supervisor = Supervisor(launch, None, echo=echo, listeners=listeners)
    welcome = supervisor.join_node0()
    root = (welcome.get("job") or {}).get("root")
    shared = root is not None and _launch_job_id(JobDir(root)) == launch.job_id
    if shared:
        job = JobDir(root)
        launch.total_steps = (welcome.get("job") or {}).get("total_steps")
    else:
        prepared = prepare_job(run, argv)
        job = prepared.job
        launch.total_steps = prepared.total_steps
    launch.job_root = str(job.root)
    if not shared:
        record_launch(job, launch)
    supervisor.use_job(job, shared=shared)
    return LaunchResult(launch, job, outcome=supervisor.run())


def _launch_job_id(job: JobDir) -> str | None:
    try:
        return json.loads(job.launch_json.read_text(encoding="utf-8")).get("job_id")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def launch_command(command: Sequence[str], rank_table: str | Path, device_range: str,
                   rank_size: int, multi_node: bool, *, master_port: int | None = None,
                   join_timeout: int = DEFAULT_JOIN_TIMEOUT, log_dir: str | Path = "output/log",
                   echo: bool = True) -> LaunchResult:
    """MindFormers' `run_distribute_{single,multi}_node.sh "CMD" TABLE [S,E] N`: run CMD
    as each rank of this machine with the cluster's variables, and watch them."""
    from mf_parallel import read_rank_table
    from mf_parallel.launcher import parse_device_range, script_launch

    if not command:
        raise TrainConfigError("the command to run is empty")
    table = read_rank_table(rank_table)
    start_end = parse_device_range(device_range)
    probe = script_launch(table, start_end, rank_size, multi_node)  # which node, how many
    nodes = probe.spec.num_nodes
    cluster = _cluster_options(probe.spec.worker_num, nodes, probe.spec.node_rank,
                               probe.spec.master_addr if multi_node else None, master_port,
                               None, join_timeout)
    table_text = Path(rank_table).read_text(encoding="utf-8")
    job_id = command_job_id(command, table_text)
    launch = NodeLaunch(job_id=job_id, worker_num=probe.spec.worker_num,
                        local_worker_num=probe.spec.local_worker_num,
                        node_rank=probe.spec.node_rank, join_timeout=join_timeout,
                        command=list(command), device_ids=list(probe.device_ids),
                        log_dir=str(Path(log_dir).absolute()), fingerprint=job_id,
                        # the scripts export it to every rank, as MindFormers' task.py reads it
                        env={"RANK_TABLE_FILE": str(Path(rank_table).absolute())}, **cluster)
    return LaunchResult(launch, None, outcome=supervise(launch, echo=echo))


def launch_local(command: Sequence[str], workers: int, log_dir: str | Path, *,
                 join_timeout: int = DEFAULT_JOIN_TIMEOUT, echo: bool = False) -> LaunchResult:
    """`workers` ranks of `command` on this machine under the supervisor (each joins the
    cluster with mindspore.communication.init()): what `mf generate --model-parallel N` runs.
    Their output: <log_dir>/rank_<r>/mindformer.log."""
    if not command:
        raise TrainConfigError("the command to run is empty")
    if workers < 1:
        raise TrainConfigError(f"{workers} ranks; it must be >= 1")
    cluster = _cluster_options(workers, 1, 0, None, None, None, join_timeout)
    launch = NodeLaunch(job_id=new_job_id(), worker_num=workers, local_worker_num=workers,
                        join_timeout=join_timeout, command=list(command),
                        log_dir=str(Path(log_dir).absolute()), **cluster)
    return LaunchResult(launch, None, outcome=supervise(launch, echo=echo))
