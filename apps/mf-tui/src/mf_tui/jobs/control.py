"""Acting on jobs: find them under a root, stop one, find its last checkpoint.

Only a job directory mf made is touched (`is_job_dir`: the `.mf-job` marker, or job.yaml and
status.json for jobs older than the marker). Stopping signals the job's launcher: its whole
process group when the launcher leads one (a job started detached, by `mf tui` or from a
shell's job control), else the launcher alone; and each rank by its pid (status.json's, or a
process started with `--job <this job>`), since msrun gives every rank a process group of its
own. A stop never reaches a process that is not the job's.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mf_tui.exit_codes import EXIT_RUNTIME, EXIT_USAGE
from mf_tui.jobs.procs import THIS_HOST, job_processes, pid_alive
from mf_tui.jobs.view import JobSnapshot, JobView, is_job_dir

SKIP_DIRS = {"checkpoints", "events", "logs", "strategy", "__pycache__"}
# Seconds the launcher gets to end its ranks (mf's supervisor: SIGTERM, SIGKILL after 5 s)
# before each rank is signalled by itself.
LAUNCHER_GRACE = 8.0


class JobError(Exception):
    """A job request that cannot be done; one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def require_job(path: str | Path) -> Path:
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise JobError(f"{path}: no such job directory")
    if not root.is_dir() or not is_job_dir(root):
        raise JobError(f"{path}: not a job directory mf made (it has neither the .mf-job "
                       "marker nor job.yaml and status.json)")
    return root


def find_jobs(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Job directories at or under `root` (not inside another job), newest first."""
    root = Path(root).expanduser().absolute()
    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        if is_job_dir(path):
            found.append(path)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in path.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if not child.name.startswith(".") and child.name not in SKIP_DIRS:
                walk(child, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return sorted(found, key=_started, reverse=True)


def _started(path: Path) -> float:
    for name in ("launch.json", "job.yaml"):
        try:
            return (path / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


@dataclass
class StopResult:
    job: Path
    signalled: list[int]
    forced: bool
    state: str
    message: str


def stop_job(path: str | Path, *, timeout: float = 15.0,
             sleep: Callable[[float], None] = time.sleep) -> StopResult:
    """SIGTERM the job's launcher (group), SIGKILL what is left after `timeout` seconds, and
    record `stopped` in status.json if the launcher could not."""
    root = require_job(path)
    snapshot = JobView(root).poll()
    if snapshot.ended:
        return StopResult(root, [], False, snapshot.state,
                          f"{root.name} has already ended ({snapshot.state})")
    launcher, host = snapshot.launcher_pid, snapshot.launcher_host
    if host and host != THIS_HOST:
        raise JobError(f"{root.name} runs on host {host}; stop it there (this is {THIS_HOST})",
                       EXIT_RUNTIME)
    # Older status.json files name rank 0's process as "pid"; the process that made the job
    # directory (launch.json) is the launcher then.
    leaders = [p for p in dict.fromkeys((launcher, snapshot.launch_pid)) if p]
    pids = _job_pids(snapshot, leaders, root)
    if not pids:
        raise JobError(f"{root.name}: no process of the job is alive on this host "
                       "(nothing to stop)", EXIT_RUNTIME)
    # The launcher first: mf's supervisor ends its ranks on SIGTERM and records `stopped`.
    deadline = time.monotonic() + timeout
    signalled = _signal([p for p in pids if p in leaders], leaders, signal.SIGTERM)
    if signalled:
        _wait_gone(pids, min(deadline, time.monotonic() + LAUNCHER_GRACE), sleep)
    rest = [p for p in pids if pid_alive(p) and p not in signalled]
    signalled += _signal(rest, [], signal.SIGTERM)  # what no launcher ended: each by itself
    _wait_gone(pids, deadline, sleep)
    forced = any(pid_alive(p) for p in pids)
    if forced:
        _signal([p for p in pids if pid_alive(p)], leaders, signal.SIGKILL)
    _mark_stopped(root)
    final = JobView(root).poll()
    return StopResult(root, signalled, forced, final.state,
                      f"stopped {root.name} (signalled pid {', '.join(map(str, signalled))}"
                      + ("; killed after the timeout" if forced else "") + ")")


def _wait_gone(pids: list[int], deadline: float, sleep: Callable[[float], None]) -> None:
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        sleep(0.2)


def _job_pids(snapshot: JobSnapshot, leaders: list[int], root: Path) -> list[int]:
    """The launcher, the ranks status.json names, and the processes started for this job."""
    pids = [p for p in leaders if pid_alive(p, snapshot.updated)]
    ranks = [r.pid for r in snapshot.ranks if r.pid and r.host in (None, THIS_HOST)]
    for pid in [*ranks, *job_processes(root)]:
        if pid not in pids and pid_alive(pid):
            pids.append(pid)
    return pids


def _signal(pids: list[int], leaders: list[int], sig: int) -> list[int]:
    """Each launcher's process group if it leads one of its own; every other pid alone."""
    done = []
    for leader in leaders:
        if leader not in pids:
            continue
        try:
            group = os.getpgid(leader)
        except ProcessLookupError:
            continue
        if group == leader and group != os.getpgrp():
            try:
                os.killpg(group, sig)
                done.append(leader)
            except ProcessLookupError:
                pass
    for pid in pids:
        if pid in done:
            continue
        try:
            os.kill(pid, sig)
            done.append(pid)
        except ProcessLookupError:
            pass
    return done


def _mark_stopped(root: Path) -> None:
    """The launcher writes status.json; when it died without saying so, say `stopped`."""
    from mf_train.atomic import atomic_write_json

    snapshot = JobView(root).poll()
    try:
        status = json.loads((root / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = None
    if not isinstance(status, dict):
        status = {}
    if status.get("state") in ("finished", "failed", "stopped"):
        return
    status = {**status, "state": "stopped", "updated": time.time(),
              "message": "stopped by mf jobs stop"}
    ranks = status.get("ranks")
    if isinstance(ranks, dict):
        for rank in snapshot.ranks:
            entry = ranks.get(str(rank.rank))
            if isinstance(entry, dict) and entry.get("state") in ("starting", "running"):
                entry["state"] = "dead" if rank.state == "dead" else "stopped"
    atomic_write_json(root / "status.json", status)


def last_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint-<step>/ folder of a job."""
    best: tuple[int, Path] | None = None
    try:
        folders = list((root / "checkpoints").iterdir())
    except OSError:
        return None
    for folder in folders:
        step = folder.name.removeprefix("checkpoint-")
        if folder.is_dir() and step.isdigit() and (folder / "trainer_state.json").is_file():
            if best is None or int(step) > best[0]:
                best = (int(step), folder)
    return best[1] if best else None
