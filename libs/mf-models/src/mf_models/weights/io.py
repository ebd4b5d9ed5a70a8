"""Reading and writing weight files, and checking them against a model.

No pickle is ever loaded: `*.bin`, `*.pt`, `*.pth`, `*.pkl` are refused with a message.
Every write goes to a temp name, is fsynced and renamed, so an error leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mf_models.errors import (
    CheckpointMismatchError,
    ModelConfigError,
    UnsafeFileError,
    WeightsNotFoundError,
)

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
CKPT = "model.ckpt"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
# Training state MindFormers and MindSpore keep in a .ckpt beside the weights.
OPTIMIZER_PREFIXES = ("adam_m.", "adam_v.", "moments.", "accu_grads.", "global_step",
                      "learning_rate", "scale_sense", "current_iterator_step",
                      "last_overflow_iterator_step", "epoch_num", "step_num", "loss_scale")


def refuse_pickle(path: Path) -> None:
    if path.suffix in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"{path} is a pickle file ({path.suffix}); pickle can run code and is never loaded: "
            "convert it to safetensors with a trusted tool first")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except Exception as exc:  # safetensors raises its own types for a bad header or file
        raise ModelConfigError(f"cannot read {path}: {exc}") from None


def read_ckpt(path: Path) -> dict[str, np.ndarray]:
    """A MindSpore .ckpt (protobuf, not pickle) as numpy arrays, optimizer state dropped."""
    import mindspore as ms

    try:
        params = ms.load_checkpoint(str(path))
    except Exception as exc:  # MindSpore raises RuntimeError/ValueError with a C++ stack
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelConfigError(f"cannot read {path} as a MindSpore checkpoint: {first}") from None
    return {name: p.asnumpy() for name, p in params.items()
            if not name.startswith(OPTIMIZER_PREFIXES)}


def read_weight_file(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    if path.suffix == ".ckpt":
        return read_ckpt(path)
    raise ModelConfigError(f"{path} is not a .safetensors or .ckpt file")


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a model directory, preferring safetensors; [] if there are none.

    Raises UnsafeFileError when the only weights present are pickle files.
    """
    directory = Path(directory)
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelConfigError(f"cannot read {index}: {exc}") from None
        files = sorted({directory / name for name in weight_map.values()})
        for file in files:
            if not file.is_file():
                raise WeightsNotFoundError(f"{index} lists {file.name}, which is missing")
        return files
    if (directory / SAFETENSORS).is_file():
        return [directory / SAFETENSORS]
    found = sorted(directory.glob("*.safetensors"))
    if found:
        return found
    if (directory / CKPT).is_file():
        return [directory / CKPT]
    found = sorted(directory.glob("*.ckpt"))
    if found:
        return found
    pickles = sorted(p for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        refuse_pickle(pickles[0])
    return []


def read_directory(directory: Path) -> dict[str, np.ndarray]:
    files = weight_files(directory)
    if not files:
        raise WeightsNotFoundError(
            f"no weights in {directory}: looked for {SAFETENSORS}, {SAFETENSORS_INDEX}, "
            f"*.safetensors, {CKPT}")
    weights: dict[str, np.ndarray] = {}
    for file in files:
        weights.update(read_weight_file(file))
    return weights


def _atomic_target(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


def _fsync_rename(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_safetensors(weights: Mapping[str, np.ndarray], path: Path,
                      metadata: dict[str, str] | None = None) -> Path:
    from safetensors.numpy import save_file

    path = Path(path)
    tmp = _atomic_target(path)
    try:
        save_file({k: np.asarray(v, order="C") for k, v in weights.items()}, str(tmp),
                  metadata=metadata or {"format": "np"})
        _fsync_rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_ckpt(weights: Mapping[str, np.ndarray], path: Path) -> Path:
    """A MindSpore .ckpt with the given (MindFormers) names."""
    import mindspore as ms

    path = Path(path)
    tmp = _atomic_target(path)  # ends in .ckpt, so MindSpore keeps the name as given
    try:
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()],
                           str(tmp))
        _fsync_rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_weights(weights: Mapping[str, np.ndarray], directory: Path, fmt: str) -> Path:
    if fmt == "safetensors":
        return write_safetensors(weights, Path(directory) / SAFETENSORS)
    if fmt == "ckpt":
        return write_ckpt(weights, Path(directory) / CKPT)
    raise ModelConfigError(f"format {fmt!r} is not one of safetensors, ckpt")


def check_names_and_shapes(expected: Mapping[str, tuple[int, ...]],
                           got: Mapping[str, tuple[int, ...]], strict: bool,
                           source: str = "checkpoint") -> list[str]:
    """Raise on the first mis-shaped parameter, and (strict) on missing or unexpected names.

    Returns the problems found (for `strict=False` callers to report).
    """
    problems = []
    for name, shape in expected.items():
        if name in got and tuple(got[name]) != tuple(shape):
            raise CheckpointMismatchError(
                f"{name}: {source} shape {tuple(got[name])} != model shape {tuple(shape)}")
    missing = [n for n in expected if n not in got]
    unexpected = [n for n in got if n not in expected]
    if missing:
        problems.append(f"{len(missing)} missing, first {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, first {unexpected[0]}")
    if strict and problems:
        raise CheckpointMismatchError(
            f"{source} does not match the model: " + "; ".join(problems)
            + " (pass strict=False to load what matches)")
    return problems


# MindSpore dtype name -> numpy dtype for host copies (bfloat16 has no numpy twin).
_HOST_DTYPE = {"Float32": np.float32, "Float16": np.float16, "Float64": np.float64,
               "Int32": np.int32, "Int64": np.int64, "Bool": np.bool_}


def write_in_place(param, value: np.ndarray) -> None:
    """Overwrite a parameter's values where they live (`ops.assign`).

    `Parameter.set_data` swaps in a new buffer that graphs compiled earlier never see
    (measured on MindSpore 2.10 CPU: a jitted step kept returning the old weights), so every
    load into a possibly compiled model writes in place.
    """
    from mindspore import Tensor, ops

    target = _HOST_DTYPE.get(str(param.dtype)) or param.asnumpy().dtype
    # asarray, not ascontiguousarray: the latter turns a 0-d value (CLIP's logit_scale) into 1-d.
    ops.assign(param, Tensor(np.asarray(value, dtype=target, order="C")))


def assign_weights(model, weights: Mapping[str, np.ndarray], strict: bool = True,
                   source: str = "checkpoint") -> list[str]:
    """Copy `weights` into `model`'s parameters after checking every name and shape.

    Tensors the model declares as derived (`derived_buffers`, e.g. a rotary `inv_freq` that
    converted THUDM checkpoints carry) are recomputed by the model, so they are dropped here.
    A task model (`PreTrainedModel.fresh_parameters`) may start from a checkpoint without its
    head, which then keeps its random init, and drops the heads of other classes
    (`unused_checkpoint_tensors`); both are reported in the returned list. A head is absent
    as a whole or present as a whole: half a head is a mismatch.
    """
    derived = [re.compile(p) for p in getattr(model, "derived_buffers", ())]
    weights = {n: a for n, a in weights.items() if not any(d.search(n) for d in derived)}
    params = {p.name: p for p in model.get_parameters()}
    notes = []
    unused = [re.compile(p) for p in getattr(model, "unused_checkpoint_tensors", ())]
    dropped = [n for n in weights if n not in params and any(u.search(n) for u in unused)]
    if dropped:
        notes.append(f"{len(dropped)} tensor(s) of another head not used, first {dropped[0]}")
        weights = {n: a for n, a in weights.items() if n not in dropped}
    expected = {n: tuple(p.shape) for n, p in params.items()}
    for pattern in getattr(model, "fresh_parameters", ()):
        head = [n for n in params if re.search(pattern, n)]
        if head and not any(n in weights for n in head):
            notes.append(f"{len(head)} head parameter(s) not in the {source}, initialised at "
                         f"random: {', '.join(head)}")
            for name in head:
                expected.pop(name)
    problems = check_names_and_shapes(expected, {n: tuple(a.shape) for n, a in weights.items()},
                                      strict, source)
    for name, param in params.items():
        if name in weights:
            write_in_place(param, weights[name])
    return notes + problems
