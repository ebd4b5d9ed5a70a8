"""Atomic writes: a kill at any instant leaves either the old file (or directory) or the new one.

The recipe: write under a temporary name in the same directory, fsync the data, rename over
the final name (atomic on POSIX within one file system), then fsync the directory so the
rename itself survives a power cut. On any failure the temporary is removed.

Files get the mode an ordinary `open()` would give them (0666 less the user's umask), also when
the writer is a library that creates its files 0600 (safetensors, MindSpore's checkpoint and
MindRecord writers): what a person saves, a person's group may read as usual.

This is the one copy that mf-parallel, mf-models and mf-train share (mf-parallel is the lowest
layer they all depend on); mf-tokenize, which stands alone, keeps the other, with the same
semantics, in `mf_tokenize._files`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_MARK = ".tmp-"
TRASH_MARK = ".trash-"


def temp_sibling(path: Path) -> Path:
    """A fresh hidden name beside `path`, recognisable as temporary (never read as final)."""
    path = Path(path)
    return path.parent / f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def is_temporary(path: Path) -> bool:
    return TEMP_MARK in path.name or TRASH_MARK in path.name


def user_file_mode() -> int:
    """0666 less the process umask: the mode `open(path, "w")` gives a new file."""
    try:  # Linux shows the umask without changing it (no race with other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (directories: so that renames inside them are durable)."""
    path = Path(path)
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` for any writer to fill; on success it becomes
    `path` (mode set, fsynced, renamed, directory fsynced); on failure it is removed."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.chmod(tmp, user_file_mode())
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary directory; on success it becomes `final` in one rename.

    Every file inside gets the user's mode and is fsynced before the rename. An existing
    `final` is replaced: it is first renamed to a trash name, so a kill in between leaves one
    complete directory under a name that readers skip. On an exception the temporary
    directory is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        mode = user_file_mode()
        for item in tmp.rglob("*"):
            if item.is_file():
                os.chmod(item, mode)
                fsync_path(item)
        fsync_path(tmp)
        trash = None
        if final.exists():
            trash = final.parent / f".{final.name}{TRASH_MARK}{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
        os.rename(tmp, final)
        fsync_path(final.parent)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_directory(path: Path) -> None:
    """Delete a directory so that no reader ever sees it half-deleted under its real name."""
    path = Path(path)
    trash = path.parent / f".{path.name}{TRASH_MARK}{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    fsync_path(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def sweep_temporaries(directory: Path) -> None:
    """Remove temporaries a killed writer left behind in `directory`.

    Call it only when no other process writes there (a resume, before training starts).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    for item in directory.iterdir():
        if is_temporary(item) and f"{TEMP_MARK}{os.getpid()}-" not in item.name:
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
