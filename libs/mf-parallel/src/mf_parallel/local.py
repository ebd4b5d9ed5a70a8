"""Run a Python script on N ranks of this machine under msrun, and wait for it.

    run_local(script, ["out/"], workers=4, log_dir="logs/")   # raises with the logs' tails

For tests and benchmarks that need real ranks (a training job goes through `mf train` /
`mf launch`, which supervise their ranks). msrun starts each rank as `python script`, so this
interpreter's directory goes first on PATH: the ranks run in the same environment as the caller,
with mf's runtime defaults (`mf_parallel.runtime`) as mf's launcher sets them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mf_parallel.errors import ParallelError
from mf_parallel.launcher import LaunchSpec
from mf_parallel.runtime import LOCAL_RANKS_ENV, apply_runtime_defaults


def free_port() -> int:
    """A TCP port nobody listens on now (msrun's scheduler binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def msrun_executable() -> str:
    """The msrun beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("msrun")
    if beside.is_file():
        return str(beside)
    found = shutil.which("msrun")
    if found is None:
        raise ParallelError("msrun was not found: install mindspore (mf-parallel[mindspore])")
    return found


def log_tails(log_dir: str | os.PathLike, chars: int = 2000) -> str:
    """The end of every rank's msrun log, for an error message."""
    return "".join(f"\n--- {p.name} ---\n{p.read_text(errors='replace')[-chars:]}"
                   for p in sorted(Path(log_dir).glob("*.log")))


def run_local(script: str | os.PathLike, args: Sequence[str], workers: int,
              log_dir: str | os.PathLike, *, timeout: float = 600,
              cluster_time_out: int = 120, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess:
    """Run `script args` on `workers` local ranks; raise ParallelError (with logs) on failure."""
    spec = LaunchSpec.single_node(workers, master_port=free_port(), log_dir=str(log_dir),
                                  cluster_time_out=cluster_time_out)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full_env = {**os.environ, **(env or {}), "PATH": path, LOCAL_RANKS_ENV: str(workers)}
    apply_runtime_defaults(full_env)  # the settings mf's own launcher gives every rank
    try:
        result = subprocess.run(spec.argv(script, list(args), msrun=msrun_executable()),
                                env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ParallelError(f"{Path(script).name} on {workers} ranks did not finish in "
                            f"{timeout:.0f} s{log_tails(log_dir)}") from exc
    if result.returncode != 0:
        raise ParallelError(f"{Path(script).name} on {workers} ranks exited with "
                            f"{result.returncode}: {result.stderr[-1500:]}{log_tails(log_dir)}")
    return result
