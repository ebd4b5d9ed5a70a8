"""Is a process of a job still there? Answered only for this host, and honestly.

`os.kill(pid, 0)` says whether a pid exists; on Linux /proc also tells a zombie (exited, not yet
reaped: it runs nothing) and when the process started, so a pid the kernel has since handed to
another process (it started after the job last wrote its status) does not pass for the job's.
"""

from __future__ import annotations

import os
import platform
from functools import cache

THIS_HOST = platform.node()
# /proc/stat's boot time is whole seconds and start times are clock ticks: allow for both.
PID_REUSE_SLACK = 5.0


def pid_alive(pid: int | None, not_after: float | None = None) -> bool | None:
    """True/False for a pid of this host; None when unknown (no pid)."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state == "Z":
        return False
    # a process that started after the job's last word cannot be the one that wrote it
    reused = not_after is not None and started is not None and started > not_after + PID_REUSE_SLACK
    return not reused


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = text[text.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    state = fields[0]
    boot = _boot_time()
    try:
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK") if boot else None
    except (ValueError, OSError):
        started = None
    return state, started


@cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def job_processes(root: str | os.PathLike) -> list[int]:
    """Processes of this host whose arguments name the job directory after `--job`, as
    mf-train's rank entry (worker.py) is started. msrun puts each rank in a process group of
    its own, so signalling the launcher's group does not reach them; this finds them (also for
    job directories older than the per-rank pids of status.json)."""
    target = os.path.abspath(root)
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"--job" and os.path.abspath(os.fsdecode(argv[i + 1])) == target:
                found.append(int(entry))
                break
    return sorted(found)
