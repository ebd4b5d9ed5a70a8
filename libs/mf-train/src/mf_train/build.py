"""Build a planned run: the model with its weights, the optimizer, the compiled train step and
the evaluator. MindSpore starts here.

    slot = ModelSlot(run)                     # the model, built on first use
    model = slot.ready(run.config.load_checkpoint)       # base weights in, then LoRA
    parts = build_training(run, plan, data, slot, world)  # optimizer, TrainStep, Evaluator

`ModelSlot` keeps what a Trainer knows about its model between calls: whether LoRA layers are
on and whether the weights are already the ones to use (trained or loaded here), so
`evaluate()` after `train()` evaluates what was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.errors import TrainConfigError
from mf_train.plan import Plan
from mf_train.resolve import Run, uses_parallel_step
from mf_train.run_data import RunData


class ModelSlot:
    """The model of a run: a given instance, or built from the run's model config."""

    def __init__(self, run: Run, given: Any = None):
        self.run = run
        self._model = given if given is not None and not isinstance(given, str) else None
        self.lora_applied = False
        self.weights_ready = False  # trained or loaded here: later calls keep them

    @property
    def model(self) -> Any:
        if self._model is None:
            config = self.run.model_config  # the task's head (AutoModelForCausalLM by default)
            self._model = self.run.task.head_class(config)(config, seed=self.run.config.seed)
        return self._model

    def ready(self, base_source: str | Path | None) -> Any:
        """The model with `base_source`'s weights in (unless None), then LoRA layers if the
        run fine-tunes with LoRA (added after the base weights so those load name for name)."""
        model = self.model
        if base_source:
            self.load(base_source)
        if self.run.pet and not self.lora_applied:
            from mf_train.lora import apply_lora

            apply_lora(model, self.run.pet, seed=self.run.config.seed)
            self.lora_applied = True
        return model

    def load(self, source: str | Path) -> None:
        """Base weights; or, once LoRA layers are on, a LoRA-only checkpoint (a LoRA run's)."""
        from mf_train.model_setup import load_start_weights, read_start_weights

        if not self.lora_applied:
            load_start_weights(self.model, source)
            return
        from mf_train.lora import load_lora
        from mf_train.lora.model import is_lora_name

        weights = read_start_weights(source, self.model)
        if weights and all(is_lora_name(name) for name in weights):
            load_lora(self.model, weights)
            return
        raise TrainConfigError(f"{source}: this model already has LoRA layers; give a LoRA "
                               "checkpoint (a LoRA run's job or checkpoint)")

    def for_inference(self, checkpoint: str | Path | bool | None,
                      random_init: bool = False) -> Any:
        """evaluate/predict/export: the weights already here once trained or loaded;
        otherwise load_checkpoint's (the base, under LoRA) and `checkpoint` (instead of
        load_checkpoint's; under LoRA, the LoRA run's over the base).

        Without any weights this is an error, unless `random_init` asks for an untrained
        model on purpose (issue 10: never run on random weights without saying so).
        """
        if checkpoint is False or (checkpoint in (None, True) and self.weights_ready):
            return self.ready(None)
        base = self.run.config.load_checkpoint or None
        named = checkpoint if checkpoint not in (None, True) else None
        if base is None and named is None and not random_init:
            raise TrainConfigError(
                f"{self.run.mode} needs trained weights: set load_checkpoint (in the run YAML "
                "or --options load_checkpoint=PATH) or pass --checkpoint PATH; --random-init "
                "runs an untrained model on purpose")
        if self.run.pet and not self.lora_applied:
            model = self.ready(base)
            if named is not None:
                self.load(named)
        else:
            model = self.ready(named or base)
        self.weights_ready = True
        return model

    def saved_params(self) -> list[Any]:
        """What a checkpoint holds: every weight, or only the trainable ones under LoRA."""
        model = self.model
        return list(model.trainable_params() if self.run.pet else model.get_parameters())

    def signature(self) -> dict[str, list]:
        """name -> [shape, dtype] of what a checkpoint of this run holds (resume checks)."""
        return {p.name: [list(p.shape), np.dtype(_np_dtype(p)).name]
                for p in self.saved_params()}

    def checkpoint_files(self, tokenizer: Any) -> Callable[[Path], None] | None:
        """What makes a checkpoint a model directory too (config + tokenizer beside the
        weights, as Hugging Face's Trainer saves them), so `mf generate <checkpoint>` reads
        it. Not under LoRA: its checkpoints hold only the LoRA weights."""
        if self.run.pet:
            return None
        model = self.model

        def write(folder: Path) -> None:
            model.config.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)

        return write


@dataclass
class TrainingParts:
    """What the loop runs: built from a plan, with a resume's state restored."""

    model: Any
    optimizer: Any
    learning_rates: np.ndarray  # the schedule's rate for every step (AdamW's array)
    train_step: Any
    evaluator: Any | None
    saved_params: list[Any]
    recomputed: int  # transformer blocks recomputed in backward
    notes: list[str]
    # which share of each global batch this rank reads: its data-parallel index of how many
    # (every model-parallel and pipeline rank of one replica reads the same rows)
    data_rank: int = 0
    data_ranks: int = 1
    part: Any = None  # mf_models.parallel.ModelPart when the model is split over ranks
    # name -> [shape, dtype] of what a checkpoint holds, whole (a sharded save records it too)
    signature: dict[str, list] = field(default_factory=dict)

    @property
    def sharded(self) -> bool:
        """This rank holds slices (of weights or optimizer state): checkpoints are sharded."""
        return self.part is not None


def build_training(run: Run, plan: Plan, data: RunData, slot: ModelSlot, world: Any, *,
                   start_weights: str | Path | None,
                   compute_metrics: Callable[..., dict[str, float]] | None = None,
                   tokenizer: Any = None) -> TrainingParts:
    """The model (start weights or, for a resume, the checkpoint's), optimizer, compiled step
    and evaluator of a planned training run."""
    from mf_train.checkpoint import check_resume
    from mf_train.loss_scale import step_wrapper_from_config
    from mf_train.lr_schedule import learning_rates
    from mf_train.model_setup import apply_recompute
    from mf_train.optim import build_adamw
    from mf_train.train_step import TrainStep

    config = run.config
    notes: list[str] = []
    # A resume restores every trained weight; under LoRA the frozen base is not in the
    # checkpoint and comes from load_checkpoint as at the start.
    base = start_weights if plan.resume is None or run.pet else None
    if run.mode == "finetune" and base is None and plan.resume is None \
            and not slot.weights_ready:
        notes.append("finetune with --random-init: training from randomly initialised weights")
    model = slot.ready(base)
    slot.weights_ready = True
    saved = slot.saved_params()
    signature = slot.signature()  # of the whole model, before any sharding
    if plan.resume is not None:
        check_resume(plan.resume.state, signature=signature, source=str(plan.resume.path))
    recomputed = apply_recompute(model, config.recompute_config)
    wrapper = step_wrapper_from_config(config.runner_wrapper)
    # the whole run's rates (past the schedule's end if the run is longer): AdamW indexes
    # them with its global_step, in the graph
    assert plan.schedule is not None
    lrs = learning_rates(plan.schedule, max(plan.total_steps, plan.train_steps) + 1)
    if uses_parallel_step(run.parallel):
        parts = _parallel_parts(run, plan, data, model, world, lrs, wrapper, recomputed, notes,
                                compute_metrics)
        parts.signature = signature
        return parts
    optimizer = build_adamw(list(model.trainable_params()), lrs, beta1=config.optimizer.beta1,
                            beta2=config.optimizer.beta2, eps=config.optimizer.eps,
                            weight_decay=config.optimizer.weight_decay)
    settings = dict(micro_batches=plan.micro_batches, world_size=world.size,
                    max_grad_norm=wrapper.max_grad_norm,
                    skip_nonfinite=wrapper.loss_scale is not None)
    if run.task.causal:
        train_step = TrainStep(model, optimizer, **settings)
    else:
        from mf_train.task_step import TaskTrainStep

        train_step = TaskTrainStep(model, optimizer, run.task, **settings)
    return TrainingParts(model=model, optimizer=optimizer, learning_rates=lrs,
                         train_step=train_step,
                         evaluator=build_evaluator(run, model, data, world, compute_metrics,
                                                   tokenizer),
                         saved_params=saved, recomputed=recomputed, notes=notes,
                         data_rank=world.rank, data_ranks=world.size, signature=signature)


def _parallel_parts(run: Run, plan: Plan, data: RunData, model: Any, world: Any,
                    lrs: np.ndarray, wrapper: Any, recomputed: int, notes: list[str],
                    compute_metrics: Callable[..., dict[str, float]] | None) -> TrainingParts:
    """The model split over the ranks by its family's plan, and its parallel step
    (parallel_step.py): tensor and pipeline parallel, optimizer sharding, interleaving."""
    from mf_parallel.pipeline import schedule_kind

    from mf_train.parallel_step import build_parallel_step

    config, parallel = run.config, run.parallel
    step = build_parallel_step(
        model, parallel, world.rank, learning_rates=lrs,
        adamw={"beta1": config.optimizer.beta1, "beta2": config.optimizer.beta2,
               "eps": config.optimizer.eps, "weight_decay": config.optimizer.weight_decay},
        micro_batches=plan.micro_batches, interleave=parallel.micro_batch_interleave_num,
        max_grad_norm=wrapper.max_grad_norm, skip_nonfinite=wrapper.loss_scale is not None,
        schedule=schedule_kind(config.parallel.pipeline_config),
        offset=config.model.model_config.get("offset", 0))
    notes.append(f"rank {world.rank}: pipeline stage {step.part.stage} of "
                 f"{parallel.pipeline_stage}, data-parallel share {step.data_rank} of "
                 f"{step.data_ranks}, {len(step.part.params)} parameter slices")
    evaluator = None
    if data.eval is not None:
        from mf_train.evaluation import Evaluator, metric_types
        from mf_train.parallel_eval import ParallelEvalStep

        evaluator = Evaluator(model, data.eval, eval_batch_size(run), rank=step.data_rank,
                              world_size=step.data_ranks, metrics=metric_types(config.metric),
                              compute_metrics=compute_metrics, step=ParallelEvalStep(step),
                              group=step.part.groups.dp)
    return TrainingParts(model=model, optimizer=step.optimizer, learning_rates=lrs,
                         train_step=step, evaluator=evaluator,
                         saved_params=list(step.part.params), recomputed=recomputed,
                         notes=notes, data_rank=step.data_rank, data_ranks=step.data_ranks,
                         part=step.part)


def build_evaluator(run: Run, model: Any, data: RunData, world: Any,
                    compute_metrics: Callable[..., dict[str, float]] | None = None,
                    tokenizer: Any = None) -> Any:
    """The Evaluator of the run's eval dataset (None without one)."""
    from mf_train.evaluation import Evaluator, metric_types

    if data.eval is None:
        return None
    if not run.task.causal:
        from mf_train.task_step import TaskEvaluator

        if compute_metrics is not None:
            raise TrainConfigError(f"task {run.task.name} reports its own metrics "
                                   f"({', '.join(run.task.metrics) or 'loss'}); "
                                   "compute_metrics is for causal LM runs")
        return TaskEvaluator(model, run.task, data.eval, eval_batch_size(run), tokenizer)
    return Evaluator(model, data.eval, eval_batch_size(run), rank=world.rank,
                     world_size=world.size, metrics=metric_types(run.config.metric),
                     compute_metrics=compute_metrics)


def eval_batch_size(run: Run) -> int:
    """eval_dataset.batch_size (TrainingArguments' per_device_eval_batch_size), else the
    training batch size."""
    written = run.config.eval_dataset.batch_size
    return written if written is not None else run.config.runner_config.batch_size


def restore(parts: TrainingParts, run: Run, resume: Any, state: Any, rank: int) -> None:
    """Weights, optimizer moments, step and loss scale of the checkpoint a run resumes from,
    in place (`write_in_place`: graphs compiled before keep reading the same buffers).

    A checkpoint of this run's layout gives each rank its own slices; one of another layout
    (whole, or sharded otherwise) is resharded in memory when `auto_trans_ckpt: true`
    (MindFormers' key), else refused naming both layouts.
    """
    from mf_models.weights.io import write_in_place

    from mf_train.loss_scale import LossScale
    from mf_train.optim import load_optimizer_state

    weights, optimizer = _resume_tensors(parts, run, resume.path, rank)
    params = {p.name: p for p in parts.saved_params}
    for name, value in weights.items():
        write_in_place(params[name], value)
    load_optimizer_state(parts.optimizer, optimizer, str(resume.path))
    state.step = resume.state.step
    if resume.state.loss_scale and state.loss_scale is not None:
        state.loss_scale = LossScale.from_dict(resume.state.loss_scale)


def _resume_tensors(parts: TrainingParts, run: Run, path: Path,
                    rank: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from mf_models.weights.io import read_safetensors

    from mf_train.checkpoint import OPTIMIZER_FILE, WEIGHTS_FILE, load_checkpoint
    from mf_train.errors import CheckpointMismatchError
    from mf_train.sharded import (
        is_sharded,
        merge_checkpoint,
        rank_dir,
        read_checkpoint_tensors,
        shard_checkpoint,
    )

    if not parts.sharded and not is_sharded(path):
        checkpoint = load_checkpoint(path)
        return checkpoint.weights, checkpoint.optimizer
    tensors = read_checkpoint_tensors(path, run.config.src_strategy_path_or_dir or None)
    wanted = parts.part.strategy if parts.sharded else None
    if wanted is not None and tensors.strategy == wanted:
        folder = rank_dir(path, rank)
        return read_safetensors(folder / WEIGHTS_FILE), read_safetensors(folder / OPTIMIZER_FILE)
    if not run.config.auto_trans_ckpt:
        here = "one process" if wanted is None else _layout(wanted.config)
        there = "whole" if tensors.strategy is None else _layout(tensors.strategy.config)
        raise CheckpointMismatchError(
            f"cannot resume from {path}: it was saved {there}, this run is {here}; set "
            "auto_trans_ckpt: true to reshard it on resume (or mf ckpt transform it first)")
    if wanted is None:
        return merge_checkpoint(tensors)
    return shard_checkpoint(tensors, wanted)[rank]


def _layout(config: Any) -> str:
    shard = ", optimizer_shard" if config.optimizer_shard else ""
    return (f"dp={config.data_parallel}, mp={config.model_parallel}, "
            f"pp={config.pipeline_stage}{shard}")


def _np_dtype(param: Any) -> Any:
    return {"Float16": np.float16, "Float32": np.float32, "BFloat16": np.float32,
            "Int32": np.int32}.get(str(param.dtype), np.float32)
