"""Put LoRA into a built `mf_models` causal LM, train only it, save it, and merge it away.

    model = apply_lora(model, LoraConfig(lora_rank=8, lora_alpha=16))   # in place, base frozen
    ... train model.trainable_params() (LoRA weights only) ...
    save_lora(model, "out/lora")                  # lora_model.safetensors + lora_config.json
    merge_lora(model)                             # W += B A alpha/rank; plain model again
    model.save_pretrained("out/merged")           # an ordinary checkpoint

Wrapping is in place: each matching `Linear` is replaced in its parent by a `LoraLinear` that
holds it, so the model's own `construct`, `forward_step` and `step_function` run LoRA with no
change to mf-models. Parameter names stay MindFormers': the base keeps `...wq.weight`, LoRA
adds `...wq.mindpet_delta_lora_a` / `..._lora_b` (MindFormers' LoRA checkpoint names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mf_models.weights.io import write_in_place

from mf_train.atomic import atomic_write_json
from mf_train.errors import CheckpointMismatchError, CheckpointNotFoundError, TrainConfigError
from mf_train.lora.config import LoraConfig, compile_targets
from mf_train.lora.layer import LORA_A_NAME, LORA_B_NAME, LoraLinear

LORA_WEIGHTS_FILE = "lora_model.safetensors"
LORA_CONFIG_FILE = "lora_config.json"
# How many module names an error shows before "...".
_SHOWN = 6


@dataclass(frozen=True)
class ParameterCount:
    """Trainable and total parameter counts (peft's print_trainable_parameters figures)."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
                f"trainable%: {self.percent:.4f}")


# ---- walking the cell tree ---------------------------------------------------------------------
def _children(cell, prefix: str = "") -> Iterator[tuple[Any, str, str, Any]]:
    """(parent, attribute name, dotted path, child) for every cell below `cell`, depth first."""
    for name, child in cell.name_cells().items():
        path = f"{prefix}{name}"
        yield cell, name, path, child
        if not isinstance(child, LoraLinear):  # a LoraLinear's `base` is not a target itself
            yield from _children(child, path + ".")


def _linear_class():
    from mf_models.modules.layers import Linear

    return Linear


def lora_layers(model) -> list[LoraLinear]:
    """The LoraLinear cells of `model`, in module order."""
    return [child for _, _, _, child in _children(model) if isinstance(child, LoraLinear)]


def _lora_parameters(model) -> list:
    return [p for layer in lora_layers(model) for p in (layer.lora_a, layer.lora_b)]


def _name_patterns(paths: list[str]) -> str:
    """Module paths with layer indices folded (model.layers.*.attention.wq), a few shown."""
    folded = list(dict.fromkeys(re.sub(r"\.\d+(?=\.|$)", ".*", p) for p in paths))
    shown = ", ".join(folded[:_SHOWN]) + (", ..." if len(folded) > _SHOWN else "")
    return shown or "none"


# ---- apply ---------------------------------------------------------------------------------------
def apply_lora(model, config: LoraConfig | Mapping[str, Any] | None = None, seed: int = 0):
    """Wrap every Linear the target regex fully matches (its dotted path, e.g.
    `model.layers.0.attention.wq`, or its attribute name, `wq`); freeze everything else.

    Returns the same model object (changed in place). A is drawn from a numpy generator seeded
    with `seed`, so the same seed gives the same LoRA initialisation.
    """
    if not isinstance(config, LoraConfig):
        config = LoraConfig.from_dict(config)
    existing = lora_layers(model)
    if existing:
        raise TrainConfigError(
            f"{type(model).__name__} already has {len(existing)} LoRA layers (first "
            f"{existing[0].path}); merge_lora it or start from the base model")
    family = getattr(getattr(model, "config", None), "family", "")
    pattern = config.targets_for(family)
    regex = compile_targets(pattern)
    linear = _linear_class()
    linears = [(parent, name, path, child) for parent, name, path, child in _children(model)
               if isinstance(child, linear)]
    chosen = [item for item in linears if regex.fullmatch(item[2]) or regex.fullmatch(item[1])]
    if not chosen:
        raise TrainConfigError(
            f"target_modules {pattern!r} matches no Linear layer of {type(model).__name__} "
            f"(neither a whole module path nor an attribute name); its Linear layers are "
            f"{_name_patterns([path for _, _, path, _ in linears])}")
    # Remember which base weights were trainable, so merge_lora restores exactly that.
    trainable_before = {p.name: p.requires_grad for p in model.get_parameters()}
    rng = np.random.default_rng(seed)
    for parent, name, path, child in chosen:
        parent.insert_child_to_cell(name, LoraLinear(child, path, config.lora_rank,
                                                     config.lora_alpha, config.lora_dropout, rng))
    lora_ids = {id(p) for p in _lora_parameters(model)}
    for param in model.get_parameters():
        param.requires_grad = id(param) in lora_ids
    # The config that was applied, with the regex resolved: what save_lora records.
    object.__setattr__(model, "_lora_state", {
        "config": LoraConfig(config.lora_rank, config.lora_alpha, config.lora_dropout, pattern),
        "trainable_before": trainable_before,
    })
    _forget_compiled_steps(model)
    return model


def _forget_compiled_steps(model) -> None:
    """Drop the step functions mf-models memoises on the model (`step_function(None)`).

    A graph compiled before the cells changed keeps running the old cells: measured, a step
    function built before apply_lora returned the base model's logits afterwards. Step
    functions memoised on a KV cache made before the change are stale the same way, so make
    new caches after apply_lora / merge_lora.
    """
    model.__dict__.pop("_step_functions", None)


def applied_config(model) -> LoraConfig:
    """The LoraConfig `apply_lora` used on `model` (target_modules resolved)."""
    state = getattr(model, "_lora_state", None)
    if state is None or not lora_layers(model):
        raise TrainConfigError(f"{type(model).__name__} has no LoRA layers; call apply_lora first")
    return state["config"]


# ---- counts --------------------------------------------------------------------------------------
def count_parameters(model) -> ParameterCount:
    """Trainable (requires_grad) and total parameter counts of `model`."""
    params = list(model.get_parameters())
    total = sum(int(np.prod(p.shape)) for p in params)
    trainable = sum(int(np.prod(p.shape)) for p in params if p.requires_grad)
    return ParameterCount(trainable=trainable, total=total)


# ---- weights in and out --------------------------------------------------------------------------
def lora_state_dict(model) -> dict[str, np.ndarray]:
    """Only the LoRA weights, name -> numpy array (ready for safetensors.numpy.save_file).

    Copies: `Parameter.asnumpy()` can share memory with the parameter, which training then
    overwrites in place.
    """
    applied_config(model)
    return {p.name: np.array(p.asnumpy(), copy=True) for p in _lora_parameters(model)}


def save_lora(model, directory: str | Path) -> Path:
    """Write `lora_model.safetensors` and `lora_config.json` into `directory` (each atomic).

    Returns the weights file. Only LoRA weights are written: a few MB for a 7B model.
    """
    from mf_models.weights.io import write_safetensors

    config = applied_config(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = write_safetensors(lora_state_dict(model), directory / LORA_WEIGHTS_FILE)
    family = getattr(getattr(model, "config", None), "family", "")
    atomic_write_json(directory / LORA_CONFIG_FILE, {
        "pet_config": config.to_dict(), "family": family, "model_class": type(model).__name__})
    return path


def is_lora_name(name: str) -> bool:
    """True for a LoRA weight's name (MindFormers' `...mindpet_delta_lora_a` / `_b`)."""
    return name.endswith((f".{LORA_A_NAME}", f".{LORA_B_NAME}"))


def _read_lora_source(source: str | Path) -> tuple[dict[str, np.ndarray], LoraConfig | None]:
    """Weights (and the config, if beside them) from a LoRA directory, a .safetensors file or
    a MindSpore .ckpt (e.g. a MindFormers LoRA run's checkpoint)."""
    from mf_models.weights.io import read_weight_file, refuse_pickle

    path = Path(source)
    refuse_pickle(path)
    if path.is_dir():
        weights_file, config_file = path / LORA_WEIGHTS_FILE, path / LORA_CONFIG_FILE
    else:
        weights_file, config_file = path, path.parent / LORA_CONFIG_FILE
    if not weights_file.is_file():
        raise CheckpointNotFoundError(f"LoRA weights {weights_file} do not exist")
    weights = read_weight_file(weights_file)
    config = None
    if config_file.is_file():
        try:
            data = json.loads(config_file.read_text(encoding="utf-8"))
            config = LoraConfig.from_dict(data["pet_config"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointMismatchError(f"{config_file}: not an mf LoRA config ({exc})"
                                          ) from None
    return weights, config


def load_lora(model, source: Mapping[str, np.ndarray] | str | Path, strict: bool = True):
    """Load LoRA weights into `model` (a dict from `lora_state_dict`, a file or a directory).

    A model without LoRA layers gets them first from the `lora_config.json` saved beside the
    weights. Tensors that are not LoRA weights (the base weights in a full MindFormers LoRA
    checkpoint) are left alone: the base model's own loader reads those. Names and shapes are
    checked before anything is written; returns the model.
    """
    config = None
    if isinstance(source, Mapping):
        weights = dict(source)
        where = "LoRA weights"
    else:
        weights, config = _read_lora_source(source)
        where = str(source)
    if not lora_layers(model):
        if config is None:
            raise TrainConfigError(
                f"{type(model).__name__} has no LoRA layers and {where} carries no "
                f"{LORA_CONFIG_FILE}; call apply_lora(model, config) first")
        apply_lora(model, config)
    others = [name for name in weights if not is_lora_name(name)]
    weights = {name: value for name, value in weights.items() if is_lora_name(name)}
    if not weights:
        first = f", first {others[0]}" if others else ""
        raise CheckpointMismatchError(
            f"{where} holds no LoRA weights (names ending in .{LORA_A_NAME} or .{LORA_B_NAME}; "
            f"it has {len(others)} other tensors{first}); is it a base checkpoint?")
    params = {p.name: p for p in _lora_parameters(model)}
    _check_lora_weights(params, weights, strict, where)
    for name, param in params.items():
        if name in weights:
            write_in_place(param, weights[name])
    return model


def _check_lora_weights(params: Mapping[str, Any], weights: Mapping[str, np.ndarray],
                        strict: bool, where: str) -> None:
    for name, param in params.items():
        if name in weights and tuple(np.shape(weights[name])) != tuple(param.shape):
            raise CheckpointMismatchError(
                f"{name}: {where} has shape {tuple(np.shape(weights[name]))} but the model's "
                f"LoRA weight is {tuple(param.shape)} (a different lora_rank or model size?)")
    missing = [n for n in params if n not in weights]
    unexpected = [n for n in weights if n not in params]
    if strict and (missing or unexpected):
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing, first {missing[0]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected, first {unexpected[0]}")
        raise CheckpointMismatchError(
            f"{where} does not match the model's LoRA layers: " + "; ".join(problems)
            + " (different target_modules?)")


# ---- merge ---------------------------------------------------------------------------------------
def merge_lora(model):
    """Fold every LoRA update into its base weight (W += B A * alpha/rank) and unwrap it.

    The result is a plain model (no LoRA cells or weights; base parameters trainable as they
    were before apply_lora) whose `save_pretrained` writes an ordinary checkpoint. The base
    weights are overwritten in place, so a step function compiled for the base model before
    apply_lora runs the merged model.
    """
    applied_config(model)
    wrapped = [(parent, name, child) for parent, name, _, child in _children(model)
               if isinstance(child, LoraLinear)]
    for parent, name, layer in wrapped:
        weight = layer.base.weight
        write_in_place(weight, weight.asnumpy().astype(np.float32) + layer.delta_weight())
        parent.insert_child_to_cell(name, layer.base)
    trainable_before = model._lora_state["trainable_before"]
    for param in model.get_parameters():
        param.requires_grad = trainable_before.get(param.name, True)
    object.__setattr__(model, "_lora_state", None)
    _forget_compiled_steps(model)
    return model
