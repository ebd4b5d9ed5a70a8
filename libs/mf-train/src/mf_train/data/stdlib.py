"""`PythonStdlibDataset`: the `.py` sources of the running Python's standard library.

Text every machine with Python has, so the default job needs no download. Tests, IDLE,
lib2to3, turtledemo and installed packages (site-packages) are left out: they are not the
library itself, and site-packages differs from machine to machine. So are `encodings/` and
`pydoc_data/`: generated codec tables and help text stored as Python, a fifth of the bytes
(CPython 3.11) that would teach a small model hex tables rather than code. Files are read in sorted
order; every `EVAL_EVERY`-th file is held out as the eval split, so a perplexity measured on
`split: eval` is on code the model never trained on.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mf_train.errors import DatasetNotFoundError, TrainConfigError

SKIPPED_PARTS = frozenset({"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages",
                           "dist-packages", "__pycache__", "encodings", "pydoc_data"})
EVAL_EVERY = 50
"""1 file in 50 is held out: about 2% of the text (9 of 456 files for CPython 3.11)."""


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@dataclass
class PythonStdlib:
    """The standard library's sources as documents (one file, one document)."""

    split: str = "all"
    root: Path = field(default_factory=stdlib_root)
    skipped: list[Path] = field(default_factory=list)  # files that are not UTF-8 text

    def __post_init__(self) -> None:
        if self.split not in ("all", "train", "eval"):
            raise TrainConfigError(f"PythonStdlibDataset split = {self.split!r}; allowed: "
                                   "all, train, eval")

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"the standard library of this Python is not at "
                                       f"{self.root}; point dataset_dir at some text instead")
        every = sorted(p for p in self.root.rglob("*.py")
                       if not SKIPPED_PARTS & set(p.relative_to(self.root).parts))
        if self.split == "all":
            return every
        held_out = {i for i in range(len(every)) if i % EVAL_EVERY == EVAL_EVERY - 1}
        if self.split == "eval":
            return [p for i, p in enumerate(every) if i in held_out]
        return [p for i, p in enumerate(every) if i not in held_out]

    def __iter__(self) -> Iterator[str]:
        self.skipped = []
        for path in self.files():
            try:
                yield path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                self.skipped.append(path)

    def describe(self) -> str:
        return f"Python standard library at {self.root} (split {self.split})"
