"""`convert(src, dst)`: a Hugging Face directory to our format, or ours to Hugging Face's.

The output appears whole or not at all: it is written to a temp folder beside `dst` and renamed
(`mf_parallel.atomic.atomic_directory`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mf_parallel.atomic import atomic_directory

from mf_models.errors import ModelConfigError

TARGETS = ("mf", "hf")


def convert(src: str | os.PathLike, dst: str | os.PathLike, to: str | None = None,
            fmt: str = "safetensors") -> tuple[str, Path]:
    """Convert and return (target, dst). `to` defaults to the other format than src's."""
    from mf_models.auto import load_pretrained, weights_directory
    from mf_models.weights import hf

    source = weights_directory(src)
    is_hf = hf.is_hf_directory(source)
    to = to or ("mf" if is_hf else "hf")
    if to not in TARGETS:
        raise ModelConfigError(f"--to {to!r} is not one of {', '.join(TARGETS)}")
    if fmt not in ("safetensors", "ckpt"):
        raise ModelConfigError(f"--format {fmt!r} is not one of safetensors, ckpt")
    if to == "hf" and fmt != "safetensors":
        raise ModelConfigError("a Hugging Face directory is written as safetensors only")
    dst = Path(dst).expanduser()
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ModelConfigError(f"{dst} already exists and is not empty; choose a new directory")
    model = load_pretrained(src)  # checks every name and shape on the way in
    with atomic_directory(dst) as tmp:  # replaces dst only when it is an empty directory
        if to == "mf":
            model.save_pretrained(tmp, fmt=fmt)
        else:
            hf.export_directory(model.config, model.state_dict(), tmp)
    return to, dst
