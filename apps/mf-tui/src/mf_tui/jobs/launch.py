"""Starting jobs detached from the UI: their own session, their output in the job directory.

`start_detached(argv, output_dir)` runs `mf train CONFIG --options ...` (or a restart's
`mf train <job>/job.yaml --resume`) with `start_new_session=True`, so closing the UI or its
terminal leaves the job running, and its process group is the job's (what `mf jobs stop`
signals). The job directory does not exist yet when it starts (mf train makes it, in one
rename, before any rank starts), so the console output goes to a hidden file beside it and is
moved into `<job>/logs/console.log` once the directory is there; the open file moves along.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mf_tui.exit_codes import EXIT_RUNTIME, EXIT_USAGE
from mf_tui.jobs.control import JobError

CONSOLE_LOG = "console.log"


def mf_argv() -> list[str]:
    """How to run `mf` from here: the script beside this Python, else `python -m`."""
    script = Path(sys.executable).with_name("mf")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "mf_tui.cli"]


def shown(argv: list[str]) -> str:
    """The command as a person would type it here: `mf ...` instead of the script's full path,
    and paths inside the current folder relative to it."""
    head = mf_argv()
    if argv[:len(head)] == head:
        argv = ["mf", *argv[len(head):]]
    here = Path.cwd()
    return shlex.join(_relative(arg, here) for arg in argv)


def _relative(arg: str, here: Path) -> str:
    if not os.path.isabs(arg):
        return arg
    try:
        return str(Path(arg).relative_to(here))
    except ValueError:
        return arg


def train_argv(config: str | Path, options: list[str], mode: str = "train") -> list[str]:
    argv = [*mf_argv(), mode, str(config)]
    if options:
        argv += ["--options", *options]
    return argv


def node_argv(config: str | Path, options: list[str], *, workers: int, nodes: int,
              node_rank: int, master_addr: str, master_port: int, job_id: str,
              mode: str = "train") -> list[str]:
    """`mf launch` for one node of a multi-node job; `workers` is the whole job's ranks (as
    msrun's worker_num), `job_id` the id every node of the job shares."""
    argv = [*mf_argv(), "launch", str(config), "--workers", str(workers), "--nodes", str(nodes),
            "--node-rank", str(node_rank), "--master-addr", master_addr,
            "--master-port", str(master_port), "--job-id", job_id]
    if mode != "train":
        argv += ["--mode", mode]
    if options:
        argv += ["--options", *options]
    return argv


@dataclass
class Started:
    """A job process started detached; `job` once its directory is there."""

    process: subprocess.Popen
    argv: list[str]
    output_dir: Path
    console: Path
    started: float = field(default_factory=time.time)
    job: Path | None = None

    def poll(self) -> Path | None:
        """The job directory once the started process has made it (and moved the console
        output into it); raises JobError with the process's last words if it exited first."""
        if self.job is not None:
            return self.job
        if _made_by(self.output_dir, self.process.pid):
            self.job = self.output_dir
            target = self.job / "logs" / CONSOLE_LOG
            if self.console != target and not target.exists():
                (self.job / "logs").mkdir(exist_ok=True)
                os.replace(self.console, target)
                self.console = target
            return self.job
        code = self.process.poll()
        if code is not None:
            words = last_words(self.console)
            if self.console.parent != self.output_dir / "logs":
                self.console.unlink(missing_ok=True)  # ours, and its words are in the error
            raise JobError(f"{shown(self.argv)} exited with code {code} before it created "
                           f"its job directory: {words}", EXIT_USAGE if code == 2 else EXIT_RUNTIME)
        return None

    def wait_for_job(self, timeout: float = 120.0, interval: float = 0.2) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.poll()
            if job is not None:
                return job
            time.sleep(interval)
        raise JobError(f"no job directory at {self.output_dir} after {timeout:.0f} s; "
                       f"see {self.console}", EXIT_RUNTIME)


def _made_by(output_dir: Path, pid: int) -> bool:
    """The directory is there and its launch.json names this process (not an older job that
    the new one is about to replace)."""
    try:
        launch = json.loads((output_dir / "launch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(launch, dict) and launch.get("pid") == pid


def launch_cwd(job: str | Path) -> str | None:
    """The folder a job was started from (launch.json's cwd), if it still exists: a restart
    runs there, so relative paths in its job.yaml mean what they meant."""
    try:
        cwd = json.loads((Path(job) / "launch.json").read_text(encoding="utf-8")).get("cwd")
    except (OSError, ValueError, AttributeError):
        return None
    return cwd if isinstance(cwd, str) and Path(cwd).is_dir() else None


def start_detached(argv: list[str], output_dir: str | Path, cwd: str | Path | None = None,
                   ) -> Started:
    """Start `argv` in a session of its own; its output to a file (see the module docstring)."""
    output_dir = Path(output_dir).expanduser().absolute()
    logs = output_dir / "logs"
    if logs.is_dir() and (output_dir / "job.yaml").is_file() and "--resume" in argv:
        console = logs / CONSOLE_LOG  # a restart: the job directory is already there
    else:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        console = output_dir.parent / f".{output_dir.name}.{os.getpid()}-{time.time_ns()}.log"
    with open(console, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell string
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    started = Started(process, list(argv), output_dir, console)
    if console.parent == logs:
        started.job = output_dir
    return started


def last_words(path: Path, lines: int = 3) -> str:
    """The last lines a process printed, on one line (its error, usually)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(tail) or "(no output)"
