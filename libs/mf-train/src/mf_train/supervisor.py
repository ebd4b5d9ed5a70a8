"""The launcher of one node: starts its ranks, watches them, records them in the job directory.

Why not msrun. msrun (mindspore/parallel/cluster/process_entity/_api.py) starts the ranks
as its own children and keeps their pids and exit codes to itself: it polls them once a
second, kills the rest when one fails, then waits for the scheduler, which lingers until its
heartbeat timeout, and reports "Distributed job exited with exception" with neither the rank
nor the code. Measured before this module: SIGKILL of rank 1 at step 95 of a dp=2 run ended
the job after 37 s with rank 0's "could not join the cluster: ... worker 0 is the first one
timed out", the wrong rank and the wrong reason. msrun does nothing else we need:
`mindspore.communication.init()` reads a few environment variables (`mf_parallel.cluster`),
so this launcher starts MindSpore's scheduler and every rank itself, each in its own session
with its output in a file, and owns every pid and exit code.

What it guarantees:
- status.json (schema 1, the launcher is its only writer) holds the job's state and every
  rank's pid, host, state and exit code, rewritten atomically as they change.
- The first rank to fail is named with its exit code, its one-line error (its `error` event)
  or its signal, and the tail of its output; the other ranks are ended within seconds
  (SIGTERM, SIGKILL after STOP_GRACE) and recorded as `dead`. No rank waits for a
  collective's timeout.
- Several nodes: each node's launcher keeps a connection to node 0's
  (`mf_parallel.rendezvous`). A node that has not joined after `join_timeout` is named; a
  failure on any node ends every node; a vanished launcher is a lost node.
- `max_restarts`: after a failure (not a config error, exit code 2) the job starts again,
  resuming from the newest checkpoint when there is one.

Rank states in status.json: starting (spawned), running (its `start` event arrived, or at
once for a plain command), finished (exit 0), failed (exited non-zero on its own), dead
(ended by this launcher because another rank failed or the job was stopped).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_train.atomic import atomic_write_json
from mf_train.jobdir import JobDir, new_status, read_events
from mf_train.launch import LaunchError, NodeLaunch, prepare_resume, rank_argv

POLL_SECONDS = 0.2
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when ending ranks
SCHEDULER_GRACE = 30.0  # the scheduler exits once every rank unregistered; it may take a while
TAIL_LINES = 12
REFRESH_SECONDS = 2.0
# MindSpore's C++ log lines (glog): [INFO]/[WARNING]/[DEBUG] are noise in a failure's tail.
_GLOG_NOISE = re.compile(r"^\[(INFO|WARNING|DEBUG)\] ")


@dataclass
class Outcome:
    state: str  # finished | failed | stopped | restart (node k: node 0 asked for a restart)
    exit_code: int
    message: str = ""
    rank: int | None = None  # the first failing rank
    tail: list[str] = field(default_factory=list)
    restartable: bool = False
    resume: bool = False


class StatusFile:
    """status.json of schema 1 (see the job directory's schema); one writer: the launcher."""

    def __init__(self, job: JobDir | None, total_steps: int | None) -> None:
        self.job = job
        self.data: dict[str, Any] = {**new_status(), "total_steps": total_steps}
        self.dirty = True

    def set(self, **fields: Any) -> None:
        for key, value in fields.items():
            if self.data.get(key) != value:
                self.data[key] = value
                self.dirty = True

    def rank(self, rank: int, **fields: Any) -> None:
        entry = self.data["ranks"].setdefault(str(rank), {
            "pid": None, "host": None, "state": "starting", "exit_code": None,
            "log": f"logs/worker_{rank}.log"})
        for key, value in fields.items():
            if entry.get(key) != value:
                entry[key] = value
                self.dirty = True

    def rank_state(self, rank: int) -> str | None:
        entry = self.data["ranks"].get(str(rank))
        return entry["state"] if entry else None

    def flush(self, force: bool = False) -> None:
        # Also every REFRESH_SECONDS: `updated` tells a reader the launcher is alive.
        stale = time.time() - self.data["updated"] > REFRESH_SECONDS
        if self.job is None or not (self.dirty or force or stale):
            return
        self.data["updated"] = time.time()
        atomic_write_json(self.job.status_json, self.data)
        self.dirty = False


class Supervisor:
    """Runs one node of a job to its end; `run()` returns the Outcome. `listeners` are called
    with each event of this node's first rank and the run's total steps."""

    def __init__(self, launch: NodeLaunch, job: JobDir | None, *, echo: bool = True,
                 listeners: Sequence[Callable[[dict[str, Any], int | None], Any]] = (),
                 ) -> None:
        from mf_parallel.processes import LocalProcesses

        self.launch = launch
        self.job = job
        self.echo = echo
        self.listeners = list(listeners)
        self.host = platform.node()
        self.processes = LocalProcesses()
        self.scheduler: Any = None
        self.status = StatusFile(job, launch.total_steps)
        self.server: Any = None
        self.client: Any = None
        self.signal_received: int | None = None
        self.event_offsets: dict[int, int] = {}
        self.errors: dict[int, str] = {}  # rank -> its error event's message, this attempt
        self.remote_finished: set[int] = set()
        self.remote_hosts: dict[int, str] = {}

    # ---- paths and output ---------------------------------------------------------------------

    def output_log(self, rank: int | None) -> Path:
        """Where a process's stdout and stderr go."""
        if self.job is not None:
            name = "scheduler.log" if rank is None else f"worker_{rank}.log"
            return self.job.logs / "msrun" / name
        root = Path(self.launch.log_dir or "output/log")
        return root / ("scheduler.log" if rank is None else f"rank_{rank}/mindformer.log")

    def say(self, line: str) -> None:
        stamped = f"[launcher {time.strftime('%H:%M:%S')}] {line}"
        if self.status.job is not None:  # this node's own job directory
            self.job.logs.mkdir(parents=True, exist_ok=True)
            with open(self.job.logs / "launcher.log", "a", encoding="utf-8") as log:
                log.write(stamped + "\n")
        if self.echo:
            print(stamped, file=sys.stderr, flush=True)

    # ---- the whole job ------------------------------------------------------------------------

    def run(self) -> Outcome:
        previous = self._install_signal_handlers()
        try:
            self._open_control()
            attempt, resume = 0, False
            while True:
                outcome = self._attempt(attempt, resume)
                if outcome.state == "restart":  # node k: node 0 decided
                    attempt, resume = attempt + 1, outcome.resume
                    continue
                if (outcome.state == "failed" and outcome.restartable
                        and attempt < self.launch.max_restarts and self.launch.node_rank == 0):
                    attempt += 1
                    resume = self._has_checkpoint()
                    note = (f"restart {attempt} of {self.launch.max_restarts} after: "
                            f"{outcome.message}")
                    self.say(note + (" (resuming from the newest checkpoint)" if resume
                                     else " (from the start: no checkpoint yet)"))
                    self.status.set(state="running", message=note, exit_code=None)
                    if self.server is not None:
                        self.server.broadcast({"type": "restart", "attempt": attempt,
                                               "resume": resume})
                    continue
                if self.server is not None:
                    if outcome.state == "finished":
                        self.server.broadcast({"type": "done"})
                    else:
                        self.server.broadcast({"type": "abort", "message": outcome.message})
                return self._finish(outcome)
        except BaseException as exc:
            self.processes.stop(STOP_GRACE)
            code = getattr(exc, "exit_code", 1)
            message = " ".join(str(exc).split()) or type(exc).__name__
            if self.server is not None:
                self.server.broadcast({"type": "abort", "message": message})
            self._finish(Outcome("failed", code if isinstance(code, int) else 1, message))
            raise
        finally:
            for closer in (self.server, self.client):
                if closer is not None:
                    closer.close()
            self._restore_signal_handlers(previous)

    def _finish(self, outcome: Outcome) -> Outcome:
        self.status.set(state=outcome.state, message=outcome.message,
                        exit_code=outcome.exit_code)
        self.status.flush(force=True)
        if outcome.state == "finished":
            self.say("job finished")
        else:
            self.say(f"job {outcome.state}: {outcome.message}")
        return outcome

    def _has_checkpoint(self) -> bool:
        from mf_train.checkpoint import get_last_checkpoint

        return self.job is not None and self.launch.run is not None and \
            get_last_checkpoint(self.job.checkpoints) is not None

    # ---- signals ------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal_received = signum

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    # ---- the control channel between nodes ----------------------------------------------------

    def _open_control(self) -> None:
        from mf_parallel.rendezvous import ControlServer

        launch = self.launch
        if launch.num_nodes == 1 or self.client is not None:
            return
        if launch.node_rank == 0:
            welcome = {"job": {"id": launch.job_id, "root": launch.job_root,
                               "total_steps": launch.total_steps}}
            self.server = ControlServer("0.0.0.0", launch.control_port, launch.num_nodes,
                                        welcome, check_hello=self._check_hello)
            self.say(f"waiting for {launch.num_nodes - 1} more node(s) on port "
                     f"{launch.control_port} (at most {launch.join_timeout} s)")
            return
        self.join_node0()

    def join_node0(self) -> dict[str, Any]:
        """Node k: connect to node 0's launcher (bounded by join_timeout); its welcome."""
        from mf_parallel.rendezvous import ControlClient

        launch = self.launch
        hello = {"node": launch.node_rank, "host": self.host, "pid": os.getpid(),
                 "ranks": launch.spec.ranks, "job_id": launch.job_id,
                 "fingerprint": launch.fingerprint}
        self.client = ControlClient.connect(launch.master_addr, launch.control_port, hello,
                                            timeout=launch.join_timeout)
        self.say(f"joined node 0 at {launch.master_addr}:{launch.control_port}")
        return self.client.welcome

    def _check_hello(self, hello: dict[str, Any]) -> str | None:
        if hello.get("job_id") != self.launch.job_id:
            return (f"node {hello.get('node')} ({hello.get('host')}) belongs to job "
                    f"{hello.get('job_id')!r}, this is job {self.launch.job_id!r}")
        if hello.get("fingerprint") != self.launch.fingerprint:
            return (f"node {hello.get('node')} ({hello.get('host')}) runs a different run "
                    f"config (model, data or schedule differ); every node needs the same "
                    f"config and --options")
        return None

    def use_job(self, job: JobDir, shared: bool) -> None:
        """Node k: its job directory; on a file system shared with node 0, only node 0
        writes status.json (this node's ranks reach it through the control channel)."""
        self.job = job
        self.status.job = None if shared else job

    # ---- one attempt --------------------------------------------------------------------------

    def _attempt(self, attempt: int, resume: bool) -> Outcome:
        self._start_processes(attempt, resume)
        return self._watch()

    def _start_processes(self, attempt: int, resume: bool) -> None:
        """This node's scheduler (node 0) and ranks, recorded in status.json as they start."""
        from mf_parallel.cluster import SCHEDULER_PROGRAM, rank_env, scheduler_env
        from mf_parallel.processes import ProcessSpec
        from mf_parallel.runtime import LOCAL_RANK_ENV

        launch = self.launch
        spec = launch.spec
        self.processes.forget()
        self.errors.clear()
        self.remote_finished.clear()
        if resume and launch.run is not None and self.status.job is not None:
            prepare_resume(self.job.root)  # job.yaml and plan.json, which the ranks resolve
        env = self._rank_environment()
        if launch.node_rank == 0 and launch.start_scheduler:
            self.scheduler = self.processes.start(ProcessSpec(
                "scheduler", [sys.executable, "-c", SCHEDULER_PROGRAM], self.output_log(None),
                {**env, **scheduler_env(spec)}))
        for local, rank in enumerate(spec.ranks):
            device = launch.device_ids[local] if launch.device_ids else None
            argv = rank_argv(launch) if launch.run is not None else list(launch.command)
            self._skip_old_events(rank)
            process = self.processes.start(ProcessSpec(
                f"rank {rank}", argv, self.output_log(rank),
                {**env, **rank_env(spec, local, device), LOCAL_RANK_ENV: str(local)},
                rank=rank))
            self.status.rank(rank, pid=process.pid, host=self.host, state="starting",
                             exit_code=None, log=self._rank_log_name(rank))
        # a plain command sends no start event: it runs once it is started
        self.status.set(state="running" if attempt or launch.run is None else "starting")
        if launch.run is None:
            for rank in spec.ranks:
                self.status.rank(rank, state="running")
        self._report_ranks()
        self.status.flush()
        first = spec.ranks[0]
        self.say(f"started ranks {first}..{spec.ranks[-1]} of {spec.worker_num}"
                 + (f" and the scheduler on port {spec.master_port}" if self.scheduler else "")
                 + f"; their output: {self.output_log(first).parent}")

    def _watch(self) -> Outcome:
        """Poll the ranks, their events and the other nodes until the job ends one way or
        another: finished, a rank failed, a node never joined, or a signal stopped it."""
        launch = self.launch
        started = time.time()
        finished_sent = False
        while True:
            if self.signal_received is not None:
                return self._stopped()
            ended = self.processes.poll()
            self._read_events()
            outcome = self._control_messages()
            if outcome is not None:
                return outcome
            failure = self._first_failure(ended)
            if failure is not None:
                return self._fail(failure)
            if self.server is not None:
                self.server.heartbeat()
                missing = self.server.missing
                if missing and time.time() - started > launch.join_timeout:
                    return self._fail(self._never_joined(missing))
            if self.client is not None:
                self.client.heartbeat()
            ranks_done = all(p.exit_code == 0 for p in self.processes.processes
                             if p.spec.rank is not None)
            if ranks_done and self.client is not None and not finished_sent:
                self.client.send({"type": "finished"})
                finished_sent = True
            if ranks_done and launch.node_rank == 0 and \
                    self.remote_finished >= set(range(1, launch.num_nodes)):
                self._wait_for_scheduler()
                self.status.set(step=self.status.data["step"])
                return Outcome("finished", 0)
            self._report_ranks()
            self.status.flush()
            time.sleep(POLL_SECONDS)

    def _rank_environment(self) -> dict[str, str]:
        """What every process of this node gets besides the cluster's own variables."""
        from mf_parallel.runtime import LOCAL_RANKS_ENV, apply_runtime_defaults

        env = {**os.environ, **self.launch.env, "PYTHONUNBUFFERED": "1",
               # this interpreter's environment first: the ranks run the same Python
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               LOCAL_RANKS_ENV: str(self.launch.local_worker_num)}
        if self.launch.run is not None:
            env["MF_SUPERVISED"] = "1"  # the ranks leave status.json to this launcher
        apply_runtime_defaults(env)  # mf's CPU settings, unless the environment has its own
        return env

    def _rank_log_name(self, rank: int) -> str:
        if self.job is not None:
            return f"logs/worker_{rank}.log"
        return str(self.output_log(rank))

    # ---- events of the local ranks ------------------------------------------------------------

    def _skip_old_events(self, rank: int) -> None:
        if self.job is None:
            return
        path = self.job.events_file(rank)
        self.event_offsets[rank] = path.stat().st_size if path.exists() else 0

    def _read_events(self) -> None:
        if self.job is None:
            return
        lead = self.launch.spec.ranks[0]
        for rank in self.launch.spec.ranks:
            batch = read_events(self.job.events_file(rank), self.event_offsets.get(rank, 0))
            self.event_offsets[rank] = batch.offset
            for event in batch.events:
                kind = event.get("kind")
                if kind == "start":
                    self.status.rank(rank, state="running")
                    self.status.set(state="running")
                elif kind == "error":
                    self.errors[rank] = str(event.get("message") or "")
                if rank == lead:
                    if kind in ("step", "start", "end") and isinstance(event.get("step"), int):
                        self.status.set(step=event["step"])
                    for listener in self.listeners:
                        listener(event, self.launch.total_steps)

    # ---- failures -----------------------------------------------------------------------------

    def _first_failure(self, ended: Sequence[Any]) -> Outcome | None:
        for process in ended:
            if process.spec.rank is not None:
                state = "finished" if process.exit_code == 0 else "failed"
                self.status.rank(process.spec.rank, state=state, exit_code=process.exit_code)
        failed = [p for p in ended if p.exit_code != 0]
        if not failed:
            return None  # (a scheduler exits 0 once every rank has unregistered)
        if self.server is not None and self.server.missing:
            # the local ranks gave up waiting for the cluster: the cause is the absent node
            return self._never_joined(self.server.missing)
        # Within one poll, a rank killed by a signal is the cause; the others reacted to it.
        failed.sort(key=lambda p: (p.exit_code >= 0, p.spec.rank is None, p.spec.rank or 0))
        process = failed[0]
        from mf_parallel.processes import describe_exit

        if process.spec.rank is None:
            return Outcome("failed", 1, f"the scheduler on {self.host} ended with "
                           f"{describe_exit(process.exit_code)}",
                           tail=self._tail(None), restartable=True)
        rank = process.spec.rank
        error = self.errors.get(rank) or self._late_error(rank)
        step = self._last_step(rank)
        where = f" at step {step}" if step is not None else ""
        message = f"rank {rank} ({self.host}) {describe_exit(process.exit_code)}{where}"
        if error:
            message += f": {error}"
        else:
            message += f"; see {self._rank_log_name(rank)}"
        code = process.exit_code if process.exit_code in (1, 2) else 1
        return Outcome("failed", code, message, rank=rank, tail=self._tail(rank),
                       restartable=code != 2)

    def _late_error(self, rank: int) -> str:
        """The rank's error event, if it arrived between the last read and its exit."""
        self._read_events()
        return self.errors.get(rank, "")

    def _last_step(self, rank: int) -> int | None:
        if self.job is None:
            return None
        last = None
        for event in read_events(self.job.events_file(rank)).events:
            if event.get("kind") == "step" and isinstance(event.get("step"), int):
                last = event["step"]
        return last

    def _tail(self, rank: int | None) -> list[str]:
        """The last lines of the process's output (MindSpore's info/warning lines left out);
        when that says little (a SIGKILL leaves no trace), the rank's own log too."""
        lines = _useful_tail(self.output_log(rank))
        if rank is not None and self.job is not None and len(lines) < 3:
            lines = _useful_tail(self.job.worker_log(rank), 5) + lines
        return lines

    def _fail(self, failure: Outcome) -> Outcome:
        """End every local process, record who was ended, tell the other nodes."""
        self.say(f"failure: {failure.message}; ending the other ranks")
        for line in failure.tail:
            self.say(f"  | {line}")
        stopped = self.processes.stop(STOP_GRACE)
        for process in stopped:
            if process.spec.rank is not None:
                self.status.rank(process.spec.rank, state="dead", exit_code=process.exit_code)
        self._report_ranks()
        self.status.set(state="failed", message=failure.message, exit_code=failure.exit_code)
        self.status.flush()
        if self.client is not None:
            self.client.send({"type": "failed", "rank": failure.rank,
                              "exit_code": failure.exit_code, "message": failure.message,
                              "restartable": failure.restartable, "tail": failure.tail})
            return self._await_decision(failure)
        return failure

    def _never_joined(self, missing: list[int]) -> Outcome:
        per_node = self.launch.local_worker_num
        names = ", ".join(f"node {n} (ranks {n * per_node}..{(n + 1) * per_node - 1})"
                          for n in missing)
        return Outcome("failed", 1, f"{names} never joined within {self.launch.join_timeout} s;"
                       f" start `mf launch ... --node-rank {missing[0]}` there (launch.json "
                       f"lists every node's command)", restartable=False)

    def _stopped(self) -> Outcome:
        signum = self.signal_received or signal.SIGTERM
        name = signal.Signals(signum).name
        self.say(f"{name} received: stopping the ranks")
        for process in self.processes.stop(STOP_GRACE):
            if process.spec.rank is not None:
                self.status.rank(process.spec.rank, state="dead", exit_code=process.exit_code)
        self._report_ranks()
        if self.client is not None:
            self.client.send({"type": "failed", "rank": None, "exit_code": 128 + signum,
                              "message": f"node {self.launch.node_rank} was stopped ({name})",
                              "restartable": False})
        return Outcome("stopped", 128 + signum, f"stopped by {name}")

    def _wait_for_scheduler(self) -> None:
        if self.scheduler is None:
            return
        deadline = time.time() + SCHEDULER_GRACE
        while self.scheduler.running and time.time() < deadline:
            self.processes.poll()
            time.sleep(POLL_SECONDS)
        if self.scheduler.running:
            self.processes.stop(STOP_GRACE, only=[self.scheduler])

    # ---- messages between nodes ---------------------------------------------------------------

    def _report_ranks(self) -> None:
        """Node k tells node 0 its ranks' states (node 0 writes them to status.json)."""
        if self.client is None or not self.status.dirty:
            return
        ranks = {str(r): self.status.data["ranks"].get(str(r)) for r in self.launch.spec.ranks}
        self.client.send({"type": "ranks", "ranks": ranks})
        if self.status.job is None:
            self.status.dirty = False

    def _control_messages(self) -> Outcome | None:
        if self.server is not None:
            for node, message in self.server.messages():
                outcome = self._from_node(node, message)
                if outcome is not None:
                    return outcome
        if self.client is not None:
            for message in self.client.messages():
                outcome = self._from_node0(message)
                if outcome is not None:
                    return outcome
        return None

    def _from_node(self, node: int, message: dict[str, Any]) -> Outcome | None:
        kind = message.get("type")
        if kind == "joined":
            self.remote_hosts[node] = str(message.get("host"))
            self.say(f"node {node} joined from {message.get('host')}")
        elif kind == "ranks":
            for rank, entry in (message.get("ranks") or {}).items():
                if isinstance(entry, dict):
                    self.status.rank(int(rank), **{k: entry.get(k) for k in
                                                   ("pid", "host", "state", "exit_code", "log")})
                    if entry.get("state") == "running":
                        self.status.set(state="running")
        elif kind == "finished":
            self.remote_finished.add(node)
        elif kind == "failed":
            return self._fail(Outcome("failed", int(message.get("exit_code") or 1),
                                      str(message.get("message")), rank=message.get("rank"),
                                      tail=[str(line) for line in message.get("tail") or []],
                                      restartable=bool(message.get("restartable"))))
        elif kind == "refused":
            return self._fail(Outcome("failed", 2, f"a node was refused: {message['message']}"))
        elif kind == "lost" and node not in self.remote_finished:
            host = self.remote_hosts.get(node, "?")
            return self._fail(Outcome("failed", 1, f"lost node {node} ({host}): "
                                      f"{message.get('why')}"))
        return None

    def _from_node0(self, message: dict[str, Any]) -> Outcome | None:
        kind = message.get("type")
        if kind == "abort":
            self._end_local("dead")
            return Outcome("failed", 1, str(message.get("message")))
        if kind == "restart":
            self._end_local("dead")
            self.say(f"node 0 restarts the job (attempt {message.get('attempt')})")
            return Outcome("restart", 1, resume=bool(message.get("resume")))
        if kind == "done":
            return Outcome("finished", 0)
        if kind == "lost":
            self._end_local("dead")
            return Outcome("failed", 1, f"lost node 0's launcher: {message.get('why')}")
        return None

    def _await_decision(self, failure: Outcome) -> Outcome:
        """Node k after its own failure: node 0 answers with restart or abort."""
        deadline = time.time() + SCHEDULER_GRACE
        while time.time() < deadline:
            for message in self.client.messages():
                kind = message.get("type")
                if kind == "restart":
                    return Outcome("restart", 1, resume=bool(message.get("resume")))
                if kind in ("abort", "lost", "done"):
                    return failure
            self.client.heartbeat()
            time.sleep(POLL_SECONDS)
        return failure

    def _end_local(self, state: str) -> None:
        for process in self.processes.stop(STOP_GRACE):
            if process.spec.rank is not None:
                self.status.rank(process.spec.rank, state=state, exit_code=process.exit_code)
        self._report_ranks()


def _useful_tail(path: Path, count: int = TAIL_LINES) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    useful = [line for line in lines if line.strip() and not _GLOG_NOISE.match(line)]
    return [f"{path.name}: {line}"[:300] for line in useful[-count:]]


# ---- `python -m mf_train.supervisor JOB_DIR`: the detached launcher ------------------------------

def main(argv: list[str] | None = None) -> int:
    from mf_train.launch import read_launch, record_launch

    parser = argparse.ArgumentParser(prog="mf_train.supervisor")
    parser.add_argument("job", help="the job directory; its launch.json holds the launch")
    args = parser.parse_args(argv)
    job = JobDir(Path(args.job))
    launch = read_launch(job)
    record_launch(job, launch)  # this process is the launcher now: its pid
    try:
        # (its stdout is logs/launcher.log already: say() writes there)
        outcome = Supervisor(launch, job, echo=False).run()
    except Exception as exc:  # noqa: BLE001 - the outcome is in status.json already
        print(f"mf launcher: error: {exc}", file=sys.stderr, flush=True)
        return getattr(exc, "exit_code", 1)
    return outcome.exit_code


def raise_for(outcome: Outcome) -> None:
    """The CLI's view of an outcome: nothing when finished, one-line error otherwise."""
    if outcome.state == "finished":
        return
    error = LaunchError(outcome.message)
    # 2: a rank's config error; 128 + N: stopped by signal N (130 for Ctrl+C); else 1
    stopped = outcome.state == "stopped"
    error.exit_code = outcome.exit_code if outcome.exit_code in (1, 2) or stopped else 1
    raise error


if __name__ == "__main__":
    sys.exit(main())
