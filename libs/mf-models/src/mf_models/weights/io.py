"""Reading and writing weight files, and checking them against a model.

`read_weights` is the one reader of weights in mf: `from_pretrained`, the Hugging Face import,
`mf model convert`, and mf-train's start weights, `--checkpoint`, LoRA weights and resume all
come through `read_weight_file` here, so a bad file gets the same one-line error (exit code 2)
on every path:

* missing: the file, or what was looked for in a directory;
* pickle (`*.bin`, `*.pt`, `*.pth`, `*.pkl`, `*.pickle`): refused, never loaded, also when it
  is all a directory holds;
* truncated or corrupt: the file named, with the reader's reason;
* NaN or inf in a floating tensor: refused, the tensor named (weights that can only give
  NaN outputs are a broken save, not a model);
* shapes that do not fit the model: `check_names_and_shapes`, the tensor and both shapes named.

Every write goes through `mf_parallel.atomic` (temp name, fsync, rename), so an error leaves
nothing half-written; an I/O failure (disk full) is raised as the OSError it is (exit code 1).
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from mf_parallel.atomic import atomic_file

from mf_models.errors import (
    CheckpointMismatchError,
    CorruptWeightsError,
    ModelConfigError,
    ModelError,
    NonFiniteWeightsError,
    UnsafeFileError,
    WeightsNotFoundError,
)

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
CKPT = "model.ckpt"
LOOKED_FOR = f"{SAFETENSORS}, {SAFETENSORS_INDEX}, *.safetensors, {CKPT}, *.ckpt"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
# Training state MindFormers and MindSpore keep in a .ckpt beside the weights.
OPTIMIZER_PREFIXES = ("adam_m.", "adam_v.", "moments.", "accu_grads.", "global_step",
                      "learning_rate", "scale_sense", "current_iterator_step",
                      "last_overflow_iterator_step", "epoch_num", "step_num", "loss_scale")
# Elements checked per np.isfinite call: bounds the temporary mask to 16 MB for any tensor.
FINITE_CHUNK = 1 << 24


def is_pickle(path: Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def refuse_pickle(path: Path) -> None:
    """The pickle guard of mf-models and everything above it (mf-tokenize keeps its own)."""
    path = Path(path)
    if is_pickle(path):
        raise UnsafeFileError(
            f"refusing to load {path}: a pickle file ({path.suffix}) can run code when loaded; "
            "mf reads .safetensors and MindSpore .ckpt (convert it with a trusted tool first)")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except TypeError as exc:  # a dtype numpy lacks (bfloat16 before MindSpore is imported)
        raise ModelConfigError(f"cannot read {path}: {_first_line(exc)} (numpy has no "
                               "bfloat16: convert the file to float32 or float16 first)") from None
    except (SafetensorError, ValueError) as exc:  # a bad header, data shorter than it says
        raise CorruptWeightsError(f"{path} is truncated or corrupt: {_first_line(exc)}"
                                  ) from None


def read_ckpt(path: Path) -> dict[str, np.ndarray]:
    """A MindSpore .ckpt (protobuf, not pickle) as numpy arrays, optimizer state dropped."""
    import mindspore as ms

    try:
        params = ms.load_checkpoint(str(path))
    except Exception as exc:  # MindSpore raises RuntimeError/ValueError with a C++ stack
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptWeightsError(f"{path} is truncated or corrupt: MindSpore cannot read it as "
                                  f"a checkpoint ({first[:300]})") from None
    return {name: p.asnumpy() for name, p in params.items()
            if not name.startswith(OPTIMIZER_PREFIXES)}


def all_finite(array: np.ndarray) -> bool:
    """True unless a floating array holds NaN or inf (checked in chunks: no n-byte mask).

    bfloat16 counts as floating: numpy learns it from ml_dtypes once MindSpore is imported
    (then safetensors reads bf16 files), as a kind "V" type that np.isfinite handles.
    """
    if array.dtype.kind not in "fc" and array.dtype.name != "bfloat16":
        return True
    flat = array.reshape(-1)
    return all(np.isfinite(flat[start:start + FINITE_CHUNK]).all()
               for start in range(0, flat.size, FINITE_CHUNK))


def check_finite(weights: Mapping[str, np.ndarray], source: str | Path) -> None:
    for name, array in weights.items():
        if not all_finite(array):
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise NonFiniteWeightsError(
                f"{source}: tensor {name} holds {bad} NaN or inf value(s) of {array.size}; "
                "refusing weights that can only give NaN outputs (a broken save?)")


def read_weight_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of one .safetensors or MindSpore .ckpt file, checked finite."""
    path = Path(path).expanduser()
    refuse_pickle(path)
    if path.is_dir():
        raise ModelConfigError(f"{path} is a directory, not a weight file")
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} does not exist" + _pickles_beside(path))
    if path.suffix == ".safetensors":
        weights = read_safetensors(path)
    elif path.suffix == ".ckpt":
        weights = read_ckpt(path)
    else:
        raise ModelConfigError(f"{path} is not a weight file: mf reads .safetensors and "
                               "MindSpore .ckpt")
    check_finite(weights, path)
    return weights


def _pickles_beside(path: Path) -> str:
    pickles = sorted(p.name for p in path.parent.glob("*") if is_pickle(p)) \
        if path.parent.is_dir() else []
    return (f" (beside it: {pickles[0]}, a pickle file, which mf never loads)" if pickles
            else "")


def weight_files(directory: Path) -> list[Path]:
    """The weight files of a model directory, preferring safetensors; [] if there are none.

    Raises UnsafeFileError when the only weights present are pickle files.
    """
    directory = Path(directory)
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = set(weight_map.values())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptWeightsError(f"{index} is truncated or corrupt: {_first_line(exc)}"
                                      ) from None
        files = sorted(directory / str(name) for name in names)
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
    pickles = sorted(p for p in directory.iterdir() if is_pickle(p))
    if pickles:
        raise UnsafeFileError(
            f"no weights in {directory}: only {pickles[0].name}, a pickle file, which mf never "
            f"loads (pickle can run code); looked for {LOOKED_FOR}")
    return []


def no_weights(directory: Path, hint: str = "") -> WeightsNotFoundError:
    """The one "nothing to read here" error, naming what was looked for."""
    where = (f"no weights in {directory}" if Path(directory).is_dir()
             else f"{directory} does not exist")
    return WeightsNotFoundError(f"{where}: looked for {LOOKED_FOR}" + (f"; {hint}" if hint
                                                                       else ""))


def read_directory(directory: Path, hint: str = "") -> dict[str, np.ndarray]:
    directory = Path(directory)
    files = weight_files(directory) if directory.is_dir() else []
    if not files:
        raise no_weights(directory, hint)
    weights: dict[str, np.ndarray] = {}
    for file in files:
        weights.update(read_weight_file(file))
    return weights


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a weight file or a model directory, as stored (names not mapped)."""
    path = Path(path).expanduser()
    refuse_pickle(path)
    if path.is_dir():
        return read_directory(path)
    return read_weight_file(path)


def _io_error(exc: BaseException, path: Path) -> OSError | None:
    """The OSError inside a writer's own exception (safetensors: "... (os error 28)")."""
    match = re.search(r"os error (\d+)", str(exc))
    if match is None:
        return None
    code = int(match.group(1))
    return OSError(code, os.strerror(code) or errno.errorcode.get(code, "I/O error"), str(path))


def save_safetensors_file(weights: Mapping[str, np.ndarray], path: Path,
                          metadata: dict[str, str] | None = None) -> Path:
    """Write one safetensors file where it stands (inside an atomic directory, say)."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file({k: np.asarray(v, order="C") for k, v in weights.items()}, str(path),
                  metadata=metadata or {"format": "np"})
    except SafetensorError as exc:
        io_error = _io_error(exc, path)
        if io_error is not None:
            raise io_error from None
        raise ModelError(f"cannot write {path}: {_first_line(exc)}") from None
    return Path(path)


def write_safetensors(weights: Mapping[str, np.ndarray], path: Path,
                      metadata: dict[str, str] | None = None) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        save_safetensors_file(weights, tmp, metadata)
    return path


def write_ckpt(weights: Mapping[str, np.ndarray], path: Path) -> Path:
    """A MindSpore .ckpt with the given (MindFormers) names."""
    import mindspore as ms

    path = Path(path)
    with atomic_file(path) as tmp:
        named = tmp.with_name(tmp.name + ".ckpt")  # MindSpore appends .ckpt to other names
        try:
            ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()],
                               str(named))
            os.replace(named, tmp)
        except OSError:
            raise
        except Exception as exc:  # MindSpore's own RuntimeError, e.g. on a full disk
            raise ModelError(f"cannot write {path}: {_first_line(exc)}") from None
        finally:
            named.unlink(missing_ok=True)
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
