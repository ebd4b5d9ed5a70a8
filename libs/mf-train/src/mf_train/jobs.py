"""A run YAML as a job: what `mf train|finetune|eval|predict CONFIG` and `mf export` do.

The run is resolved once (`resolve_run`), then one process runs it in place (`RunSession`). A
run of several ranks started outside a launcher goes to mf's launcher (`launch.launch_run`, as
`mf launch` does): it plans the run and creates the job directory, starts every rank
(`worker.py --job DIR`, which resolves the job's job.yaml), records their states in
status.json, ends the job when a rank fails, and hands rank 0's events back as they arrive.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_train.callbacks import EvalRecord, StepRecord, TrainSummary, notify
from mf_train.plan import memory_need
from mf_train.resolve import resolve_run
from mf_train.session import RunSession
from mf_train.steplog import format_step_line

WORKER = Path(__file__).with_name("worker.py")
# msrun waits this long for every rank to join the cluster; a rank that dies while importing
# MindSpore should fail the job in about a minute, not msrun's default ten.
CLUSTER_TIME_OUT = 120


@dataclass
class JobResult:
    mode: str
    summary: TrainSummary | None = None
    metrics: dict[str, float] | None = None
    predictions: list[dict[str, list[str]]] | None = None
    job: Path | None = None


def run_job(config_path: str | Path, options: Sequence[str] = (), mode: str = "train", *,
            callbacks: Sequence[Any] = (), echo: bool = True, step_lines: bool = True,
            argv: Sequence[str] | None = None, input_data: Sequence[str] | None = None,
            streamer: Any = None, max_new_tokens: int | None = None,
            generate: dict[str, Any] | None = None, checkpoint: str | Path | None = None,
            random_init: bool = False) -> JobResult:
    """Run one job from a run YAML; errors are one line with an exit code.

    `echo` prints the run's summary, evaluations and checkpoints to stderr, `step_lines` the
    step lines too (off under a progress bar fed by `callbacks`). `checkpoint` (eval and
    predict): weights to use instead of load_checkpoint's, or under LoRA the LoRA run's over
    load_checkpoint's base. `random_init` runs untrained weights on purpose.
    """
    from mf_train.distributed import launched_by_msrun

    run = resolve_run(config_path, options, mode=mode)
    # A run that cannot fit this machine is refused now, before MindSpore loads or anything
    # is built or written (a killed process says nothing: issue 10).
    memory_need(run)
    session = RunSession(run, callbacks=callbacks, echo=echo, echo_steps=echo and step_lines,
                         random_init=random_init)
    if mode in ("train", "finetune") and run.config.only_save_strategy:
        job = session.save_strategy(argv)
        if echo:
            print(f"only_save_strategy: wrote {job.strategy}; nothing was trained",
                  file=sys.stderr, flush=True)
        return JobResult(mode, job=job.root)
    if mode in ("train", "finetune") and run.world_size > 1 and not launched_by_msrun():
        printer = [StepPrinter(step_lines)] if echo else []
        return launch_ranks(run, config_path, options, callbacks=[*callbacks, *printer],
                            argv=argv, echo=echo, random_init=random_init)
    if mode in ("train", "finetune"):
        return JobResult(mode, summary=session.fit(argv=argv), job=run.output_dir)
    if mode == "eval":
        return JobResult(mode, metrics=session.evaluate(checkpoint))
    return JobResult(mode, predictions=session.predict(
        list(input_data or []), checkpoint=checkpoint, streamer=streamer,
        max_new_tokens=max_new_tokens, **(generate or {})))


def plan_job(config_path: str | Path, options: Sequence[str] = (),
             mode: str = "train") -> list[str]:
    """`mf train CONFIG --dry-run`: the run's plan, with nothing read, built or written
    (plan.py is pure; the datasets are not opened, so steps come from max_steps)."""
    from mf_train.plan import plan_run

    run = resolve_run(config_path, options, mode=mode)
    resume = run.config.resume_training and run.output_dir.exists()
    return plan_run(run, new_job=not resume).describe()


def export_job(config_path: str | Path, output_dir: str | Path, options: Sequence[str] = (),
               checkpoint: str | Path | None = None, overwrite: bool = False,
               random_init: bool = False) -> Path:
    """`mf export`: the run YAML's model with its weights (LoRA merged) as a model directory."""
    run = resolve_run(config_path, options, mode="predict")
    return RunSession(run, echo=False, random_init=random_init).export(
        output_dir, checkpoint=checkpoint, overwrite=overwrite)


# ---- several ranks: mf's launcher (launch.py, supervisor.py) ----------------------------------

def launch_ranks(run: Any, config_path: str | Path, options: Sequence[str], *,
                 callbacks: Sequence[Any] = (), argv: Sequence[str] | None = None,
                 echo: bool = False, random_init: bool = False) -> JobResult:
    """Run the resolved run's ranks on this machine under mf's launcher, which plans the run,
    makes the job directory, owns every rank's process and ends the job when one fails; rank
    0's events come back here as step and eval records for the callbacks."""
    from mf_train.launch import launch_run
    from mf_train.supervisor import raise_for

    if run.mode == "finetune":  # weights named, or said not to be needed, before ranks start
        RunSession(run, random_init=random_init).start_weights(None, random_init)
    follower = EventFollower(list(callbacks))
    result = launch_run(config_path, options, run.mode, resolved=run, echo=echo,
                        listeners=[follower.handle], argv=argv)
    raise_for(result.outcome)
    return JobResult(run.mode, summary=follower.summary(), job=result.job.root)


class StepPrinter:
    """The eval (and step) lines of a launched job, on stderr, as one process prints them."""

    def __init__(self, steps: bool = True):
        self.steps = steps

    def on_step_end(self, record: StepRecord) -> None:
        if not self.steps:
            return
        print(format_step_line(record.step, record.total_steps, record.loss, record.lr,
                               record.grad_norm, record.tokens_per_s, record.mem_gib),
              file=sys.stderr, flush=True)

    def on_evaluate(self, record: EvalRecord) -> None:
        text = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items())
        print(f"eval at step {record.step}: {text}", file=sys.stderr, flush=True)


class EventFollower:
    """Turns rank 0's events (as the launcher hands them over) into step and eval records."""

    def __init__(self, callbacks: list[Any]):
        self.callbacks = callbacks
        self.last_loss: float | None = None
        self.steps = 0
        self.checkpoint: Path | None = None
        self.evaluations: list[EvalRecord] = []
        self.started = time.time()

    def handle(self, event: dict[str, Any], total_steps: int | None) -> None:
        kind = event.get("kind")
        if kind == "step":
            self.steps = event["step"]
            if event.get("loss") is not None:
                self.last_loss = event["loss"]
            notify(self.callbacks, "on_step_end", StepRecord(
                step=event["step"], total_steps=total_steps or 0,
                epoch=event.get("epoch") or 0, loss=event.get("loss") or float("nan"),
                lr=event.get("lr") or 0.0, grad_norm=event.get("grad_norm") or float("nan"),
                tokens_per_s=event.get("tokens_per_s") or 0.0, mem_gib=event.get("mem_gib")))
        elif kind == "eval":
            record = EvalRecord(step=event["step"], epoch=event.get("epoch") or 0,
                                metrics=dict(event.get("metrics") or {}))
            self.evaluations.append(record)
            notify(self.callbacks, "on_evaluate", record)
        elif kind == "checkpoint" and event.get("path"):
            self.checkpoint = Path(event["path"])

    def summary(self) -> TrainSummary:
        return TrainSummary(steps=self.steps, last_loss=self.last_loss,
                            checkpoint=self.checkpoint, evaluations=self.evaluations,
                            seconds=time.time() - self.started)
