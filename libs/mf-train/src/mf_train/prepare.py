"""Everything a run checks before it writes anything: config, data, batch, schedule, resume.

`prepare_run` is the order the CLI and the Trainer follow: every bad input (malformed YAML,
unknown key, missing dataset, dataset too short for one batch, checkpoint from another run)
fails here with its one-line, exit-code-2 error, before the job directory exists; only then
is the job directory created, in one rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_train.checkpoint import Checkpoint, check_resume, load_checkpoint
from mf_train.data import START, BatchOrder, DataPosition, TokenDataset, load_dataset_from_config
from mf_train.errors import TrainConfigError
from mf_train.jobdir import JobDir
from mf_train.lr_schedule import LrSchedule
from mf_train.run_yaml import DerivedValue, RunConfig


@dataclass
class PreparedRun:
    config: RunConfig
    train_dataset: TokenDataset
    eval_dataset: TokenDataset | None
    order: BatchOrder
    total_steps: int
    schedule: LrSchedule
    derived: list[DerivedValue]
    start: DataPosition = START
    resume: Checkpoint | None = None
    job: JobDir | None = None
    notes: list[str] = field(default_factory=list)

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
                rank: int = 0) -> PreparedRun:
    """Check a run end to end and (on rank 0, if asked) create its job directory.

    Datasets may be given already built (a Python caller's own data); otherwise they come from
    the config's train_dataset/eval_dataset sections. `resume_from` is a checkpoint or job dir.
    """
    seq_length = seq_length_of(config)
    if train_dataset is None:
        train_dataset = load_dataset_from_config(config.train_dataset, tokenizer, seq_length)
    if eval_dataset is None and config.do_eval and config.eval_dataset.data_loader.dataset_dir:
        eval_dataset = load_dataset_from_config(config.eval_dataset, tokenizer, seq_length)
    derived = config.derived(num_samples=len(train_dataset))
    train_dataset.check_fills_a_batch(config.global_batch_size, derived[0].formula)
    if eval_dataset is not None and len(eval_dataset) == 0:
        raise TrainConfigError(f"eval dataset {eval_dataset.source} holds no sample of "
                               f"seq_length({seq_length}) + 1 tokens")
    total_steps = config.total_steps(len(train_dataset))
    schedule = config.lr_schedule_for(total_steps)
    seed = config.train_dataset.seed if config.train_dataset.seed is not None else config.seed
    order = train_dataset.order(config.global_batch_size, seed,
                                config.train_dataset.data_loader.shuffle,
                                config.train_dataset.drop_remainder)
    resume = start = None
    if resume_from is not None:
        resume = load_checkpoint(resume_from)
        check_resume(resume.state, trajectory=config.trajectory(), source=str(resume.path))
        start = DataPosition.from_dict(resume.state.data_position)
    notes = list(config.notes()) + train_dataset.notes
    job = None
    if create_job and rank == 0:
        job_root = Path(config.output_dir)
        if resume is not None and JobDir(job_root).exists():
            job = JobDir(job_root)
        else:
            job = JobDir.create(job_root, config_yaml=_job_yaml(config, derived), argv=argv,
                                overwrite=overwrite)
    return PreparedRun(config=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                       order=order, total_steps=total_steps, schedule=schedule, derived=derived,
                       start=start or START, resume=resume, job=job, notes=notes)


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
