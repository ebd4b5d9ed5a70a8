"""A task's examples as records (dicts) before any tokenizer: JSON lines, CSV, an image folder,
or Python lists and dicts given to `Trainer`.

    JsonLinesDataset  a .jsonl file (or folder of them): one object per line
    CSVDataset        a .csv file with a header; a list column (tokens, tags) is space-separated
    ImageFolderDataset  <dir>/<class name>/<image file>: {"image": path, "label": class name}

An image given as a path is read relative to the data file's folder.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_train.data.readers import json_object_line, not_utf8_reason
from mf_train.errors import DatasetNotFoundError, TrainConfigError

FILE_LOADERS = ("JsonLinesDataset", "CSVDataset", "ImageFolderDataset")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class Records:
    """Examples as dicts, and where they came from (for error messages)."""

    rows: list[dict[str, Any]]
    source: str
    folder: Path | None = None  # relative image paths are read from here

    @classmethod
    def from_python(cls, data: Any, source: str) -> Records:
        """A list of dicts, or a dict of equal-length lists (a column table)."""
        if isinstance(data, Mapping):
            lengths = {k: len(v) for k, v in data.items()}
            if len(set(lengths.values())) > 1:
                raise TrainConfigError(f"{source}: columns of different lengths {lengths}")
            n = next(iter(lengths.values()), 0)
            return cls([{k: data[k][i] for k in data} for i in range(n)], source)
        rows = list(data)
        for number, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TrainConfigError(f"{source}[{number}] is {type(row).__name__}; a task's "
                                       "examples are dicts of its columns")
        return cls([dict(r) for r in rows], source)


def is_records(data: Any) -> bool:
    """Python data a task reads (a list of dicts or a dict of lists), not token rows."""
    if isinstance(data, Records):
        return True
    if isinstance(data, Mapping):
        return all(isinstance(v, Sequence) and not isinstance(v, str) for v in data.values())
    return isinstance(data, list) and bool(data) and isinstance(data[0], Mapping)


def read_records(loader_type: str, path: str | Path) -> Records:
    """The records of a dataset file or folder (`data_loader.type`, `dataset_dir`)."""
    if not str(path).strip():
        raise DatasetNotFoundError(f"{loader_type} needs data_loader.dataset_dir (a file or "
                                   "folder of examples)")
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"dataset {path} does not exist")
    if loader_type == "ImageFolderDataset":
        return _image_folder(path)
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.suffix in (".jsonl", ".json", ".csv"))
    if not files:
        raise DatasetNotFoundError(f"dataset folder {path} holds no .jsonl or .csv files")
    rows: list[dict[str, Any]] = []
    for file in files:
        rows += _csv(file) if file.suffix == ".csv" else _json_lines(file)
    return Records(rows, str(path), files[0].parent)


def _json_lines(file: Path) -> list[dict[str, Any]]:
    rows = []
    with open(file, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json_object_line(file, number, line)
            record["_where"] = f"{file}:{number}"
            rows.append(record)
    return rows


def _csv(file: Path) -> list[dict[str, Any]]:
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            rows = []
            for number, row in enumerate(csv.DictReader(handle), start=2):
                if None in row:
                    raise TrainConfigError(f"{file}:{number}: more fields than the header has")
                record = {k: v for k, v in row.items() if v is not None and v != ""}
                for key in ("tokens", "tags"):  # list columns, space-separated
                    if key in record:
                        record[key] = record[key].split()
                record["_where"] = f"{file}:{number}"
                rows.append(record)
            return rows
    except UnicodeDecodeError as exc:
        raise TrainConfigError(f"{file}: {not_utf8_reason(exc)}") from None


def _image_folder(path: Path) -> Records:
    if not path.is_dir():
        raise DatasetNotFoundError(f"ImageFolderDataset {path} is not a folder of class folders")
    rows = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"image": str(image), "label": folder.name, "_where": str(image)})
    if not rows:
        raise DatasetNotFoundError(f"ImageFolderDataset {path} holds no <class>/<image> files "
                                   f"({', '.join(IMAGE_SUFFIXES)})")
    return Records(rows, str(path), path)
