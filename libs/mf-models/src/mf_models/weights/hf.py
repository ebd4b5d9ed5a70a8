"""Hugging Face directories in and out, driven by one name-mapping table per family.

A table is a list of `Rule(hf, mf, convert)`: `hf` and `mf` are names with `{i}` for the layer
index, `mf` may list several names (a fused HF tensor split into MindFormers' q/k/v), `hf` may
too (`join`: HF's separate q/k/v fused into MindFormers' one `in_proj`), and `convert` is a pair
of exact inverse functions, so import then export is bit-identical.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from mf_parallel.atomic import atomic_write_text

from mf_models.configs.base import CONFIG_JSON, ModelConfig
from mf_models.errors import CheckpointMismatchError, ModelConfigError
from mf_models.weights.io import SAFETENSORS, read_directory, write_safetensors


@dataclasses.dataclass(frozen=True)
class Convert:
    """`to_mf(hf_array, config) -> [mf arrays]` and its exact inverse `to_hf`. For a `join`
    rule `to_mf` gets the list of HF arrays and `to_hf` returns one."""

    to_mf: Callable[[np.ndarray, ModelConfig], list[np.ndarray]]
    to_hf: Callable[[list[np.ndarray], ModelConfig], np.ndarray]


COPY = Convert(lambda a, c: [a], lambda parts, c: parts[0])
# HF nn.Linear (out, in) <-> MindFormers' (in, out), or HF Conv1D (in, out) <-> (out, in).
TRANSPOSE = Convert(lambda a, c: [np.ascontiguousarray(a.T)],
                    lambda parts, c: np.ascontiguousarray(parts[0].T))


@dataclasses.dataclass(frozen=True)
class Rule:
    hf: str | tuple[str, ...]  # a tuple for `join`
    mf: tuple[str, ...]
    convert: Convert = COPY
    per_layer: bool = False
    # A task head's tensor: a checkpoint of another head (or the bare model) lacks it.
    optional: bool = False


def layer(hf: str, mf: str | tuple[str, ...], convert: Convert = COPY) -> Rule:
    return Rule(hf, (mf,) if isinstance(mf, str) else mf, convert, per_layer=True)


def single(hf: str, mf: str | tuple[str, ...], convert: Convert = COPY) -> Rule:
    return Rule(hf, (mf,) if isinstance(mf, str) else mf, convert)


def join(hf: tuple[str, ...], mf: str, convert: Convert) -> Rule:
    """Several HF tensors (with `{i}`) -> one of ours; `convert` fuses and splits them."""
    return Rule(tuple(hf), (mf,), convert, per_layer=True)


def repeat(rules: Sequence[Rule], count: int) -> list[Rule]:
    """Per-layer rules made concrete for a stack of `count` layers whose depth is not
    `config.num_layers` (MAE's decoder, CLIP's vision tower, Swin's stages)."""
    return [Rule(_format(r.hf, i), _format(r.mf, i), r.convert, optional=r.optional)
            for i in range(count) for r in rules]


def _format(names: str | tuple[str, ...], i: int) -> str | tuple[str, ...]:
    if isinstance(names, str):
        return names.format(i=i)
    return tuple(n.format(i=i) for n in names)


def head(hf: str, mf: str, convert: Convert = COPY) -> Rule:
    """A rule for a task head's tensor, converted when present on either side."""
    return Rule(hf, (mf,), convert, optional=True)


@dataclasses.dataclass(frozen=True)
class Table:
    """A family's mapping: rules, HF names to ignore (buffers, tied heads), and the prefix HF
    model classes put in front (older checkpoints were saved without it)."""

    rules: Sequence[Rule]
    ignore: Sequence[str] = ()
    hf_prefix: str = ""
    # (other spelling, the table's spelling) pairs of HF name parts, rewritten on import:
    # checkpoints saved by another transformers version name some tensors differently.
    hf_renames: Sequence[tuple[str, str]] = ()

    def expand(self, num_layers: int
               ) -> list[tuple[tuple[str, ...], tuple[str, ...], Convert, bool]]:
        """(hf names, mf names, convert, optional) for every tensor of a num_layers model."""
        out = []
        for rule in self.rules:
            layers = range(num_layers) if rule.per_layer else [None]
            for i in layers:
                hf = _format(rule.hf, i)
                out.append(((hf,) if isinstance(hf, str) else hf, _format(rule.mf, i),
                            rule.convert, rule.optional))
        return out


def hf_to_mf(table: Table, hf: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """HF tensors -> MindFormers-named arrays. Every HF name must be used or ignored."""
    rules = table.expand(config.num_layers)
    if table.hf_prefix:  # accept both `transformer.h.0...` and the older `h.0...`
        known = {name for rule in rules for name in rule[0]}

        def prefixed(name: str) -> str:
            full = table.hf_prefix + name
            if name.startswith(table.hf_prefix):
                return name
            if full in known or any(fnmatch.fnmatchcase(full, p) for p in table.ignore):
                return full
            return name  # a head's name (lm_head, classifier) has no prefix

        hf = {prefixed(k): v for k, v in hf.items()}
    for other, ours in table.hf_renames:
        hf = {k.replace(other, ours): v for k, v in hf.items()}
    out: dict[str, np.ndarray] = {}
    used = set()
    for hf_names, mf_names, convert, optional in rules:
        if optional and not all(name in hf for name in hf_names):
            continue
        for hf_name in hf_names:
            if hf_name not in hf:
                raise CheckpointMismatchError(
                    f"{hf_name} is missing from the Hugging Face checkpoint "
                    f"(needed for {', '.join(mf_names)})")
        arrays = [np.asarray(hf[name]) for name in hf_names]
        try:
            parts = convert.to_mf(arrays[0] if len(arrays) == 1 else arrays, config)
        except ValueError:  # a fused tensor that cannot be split for this config's heads
            raise CheckpointMismatchError(
                f"{hf_names[0]}: Hugging Face shape {arrays[0].shape} does not fit the config "
                f"(hidden_size={config.hidden_size}, num_heads={config.num_heads})") from None
        out.update(zip(mf_names, parts, strict=True))
        used.update(hf_names)
    extra = [k for k in hf if k not in used
             and not any(fnmatch.fnmatchcase(k, pat) for pat in table.ignore)]
    if extra:
        raise CheckpointMismatchError(
            f"{len(extra)} unexpected tensor(s) in the Hugging Face checkpoint, first {extra[0]}")
    return out


def mf_to_hf(table: Table, mf: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for hf_names, mf_names, convert, optional in table.expand(config.num_layers):
        missing = [m for m in mf_names if m not in mf]
        if missing and optional:
            continue
        if missing:
            raise CheckpointMismatchError(f"{missing[0]} is missing (needed for {hf_names[0]})")
        result = convert.to_hf([np.asarray(mf[m]) for m in mf_names], config)
        if len(hf_names) == 1:
            out[hf_names[0]] = result
        else:
            out.update(zip(hf_names, result, strict=True))
    return out


def is_hf_directory(directory: Path) -> bool:
    """An HF model folder: a config.json whose model_type is set and that is not ours."""
    path = Path(directory) / CONFIG_JSON
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "model_type" in data and "type" not in data


def import_directory(directory: Path) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """(config, MindFormers-named weights) of an HF directory (config.json + *.safetensors)."""
    from mf_models.registry import family_of_config, load_config

    config = load_config(directory)
    table = family_of_config(config).mapping().table_for(config)
    return config, hf_to_mf(table, read_directory(Path(directory)), config)


def export_directory(config: ModelConfig, weights: dict[str, np.ndarray], directory: Path) -> Path:
    """Write an HF directory: config.json + model.safetensors (HF names and shapes)."""
    from mf_models.registry import family_of_config

    if config.hf_model_type is None:
        raise ModelConfigError(f"{config.family} has no Hugging Face counterpart to export to")
    table = family_of_config(config).mapping().table_for(config)
    hf = mf_to_hf(table, weights, config)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / CONFIG_JSON, json.dumps(config.to_hf_dict(), indent=2) + "\n")
    return write_safetensors(hf, directory / SAFETENSORS, metadata={"format": "pt"})
