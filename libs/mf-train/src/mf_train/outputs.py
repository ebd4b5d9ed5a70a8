"""Where mf may write: the one rule for every directory a command creates or replaces.

mf never deletes or overwrites what it did not create. A directory mf writes (a job directory,
an exported model, a trained tokenizer) carries a marker file naming its kind; `claim_output`
allows a path only when it

- does not exist yet, or is an empty directory, or
- is a directory mf made for the same kind of output, and the caller asked to replace it
  (`overwrite_output_dir`, `--overwrite`),

and never when the path is the working directory, a parent of it, the home directory or a
filesystem root, whatever is in it. Everything else is a config error (exit code 2) naming the
path and what to do, raised before anything is touched.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mf_train.errors import TrainConfigError

JOB_MARKER = ".mf-job"  # a job directory: this marker and job.yaml (DESIGN.md "Job directory")
OUTPUT_MARKER = ".mf-output"  # any other directory mf wrote: an exported model, a tokenizer
KINDS = ("job", "model", "tokenizer")
MARKER_SCHEMA = 1


class OutputRefusedError(TrainConfigError):
    """A path mf will not write to or replace."""


@dataclass(frozen=True)
class OutputClaim:
    """What writing at `path` will do: make it new, or replace an earlier output of mf's."""

    path: Path
    replaces: bool = False
    note: str = ""  # one line for the person: what is being replaced (its path and last step)


def marker_path(directory: Path, kind: str) -> Path:
    return directory / (JOB_MARKER if kind == "job" else OUTPUT_MARKER)


def marker_text(kind: str) -> str:
    """The marker file's content (JSON, so a reader can tell the kind and the writer)."""
    if kind not in KINDS:
        raise ValueError(f"output kind {kind!r}; allowed: {', '.join(KINDS)}")
    return json.dumps({"schema": MARKER_SCHEMA, "kind": kind, "created": time.time(),
                       "pid": os.getpid()}) + "\n"


def write_marker(directory: str | Path, kind: str) -> None:
    """Mark `directory` (being filled, before its atomic rename) as mf's output of `kind`."""
    marker_path(Path(directory), kind).write_text(marker_text(kind), encoding="utf-8")


def made_by_mf(directory: str | Path, kind: str) -> bool:
    """True if `directory` carries mf's marker for `kind` (a job directory also its job.yaml)."""
    directory = Path(directory)
    marker = marker_path(directory, kind)
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("kind") != kind:
        return False
    return kind != "job" or (directory / "job.yaml").is_file()


def protected_reason(path: Path) -> str | None:
    """Why `path` may never be replaced or filled by mf, or None."""
    path = path.resolve()
    cwd = Path.cwd().resolve()
    if path == Path(path.anchor):
        return "a filesystem root"
    if path == Path.home().resolve():
        return "your home directory"
    if path == cwd:
        return "the working directory"
    if cwd.is_relative_to(path):
        return "a parent of the working directory"
    return None


def claim_output(path: str | Path, *, kind: str, what: str, overwrite: bool = False,
                 hint: str = "choose a new or empty directory") -> OutputClaim:
    """Check that a new `kind` directory may be written at `path`; raise if not.

    `what` names the setting in messages (e.g. "output_dir", "OUT_DIR"); `hint` says what the
    person can do instead. Nothing is touched here: the caller writes, atomically.
    """
    if kind not in KINDS:
        raise ValueError(f"output kind {kind!r}; allowed: {', '.join(KINDS)}")
    text = str(path)
    if not text.strip():
        raise OutputRefusedError(f"{what} is empty; give a directory for mf to write, "
                                 "e.g. ./output/my_run")
    given = Path(text).expanduser()
    absolute = given.absolute()
    if absolute.is_symlink():
        raise OutputRefusedError(f"{what} {given} is a symbolic link; give the directory it "
                                 "points to, or a new one")
    reason = protected_reason(absolute)
    if reason is not None:
        raise OutputRefusedError(f"{what} {given} is {reason}; mf writes only into a new "
                                 f"directory of its own: {hint}")
    if not absolute.exists():
        return OutputClaim(absolute)
    if not absolute.is_dir():
        raise OutputRefusedError(f"{what} {given} is a file, not a directory; {hint}")
    if not any(absolute.iterdir()):
        return OutputClaim(absolute)
    if not made_by_mf(absolute, kind):
        raise OutputRefusedError(
            f"{what} {given} exists, is not empty and was not made by mf as a {kind} "
            f"directory; mf never replaces it: {hint}")
    if not overwrite:
        how = ("resume it (--resume), replace it (--overwrite / overwrite_output_dir: true), "
               "or " if kind == "job" else "replace it (--overwrite) or ")
        raise OutputRefusedError(f"{what} {given} already holds an earlier {kind} of mf's; "
                                 f"{how}{hint}")
    return OutputClaim(absolute, replaces=True,
                       note=f"replacing the earlier {kind} in {absolute}{_last_step(absolute)}")


def _last_step(directory: Path) -> str:
    """' (last step N)' for a job directory whose status.json says so."""
    try:
        status = json.loads((directory / "status.json").read_text(encoding="utf-8"))
        return f" (last step {int(status['step'])}, {status.get('state', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
