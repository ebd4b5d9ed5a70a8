"""Reading and writing tokenizer files: one-line errors on bad files, atomic writes.

Every write goes to a temporary name in the target directory, is fsynced, then renamed (and
the directory fsynced), so an error or a kill leaves either the old file or the new one, never
half of one; files get the user's usual mode (0666 less the umask). mf-tokenize stands alone,
so this is its own copy of the recipe; the libraries above share `mf_parallel.atomic`, with the
same semantics, and the same pickle suffixes as `mf_models.weights.io`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from mf_tokenize.errors import CorruptVocabError, TokenizerConfigError, VocabFileNotFoundError

# Pickle-based files can run code when loaded; tokenizer files never need them.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
TEMP_MARK = ".tmp-"


def check_not_pickle(path: Path) -> None:
    """mf-tokenize's pickle guard; a model checkpoint is not a tokenizer file either."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise TokenizerConfigError(
            f"refusing to load {path}: a pickle file ({path.suffix}) can run code when loaded; "
            "tokenizers load only .json, .txt and .model files"
        )
    if suffix == ".ckpt":
        raise TokenizerConfigError(
            f"{path} is a model checkpoint, not a tokenizer file; tokenizers load only .json, "
            ".txt and .model files"
        )


def require_file(path: Path, what: str) -> Path:
    check_not_pickle(path)
    if not path.is_file():
        raise VocabFileNotFoundError(f"{what} not found: {path}")
    return path


def read_text(path: Path, what: str) -> str:
    require_file(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptVocabError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def read_json(path: Path, what: str) -> Any:
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptVocabError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def read_bytes(path: Path, what: str) -> bytes:
    require_file(path, what)
    return path.read_bytes()


class AtomicDirectoryWriter:
    """Stage files under temporary names, then rename them all into place at once.

    Used as a context manager: if anything fails before the end of the block, the staged
    files are removed and the directory keeps whatever it held before.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self._staged: list[tuple[Path, Path]] = []

    def __enter__(self) -> AtomicDirectoryWriter:
        if self.directory.exists() and not self.directory.is_dir():
            raise TokenizerConfigError(f"cannot save into {self.directory}: it is a file")
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.directory / name
        tmp = self.directory / f".{name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            # os.open applies the umask, as open() does (mkstemp would make the file 0600).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._staged.append((tmp, target))
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for tmp, _ in self._staged:
                tmp.unlink(missing_ok=True)
            return
        for tmp, target in self._staged:
            os.replace(tmp, target)
        if hasattr(os, "O_DIRECTORY"):  # make the renames durable too
            dir_fd = os.open(self.directory, os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
