"""Reading raw training data: plain text files, JSON lines, and MindRecord (MindSpore's format).

Every reader yields documents (strings) in a fixed order (sorted paths), so a dataset built
twice from the same files is the same dataset.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mf_train.atomic import fsync_path, temp_sibling, user_file_mode
from mf_train.errors import DatasetNotFoundError, MfTrainError, TrainConfigError, one_line

MINDRECORD_COLUMN = "input_ids"


def _require_path(path: str | Path, what: str) -> Path:
    if not str(path).strip():  # Path("") would mean the current directory
        raise DatasetNotFoundError(f"{what} path is empty; set dataset_dir")
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"{what} {path} does not exist")
    return path


def not_utf8_reason(exc: UnicodeDecodeError) -> str:
    """`not UTF-8 (byte 0xff at offset 3)`: why a file was skipped, checkable with a hex dump."""
    return f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"


def json_object_line(file: Path, number: int, line: bytes) -> dict:
    """Line `number` of a JSON-lines file as its object; one-line errors naming file:line."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:  # before JSON: a ValueError too, with less to say
        raise TrainConfigError(f"{file}:{number}: {not_utf8_reason(exc)}") from None
    except json.JSONDecodeError as exc:
        raise TrainConfigError(f"{file}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise TrainConfigError(f"{file}:{number}: expected a JSON object per line, "
                               f"got {type(record).__name__}")
    return record


@dataclass
class TextFiles:
    """Plain text: one file is one document; a directory means every file with a suffix in it.

    A file that is not UTF-8 is skipped, never decoded by guesswork: `skipped` lists it and
    `skip_reason` says why for the first one, for the caller to report.
    """

    path: Path
    suffixes: Sequence[str] = (".txt",)
    skipped: list[Path] = field(default_factory=list)  # files that are not UTF-8 text
    skip_reason: str = ""  # why the first skipped file was skipped
    read: int = 0  # files read as text

    def skipped_text(self) -> str:
        """`skipped 2 file(s), e.g. a.txt: not UTF-8 (byte 0xff at offset 3)`, or ""."""
        if not self.skipped:
            return ""
        return (f"skipped {len(self.skipped)} file(s), e.g. {self.skipped[0]}: "
                f"{self.skip_reason}")

    def files(self) -> list[Path]:
        root = _require_path(self.path, "dataset")
        if root.is_file():
            return [root]
        found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in self.suffixes)
        if not found:
            raise DatasetNotFoundError(
                f"dataset directory {root} holds no files ending in {', '.join(self.suffixes)}")
        return found

    def __iter__(self) -> Iterator[str]:
        self.skipped, self.skip_reason, self.read = [], "", 0
        for path in self.files():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                self.skip_reason = self.skip_reason or not_utf8_reason(exc)
                self.skipped.append(path)
                continue
            self.read += 1
            yield text


@dataclass
class JsonLines:
    """JSON lines: one object per line; the document is its `text_key` field."""

    path: Path
    text_key: str = "text"

    def __iter__(self) -> Iterator[str]:
        path = _require_path(self.path, "dataset")
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.suffix in (".jsonl", ".json"))
        if not files:
            raise DatasetNotFoundError(f"dataset directory {path} holds no .jsonl files")
        for file in files:
            with open(file, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    yield self._text(file, number, line)

    def _text(self, file: Path, number: int, line: bytes) -> str:
        record = json_object_line(file, number, line)
        if self.text_key not in record:
            fields = ", ".join(sorted(record)) or "none"
            raise TrainConfigError(f"{file}:{number}: no {self.text_key!r} field (text_key); "
                                   f"fields here: {fields}")
        text = record[self.text_key]
        if not isinstance(text, str):
            raise TrainConfigError(f"{file}:{number}: field {self.text_key!r} is "
                                   f"{type(text).__name__}, expected a string")
        return text


def write_mindrecord(path: str | Path, samples: np.ndarray,
                     column: str = MINDRECORD_COLUMN) -> Path:
    """Write samples (N, L) int32 as a MindRecord file (+ its .db index), atomically.

    MindRecord records its own file name inside the index, so the pair is written under the
    final names in a temporary directory and then moved beside each other, the index first:
    the data file appearing is what marks the pair complete.
    """
    from mindspore.mindrecord import FileWriter

    path = Path(path).expanduser().absolute()
    samples = np.ascontiguousarray(samples, dtype=np.int32)
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise TrainConfigError(f"MindRecord samples must be a non-empty (N, L) array, "
                               f"got shape {samples.shape}")
    for existing in (path, path.with_name(path.name + ".db")):
        if existing.exists() or existing.is_symlink():
            # mf never overwrites what it did not create: the pair is written new or not at all
            raise TrainConfigError(f"{existing} already exists; choose a new output file "
                                   "(nothing was written)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = temp_sibling(path)
    tmp_dir.mkdir()
    try:
        writer = FileWriter(str(tmp_dir / path.name), shard_num=1, overwrite=True)
        writer.add_schema({column: {"type": "int32", "shape": [-1]}}, "mf packed tokens")
        writer.write_raw_data([{column: row} for row in samples])
        writer.commit()
        for name in (path.name + ".db", path.name):
            os.chmod(tmp_dir / name, user_file_mode())  # MindRecord makes them 0600
            fsync_path(tmp_dir / name)
            os.replace(tmp_dir / name, path.parent / name)
        fsync_path(path.parent)
    except MfTrainError:
        raise
    except Exception as exc:  # MindSpore's C++ errors: one line, not its stack
        raise MfTrainError(f"writing MindRecord {path} failed: {one_line(exc)[:300]}") from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def read_mindrecord(path: str | Path, column: str = MINDRECORD_COLUMN) -> np.ndarray:
    """All rows of one column of a MindRecord file (through mindspore.dataset.MindDataset)."""
    path = _require_path(path, "dataset")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".mindrecord")
        if not files:
            raise DatasetNotFoundError(f"dataset directory {path} holds no .mindrecord file")
        path = files[0]  # MindDataset finds the other shards of a set from any one of them
    import mindspore.dataset as ds

    try:
        dataset = ds.MindDataset(str(path), columns_list=[column], shuffle=False)
        rows = [row[0] for row in dataset.create_tuple_iterator(output_numpy=True)]
    except Exception as exc:  # MindSpore's C++ errors: keep the first line of its message
        message = one_line(exc)
        raise TrainConfigError(f"cannot read MindRecord {path} column {column!r}: "
                               f"{message[:300]}") from None
    if not rows:
        return np.zeros((0, 0), dtype=np.int32)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise TrainConfigError(f"MindRecord {path}: rows have {len(lengths)} different lengths "
                               f"({min(lengths)}..{max(lengths)}); mf expects packed rows")
    return np.stack(rows).astype(np.int32)
