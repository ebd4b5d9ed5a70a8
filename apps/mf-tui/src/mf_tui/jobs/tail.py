"""Follow a file that another process appends to: one byte offset, complete lines only.

As toolong tails logs: remember how far the file was read, hand out only lines that end in a
newline (a line being written is picked up on the next read), start over when the file shrinks
(truncated) or is replaced by another file under the same name (rotated: a new inode).
Nothing here raises for a missing or vanished file: a job directory is read while it is made.
"""

from __future__ import annotations

import os
from pathlib import Path

# One read hands out at most this much, so a poll of a huge file never stalls the caller; the
# rest comes on the next reads.
MAX_READ_BYTES = 4 * 1024 * 1024


class LineTailer:
    """New complete lines of one file since the last `read()`.

    `tail_bytes`: on the first read of a file, skip to its last `tail_bytes` bytes (starting at
    the first whole line there), for a log whose beginning nobody needs to see again.
    """

    def __init__(self, path: str | Path, tail_bytes: int | None = None):
        self.path = Path(path)
        self.tail_bytes = tail_bytes
        self.offset = 0
        self.resets = 0  # truncations and rotations seen
        self.dropped = 0  # lines too long to hold (no newline within MAX_READ_BYTES)
        self._identity: tuple[int, int] | None = None

    def read(self) -> list[bytes]:
        try:
            stat = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return []
        identity = (stat.st_dev, stat.st_ino)
        skip_partial = False
        if identity != self._identity:
            if self._identity is not None:
                self.resets += 1  # rotated: the name now holds another file
                self.offset = 0
            elif self.tail_bytes is not None and stat.st_size > self.tail_bytes:
                self.offset = stat.st_size - self.tail_bytes
                skip_partial = True
            self._identity = identity
        elif stat.st_size < self.offset:
            self.resets += 1  # truncated in place
            self.offset = 0
        if stat.st_size <= self.offset:
            return []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(min(stat.st_size - self.offset, MAX_READ_BYTES))
        except (FileNotFoundError, PermissionError):
            return []
        if skip_partial:
            newline = data.find(b"\n") + 1  # the tail starts mid-line: drop that fragment
            self.offset += newline
            data = data[newline:]
        end = data.rfind(b"\n") + 1  # bytes after the last newline: a line still being written
        if end == 0:
            if len(data) >= MAX_READ_BYTES:  # a "line" longer than we hold: skip it whole
                self.offset += len(data)
                self.dropped += 1
            return []
        self.offset += end
        return data[:end].splitlines()
