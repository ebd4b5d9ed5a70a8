"""Sharded checkpoints on disk, and moving any checkpoint between layouts.

A sharded save is a checkpoint directory whose tensors are split over the ranks of a layout:

    checkpoint-<step>/strategy.json              mf-parallel's strategy of the run (mesh, every
                                                 parameter's shape, stage and spec)
    checkpoint-<step>/trainer_state.json         as in a whole checkpoint (see checkpoint.py)
    checkpoint-<step>/config.json, config.yaml, tokenizer files   (not under LoRA)
    checkpoint-<step>/rank_<i>/model.safetensors       rank i's shards of its stage's weights
    checkpoint-<step>/rank_<i>/optimizer.safetensors   rank i's shards of their AdamW state

Rank i holds the parameters of its pipeline stage, each cut by the strategy's layout over
the stage's (dp, mp) mesh; the moments `adam_m.<p>`/`adam_v.<p>` follow their parameter (and
under `optimizer_shard` are cut further over dp); a step counter is on every rank. A
MindFormers user's sharded checkpoint (rank_<i>/*.ckpt or *.safetensors) is read with
MindSpore's own strategy file (`mf_parallel.ms_strategy`).

`transform_checkpoint` merges a sharded checkpoint into a whole one (a model directory that
`mf generate` and `mf eval --checkpoint` read), splits a whole one, or reshards A -> B; the
math is mf-parallel's (`mf_parallel.shards`), every tensor copied exactly. The destination
appears whole or not at all, marked as mf's (`outputs`), and never replaces what mf did not
make.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.atomic import atomic_directory, is_temporary
from mf_train.checkpoint import OPTIMIZER_FILE, STATE_FILE, WEIGHTS_FILE
from mf_train.errors import CheckpointMismatchError, CheckpointNotFoundError, TrainConfigError
from mf_train.outputs import write_marker

STRATEGY_FILE = "strategy.json"
RANK_PREFIX = "rank_"
# mf-train's AdamW state names (optim.py): a moment per parameter, and the step counter.
MOMENT_PREFIXES = ("adam_m.", "adam_v.")
_RANK_DIR = re.compile(rf"^{RANK_PREFIX}(\d+)$")
_LAYOUT_KEYS = {"dp": "data_parallel", "mp": "model_parallel", "pp": "pipeline_stage"}


def rank_dir(checkpoint: str | Path, rank: int) -> Path:
    return Path(checkpoint) / f"{RANK_PREFIX}{rank}"


def is_sharded(path: str | Path) -> bool:
    path = Path(path)
    return (path / STRATEGY_FILE).is_file() or rank_dir(path, 0).is_dir()


# ---- layouts given on the command line ----------------------------------------------------------

def parse_layout(text: str) -> Any:
    """`dp=2,mp=2,pp=1[,optimizer_shard=true]` -> a resolved mf_parallel.ParallelConfig."""
    from mf_parallel import ParallelConfig

    values: dict[str, Any] = {}
    for part in str(text).split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or key.strip() not in (*_LAYOUT_KEYS, "optimizer_shard"):
            raise TrainConfigError(
                f"layout {text!r}: {part.strip()!r} is not KEY=VALUE with KEY one of dp, mp, "
                "pp, optimizer_shard (e.g. dp=2,mp=2,pp=1)")
        key, value = key.strip(), value.strip()
        if key == "optimizer_shard":
            if value.lower() not in ("true", "false", "1", "0"):
                raise TrainConfigError(f"layout {text!r}: optimizer_shard={value!r}; use true "
                                       "or false")
            values[key] = value.lower() in ("true", "1")
        elif not value.isdigit() or int(value) < 1:
            raise TrainConfigError(f"layout {text!r}: {key}={value!r} must be an integer >= 1")
        else:
            values[_LAYOUT_KEYS[key]] = int(value)
    pp = values.get("pipeline_stage", 1)
    try:
        return ParallelConfig(micro_batch_num=pp, **values)
    except ValueError as exc:
        raise TrainConfigError(f"layout {text!r}: {exc}") from None


def _layout_tag(config: Any) -> str:
    tag = f"dp{config.data_parallel}-mp{config.model_parallel}-pp{config.pipeline_stage}"
    return tag + ("-os" if config.optimizer_shard else "")


# ---- a checkpoint's tensors, whole or sharded ---------------------------------------------------

@dataclass
class CheckpointTensors:
    """Weights and optimizer state of a checkpoint: one (weights, optimizer) pair per rank of
    `strategy`, or a single pair when the checkpoint is whole (`strategy` None)."""

    path: Path
    strategy: Any  # mf_parallel.Strategy | None
    ranks: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]

    @property
    def whole(self) -> bool:
        return self.strategy is None

    def global_shapes(self) -> dict[str, tuple[int, ...]]:
        if self.strategy is None:
            return {name: tuple(np.shape(a)) for name, a in self.ranks[0][0].items()}
        return {name: param.shape for name, param in self.strategy.params.items()}


def _read_tensors(path: Path, name: str, required: bool = True) -> dict[str, np.ndarray]:
    from mf_models.weights.io import read_directory, read_safetensors

    file = path / name
    if file.is_file():
        return read_safetensors(file)
    if name == WEIGHTS_FILE and path.is_dir():
        # MindFormers' shards: rank_<i>/<anything>.ckpt or .safetensors
        try:
            return read_directory(path)
        except Exception as exc:  # noqa: BLE001 - mf-models' one-line errors
            if getattr(exc, "exit_code", None) is None:
                raise
            raise CheckpointNotFoundError(f"{path}: {exc}") from None
    if required:
        raise CheckpointNotFoundError(f"{path} has no {name}")
    return {}


def read_checkpoint_tensors(path: str | Path, src_strategy: str | Path | None = None,
                            src_layout: str | None = None) -> CheckpointTensors:
    """A checkpoint directory's tensors; a sharded one with its strategy (its own
    strategy.json, or `src_strategy`: mf's or MindSpore's file, `src_layout` for the latter)."""
    from mf_models.weights.io import refuse_pickle

    path = Path(path)
    refuse_pickle(path)  # mf-models' one pickle guard
    if not path.is_dir():
        raise CheckpointNotFoundError(f"checkpoint {path} does not exist (a checkpoint is a "
                                      "directory)")
    if not is_sharded(path) and src_strategy is None:
        weights = _read_tensors(path, WEIGHTS_FILE)
        return CheckpointTensors(path, None, [(weights, _read_tensors(path, OPTIMIZER_FILE,
                                                                      required=False))])
    found = sorted(int(m.group(1)) for p in path.iterdir()
                   if (m := _RANK_DIR.match(p.name)) and p.is_dir())
    ranks = [(_read_tensors(rank_dir(path, r), WEIGHTS_FILE),
              _read_tensors(rank_dir(path, r), OPTIMIZER_FILE, required=False)) for r in found]
    strategy = _source_strategy(path, src_strategy, src_layout, ranks)
    world = strategy.config.device_num
    missing = [r for r in range(world) if r not in found]
    if missing:
        raise CheckpointNotFoundError(
            f"{path} is missing {RANK_PREFIX}{missing[0]}/ (its strategy has {world} ranks: "
            f"{strategy.config.data_parallel} dp x {strategy.config.model_parallel} mp x "
            f"{strategy.config.pipeline_stage} pp)")
    if len(found) != world:
        raise CheckpointMismatchError(
            f"{path} holds {len(found)} rank folders, but its strategy has {world} ranks")
    return CheckpointTensors(path, strategy, ranks)


def _source_strategy(path: Path, given: str | Path | None, layout: str | None,
                     ranks: Sequence[tuple[dict, dict]]) -> Any:
    from mf_parallel import read_strategy
    from mf_parallel.ms_strategy import (
        infer_config,
        is_mf_strategy,
        read_mindspore_strategy,
        split_counts,
        to_strategy,
    )

    file = Path(given) if given is not None else path / STRATEGY_FILE
    if given is None and not file.is_file():
        raise CheckpointNotFoundError(
            f"{path} has rank folders but no {STRATEGY_FILE}; give the strategy it was saved "
            "with (--src-strategy)")
    if not file.is_file():
        raise CheckpointNotFoundError(f"strategy file {file} does not exist")
    if is_mf_strategy(file):
        return read_strategy(file)
    layouts = read_mindspore_strategy(file)
    config = parse_layout(layout) if layout else infer_config(layouts)
    shapes: dict[str, tuple[int, ...]] = {}  # global shapes: a shard's times its split
    for weights, _ in ranks:
        for name, array in weights.items():
            counts = split_counts(layouts[name]) if name in layouts else ()
            if name not in shapes and len(counts) == np.ndim(array):
                shapes[name] = tuple(int(d) * c for d, c in zip(np.shape(array), counts,
                                                                 strict=True))
    return to_strategy(layouts, shapes, config.resolve(config.device_num))


# ---- where each tensor lives --------------------------------------------------------------------

def placements(strategy: Any, shapes: Mapping[str, Sequence[int]], optimizer: bool,
               source: str) -> dict[str, Any]:
    """mf_parallel Placements of a checkpoint's weights (or, with `optimizer`, of its optimizer
    state) under `strategy`; a tensor the strategy does not place is a one-line error."""
    from mf_parallel import Layout
    from mf_parallel.shards import Placement

    out = {}
    for name, shape in shapes.items():
        param = name
        if optimizer:
            param = next((name[len(p):] for p in MOMENT_PREFIXES if name.startswith(p)), None)
            if param is None:
                if int(np.prod(shape)) > 1:
                    raise CheckpointMismatchError(
                        f"{source}: optimizer state {name!r} {tuple(shape)} belongs to no "
                        f"parameter (expected {'/'.join(MOMENT_PREFIXES)}<parameter> or a step "
                        "counter)")
                out[name] = Placement(Layout.replicated(shape, strategy.stage_mesh, name), None)
                continue
        if param not in strategy.params:
            raise CheckpointMismatchError(
                f"{source}: {name!r} is not in the strategy (a strategy of another model?)")
        layout = strategy.optimizer_layout(param) if optimizer else strategy.layout(param)
        if tuple(shape) != layout.shape:
            raise CheckpointMismatchError(
                f"{source}: {name!r} has shape {tuple(shape)}, the strategy says {layout.shape}")
        out[name] = Placement(layout, strategy.params[param].stage)
    if not optimizer:
        extra = [name for name in strategy.params if name not in shapes]
        if extra:
            raise CheckpointMismatchError(
                f"{source}: the strategy lists {extra[0]!r}, which the checkpoint lacks "
                f"({len(extra)} such); a strategy of another model?")
    return out


def _optimizer_shapes(tensors: CheckpointTensors) -> dict[str, tuple[int, ...]]:
    if tensors.whole:
        return {name: tuple(np.shape(a)) for name, a in tensors.ranks[0][1].items()}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in {n for _, optimizer in tensors.ranks for n in optimizer}:
        param = next((name[len(p):] for p in MOMENT_PREFIXES if name.startswith(p)), None)
        if param is not None and param in tensors.strategy.params:
            shapes[name] = tensors.strategy.params[param].shape
        else:
            holder = next(opt for _, opt in tensors.ranks if name in opt)
            shapes[name] = tuple(np.shape(holder[name]))
    return shapes


# ---- the destination's strategy -----------------------------------------------------------------

def _model_config(path: Path, model: str | None) -> Any:
    from mf_models import AutoConfig

    source = model if model is not None else (path if (path / "config.json").is_file() or
                                              (path / "config.yaml").is_file() else None)
    if source is None:
        return None
    try:
        return AutoConfig.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - mf-models' one-line errors carry exit codes
        if getattr(exc, "exit_code", None) is None:
            raise
        raise TrainConfigError(f"--model {source}: {exc}") from None


def strategy_for_layout(tensors: CheckpointTensors, config: Any, model: str | None = None,
                        ) -> Any:
    """The strategy of `tensors`' parameters over the layout `config`.

    Specs come from the source strategy (a spec does not depend on mesh sizes) or, for a
    whole checkpoint, from the model family's sharding plan (its config.json, or `model`),
    extended to LoRA weights. Stages follow the plan's order of parameters (embedding, layers,
    head) with MindFormers' stage assignment.
    """
    from mf_parallel import Strategy, assign_stages, parameter_stages, resolve_plan
    from mf_parallel.errors import LayoutError
    from mf_parallel.pipeline import LAYER_NAME
    from mf_parallel.plan import match
    from mf_parallel.strategy import ParamStrategy

    from mf_train.lora import lora_base_name, lora_sharding_plan

    config = config.resolve(config.device_num)
    shapes = tensors.global_shapes()
    model_config = _model_config(tensors.path, model)
    if tensors.strategy is not None:
        plan = {name: tensors.strategy.layout(name).spec_json() for name in shapes}
        order = list(tensors.strategy.params)
    elif model_config is not None:
        plan = lora_sharding_plan(type(model_config).sharding_plan)
        patterns = list(plan)

        def rank_of(name: str) -> int:
            hit = match(plan, lora_base_name(name))
            return patterns.index(hit[0]) if hit else len(patterns)

        order = sorted(shapes, key=rank_of)
    else:
        raise TrainConfigError(
            f"{tensors.path} has no config.json (a LoRA checkpoint?): name its model with "
            "--model PRESET_OR_DIR so its sharding plan is known")
    layers = [int(m.group(1)) for n in order if (m := LAYER_NAME.search(n))]
    num_layers = getattr(model_config, "num_layers", None) or (max(layers) + 1 if layers else 1)
    try:
        layouts = resolve_plan(plan, list(shapes.items()), config)
        stages = parameter_stages([lora_base_name(n) for n in order],
                                  assign_stages(num_layers, config.pipeline_stage))
    except LayoutError as exc:
        raise TrainConfigError(f"layout {_layout_tag(config)}: {exc}") from None
    except ValueError as exc:
        raise TrainConfigError(f"layout {_layout_tag(config)}: {exc}") from None
    return Strategy(config, {name: ParamStrategy(layouts[name].shape,
                                                 stages[lora_base_name(name)],
                                                 layouts[name].spec) for name in order})


def read_destination_strategy(file: str | Path, tensors: CheckpointTensors,
                              layout: str | None = None) -> Any:
    """A strategy file for the destination: mf's, or MindSpore's (shapes from the source)."""
    from mf_parallel import read_strategy
    from mf_parallel.ms_strategy import infer_config, is_mf_strategy, read_mindspore_strategy
    from mf_parallel.ms_strategy import to_strategy as ms_to_strategy

    if is_mf_strategy(file):
        return read_strategy(file)
    layouts = read_mindspore_strategy(file)
    config = parse_layout(layout) if layout else infer_config(layouts)
    return ms_to_strategy(layouts, tensors.global_shapes(), config.resolve(config.device_num))


# ---- transforms ---------------------------------------------------------------------------------

def merge_checkpoint(tensors: CheckpointTensors) -> tuple[dict, dict]:
    """The whole weights and optimizer state."""
    from mf_parallel.shards import merge_tensors

    if tensors.whole:
        return tensors.ranks[0]
    strategy, source = tensors.strategy, str(tensors.path)
    weights = merge_tensors([w for w, _ in tensors.ranks],
                            placements(strategy, tensors.global_shapes(), False, source),
                            strategy.config)
    optimizer = merge_tensors([o for _, o in tensors.ranks],
                              placements(strategy, _optimizer_shapes(tensors), True, source),
                              strategy.config)
    return weights, optimizer


def shard_checkpoint(tensors: CheckpointTensors, strategy: Any) -> list[tuple[dict, dict]]:
    """Every rank's (weights, optimizer state) under `strategy`, from whole or sharded
    tensors (split, or resharded one tensor at a time)."""
    from mf_parallel.shards import reshard_tensors, split_tensors

    source = str(tensors.path)
    shapes, opt_shapes = tensors.global_shapes(), _optimizer_shapes(tensors)
    dst_w = placements(strategy, shapes, False, f"destination strategy for {source}")
    dst_o = placements(strategy, opt_shapes, True, f"destination strategy for {source}")
    if tensors.whole:
        weights, optimizer = tensors.ranks[0]
        rank_w = split_tensors(weights, dst_w, strategy.config)
        rank_o = split_tensors(optimizer, dst_o, strategy.config)
    else:
        src = tensors.strategy
        rank_w = reshard_tensors([w for w, _ in tensors.ranks],
                                 placements(src, shapes, False, source), src.config,
                                 dst_w, strategy.config)
        rank_o = reshard_tensors([o for _, o in tensors.ranks],
                                 placements(src, opt_shapes, True, source), src.config,
                                 dst_o, strategy.config)
    return list(zip(rank_w, rank_o, strict=True))


def _copy_top_files(src: Path, dst: Path) -> None:
    """Everything beside the tensors (trainer state, config, tokenizer, LoRA config)."""
    from mf_models.weights.io import is_pickle

    skip = {WEIGHTS_FILE, OPTIMIZER_FILE, STRATEGY_FILE}
    for item in src.iterdir():
        if item.is_file() and item.name not in skip and not is_temporary(item) and \
                not is_pickle(item):
            shutil.copy2(item, dst / item.name)


def write_whole(dst: Path, src: Path, weights: Mapping[str, np.ndarray],
                optimizer: Mapping[str, np.ndarray]) -> Path:
    from mf_models.weights.io import write_safetensors

    with atomic_directory(dst) as tmp:
        _copy_top_files(src, tmp)
        write_marker(tmp, "model")
        write_safetensors(weights, tmp / WEIGHTS_FILE)
        if optimizer:
            write_safetensors(optimizer, tmp / OPTIMIZER_FILE)
    return dst


def write_sharded(dst: Path, src: Path | None, strategy: Any,
                  ranks: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
                  ) -> Path:
    from mf_models.weights.io import write_safetensors
    from mf_parallel import write_strategy

    with atomic_directory(dst) as tmp:
        if src is not None:
            _copy_top_files(src, tmp)
        write_marker(tmp, "model")
        write_strategy(strategy, tmp / STRATEGY_FILE)
        for rank, (weights, optimizer) in enumerate(ranks):
            folder = rank_dir(tmp, rank)
            folder.mkdir()
            write_safetensors(weights, folder / WEIGHTS_FILE)
            if optimizer:
                write_safetensors(optimizer, folder / OPTIMIZER_FILE)
    return dst


def transform_checkpoint(src: str | Path, dst: str | Path, *,
                         dst_strategy: str | Path | None = None, dst_layout: str | None = None,
                         src_strategy: str | Path | None = None, src_layout: str | None = None,
                         model: str | None = None, overwrite: bool = False) -> Path:
    """`mf ckpt transform`: SRC (whole or sharded) to DST under a strategy file or a layout;
    `dp=1,mp=1,pp=1` merges into a whole checkpoint (a model directory). DST is new (or an
    earlier output of mf's, with `overwrite`)."""
    from mf_train.outputs import claim_output

    if (dst_strategy is None) == (dst_layout is None):
        raise TrainConfigError("give exactly one of --dst-strategy FILE and --dst-layout "
                               "dp=D,mp=M,pp=P")
    config = parse_layout(dst_layout) if dst_layout is not None else None  # a typo: no reading
    claim = claim_output(dst, kind="model", what="DST", overwrite=overwrite,
                         hint="choose a new DST")
    dst = claim.path
    if Path(src).absolute() == dst:
        raise TrainConfigError(f"DST {dst} is SRC; choose a new DST")
    tensors = read_checkpoint_tensors(src, src_strategy, src_layout)
    if dst.exists() and not claim.replaces:
        dst.rmdir()  # empty: the filled folder is renamed into its place
    if dst_strategy is not None:
        strategy = read_destination_strategy(dst_strategy, tensors, dst_layout)
    else:
        if config.device_num == 1 and not config.optimizer_shard:
            return write_whole(dst, tensors.path, *merge_checkpoint(tensors))
        strategy = strategy_for_layout(tensors, config, model)
    return write_sharded(dst, tensors.path, strategy, shard_checkpoint(tensors, strategy))


def transform_for_resume(src_checkpoint: str | Path, dst_strategy: Any) -> Path:
    """`auto_trans_ckpt: true`: the checkpoint laid out for `dst_strategy` (a Strategy or a
    strategy file). Returns `src_checkpoint` itself when it already is; otherwise a sibling
    `<checkpoint>.<layout>` (made once, reused), whole when the destination has one rank."""
    from mf_parallel import Strategy, read_strategy

    src = Path(src_checkpoint)
    strategy = dst_strategy if isinstance(dst_strategy, Strategy) else read_strategy(dst_strategy)
    tensors = read_checkpoint_tensors(src)
    if tensors.strategy == strategy or (tensors.whole and strategy.config.device_num == 1):
        return src
    target = src.parent / f"{src.name}.{_layout_tag(strategy.config)}"
    if target.is_dir():
        done = read_checkpoint_tensors(target)
        if done.strategy == strategy or (done.whole and strategy.config.device_num == 1):
            return target
        raise CheckpointMismatchError(f"{target} exists with another layout; remove it or "
                                      "resume onto its layout")
    if strategy.config.device_num == 1:
        return write_whole(target, src, *merge_checkpoint(tensors))
    return write_sharded(target, src, strategy, shard_checkpoint(tensors, strategy))


# ---- without training ---------------------------------------------------------------------------

def save_strategy_only(model_config: Any, params: Iterable[tuple[str, Sequence[int]]],
                       parallel_config: Any, directory: str | Path, offset: int = 0) -> Path:
    """`only_save_strategy: true`: the run's strategy file (`<directory>/strategy.json`) for the
    model's parameters (name, shape, in model order) under `parallel_config`, nothing else."""
    from mf_parallel import Strategy, write_strategy
    from mf_parallel.errors import LayoutError

    from mf_train.lora import lora_sharding_plan

    params = list(params)
    plan = lora_sharding_plan(type(model_config).sharding_plan)  # LoRA weights, if any, too
    try:
        strategy = Strategy.from_plan(plan, params, parallel_config, model_config.num_layers,
                                      offset)
    except LayoutError as exc:
        raise TrainConfigError(str(exc)) from None
    return write_strategy(strategy, Path(directory) / STRATEGY_FILE)


# ---- a sharded save from the ranks of a run -----------------------------------------------------

def staging_dir(directory: str | Path, step: int) -> Path:
    """Where the ranks of a run write their shards of checkpoint-<step> before it appears
    (a temporary name: readers and `list_checkpoints` skip it)."""
    return Path(directory) / f".checkpoint-{step}.tmp-staging"


def write_rank_shard(staging: str | Path, rank: int, weights: Mapping[str, np.ndarray],
                     optimizer: Mapping[str, np.ndarray]) -> Path:
    """One rank's part of a sharded save (each rank calls this for itself)."""
    from mf_models.weights.io import write_safetensors

    with atomic_directory(rank_dir(staging, rank)) as tmp:
        write_safetensors(weights, tmp / WEIGHTS_FILE)
        write_safetensors(optimizer, tmp / OPTIMIZER_FILE)
    return rank_dir(staging, rank)


def finalize_sharded(staging: str | Path, final: str | Path, strategy: Any, state_json: str,
                     model_files: Callable[[Path], Any] | None = None) -> Path:
    """After every rank wrote its folder (a barrier): the strategy and trainer state, then
    one rename makes checkpoint-<step> appear complete."""
    import os

    from mf_parallel import write_strategy

    from mf_train.atomic import fsync_path

    staging, final = Path(staging), Path(final)
    missing = [r for r in range(strategy.config.device_num) if not rank_dir(staging, r).is_dir()]
    if missing:
        raise CheckpointNotFoundError(f"{staging}: rank {missing[0]} has not written its shard")
    write_strategy(strategy, staging / STRATEGY_FILE)
    (staging / STATE_FILE).write_text(state_json, encoding="utf-8")
    if model_files is not None:
        model_files(staging)
    for item in staging.rglob("*"):
        if item.is_file():
            fsync_path(item)
    os.rename(staging, final)
    fsync_path(final.parent)
    return final
