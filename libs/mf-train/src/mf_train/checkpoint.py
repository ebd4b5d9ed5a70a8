"""Checkpoint directories: weights + optimizer state (safetensors) + a JSON trainer state.

    checkpoints/checkpoint-<step>/model.safetensors       weights, by parameter name
    checkpoints/checkpoint-<step>/optimizer.safetensors   optimizer state (moments, step, ...)
    checkpoints/checkpoint-<step>/trainer_state.json      step, epoch, data position, RNG,
                                                          config fingerprint, model signature
    checkpoints/checkpoint-<step>/config.json, config.yaml, tokenizer files
                                                          when it holds the whole model: then
                                                          it is also a model directory
                                                          (`from_pretrained`, `mf generate`)

Each checkpoint appears in one rename (`atomic.atomic_directory`), so a kill at any instant
leaves the previous checkpoint complete and loadable; `save_total_limit` keeps the newest N.
A resume checks the config fingerprint and the model signature and names the first
difference. Files are read by mf-models' one weights reader (`mf_models.weights.io`: no pickle,
one-line errors for a missing, truncated or non-finite file). Pure numpy here: the Trainer
converts MindSpore tensors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.atomic import atomic_directory, is_temporary, remove_directory
from mf_train.errors import CheckpointMismatchError, CheckpointNotFoundError, TrainConfigError

CHECKPOINT_PREFIX = "checkpoint-"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


@dataclass
class TrainerState:
    """Everything besides tensors that an exact resume needs."""

    step: int  # optimizer steps done
    epoch: int  # the epoch the next batch belongs to
    data_position: dict[str, Any]  # e.g. DataPosition.to_dict(): epoch, batch, seed
    rng: dict[str, Any] = field(default_factory=dict)  # JSON-able RNG states (numpy, MindSpore)
    config_fingerprint: str = ""
    trajectory: dict[str, Any] = field(default_factory=dict)  # RunConfig.trajectory()
    model_signature: dict[str, list] = field(default_factory=dict)  # name -> [shape, dtype]
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. last loss, eval perplexity
    loss_scale: dict[str, Any] = field(default_factory=dict)  # loss_scale.LossScale, if any
    format_version: int = FORMAT_VERSION
    saved_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_jsonable) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> TrainerState:
        try:
            data = json.loads(text)
        except UnicodeDecodeError:
            raise CheckpointMismatchError(f"{source}: not UTF-8 text (corrupt?)") from None
        except json.JSONDecodeError as exc:
            raise CheckpointMismatchError(f"{source}: not valid JSON ({exc.msg} at line "
                                          f"{exc.lineno})") from None
        if not isinstance(data, dict) or "step" not in data:
            raise CheckpointMismatchError(f"{source}: not an mf trainer state (no 'step')")
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointMismatchError(
                f"{source}: trainer state format {data['format_version']} is newer than this "
                f"mf-train reads ({FORMAT_VERSION}); upgrade mf-train")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class Checkpoint:
    path: Path
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    state: TrainerState


def capture_rng() -> dict[str, Any]:
    """The host-side RNG states (Python's `random`, numpy's global) as JSON-able data.

    MindSpore's own generator state is added by the Trainer, which owns MindSpore.
    """
    import random

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore what `capture_rng` captured (keys it does not know are left to their owners)."""
    import random

    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def model_signature(weights: Mapping[str, np.ndarray]) -> dict[str, list]:
    """name -> [shape, dtype]: what must match for weights to load into a model."""
    return {name: [list(np.shape(a)), str(np.asarray(a).dtype)]
            for name, a in sorted(weights.items())}


def checkpoint_dir(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"{CHECKPOINT_PREFIX}{step}"


def save_checkpoint(directory: str | Path, weights: Mapping[str, np.ndarray],
                    optimizer: Mapping[str, np.ndarray], state: TrainerState,
                    save_total_limit: int | None = None,
                    model_files: Callable[[Path], Any] | None = None) -> Path:
    """Write checkpoint-<state.step> atomically, then keep only the newest `save_total_limit`.

    `model_files(folder)`, if given, writes more files into the checkpoint before it appears
    (the model config and tokenizer: see `Trainer`).
    """
    from mf_models.weights.io import save_safetensors_file

    final = checkpoint_dir(directory, state.step)
    if final.exists() and not (final / STATE_FILE).is_file():
        # mf never replaces what it did not make: a checkpoint of mf's has its trainer state
        raise TrainConfigError(f"{final} exists and is not a checkpoint of mf's (no "
                               f"{STATE_FILE}); move it out of the job's checkpoints/ folder")
    if not state.model_signature:
        state.model_signature = model_signature(weights)
    state.saved_at = time.time()
    with atomic_directory(final) as tmp:
        save_safetensors_file(weights, tmp / WEIGHTS_FILE)
        save_safetensors_file(optimizer, tmp / OPTIMIZER_FILE)
        (tmp / STATE_FILE).write_text(state.to_json(), encoding="utf-8")
        if model_files is not None:
            model_files(tmp)
    if save_total_limit is not None:
        rotate_checkpoints(directory, save_total_limit)
    return final


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints under `directory`, oldest step first (temporaries skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for item in directory.iterdir():
        match = _STEP_DIR.match(item.name)
        if match and item.is_dir() and not is_temporary(item) and (item / STATE_FILE).is_file():
            found.append((int(match.group(1)), item))
    return [path for _, path in sorted(found)]


def get_last_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint under `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def rotate_checkpoints(directory: str | Path, save_total_limit: int) -> list[Path]:
    """Delete all but the newest `save_total_limit` checkpoints; returns the deleted paths."""
    if save_total_limit < 1:
        raise TrainConfigError(f"save_total_limit = {save_total_limit}; it must be >= 1")
    found = list_checkpoints(directory)
    doomed = found[:-save_total_limit]
    for path in doomed:
        remove_directory(path)
    return doomed


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the newest one under a checkpoints/ or job directory."""
    from mf_models.weights.io import refuse_pickle

    path = Path(path)
    refuse_pickle(path)
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint {path} does not exist")
    if (path / STATE_FILE).is_file():
        return path
    for candidate in (path, path / "checkpoints"):
        last = get_last_checkpoint(candidate)
        if last is not None:
            return last
    raise CheckpointNotFoundError(
        f"{path} holds no complete checkpoint (expected {CHECKPOINT_PREFIX}<step>/{STATE_FILE})")


def read_trainer_state(path: str | Path) -> tuple[Path, TrainerState]:
    """The checkpoint folder `path` names (or the newest under it) and its trainer state,
    without reading any tensor (what a plan checks before anything is built)."""
    ckpt = resolve_checkpoint(path)
    return ckpt, TrainerState.from_json((ckpt / STATE_FILE).read_bytes(), str(ckpt / STATE_FILE))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint directory (or the newest one under `path`)."""
    from mf_models.weights.io import read_weight_file

    ckpt, state = read_trainer_state(path)
    return Checkpoint(path=ckpt, weights=read_weight_file(ckpt / WEIGHTS_FILE),
                      optimizer=read_weight_file(ckpt / OPTIMIZER_FILE), state=state)


def check_resume(state: TrainerState, *, trajectory: Mapping[str, Any] | None = None,
                 config_fingerprint: str | None = None,
                 signature: Mapping[str, list] | None = None, source: str = "checkpoint",
                 ) -> None:
    """Refuse a resume into another model or a changed config, naming the first difference."""
    if signature is not None and state.model_signature:
        _check_signature(state.model_signature, signature, source)
    if trajectory is not None and state.trajectory:
        for key in sorted(set(state.trajectory) | set(trajectory)):
            then, now = state.trajectory.get(key, "<absent>"), trajectory.get(key, "<absent>")
            if _normalise(then) != _normalise(now):
                raise CheckpointMismatchError(
                    f"cannot resume from {source}: {key} was {then!r} there, {now!r} now; "
                    "restore it, or start a new run (a resume must replay the same run)")
    if config_fingerprint is not None and state.config_fingerprint \
            and state.config_fingerprint != config_fingerprint:
        raise CheckpointMismatchError(
            f"cannot resume from {source}: the run config changed (fingerprint "
            f"{state.config_fingerprint[:12]} there, {config_fingerprint[:12]} now)")


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_jsonable))


def _check_signature(then: Mapping[str, list], now: Mapping[str, list], source: str) -> None:
    missing = sorted(set(then) - set(now))
    extra = sorted(set(now) - set(then))
    if missing or extra:
        detail = (f"parameter {missing[0]!r} is in the checkpoint but not in the model" if missing
                  else f"parameter {extra[0]!r} is in the model but not in the checkpoint")
        raise CheckpointMismatchError(
            f"{source} was written for another model: {detail} "
            f"({len(missing)} missing, {len(extra)} extra of {len(now)})")
    for name in sorted(then):
        if list(then[name][0]) != list(now[name][0]):
            raise CheckpointMismatchError(
                f"{source} was written for another model: {name!r} has shape "
                f"{tuple(then[name][0])} there, {tuple(now[name][0])} in this model")
