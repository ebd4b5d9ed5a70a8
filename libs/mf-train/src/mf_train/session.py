"""The run modes (train/finetune, evaluate, predict, export) as resolve -> plan -> build -> loop.

    session = RunSession(resolve_run("run.yaml", mode="train"))
    summary = session.fit(argv=sys.argv)
    session.evaluate()

One path for every caller: `mf train` (jobs.py), each msrun rank (worker.py, from the job
directory's job.yaml) and `Trainer` (a facade over a session). A session keeps what one run's
calls share: the model and whether its weights are the ones to use, the tokenizer, and data
given from Python.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.build import ModelSlot, build_evaluator, build_training, restore
from mf_train.callbacks import TrainSummary, plan_callbacks
from mf_train.checkpoint import get_last_checkpoint
from mf_train.data import TokenDataset
from mf_train.errors import CheckpointNotFoundError, TrainConfigError
from mf_train.jobdir import JobDir
from mf_train.plan import Plan, plan_run
from mf_train.resolve import Run
from mf_train.run_data import RunData, load_run_data, run_tokenizer


class RunSession:
    """One run's calls over the same model, tokenizer and data."""

    def __init__(self, run: Run, *, model: Any = None, tokenizer: Any = None,
                 train_data: TokenDataset | None = None, eval_data: TokenDataset | None = None,
                 callbacks: Sequence[Any] = (),
                 compute_metrics: Callable[..., dict[str, float]] | None = None,
                 echo: bool = True, echo_steps: bool = True, random_init: bool = False):
        self.run = run
        self.random_init = random_init  # run untrained weights on purpose (--random-init)
        self.slot = ModelSlot(run, model)
        self._tokenizer = tokenizer
        self._tokenizer_notes: list[str] = []
        self.train_data, self.eval_data = train_data, eval_data
        self.callbacks = list(callbacks)
        self.compute_metrics = compute_metrics
        self.echo, self.echo_steps = echo, echo_steps
        self.last_summary: TrainSummary | None = None

    def reresolved(self, run: Run) -> None:
        """Take a new Run (a setter changed a key) before anything was built from the old."""
        self.run = run
        self.slot.run = run

    @property
    def tokenizer(self) -> Any | None:
        if self._tokenizer is None:
            self._tokenizer, self._tokenizer_notes = run_tokenizer(self.run)
        return self._tokenizer

    def data(self, need_train: bool = True) -> RunData:
        return load_run_data(self.run, self.tokenizer, train=self.train_data,
                             eval=self.eval_data, need_train=need_train)

    # ---- train and finetune -------------------------------------------------------------------
    def fit(self, *, start_weights: str | Path | bool | None = None,
            resume_from: str | Path | bool | None = None, resume_training: bool | None = None,
            argv: Sequence[str] | None = None, job_exists: bool = False) -> TrainSummary:
        """Train (mode train) or fine-tune (mode finetune) the run to its end.

        `start_weights`: weights to start from (default load_checkpoint); `resume_from`: a
        checkpoint, a job directory, or True for this run's output_dir. `job_exists`: the
        launcher made the job directory (an msrun rank).
        """
        from mf_train.distributed import setup_context

        world = setup_context(self.run)
        start = self.start_weights(start_weights, self.random_init)
        plan, data, new_job = self.plan(resume_from=resume_from,
                                        resume_training=resume_training,
                                        job_exists=job_exists, rank=world.rank)
        # built before the job directory exists: a checkpoint of another model is refused
        # with nothing written
        parts = build_training(self.run, plan, data, self.slot, world, start_weights=start,
                               compute_metrics=self.compute_metrics, tokenizer=self.tokenizer)
        job = self.job(plan, argv, new_job, rank=world.rank, job_exists=job_exists)
        self.last_summary = self._loop(plan, data, parts, world, job)
        callbacks = plan_callbacks(self.run.config.callbacks)
        if callbacks.sample_prompts and world.rank == 0:
            self._sample(callbacks)
        return self.last_summary

    def plan(self, *, resume_from: str | Path | bool | None = None,
             resume_training: bool | None = None, job_exists: bool = False,
             rank: int = 0) -> tuple[Plan, RunData, bool]:
        """Plan the training run, building nothing: the plan, its data, and whether it makes
        a new job directory (not when a resume continues in its own, nor on a rank)."""
        run = self.run
        resume = self.resume_source(resume_from, resume_training)
        continuing = resume is not None and JobDir(run.output_dir).exists()
        new_job = rank == 0 and not job_exists and not continuing
        plan_run(run, resume_from=resume, new_job=new_job)  # refusals before any data is read
        data = self.data()
        return plan_run(run, data, resume_from=resume, new_job=new_job), data, new_job

    def prepare(self, *, argv: Sequence[str] | None = None) -> tuple[Plan, RunData, JobDir]:
        """Plan the run and make its job directory, building nothing: what a launcher does
        before it starts the ranks."""
        plan, data, new_job = self.plan()
        return plan, data, self.job(plan, argv, new_job)

    def save_strategy(self, argv: Sequence[str] | None = None) -> JobDir:
        """`only_save_strategy: true` (MindFormers' key): the run's strategy file in a new job
        directory's strategy/, and nothing trained (e.g. to plan checkpoints for another
        cluster). The model is built once to list its parameters."""
        from mf_train.sharded import save_strategy_only

        plan = plan_run(self.run, new_job=True, check_memory=False)
        job = self.job(plan, argv, new_job=True)
        params = [(p.name, tuple(p.shape)) for p in self.slot.model.get_parameters()]
        path = save_strategy_only(self.run.model_config, params, self.run.parallel,
                                  job.strategy,
                                  offset=self.run.config.model.model_config.get("offset", 0))
        job.write_status("finished", message=f"only_save_strategy: wrote {path}")
        return job

    def resume_source(self, resume_from: str | Path | bool | None = None,
                      resume_training: bool | None = None) -> Path | None:
        """The checkpoint a run resumes from, or None for a fresh start."""
        if resume_from not in (None, False, True):
            return Path(resume_from)
        written = self.run.config.resume_training
        wanted = resume_from is True or resume_training is True or (
            resume_training is None and written not in (False, "", None))
        if not wanted:
            return None
        if isinstance(written, str) and written:
            return Path(written)
        last = self.last_checkpoint()
        if last is None:
            raise CheckpointNotFoundError(
                f"resume_training is set, but {self.run.config.output_dir} holds no complete "
                "checkpoint to resume from")
        return last

    def last_checkpoint(self) -> Path | None:
        root = self.run.output_dir
        return get_last_checkpoint(root / "checkpoints") or get_last_checkpoint(root)

    def start_weights(self, start_weights: str | Path | bool | None,
                       random_init: bool) -> str | Path | None:
        if start_weights is False or (self.slot.weights_ready and start_weights is None):
            return None
        start = start_weights if start_weights not in (None, True) else \
            self.run.config.load_checkpoint or None
        if self.run.mode == "finetune" and start is None and not random_init:
            raise TrainConfigError(
                "finetune starts from trained weights: set load_checkpoint (in the run YAML or "
                "--options load_checkpoint=PATH); --random-init fine-tunes an untrained model "
                "on purpose (or use mf train)")
        return start

    def job(self, plan: Plan, argv: Sequence[str] | None, new_job: bool, *, rank: int = 0,
            job_exists: bool = False) -> JobDir:
        """The job directory: made here for a new run, else the existing one, whose job.yaml
        and plan.json a resume rewrites (ranks it starts resolve them)."""
        header = ["The resolved run config: every key, defaults included.",
                  "Derived (not settings; shown for reference):",
                  *[f"  {d}" for d in plan.derived]]
        if self.run.config.files:
            header.append("From: " + ", ".join(str(p) for p in self.run.config.files))
        if not new_job:
            job = JobDir(self.run.output_dir)
            if plan.resume is not None and rank == 0 and not job_exists and job.exists():
                job.rewrite_run(self.run.to_yaml(header), plan.to_json())
            return job
        return JobDir.create(self.run.config.output_dir, config_yaml=self.run.to_yaml(header),
                             argv=argv or sys.argv, overwrite=self.run.config.overwrite_output_dir,
                             files={"plan.json": plan.to_json()})

    def _loop(self, plan: Plan, data: RunData, parts: Any, world: Any,
              job: JobDir) -> TrainSummary:
        from mf_train.loop import LoopState, TrainingLoop, restore_all_rng
        from mf_train.loss_scale import step_wrapper_from_config

        run = self.run
        state = LoopState(position=plan.start,
                          loss_scale=step_wrapper_from_config(run.config.runner_wrapper)
                          .loss_scale)
        notes = list(parts.notes)
        if plan.resume is not None:
            restore(parts, run, plan.resume, state, world.rank)
            restore_all_rng(plan.resume.state.rng)
            if run.ignore_data_skip:
                # Hugging Face's ignore_data_skip: weights and optimizer resume, the data
                # starts again at the first batch (so the run is no longer an exact replay)
                state.position = type(plan.start)()
                notes.append("ignore_data_skip: the data restarts at the first batch; this "
                             "resume does not replay the run exactly")
        if run.config.do_eval and parts.evaluator is None:
            notes.append("do_eval is set but there is no eval dataset: no evaluation")
        lines = summary_lines(plan, data, parts, world) + self._tokenizer_notes + notes
        loop = TrainingLoop(plan=plan, data=data, parts=parts, world=world, job=job,
                            state=state, callbacks=self.callbacks, summary_lines=lines,
                            echo=self.echo, echo_steps=self.echo_steps,
                            model_files=self.slot.checkpoint_files(self.tokenizer))
        return loop.run()

    def _sample(self, callbacks: Any) -> None:
        from mf_generate import TextStreamer

        tokenizer = self.tokenizer
        if tokenizer is None:
            return
        for prompt in callbacks.sample_prompts:
            sys.stdout.write(f"\n--- sample ({callbacks.sample_max_new_tokens} new tokens) ---\n")
            self.predict([prompt], checkpoint=False,
                         max_new_tokens=callbacks.sample_max_new_tokens,
                         streamer=TextStreamer(tokenizer, skip_special_tokens=True),
                         **callbacks.sample_settings)
            sys.stdout.write("\n")
            sys.stdout.flush()

    # ---- evaluate, predict, export ------------------------------------------------------------
    def evaluate(self, checkpoint: str | Path | bool | None = None) -> dict[str, float]:
        """Metrics of the model on the eval dataset (perplexity for a causal LM)."""
        from mf_train.distributed import setup_context

        world = setup_context(self.run)
        plan_run(self.run, new_job=False)  # the memory check before anything is built
        model = self.slot.for_inference(checkpoint, self.random_init)
        evaluator = build_evaluator(self.run, model, self.data(need_train=False), world,
                                    self.compute_metrics, self.tokenizer)
        if evaluator is None:
            raise TrainConfigError("evaluate needs an eval dataset: eval_dataset.data_loader in "
                                   "the run YAML, or Trainer(eval_dataset=...)")
        return evaluator.run()

    def predict(self, prompts: Sequence[str], *, checkpoint: str | Path | bool | None = None,
                max_length: int | None = None, max_new_tokens: int | None = None,
                streamer: Any = None, **generate_kwargs: Any) -> list[dict[str, list[str]]]:
        """MindFormers' [{'text_generation_text': [text]}] per prompt (text includes it)."""
        from mf_generate import generate

        if not self.run.task.causal:
            raise TrainConfigError(
                f"predict continues text with a causal LM; this run trains "
                f"{self.run.task.name}: run its checkpoint with `mf pipeline "
                f"{self.run.task.name} CHECKPOINT_DIR ...`")

        from mf_train.distributed import setup_context

        setup_context(self.run)
        plan_run(self.run, new_job=False)
        model = self.slot.for_inference(checkpoint, self.random_init)
        tokenizer = self.tokenizer
        if tokenizer is None:
            raise TrainConfigError("predict needs a tokenizer: processor.tokenizer in the run "
                                   "YAML, or Trainer(tokenizer=...)")
        if max_length is None and max_new_tokens is None:
            max_new_tokens = 32
        lengths = {"max_length": max_length, "max_new_tokens": max_new_tokens}
        settings = {k: v for k, v in lengths.items() if v is not None}
        if tokenizer.eos_token_id is not None:
            settings["eos_token_id"] = tokenizer.eos_token_id
        settings.update(generate_kwargs)
        results = []
        for prompt in prompts:
            output = generate(model, [tokenizer.encode(prompt)], None, streamer, **settings)
            row = [int(t) for t in np.asarray(output)[0]]
            results.append({"text_generation_text": [tokenizer.decode(
                row, skip_special_tokens=True)]})
        return results

    def export(self, output_dir: str | Path, checkpoint: str | Path | bool | None = None,
               overwrite: bool = False) -> Path:
        """The model as a model directory (config, model.safetensors, tokenizer files) that
        `mf generate` and `from_pretrained` read; LoRA merged into the base first
        (W += B A * alpha / rank). Appears whole or not at all, only where mf may write."""
        from mf_train.atomic import atomic_directory
        from mf_train.outputs import claim_output, write_marker

        claim = claim_output(output_dir, kind="model", what="export directory",
                             overwrite=overwrite, hint="choose a new OUT_DIR")
        tokenizer = self.tokenizer
        model = self.slot.for_inference(checkpoint, self.random_init)
        if self.slot.lora_applied:
            from mf_train.lora import merge_lora

            merge_lora(model)
            self.slot.lora_applied = False
        if claim.path.exists() and not claim.replaces:
            claim.path.rmdir()  # empty: the filled folder is renamed into its place
        with atomic_directory(claim.path) as folder:
            write_marker(folder, "model")
            model.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
        return claim.path


def summary_lines(plan: Plan, data: RunData, parts: Any, world: Any) -> list[str]:
    """The lines a training run prints before its first step."""
    model = parts.model
    cfg = model.config
    lines = [f"model: {type(model).__name__} ({cfg.family}), {model.num_parameters():,} "
             f"parameters, layers {cfg.num_layers}, hidden {cfg.hidden_size}, seq_length "
             f"{cfg.seq_length}, compute {cfg.compute_dtype}"]
    if cfg.compute_dtype == "float16":
        lines.append("compute_dtype float16: MindSpore's CPU fp16 matmul runs but is slower "
                     "than fp32 (measured, DESIGN.md); use it to rehearse an Ascend run")
    lines.append(f"data: {data.train.source}, {len(data.train)} samples of "
                 f"{data.train.sample_length} tokens")
    if data.eval is not None:
        lines.append(f"eval: {data.eval.source}, {len(data.eval)} samples")
    lines += plan.summary_lines()
    if parts.recomputed:
        lines.append(f"recompute: {parts.recomputed} transformer blocks")
    if world.size > 1:
        lines.append(f"data parallel: rank {world.rank} of {world.size}")
    from mf_parallel.runtime import runtime_summary

    lines.append(f"runtime: {runtime_summary()}")
    if plan.resume is not None:
        lines.append(f"resumed from {plan.resume.path} at step {plan.resume.state.step}, data "
                     f"position {plan.start.to_dict()}")
    return lines
