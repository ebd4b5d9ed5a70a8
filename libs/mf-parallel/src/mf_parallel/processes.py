"""The processes of one node of a job: started detached, watched, stopped together.

Each process runs in its own session (`start_new_session`), so it survives the terminal that
started it, and killing its process group reaches anything it spawned. Its output goes to a
file. `poll()` reports the processes that ended since the last call, in the order this node
saw them end; `stop()` ends the rest (SIGTERM, then SIGKILL after a grace period), which a
rank stuck in a collective needs: a collective waits minutes for a peer that died.

Exit codes are Popen's: 0, a positive code from the program, or -N for death by signal N
(-9 is SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProcessSpec:
    name: str  # "rank 3", "scheduler"
    argv: Sequence[str]
    log: Path  # stdout and stderr, appended
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment
    rank: int | None = None  # global rank, None for the scheduler
    cwd: Path | None = None


@dataclass
class Process:
    spec: ProcessSpec
    popen: subprocess.Popen
    started: float
    exit_code: int | None = None
    ended: float | None = None
    stopped: bool = False  # ended by stop(), not on its own

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.exit_code is None


def describe_exit(code: int) -> str:
    """`exit code 1`, `killed by SIGKILL (exit code -9)`."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit code {code})"
    return f"exit code {code}"


class LocalProcesses:
    """Start, watch and stop a node's processes."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    def start(self, spec: ProcessSpec) -> Process:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env}
        with open(spec.log, "ab") as log:
            popen = subprocess.Popen(  # noqa: S603 - an argument list, never a shell string
                list(spec.argv), env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(spec, popen, time.time())
        self.processes.append(process)
        return process

    def poll(self) -> list[Process]:
        """The processes that ended since the last call."""
        ended = []
        for process in self.processes:
            if process.exit_code is None:
                code = process.popen.poll()
                if code is not None:
                    process.exit_code, process.ended = code, time.time()
                    ended.append(process)
        return ended

    def running(self) -> list[Process]:
        return [p for p in self.processes if p.exit_code is None]

    def stop(self, grace: float = 5.0, only: Sequence[Process] | None = None) -> list[Process]:
        """End the running processes (or `only` these); returns the ones this call ended."""
        targets = [p for p in (self.processes if only is None else only) if p.running]
        for process in targets:
            process.stopped = True
            _signal_group(process, signal.SIGTERM)
        deadline = time.time() + grace
        while time.time() < deadline and any(p.popen.poll() is None for p in targets):
            time.sleep(0.05)
        for process in targets:
            if process.popen.poll() is None:
                _signal_group(process, signal.SIGKILL)
        for process in targets:
            process.popen.wait()
        self.poll()
        return targets

    def forget(self) -> None:
        """Drop ended processes (before a restart starts new ones)."""
        self.processes = [p for p in self.processes if p.running]


def _signal_group(process: Process, sig: signal.Signals) -> None:
    # The process leads its own session and group (start_new_session): pgid == pid.
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - not our group after all: the process only
        try:
            process.popen.send_signal(sig)
        except ProcessLookupError:
            pass
