"""Everything a run checks before it writes anything: config, data, batch, schedule, resume.

`prepare_run` is the order the CLI and the Trainer follow: every bad input (malformed YAML,
unknown key, missing dataset, dataset too short for one batch, checkpoint from another run)
fails here with its one-line, exit-code-2 error, before the job directory exists; only then
is the job directory created, in one rename.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.checkpoint import Checkpoint, check_resume, load_checkpoint
from mf_train.data import START, BatchOrder, DataPosition, TokenDataset, load_dataset_from_config
from mf_train.errors import TrainConfigError
from mf_train.jobdir import JobDir
from mf_train.lr_schedule import LrSchedule
from mf_train.outputs import claim_output
from mf_train.run_yaml import DerivedValue, RunConfig


@dataclass
class PreparedRun:
    config: RunConfig
    train_dataset: TokenDataset
    eval_dataset: TokenDataset | None
    order: BatchOrder
    total_steps: int  # of the learning-rate schedule
    schedule: LrSchedule
    derived: list[DerivedValue]
    start: DataPosition = START
    resume: Checkpoint | None = None
    job: JobDir | None = None
    notes: list[str] = field(default_factory=list)
    train_steps: int = 0  # how many optimizer steps the run takes (max_steps or epochs)
    trajectory: dict[str, Any] = field(default_factory=dict)  # what a resume must find again

    def summary_lines(self) -> list[str]:
        """What to print before the first step: derived values and notes, one per line."""
        return [str(d) for d in self.derived] + self.notes


def seq_length_of(config: RunConfig) -> int:
    value = config.model.model_config.get("seq_length")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        where = config.origins.get("model.model_config.seq_length", "")
        prefix = f"{where}: " if where else ""
        raise TrainConfigError(f"{prefix}model.model_config.seq_length = {value!r}; a training "
                               "run needs an integer >= 1")
    return value


def prepare_run(config: RunConfig, tokenizer: object | None = None, *,
                train_dataset: TokenDataset | None = None,
                eval_dataset: TokenDataset | None = None,
                resume_from: str | Path | None = None, create_job: bool = True,
                argv: Sequence[str] | None = None, overwrite: bool = False,
                rank: int = 0, vocab_size: int | None = None,
                model_signature: Mapping[str, list] | None = None,
                extra_trajectory: Mapping[str, Any] | None = None,
                need_train_data: bool = True) -> PreparedRun:
    """Check a run end to end and (on rank 0, if asked) create its job directory.

    Datasets may be given already built (a Python caller's own data); otherwise they come from
    the config's train_dataset/eval_dataset sections. `resume_from` is a checkpoint or job dir.
    `vocab_size` checks every token id against the model; `model_signature` (name -> [shape,
    dtype]) checks a resume checkpoint against the model; `extra_trajectory` adds derived
    values a resume must find unchanged. An evaluation alone passes `need_train_data=False`.
    """
    seq_length = seq_length_of(config)
    if create_job and rank == 0 and resume_from is None:
        # the output rule first (outputs.py): a refused output_dir costs no data loading
        claim_output(config.output_dir, kind="job", what="output_dir",
                     overwrite=overwrite or config.overwrite_output_dir,
                     hint="choose another output_dir")
    if train_dataset is None and need_train_data:
        train_dataset = load_dataset_from_config(config.train_dataset, tokenizer, seq_length)
    if eval_dataset is None and (config.do_eval or not need_train_data) \
            and _has_source(config.eval_dataset):
        eval_dataset = load_dataset_from_config(config.eval_dataset, tokenizer, seq_length)
    if train_dataset is None:
        train_dataset = TokenDataset(np.zeros((0, seq_length + 1), np.int32), source="<none>")
    for name, dataset in (("train", train_dataset), ("eval", eval_dataset)):
        if dataset is not None and len(dataset):
            _check_samples(name, dataset, seq_length, vocab_size)
    derived = config.derived(num_samples=len(train_dataset))
    if need_train_data:
        train_dataset.check_fills_a_batch(config.global_batch_size, derived[0].formula)
    if eval_dataset is not None and len(eval_dataset) == 0:
        raise TrainConfigError(f"eval dataset {eval_dataset.source} holds no sample of "
                               f"seq_length({seq_length}) + 1 tokens")
    if not need_train_data:
        return PreparedRun(config=config, train_dataset=train_dataset,
                           eval_dataset=eval_dataset, order=train_dataset.order(1, 0),
                           total_steps=1, schedule=config.lr_schedule_for(1), derived=derived,
                           notes=list(config.notes()) + (eval_dataset.notes if eval_dataset
                                                          else []))
    total_steps = config.total_steps(len(train_dataset))
    train_steps = config.train_steps(len(train_dataset))
    schedule = config.lr_schedule_for(total_steps)
    seed = config.train_dataset.seed if config.train_dataset.seed is not None else config.seed
    order = train_dataset.order(config.global_batch_size, seed,
                                config.train_dataset.data_loader.shuffle,
                                config.train_dataset.drop_remainder)
    resume = start = None
    # The schedule's length is derived when total_steps is -1 (epochs * steps per epoch): a
    # resume must find the same value, or every learning rate after it would differ.
    trajectory = {**config.trajectory(), "derived.lr_schedule.total_steps": total_steps,
                  **dict(extra_trajectory or {})}
    if resume_from is not None:
        resume = load_checkpoint(resume_from)
        check_resume(resume.state, trajectory=trajectory, signature=model_signature,
                     source=str(resume.path))
        start = DataPosition.from_dict(resume.state.data_position)
    notes = list(config.notes()) + train_dataset.notes
    if eval_dataset is not None:
        notes += eval_dataset.notes
    job = None
    if create_job and rank == 0:
        if resume is not None and config.output_dir and JobDir(config.output_dir).exists():
            job = JobDir(Path(config.output_dir))
        else:
            job = JobDir.create(config.output_dir, config_yaml=_job_yaml(config, derived),
                                argv=argv, overwrite=overwrite or config.overwrite_output_dir)
            if job.note:
                notes.append(job.note)
    return PreparedRun(config=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                       order=order, total_steps=total_steps, schedule=schedule, derived=derived,
                       start=start or START, resume=resume, job=job, notes=notes,
                       train_steps=train_steps, trajectory=trajectory)


def _has_source(dataset_config: Any) -> bool:
    loader = dataset_config.data_loader
    return bool(loader.dataset_dir) or loader.type == "PythonStdlibDataset"


def _check_samples(name: str, dataset: TokenDataset, seq_length: int,
                   vocab_size: int | None) -> None:
    """Samples that fit the model: not longer than seq_length + 1, ids inside the vocabulary."""
    if dataset.sample_length > seq_length + 1 or dataset.sample_length < 2:
        raise TrainConfigError(
            f"{name} dataset {dataset.source} holds samples of {dataset.sample_length} tokens; "
            f"the model reads 2 .. seq_length({seq_length}) + 1 = {seq_length + 1}")
    if vocab_size is not None:
        low, high = int(dataset.samples.min()), int(dataset.samples.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise TrainConfigError(
                f"{name} dataset {dataset.source} holds token id {bad}, outside the model's "
                f"vocabulary [0, {vocab_size}); use the tokenizer the model was made for, or "
                "set model.model_config.vocab_size")


def _job_yaml(config: RunConfig, derived: list[DerivedValue]) -> str:
    header = ["# The resolved run config: every key, defaults included.",
              "# Derived (not settings; shown for reference):"]
    header += [f"#   {d}" for d in derived]
    if config.files:
        header.append("# From: " + ", ".join(str(p) for p in config.files))
    return "\n".join(header) + "\n" + config.to_yaml()


def describe(prepared: PreparedRun) -> dict[str, Any]:
    """A JSON-able summary (for launch records and tests)."""
    return {"num_samples": len(prepared.train_dataset), "total_steps": prepared.total_steps,
            "global_batch_size": prepared.config.global_batch_size,
            "start": prepared.start.to_dict(),
            "job": str(prepared.job.root) if prepared.job else None}
