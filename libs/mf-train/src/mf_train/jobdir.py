"""The job directory of DESIGN.md, and the per-rank event log the CLI and TUI read.

    <job>/.mf-job                mf's marker: mf replaces only directories that carry it
    <job>/job.yaml               the resolved run config
    <job>/launch.json            argv, environment, start time, host
    <job>/logs/worker_<r>.log    each rank's human log
    <job>/events/rank_<r>.jsonl  one JSON object per line, keys EVENT_KEYS
    <job>/checkpoints/           checkpoint-<step>/ (see checkpoint.py)
    <job>/strategy/              sharding strategy files
    <job>/status.json            state, step, total steps, pid, updated (atomic rewrites)

Events are appended and flushed one line at a time, so a SIGKILL loses at most the line being
written; the reader stops before a torn last line and picks it up on the next poll.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mf_train.atomic import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    fsync_path,
)
from mf_train.errors import MfTrainError
from mf_train.outputs import claim_output, write_marker

SCHEMA = 1  # of event records and status.json; a reader tolerates older, unversioned files
EVENT_KEYS = ("schema", "ts", "rank", "kind", "step", "epoch", "loss", "lr", "grad_norm",
              "tokens_per_s", "mem_gib", "metrics", "path", "pid", "host", "message")
EVENT_KINDS = ("start", "step", "eval", "checkpoint", "end", "error")
STATES = ("starting", "running", "finished", "failed", "stopped")
RANK_STATES = ("starting", "running", "finished", "failed", "dead")
# Environment variables worth recording in launch.json (never the whole environment: it may
# hold secrets).
LAUNCH_ENV_PREFIXES = ("MS_", "MF_", "OMP_", "GLOG_", "RANK", "LOCAL_RANK", "WORLD_SIZE",
                       "MASTER_", "DEVICE_")


@dataclass(frozen=True)
class JobDir:
    """Paths of one job directory; `create` makes one, `JobDir(path)` reads one."""

    root: Path
    note: str = field(default="", compare=False)  # set by `create`: what it replaced, if anything

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def job_yaml(self) -> Path:
        return self.root / "job.yaml"

    @property
    def launch_json(self) -> Path:
        return self.root / "launch.json"

    @property
    def status_json(self) -> Path:
        return self.root / "status.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def strategy(self) -> Path:
        return self.root / "strategy"

    def worker_log(self, rank: int) -> Path:
        return self.logs / f"worker_{rank}.log"

    def events_file(self, rank: int) -> Path:
        return self.events / f"rank_{rank}.jsonl"

    def exists(self) -> bool:
        return self.job_yaml.is_file()

    @property
    def plan_json(self) -> Path:
        return self.root / "plan.json"

    @classmethod
    def create(cls, root: str | Path, *, config_yaml: str, argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None, overwrite: bool = False,
               files: Mapping[str, str] | None = None) -> JobDir:
        """Make the whole skeleton in one rename: a reader sees no job or a complete one.

        `outputs.claim_output` decides first: a new or empty directory is used; an earlier
        job directory of mf's is replaced only with `overwrite` (MindFormers'
        overwrite_output_dir); anything else is refused untouched. Resuming opens the existing
        job with `JobDir(root)` instead. `note` says what was replaced, for the run's summary.
        `files` are more files of the skeleton by name (plan.json).
        """
        claim = claim_output(root, kind="job", what="output_dir", overwrite=overwrite,
                             hint="choose another output_dir")
        root = claim.path
        if root.exists() and not claim.replaces:
            root.rmdir()  # empty: atomic_directory renames the filled skeleton into its place
        env = os.environ if env is None else env
        launch = {
            "argv": list(sys.argv if argv is None else argv),
            "env": {k: v for k, v in sorted(env.items()) if k.startswith(LAUNCH_ENV_PREFIXES)},
            "start_time": time.time(),
            "host": platform.node(),
            "pid": os.getpid(),
            "cwd": os.getcwd(),  # relative paths in job.yaml (a tokenizer file) are from here
            "python": sys.version.split()[0],
        }
        with atomic_directory(root) as tmp:
            write_marker(tmp, "job")
            for sub in ("logs", "events", "checkpoints", "strategy"):
                (tmp / sub).mkdir()
            (tmp / "job.yaml").write_text(config_yaml, encoding="utf-8")
            (tmp / "launch.json").write_text(json.dumps(launch, indent=2) + "\n",
                                             encoding="utf-8")
            for name, text in (files or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
            (tmp / "status.json").write_text(json.dumps(new_status(), indent=2) + "\n",
                                             encoding="utf-8")
        job = cls(root)
        object.__setattr__(job, "note", claim.note)
        return job

    def write_status(self, state: str, *,
                     rank_states: Mapping[int, Mapping[str, Any]] | None = None,
                     **fields: Any) -> None:
        """Rewrite status.json atomically (state: starting|running|finished|failed|stopped).

        One writer per job (the process that owns it: the single training process, or the
        launcher of several ranks). `rank_states` updates ranks' entries: {rank: {"pid",
        "host", "state", "exit_code"}}.
        """
        if state not in STATES:
            raise ValueError(f"status state {state!r}; allowed: {', '.join(STATES)}")
        current = self.read_status() or new_status()
        current.update(fields, state=state, updated=time.time(), schema=SCHEMA)
        ranks = current.setdefault("ranks", {})
        for rank, values in (rank_states or {}).items():
            entry = ranks.setdefault(str(rank), {"pid": None, "host": None, "state": "starting",
                                                  "exit_code": None,
                                                  "log": f"logs/worker_{rank}.log"})
            entry.update(values)
            if entry["state"] not in RANK_STATES:
                raise ValueError(f"rank state {entry['state']!r}; allowed: "
                                 f"{', '.join(RANK_STATES)}")
        atomic_write_json(self.status_json, current)

    def rewrite_run(self, config_yaml: str, plan_json: str) -> None:
        """A resume records the run it continues with (ranks it starts resolve job.yaml)."""
        atomic_write_text(self.job_yaml, config_yaml)
        atomic_write_text(self.plan_json, plan_json)

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:  # only a hand-edited file: writes are atomic
            raise MfTrainError(f"{self.status_json}: not valid JSON ({exc.msg})") from None


def new_status() -> dict[str, Any]:
    """status.json of a job that has not started: this process launches it."""
    return {"schema": SCHEMA, "state": "starting", "step": 0, "total_steps": None,
            "updated": time.time(), "message": "", "exit_code": None,
            "launcher": {"pid": os.getpid(), "host": platform.node()}, "ranks": {}}


def make_event(kind: str, rank: int, **fields: Any) -> dict[str, Any]:
    """An event with every key of EVENT_KEYS (None where not given), in that order."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind {kind!r}; allowed: {', '.join(EVENT_KINDS)}")
    unknown = set(fields) - set(EVENT_KEYS)
    if unknown:
        raise ValueError(f"event keys {sorted(unknown)} are not among {EVENT_KEYS}")
    event = {key: None for key in EVENT_KEYS}
    event.update(fields)
    event.update(schema=SCHEMA, kind=kind, rank=rank)
    if event["ts"] is None:
        event["ts"] = time.time()
    return event


class EventWriter:
    """Appends one event per line to events/rank_<r>.jsonl, flushed at once.

    A flush hands the line to the kernel, which keeps it through a SIGKILL of this process;
    checkpoint, end and error events are also fsynced so they survive a machine crash.
    """

    DURABLE_KINDS = frozenset({"checkpoint", "end", "error"})

    def __init__(self, job: JobDir, rank: int = 0) -> None:
        self.rank = rank
        self.path = job.events_file(rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        # A previous run killed mid-line left a line without its newline: end it, so the next
        # event starts on a line of its own (the reader skips the torn one).
        size = self.path.stat().st_size
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    self._write_raw("\n")

    def _write_raw(self, text: str) -> None:
        assert self._handle is not None
        self._handle.write(text)
        self._handle.flush()

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        if self._handle is None:
            raise MfTrainError(f"event log {self.path} is closed")
        event = make_event(kind, self.rank, **fields)
        self._write_raw(json.dumps(event, default=_plain) + "\n")
        if kind in self.DURABLE_KINDS:
            os.fsync(self._handle.fileno())
        return event

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            fsync_path(self.path.parent)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    # numpy scalars (np.float32 losses) and the like
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@dataclass
class EventBatch:
    events: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0  # byte offset to resume reading from
    bad_lines: int = 0  # complete lines that were not JSON objects (skipped)


def read_events(path: str | Path, offset: int = 0) -> EventBatch:
    """Events from byte `offset` on; a last line without its newline is left for the next call.

    Tolerant by design (the TUI polls files that are being written): a missing file is an
    empty batch, a torn last line is not consumed, a garbled complete line is counted and
    skipped.
    """
    path = Path(path)
    batch = EventBatch(offset=offset)
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return batch
    end = data.rfind(b"\n") + 1  # bytes after the last newline are an unfinished line
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            batch.bad_lines += 1
            continue
        if isinstance(event, dict):
            batch.events.append(event)
        else:
            batch.bad_lines += 1
    batch.offset = offset + end
    return batch


def read_job_events(job: JobDir) -> dict[int, list[dict[str, Any]]]:
    """Every rank's complete events, by rank."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not job.events.is_dir():
        return out
    for path in sorted(job.events.glob("rank_*.jsonl")):
        try:
            rank = int(path.stem.removeprefix("rank_"))
        except ValueError:
            continue
        out[rank] = read_events(path).events
    return out


def worker_logger(job: JobDir, rank: int = 0, echo: bool = False) -> logging.Logger:
    """A logger writing logs/worker_<rank>.log (appending, flushed per record).

    `echo` also writes to stderr (the CLI's console); the format starts with the rank and time
    so lines from several ranks interleave readably.
    """
    logger = logging.getLogger(f"mf_train.worker.{job.root}.{rank}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    job.logs.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(f"[rank {rank}] %(asctime)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.FileHandler(job.worker_log(rank), encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
