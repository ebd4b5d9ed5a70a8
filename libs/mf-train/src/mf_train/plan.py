"""Plan a resolved run: pure arithmetic over the Run (and its datasets once loaded).

    plan = plan_run(run)                    # before any data: batch, memory, where it writes
    plan = plan_run(run, data, resume_from=checkpoint)   # + steps, schedule, order, resume
    print("\\n".join(plan.summary_lines()))

A plan builds nothing and writes nothing: it can be printed, tested and shown in the TUI
before a model exists. It refuses, with one line and exit code 2, what cannot run: a run that
cannot fit this machine's memory, an output directory mf may not write (outputs.py), a dataset
that cannot fill one batch, a resume into a changed run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_train.checkpoint import TrainerState, check_resume, read_trainer_state
from mf_train.data import START, BatchOrder, DataPosition
from mf_train.errors import TrainConfigError
from mf_train.lr_schedule import LrSchedule
from mf_train.outputs import OutputClaim, claim_output
from mf_train.resolve import Run, model_dims_of
from mf_train.run_data import RunData
from mf_train.run_yaml import DerivedValue

GIB = 2**30
SCHEDULE_KEY = "derived.lr_schedule.total_steps"


@dataclass(frozen=True)
class MemoryNeed:
    """What a run needs per rank against what this machine has (mf-parallel's estimate)."""

    per_rank: int  # bytes
    ranks_here: int  # ranks on this machine
    available: int | None  # bytes available now (None: unknown)
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.per_rank * self.ranks_here

    def line(self) -> str:
        have = "unknown" if self.available is None else f"{self.available / GIB:.1f} GiB"
        ranks = f" x {self.ranks_here} ranks" if self.ranks_here > 1 else ""
        return (f"memory estimate: {self.per_rank / GIB:.2f} GiB per rank{ranks}; "
                f"available: {have}")


@dataclass(frozen=True)
class ResumePoint:
    path: Path  # the checkpoint folder
    state: TrainerState


@dataclass(frozen=True)
class Plan:
    """Everything a run will do, decided before anything is built."""

    run: Run
    derived: tuple[DerivedValue, ...]
    memory: MemoryNeed | None
    output: OutputClaim | None  # where the job directory goes (a new training run, rank 0)
    # what the datasets decide (zero / None until data is given)
    num_samples: int = 0
    sample_length: int = 0
    train_steps: int = 0  # optimizer steps the run takes (max_steps, or epochs)
    total_steps: int = 0  # length of the learning-rate schedule
    schedule: LrSchedule | None = None
    order: BatchOrder | None = None
    trajectory: dict[str, Any] = field(default_factory=dict)  # what a resume must find again
    start: DataPosition = START
    resume: ResumePoint | None = None
    notes: tuple[str, ...] = ()

    @property
    def micro_batches(self) -> int:
        """Micro batches per optimizer step and rank: micro_batch_num x accumulation."""
        config = self.run.config
        return config.parallel_config.micro_batch_num * \
            config.runner_config.gradient_accumulation_steps

    def summary_lines(self) -> list[str]:
        """What to print before the first step: derived values, memory, notes."""
        lines = [str(d) for d in self.derived]
        if self.memory is not None:
            lines.append(self.memory.line())
        return lines + list(self.notes)

    def describe(self) -> list[str]:
        """The plan as a person reads it (`mf train CONFIG --dry-run`): the model and layout,
        steps and learning rate, then what a run prints before its first step, and where the
        job goes."""
        run, p = self.run, self.run.parallel
        model = run.model_config
        rc, lr = run.config.runner_config, run.config.lr_schedule
        name = getattr(model, "name", None) or model.family
        named = name if name == model.family else f"{name} ({model.family})"
        lines = [f"run: {run.mode} {named} on {run.world_size} rank(s): data_parallel="
                 f"{p.data_parallel} model_parallel={p.model_parallel} "
                 f"pipeline_stage={p.pipeline_stage} micro_batch_num={p.micro_batch_num}"
                 + (" optimizer_shard" if p.optimizer_shard else "")]
        if run.mode in ("train", "finetune"):
            steps = (f"{self.train_steps} optimizer steps" if self.train_steps else
                     f"{rc.max_steps} optimizer steps (runner_config.max_steps)"
                     if rc.max_steps > 0 else
                     f"{rc.epochs} epoch(s): steps are counted when the data is read")
            lines.append(f"steps: {steps}; learning rate: {lr.type} from "
                         f"{lr.learning_rate:g}")
        lines += self.summary_lines()
        if self.output is not None:
            lines.append(f"job directory: {self.output.path}"
                         + (" (replaces an earlier job of mf's)" if self.output.replaces else ""))
        return lines

    def to_dict(self) -> dict[str, Any]:
        """plan.json: what a reader of the job directory (the TUI) needs to know up front."""
        run, p = self.run, self.run.parallel
        model = run.model_config
        return {
            "schema": 1, "mode": run.mode, "world_size": run.world_size,
            "parallel": dataclasses.asdict(p),
            "global_batch_size": run.config.global_batch_size,
            "num_samples": self.num_samples, "train_steps": self.train_steps,
            "steps_per_epoch": self.order.batches_per_epoch if self.order else None,
            "epochs": run.config.runner_config.epochs,
            "memory_estimate_gib": None if self.memory is None else {
                "per_rank": round(self.memory.per_rank / GIB, 3),
                **{k: round(v / GIB, 3) for k, v in self.memory.parts.items()}},
            "model": {"name": getattr(model, "name", None), "family": model.family},
            "resume": None if self.resume is None else {"path": str(self.resume.path),
                                                        "step": self.resume.state.step},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def plan_run(run: Run, data: RunData | None = None, *, resume_from: str | Path | None = None,
             rank: int = 0, new_job: bool | None = None, check_memory: bool = True) -> Plan:
    """The plan of `run`; with `data`, also its steps, schedule, order and resume point.

    `new_job` (default: a train/finetune run that is not resuming, on rank 0) checks that
    output_dir may take a new job directory.
    """
    if new_job is None:
        new_job = run.mode in ("train", "finetune") and resume_from is None and rank == 0
    output = None
    if new_job:
        output = claim_output(run.config.output_dir, kind="job", what="output_dir",
                              overwrite=run.config.overwrite_output_dir,
                              hint="choose another output_dir")
    memory = memory_need(run) if check_memory else None
    notes = list(run.notes)
    if output is not None and output.note:
        notes.append(output.note)
    if data is None:
        return Plan(run=run, derived=tuple(run.config.derived()), memory=memory, output=output,
                    notes=tuple(notes))
    config = run.config
    num_samples = len(data.train)
    derived = config.derived(num_samples=num_samples)
    notes += data.notes
    fields: dict[str, Any] = {"num_samples": num_samples, "sample_length": data.train.sample_length}
    if run.mode in ("train", "finetune"):
        data.train.check_fills_a_batch(config.global_batch_size, derived[0].formula)
        total_steps = config.total_steps(num_samples)
        seed = config.train_dataset.seed if config.train_dataset.seed is not None else config.seed
        fields.update(
            train_steps=config.train_steps(num_samples), total_steps=total_steps,
            schedule=config.lr_schedule_for(total_steps),
            order=BatchOrder(num_samples, config.global_batch_size, seed,
                             config.train_dataset.data_loader.shuffle,
                             config.train_dataset.drop_remainder),
            # The schedule's length is derived when total_steps is -1 (epochs x steps per
            # epoch): a resume must find the same value, or every later rate would differ.
            trajectory={**run.trajectory(), SCHEDULE_KEY: total_steps})
        if resume_from is not None:
            resume, note = _resume_point(resume_from, fields["trajectory"],
                                         fields["train_steps"])
            fields.update(resume=resume,
                          start=DataPosition.from_dict(resume.state.data_position))
            if note:
                notes.append(note)
    return Plan(run=run, derived=tuple(derived), memory=memory, output=output,
                notes=tuple(notes), **fields)


def _resume_point(source: str | Path, trajectory: dict[str, Any],
                  train_steps: int) -> tuple[ResumePoint, str]:
    """The checkpoint to resume from, checked against this run's trajectory.

    Extending a run (a larger runner_config.max_steps, the only change) is allowed, as
    Hugging Face's Trainer allows it: the schedule then spans the new length, so learning
    rates after the checkpoint differ from the first run's; the note says so.
    """
    path, state = read_trainer_state(source)
    note = ""
    then = state.trajectory.get(SCHEDULE_KEY)
    now = trajectory.get(SCHEDULE_KEY)
    if state.trajectory and then is not None and then != now:
        others = {k: v for k, v in trajectory.items() if k != SCHEDULE_KEY}
        check_resume(state, trajectory={**others, SCHEDULE_KEY: then}, source=str(path))
        note = (f"resuming at step {state.step} with a schedule of {now} steps instead of "
                f"{then}: learning rates after step {state.step} differ from the first run's")
    else:
        check_resume(state, trajectory=trajectory, source=str(path))
    if state.step > train_steps:
        raise TrainConfigError(f"cannot resume from {path}: it is at step {state.step}, past "
                               f"this run's {train_steps} steps; raise runner_config.max_steps")
    return ResumePoint(path=path, state=state), note


def run_memory_estimate(config: Any, model_config: Any, parallel: Any, *,
                        recompute: bool | None = None) -> Any:
    """mf-parallel's estimate of a run (its RunConfig, model config and resolved layout):
    the family's parameters (with LoRA's weights, the base frozen) walked with its sharding
    plan, for this backend (CPU); None for a family without dims. What `mf train`, the TUI's
    setup screen and plan.json all show."""
    from mf_models import memory_inputs
    from mf_parallel import estimate_memory

    dims = model_dims_of(model_config)
    if dims is None:
        return None
    params = None
    # the run's pet_config, or the preset's (llama_7b_lora) before resolve_run copies it over
    pet = config.model.model_config.get("pet_config") or getattr(model_config, "pet_config",
                                                                 None)
    shapes = model_config.parameter_shapes()
    if pet and shapes is not None:
        from mf_train.lora.config import LoraConfig, lora_parameter_shapes, lora_sharding_plan

        params = lora_parameter_shapes(shapes, LoraConfig.from_dict(pet), model_config.family)
    inputs = memory_inputs(model_config, params)
    if params is not None:
        inputs["plan"] = lora_sharding_plan(inputs["plan"])
    if recompute is None:
        recompute = config.recompute_config.recompute not in (False, [])
    return estimate_memory(dims, parallel, batch_size=config.runner_config.batch_size,
                           recompute=recompute, train=config.run_mode in ("train", "finetune"),
                           **inputs)


def memory_need(run: Run) -> MemoryNeed | None:
    """mf-parallel's estimate of the run's memory per rank, refused (exit 2, needed against
    available) if the ranks on this machine cannot fit in what it has available now.

    Training counts weights, gradients, AdamW's moments, activations, data and what the CPU
    backend keeps on top; evaluation and prediction count the weights, one batch's activations
    and the key/value cache. A family mf-parallel has no dims for is not estimated (None).
    """
    estimate = run_memory_estimate(run.config, run.model_config, run.parallel)
    if estimate is None:
        return None
    parts = estimate.peak.parts()
    ranks_here = run.world_size  # one machine unless launched over nodes (mf launch)
    need = MemoryNeed(per_rank=estimate.per_device, ranks_here=ranks_here,
                      available=available_memory(), parts=parts)
    if need.available is not None and need.total > need.available:
        biggest = max(parts, key=parts.get)
        ranks = f" x {ranks_here} ranks" if ranks_here > 1 else ""
        raise TrainConfigError(
            f"this run needs {need.per_rank / GIB:,.1f} GiB per rank{ranks}, this machine has "
            f"{need.available / GIB:.1f} GiB available (most of it {biggest}); lower "
            "runner_config.batch_size or model.model_config.seq_length, or use a smaller model")
    return need


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), in bytes; None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
