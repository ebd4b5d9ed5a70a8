"""Atomic writes: a kill at any instant leaves either the old file/directory or the new one.

The recipe: write to a temporary name in the same directory, fsync the data, rename over the
final name (atomic on POSIX within one file system), then fsync the directory so the rename
itself survives a power cut.
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
    return path.parent / f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def is_temporary(path: Path) -> bool:
    return TEMP_MARK in path.name or TRASH_MARK in path.name


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (directories: so that renames inside them are durable)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Fill a temporary directory; on success it becomes `final` in one rename.

    Every file inside is fsynced before the rename. An existing `final` is replaced: it is
    first renamed to a trash name, so a kill in between leaves one complete directory under a
    name that readers skip. On an exception the temporary directory is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        for item in tmp.rglob("*"):
            if item.is_file():
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
    trash = path.parent / f".{path.name}{TRASH_MARK}{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    fsync_path(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def sweep_temporaries(directory: Path) -> None:
    """Remove temporaries a killed writer left behind in `directory`.

    Call it only when no other process writes there (a resume, before training starts).
    """
    if not directory.is_dir():
        return
    for item in directory.iterdir():
        if is_temporary(item) and f"{TEMP_MARK}{os.getpid()}-" not in item.name:
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
