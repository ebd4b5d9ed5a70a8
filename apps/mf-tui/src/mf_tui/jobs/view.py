"""`JobView`: what a job is doing, read from its job directory alone.

Every `poll()` reads what was appended to the event logs since the last one (complete lines
only), re-reads status.json when it changed, and returns a `JobSnapshot`: the job's state, each
rank's state, step, age of its last event and throughput, the metric series for the charts,
the evaluations and checkpoints. It reads schema-1 directories and older ones (no schema key,
one pid in status.json, eval metrics as message text), and survives half-written, garbled or
missing files: what cannot be read is counted and said in `warnings`, never raised.

States a rank can be in: starting (no step since its start), running, stalled (no event for
`stall_factor` x its median step interval, and at least `stall_min_seconds`), finished, failed
(with an exit code when the launcher recorded one), dead (its pid is gone on this host while
nothing says it ended), stopped (the job was stopped before the rank ended).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_tui.jobs.procs import THIS_HOST, pid_alive
from mf_tui.jobs.records import parse_line
from mf_tui.jobs.tail import LineTailer

MARKER = ".mf-job"
ENDED = ("finished", "failed", "stopped", "dead")
RANK_ENDED = ("finished", "failed", "dead", "stopped")
SERIES = ("loss", "lr", "grad_norm")  # rank 0's; "tokens_per_s" is the job's (summed)
# A rank with no event for 10 median step intervals is called stalled, but never before 30 s:
# an evaluation or a checkpoint save between two steps takes seconds on a CPU.
STALL_FACTOR = 10.0
STALL_MIN_SECONDS = 30.0
SERIES_POINTS = 2000  # per series, the newest kept for the charts
INTERVALS_KEPT = 50  # step intervals per rank for its median


def is_job_dir(path: str | Path) -> bool:
    """A directory mf made: the marker, or (before the marker existed) job.yaml + status.json."""
    path = Path(path)
    return (path / MARKER).is_file() or (
        (path / "job.yaml").is_file() and (path / "status.json").is_file())


@dataclass(frozen=True)
class RankView:
    rank: int
    state: str
    step: int | None = None
    age: float | None = None  # seconds since this rank's last event
    tokens_per_s: float | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    mem_gib: float | None = None
    pid: int | None = None
    host: str | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def state_text(self) -> str:
        if self.state == "failed" and self.exit_code is not None:
            return f"failed ({self.exit_code})"
        return self.state


@dataclass(frozen=True)
class EvalView:
    step: int | None
    rank: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class JobSnapshot:
    root: Path
    state: str  # starting|running|finished|failed|stopped|dead, or "missing"
    message: str = ""
    exit_code: int | None = None
    step: int | None = None
    total_steps: int | None = None
    started: float | None = None
    updated: float | None = None
    schema: int | None = None  # 1, or None for an older job directory
    ranks: tuple[RankView, ...] = ()
    series: dict[str, tuple[tuple[int, float], ...]] = field(
        default_factory=lambda: {name: () for name in (*SERIES, "tokens_per_s")})
    evals: tuple[EvalView, ...] = ()
    checkpoints: tuple[tuple[int | None, str], ...] = ()
    launcher_pid: int | None = None
    launcher_host: str | None = None
    launch_pid: int | None = None  # launch.json's: the process that made the job directory
    bad_lines: int = 0
    warnings: tuple[str, ...] = ()
    version: int = 0  # grows whenever something new was read

    @property
    def ended(self) -> bool:
        return self.state in ENDED or self.state == "missing"

    @property
    def last_eval(self) -> EvalView | None:
        return self.evals[-1] if self.evals else None

    @property
    def last_checkpoint(self) -> str | None:
        return self.checkpoints[-1][1] if self.checkpoints else None


@dataclass
class _Rank:
    """What has been read of one rank's event log."""

    tailer: LineTailer
    last_kind: str | None = None
    last_ts: float | None = None
    last_step_ts: float | None = None
    started_ts: float | None = None
    steps_since_start: int = 0
    step: int | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    message: str = ""
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=INTERVALS_KEPT))


class JobView:
    """Incremental reader of one job directory (not thread-safe: poll it from one thread)."""

    def __init__(self, root: str | Path, *, clock: Callable[[], float] = time.time,
                 host: str = THIS_HOST, stall_factor: float = STALL_FACTOR,
                 stall_min_seconds: float = STALL_MIN_SECONDS):
        self.root = Path(root).expanduser().absolute()
        self.clock = clock
        self.host = host
        self.stall_factor = stall_factor
        self.stall_min_seconds = stall_min_seconds
        self._ranks: dict[int, _Rank] = {}
        self._status: dict[str, Any] = {}
        self._status_key: tuple[int, int, int] | None = None
        self._status_bad = False
        self._launch: dict[str, Any] | None = None
        self._world: int | None = None
        self._series: dict[str, deque[tuple[int, float]]] = {
            name: deque(maxlen=SERIES_POINTS) for name in SERIES}
        self._throughput: dict[int, float] = {}  # step -> tokens/s summed over ranks
        self._evals: list[EvalView] = []
        self._checkpoints: list[tuple[int | None, str]] = []
        self._bad_lines = 0
        self._schema: int | None = None
        self._version = 0
        self._last_scan = -1.0

    # ---- reading -------------------------------------------------------------------------

    def poll(self) -> JobSnapshot:
        if not self.root.is_dir():
            return JobSnapshot(self.root, "missing", message=f"{self.root} does not exist")
        changed = self._read_status()
        self._read_once_files()
        now = self.clock()
        if now - self._last_scan >= 1.0 or not self._ranks:  # new event files are rare
            self._scan_event_files()
            self._last_scan = now
        for rank, track in self._ranks.items():
            lines = track.tailer.read()
            if lines:
                changed = True
                for raw in lines:
                    event = parse_line(raw)
                    if event is None:
                        if raw.strip():
                            self._bad_lines += 1
                        continue
                    self._apply(rank, track, event)
        if changed:
            self._version += 1
        return self._snapshot(now)

    def _read_status(self) -> bool:
        path = self.root / "status.json"
        try:
            stat = path.stat()
        except OSError:
            return False
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key == self._status_key:
            return False
        self._status_key = key
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            self._status_bad = True  # keep the last good one
            return True
        self._status_bad = False
        self._status = data
        return True

    def _read_once_files(self) -> None:
        if self._launch is None:
            data = _read_json(self.root / "launch.json")
            if data is not None:
                self._launch = data
        if self._world is None:
            self._world = _world_size(self.root)

    def _scan_event_files(self) -> None:
        events = self.root / "events"
        ranks = set(range(self._world or 0)) | set(_status_ranks(self._status))
        try:
            for path in events.glob("rank_*.jsonl"):
                suffix = path.stem.removeprefix("rank_")
                if suffix.isdigit():
                    ranks.add(int(suffix))
        except OSError:
            pass
        for rank in sorted(ranks - set(self._ranks)):
            self._ranks[rank] = _Rank(LineTailer(events / f"rank_{rank}.jsonl"))
        self._ranks = dict(sorted(self._ranks.items()))

    def _apply(self, rank: int, track: _Rank, event: dict[str, Any]) -> None:
        kind = event["kind"]
        ts = event["ts"]
        if event["schema"] is not None:
            self._schema = event["schema"]
        track.last_kind = kind
        if ts is not None:
            track.last_ts = ts
        if event["step"] is not None:
            track.step = event["step"]
        if event["message"]:
            track.message = event["message"]
        if kind == "start":
            track.started_ts = ts
            track.steps_since_start = 0
            track.last_step_ts = None
            if event["pid"] is not None:
                track.pid, track.host = event["pid"], event["host"]
        elif kind == "step":
            track.steps_since_start += 1
            if ts is not None and track.last_step_ts is not None and ts > track.last_step_ts:
                track.intervals.append(ts - track.last_step_ts)
            track.last_step_ts = ts
            for name in ("loss", "lr", "grad_norm", "tokens_per_s", "mem_gib"):
                track.values[name] = event[name]
            self._add_points(rank, event)
        elif kind == "eval":
            self._evals.append(EvalView(event["step"], rank, dict(event["metrics"] or {})))
        elif kind == "checkpoint" and event["path"]:
            self._checkpoints.append((event["step"], event["path"]))

    def _add_points(self, rank: int, event: dict[str, Any]) -> None:
        step = event["step"]
        if step is None:
            return
        if rank == min(self._ranks):  # the charts follow the first rank; ranks agree on these
            for name in ("loss", "lr", "grad_norm"):
                if event[name] is not None:
                    self._series[name].append((step, event[name]))
        if event["tokens_per_s"] is not None:  # the job's throughput: every rank's, summed
            self._throughput[step] = self._throughput.get(step, 0.0) + event["tokens_per_s"]
            if len(self._throughput) > 2 * SERIES_POINTS:
                for old in sorted(self._throughput)[:SERIES_POINTS]:
                    del self._throughput[old]

    def _throughput_series(self) -> tuple[tuple[int, float], ...]:
        """Summed tokens/s per step, up to the step every rank has reached (a sum still
        missing a rank would show as a dip)."""
        reached = [track.step for track in self._ranks.values() if track.values]
        if not reached:
            return ()
        upto = min(s for s in reached if s is not None)
        steps = sorted(s for s in self._throughput if s <= upto)[-SERIES_POINTS:]
        return tuple((s, self._throughput[s]) for s in steps)

    # ---- deriving -----------------------------------------------------------------------

    def _snapshot(self, now: float) -> JobSnapshot:
        status = self._status
        schema = _int(status.get("schema")) or self._schema
        launch = self._launch or {}
        updated = _float(status.get("updated"))
        status_ranks = _status_ranks(status)
        job_state = status.get("state") if isinstance(status.get("state"), str) else None
        warnings = []
        if self._status_bad:
            warnings.append("status.json is not valid JSON (half-written or edited); "
                            "showing the last good reading")
        if not status and not self._status_bad:
            warnings.append("no status.json yet")
        if self._bad_lines:
            warnings.append(f"{self._bad_lines} garbled event line(s) skipped")

        launcher_pid, launcher_host = self._launcher(status, launch)
        launcher_alive = (pid_alive(launcher_pid, updated) if launcher_host == self.host
                          else None)
        if job_state in ("starting", "running") or job_state is None:
            job_gone = launcher_alive is False
        else:
            job_gone = True  # ended: nothing of it should still run

        ranks = []
        for rank, track in self._ranks.items():
            ranks.append(self._rank_view(rank, track, status_ranks.get(rank, {}), status,
                                         job_state, job_gone, now))
        state, message = self._job_state(job_state, status, ranks, launcher_alive,
                                         launcher_pid, warnings)
        steps = [r.step for r in ranks if r.step is not None]
        exit_code = _int(status.get("exit_code"))
        return JobSnapshot(
            root=self.root, state=state, message=message, exit_code=exit_code,
            step=max(steps) if steps else _int(status.get("step")),
            total_steps=_int(status.get("total_steps")),
            started=_float(launch.get("start_time")), updated=updated, schema=schema,
            ranks=tuple(ranks),
            series={**{name: tuple(points) for name, points in self._series.items()},
                    "tokens_per_s": self._throughput_series()},
            evals=tuple(self._evals), checkpoints=tuple(self._checkpoints),
            launcher_pid=launcher_pid, launcher_host=launcher_host,
            launch_pid=_int(launch.get("pid")), bad_lines=self._bad_lines,
            warnings=tuple(warnings), version=self._version)

    def _launcher(self, status: dict[str, Any], launch: dict[str, Any],
                  ) -> tuple[int | None, str | None]:
        launcher = status.get("launcher")
        if isinstance(launcher, dict) and _int(launcher.get("pid")):
            return _int(launcher.get("pid")), _str(launcher.get("host")) or self.host
        # Older status.json: "pid" is the launcher's while starting, then rank 0's process.
        pid = _int(status.get("pid")) or _int(launch.get("pid"))
        return pid, _str(launch.get("host")) or self.host

    def _rank_view(self, rank: int, track: _Rank, entry: dict[str, Any],
                   status: dict[str, Any], job_state: str | None, job_gone: bool,
                   now: float) -> RankView:
        values = track.values
        pid = _int(entry.get("pid")) or track.pid
        host = _str(entry.get("host")) or track.host
        exit_code = _int(entry.get("exit_code"))
        written = entry.get("state") if isinstance(entry.get("state"), str) else None
        message = track.message if track.last_kind in ("error", "end") else ""
        if written in RANK_ENDED:
            state = written
        elif track.last_kind == "end":
            state = "finished"
        elif track.last_kind == "error":
            state = "failed"
            if exit_code is None and rank == 0:
                exit_code = _int(status.get("exit_code"))  # older jobs: rank 0's, job-wide
        else:
            state = self._live_state(track, pid, host, job_state, job_gone, now)
            if state == "dead" and pid:
                message = f"pid {pid} is gone and the rank never reported an end"
        age = now - track.last_ts if track.last_ts is not None else None
        return RankView(rank=rank, state=state, step=track.step, age=age,
                        tokens_per_s=values.get("tokens_per_s"), loss=values.get("loss"),
                        lr=values.get("lr"), grad_norm=values.get("grad_norm"),
                        mem_gib=values.get("mem_gib"), pid=pid, host=host,
                        exit_code=exit_code, message=message)

    def _live_state(self, track: _Rank, pid: int | None, host: str | None,
                    job_state: str | None, job_gone: bool, now: float) -> str:
        """A rank that has not said it ended: alive, stalled, or gone."""
        if pid is not None and (host or self.host) == self.host:
            if pid_alive(pid, track.last_ts or track.started_ts) is False:
                return "dead"
        elif job_gone:  # no pid of its own to ask: it went with the job
            return "stopped" if job_state == "stopped" else "dead"
        if job_state == "stopped":
            return "stopped"
        if track.last_kind is None or track.steps_since_start == 0:
            return "starting"
        if track.intervals and track.last_ts is not None:
            limit = max(self.stall_factor * statistics.median(track.intervals),
                        self.stall_min_seconds)
            if now - track.last_ts > limit:
                return "stalled"
        return "running"

    def _job_state(self, job_state: str | None, status: dict[str, Any],
                   ranks: list[RankView], launcher_alive: bool | None,
                   launcher_pid: int | None, warnings: list[str]) -> tuple[str, str]:
        message = _str(status.get("message")) or ""
        if job_state not in ("starting", "running", "finished", "failed", "stopped"):
            if job_state is not None:
                warnings.append(f"status.json state {job_state!r} is not one mf writes")
            job_state = "running" if any(r.step is not None for r in ranks) else "starting"
        if job_state in ("starting", "running"):
            alive = [r for r in ranks if r.state in ("starting", "running", "stalled")
                     and r.pid is not None and (r.host or self.host) == self.host]
            if launcher_alive is False and not alive:
                return "dead", (f"the launcher (pid {launcher_pid}) is gone and never "
                                "recorded an end")
            if launcher_alive is False:
                warnings.append(f"the launcher (pid {launcher_pid}) is gone; ranks "
                                f"{', '.join(str(r.rank) for r in alive)} still run")
            if ranks and all(r.state in RANK_ENDED for r in ranks):
                failed = [r for r in ranks if r.state in ("failed", "dead")]
                if failed:
                    first = failed[0]
                    return "failed", f"rank {first.rank} {first.state_text}: {first.message}"
                return "finished", message
            stalled = [r.rank for r in ranks if r.state == "stalled"]
            if stalled:
                warnings.append(f"rank(s) {', '.join(map(str, stalled))} stalled")
        return job_state, message


def _status_ranks(status: dict[str, Any]) -> dict[int, dict[str, Any]]:
    ranks = status.get("ranks")
    out: dict[int, dict[str, Any]] = {}
    if isinstance(ranks, dict):
        for key, entry in ranks.items():
            if str(key).isdigit() and isinstance(entry, dict):
                out[int(key)] = entry
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _world_size(root: Path) -> int | None:
    """plan.json's world size (schema 1), else job.yaml's data_parallel (older jobs)."""
    plan = _read_json(root / "plan.json")
    if plan is not None and _int(plan.get("world_size")):
        return _int(plan.get("world_size"))
    path = root / "job.yaml"
    if not path.is_file():
        return None
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - a job.yaml that does not parse: count one rank
        return 1
    section = data.get("parallel_config") if isinstance(data, dict) else None
    dp = section.get("data_parallel") if isinstance(section, dict) else None
    return dp if isinstance(dp, int) and not isinstance(dp, bool) and 0 < dp <= 4096 else 1


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
